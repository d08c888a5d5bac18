//! The acquirer host simulator. Its core is sans-IO; a thin tokio adapter serves TCP.
#![forbid(unsafe_code)]

pub mod fees;
pub mod ledger;
