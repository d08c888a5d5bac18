//! ECR role.
