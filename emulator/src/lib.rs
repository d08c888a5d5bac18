//! The emulated POS terminal: a sans-IO core (`core`), its journal (`journal`) and the tokio
//! ports that put it on real lines (`ports`).
#![forbid(unsafe_code)]

pub mod core;
pub mod import;
pub mod journal;
