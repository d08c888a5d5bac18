//! The posrig harness library: scenario model, runner, rigs, transcripts, snapshots, reports.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod matcher;
pub mod redact;
pub mod render;
pub mod report;
pub mod rig;
pub mod rules;
pub mod runner;
pub mod scenario;
pub mod snapshot;
pub mod suite;
pub mod transcript;
