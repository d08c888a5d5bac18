//! ISO 8583 on the terminal ⇄ acquirer link: dialects as data, a zero-copy codec, messages,
//! per-family builders, the X9.19 MAC, working keys and TCP framing. One implementation, used
//! by the emulator and the acquirer simulator alike.
//!
//! # Layers
//! - [`dialect`]: the wire layout, loaded from YAML. Built in: `cup` (China UnionPay POS: TPDU +
//!   6-byte header, BCD MTI, binary primary bitmap, BCD numerics, track 2 with the `D` nibble)
//!   and `iso87-ascii` (ISO 8583:1987, ASCII fields, binary bitmap with secondary, no header).
//!   The files are `fixtures/dialects/*.yaml`, embedded with `include_str!`;
//!   [`Dialect::from_path`] loads a user's own at run time. Errors name `file:line:column`.
//! - [`message`]: [`MessageRef`] decodes a frame into a fixed array of borrowed field slots
//!   (no allocation); [`Message`] owns canonical values for building and state and encodes
//!   into a reused buffer. Errors carry the field number and byte offset.
//! - [`subfield`]: CUP 60/61, ISO 90, settlement totals (48), the fee field; rendering by
//!   subfield for transcripts (`60.1=25 60.2=000001 60.3=000`), with card data masked.
//! - [`builder`]: what each transaction carries, per [`DialectFamily`]; replies; response
//!   matching (MTI + 10, STAN, TID, MID, processing code, amount).
//! - [`mac`], [`keys`]: ANSI X9.19 over MTI … last field before 64/128; working keys in 0810
//!   field 62 under the TMK.
//! - [`framing`]: the TCP length prefix, reassembly, and deliberately broken frames.
//!
//! # Data versus code
//! The dialect file describes *how* fields are encoded. *What* each transaction carries — the
//! MTI, processing code, field 25, CUP 60.1, which fields appear — is code in [`builder`],
//! chosen by the dialect file's `family` key (`cup` or `iso87`). A user dialect may change
//! encodings freely; a new transaction family needs code.
//!
//! # The fee field (R-FEE)
//! The acquirer returns its merchant fee in a private field named by the dialect's `fee_field`
//! (CUP 57, iso87 63): fee n12 | net n12 | returned fee n12, minor units of field 49. For a
//! sale: the fee, `net = amount − fee`, returned 0; for a refund: fee 0, the fee given back,
//! `net = refund − returned fee`. See [`subfield::FeeInfo`].
//!
//! # Example: the CUP refund advice of `reference/vectors.md`
//! ```
//! use protocol::iso8583::{Dialect, MessageRef, subfield::render_field};
//! let cup = Dialect::builtin("cup").unwrap();
//! // [00 80] [60 0003 0000] [60 31 00 00 00 00] [02 20] [70 20 04 80 28 C0 80 19] fields…
//! let hex = "0080600003000060310000000002207020048028c080191962220212345678901230200000000000001000000124\
//! 021000316222021234567890123d30121011234031323334353637383930313231323334353637383132333435\
//! 363738393031323334353135360011250000010000001600000100012311260000000000000000";
//! let bytes: Vec<u8> = (0..hex.len()).step_by(2)
//!     .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
//! let mut buf = bytes.clone();
//! let frame = cup.length_prefix.decode(&mut buf).unwrap().unwrap();
//! let m = MessageRef::decode(&cup, &frame).unwrap();
//! assert_eq!(m.mti.to_string(), "0220");
//! assert_eq!(m.field_str(4).as_deref(), Some("000000001000"));
//! let f60 = m.field(60).unwrap().value();
//! assert_eq!(render_field(&cup, 60, &f60), "60.1=25 60.2=000001 60.3=000");
//! let f2 = m.field(2).unwrap().value();
//! assert_eq!(render_field(&cup, 2, &f2), "2=622202*********0123");
//! ```

pub mod builder;
mod codec;
pub mod dialect;
pub mod framing;
pub mod keys;
pub mod mac;
pub mod message;
pub mod subfield;

pub use dialect::{Dialect, DialectError, DialectFamily};
pub use framing::{FramingError, LengthPrefixed};
pub use message::{DecodeError, EncodeError, FieldRef, FieldSource, Message, MessageRef, Mti};
#[cfg(test)]
mod tests;
