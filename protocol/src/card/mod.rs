//! Card data: the [`Pan`] type that never prints in full, ISO 7813 tracks, EMV BER-TLV.

pub mod emv;
pub mod fields;
pub mod pan;
pub mod track;

pub use fields::{Expiry, ExpiryError, ServiceCode, ServiceCodeError};
pub use pan::{Pan, PanError, PanHash};
pub use track::{LrcStatus, RawTrack, Track1, Track2, TrackError, TrackKind};
