//! PT role.
