//! ISO 8583 for the terminal ⇄ acquirer link (placeholder docs, replaced below).

mod codec;
pub mod dialect;
pub mod framing;
pub mod message;

pub use dialect::{Dialect, DialectError, DialectFamily};
pub use message::{DecodeError, EncodeError, FieldRef, FieldSource, Message, MessageRef, Mti};
#[cfg(test)]
mod tests;
