//! Card data: the [`Pan`] type that never prints in full, ISO 7813 tracks, EMV BER-TLV.

pub mod pan;

pub use pan::{Pan, PanError, PanHash};
