//! Pure codecs and sans-IO protocol state machines shared by the emulator, the acquirer
//! simulator and the harness. Nothing here performs I/O or depends on tokio: every state
//! machine is fed bytes, events and the current [`time::Instant`] and hands back bytes,
//! events and deadlines.
#![forbid(unsafe_code)]

pub mod card;
pub mod escpos;
pub mod fixture;
pub mod iso8583;
pub mod money;
pub mod riglink;
pub mod time;
pub mod tlv;
pub mod zvt;
