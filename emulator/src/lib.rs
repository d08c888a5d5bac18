//! The emulated POS terminal: a sans-IO core ([`core`]), its journal ([`journal`]), the tokio
//! ports that put it on real lines ([`ports`]) and `posrig emulate` ([`cli`]).
//!
//! # Crash tests: what a SIGKILL proves, and what it does not
//!
//! `harness/tests/emulate_crash.rs` kills a real `posrig emulate` process with SIGKILL at each
//! failpoint of a refund ([`ports::failpoints`]: after the reversal record is committed, after
//! the request is sent, after the reply is received but before it is committed), restarts it
//! on the same journal file and checks the journal and what the acquirer received.
//!
//! That proves **crash consistency**: whatever the process had committed is there on restart,
//! nothing half-written is, and the restarted terminal resolves every unknown outcome (the
//! reversal or the advice goes first) so no refund is approved twice or lost.
//!
//! It does **not** prove **power-loss durability**. SIGKILL ends the process, not the machine:
//! the operating system keeps its page cache and writes it out later, so a commit that
//! reached only the cache survives the test exactly as one that reached the disk would. The
//! journal runs SQLite with `synchronous=FULL` (an fsync per commit) so that a real power cut
//! loses nothing committed — on a disk that honours fsync — but no test here cuts the power.
#![forbid(unsafe_code)]

pub mod cli;
pub mod core;
pub mod import;
pub mod journal;
pub mod ports;
