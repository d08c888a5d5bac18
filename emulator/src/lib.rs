//! The emulated POS terminal.
#![forbid(unsafe_code)]
