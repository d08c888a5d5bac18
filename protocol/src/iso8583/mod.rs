//! ISO 8583 for the terminal ⇄ acquirer link (placeholder docs, replaced below).

mod codec;
pub mod dialect;
pub mod framing;
pub mod keys;
pub mod mac;
pub mod message;
pub mod subfield;

pub use dialect::{Dialect, DialectError, DialectFamily};
pub use message::{DecodeError, EncodeError, FieldRef, FieldSource, Message, MessageRef, Mti};
#[cfg(test)]
mod tests;
