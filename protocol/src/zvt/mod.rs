//! ZVT, the German ECR ⇄ payment-terminal protocol (PA00P015/PA00P016), as posrig's
//! emulator (PT role) and harness (ECR role) both speak it. Facts: reference/zvt.md.
//!
//! Layers, bottom up, all sans-IO:
//! - [`link`]: the serial link layer (`DLE STX … DLE ETX CRC`, ACK/NAK, T1/T2, repeats);
//! - [`tcp`]: APDU reassembly from a TCP byte stream;
//! - [`transport`]: one type over both, so the sequencers do not care;
//! - [`apdu`], [`bmp`], [`command`], [`codes`]: the application codec;
//! - [`pt`] and [`ecr`]: the master/slave sequencers of each role.
//!
//! ```
//! use protocol::zvt::command::{Command, Context};
//! // Status-Enquiry with password 123456, framed for the serial line (reference/vectors.md).
//! let apdu = Command::decode(&[0x05, 0x01, 0x03, 0x12, 0x34, 0x56], Context::None).unwrap()
//!     .to_bytes().unwrap();
//! assert_eq!(protocol::zvt::link::encode_frame(&apdu),
//!            [0x10, 0x02, 0x05, 0x01, 0x03, 0x12, 0x34, 0x56, 0x10, 0x03, 0xE0, 0x43]);
//! ```

pub mod apdu;
pub mod bmp;
pub mod codes;
pub mod command;
pub mod ecr;
pub mod link;
pub mod pt;
pub mod tcp;
pub mod transport;

pub use apdu::{Apdu, ApduError};
pub use command::{Command, CommandError, CommandKind, Context, EncodeError};
