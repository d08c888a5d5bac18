//! The rig link: the ASCII line protocol a harness (client) uses to drive a terminal's
//! physical side — keys, cards, faults, power — and to read its display, printer, LEDs and
//! beeper. The emulator serves it on TCP (default `127.0.0.1:20010`) and on a serial line; a
//! rig controller (a microcontroller wired to a real terminal) implements the same protocol.
//! The full specification, with a microcontroller sketch, is `hil-rigs/PROTOCOL.md`.
//!
//! ```text
//! client → rig   @1 HELLO 1 posrig/0.1 *F8
//! rig → client   ACK 1 HELLO 1 posrig-emulator/0.1 KEYS,CARD,FAULT,POWER,DISPLAY,PRINTER,LEDS,BEEPER *7E
//! client → rig   @2 KEY 5 *B5
//! rig → client   ACK 2 *51
//! rig → client   !7 DISPLAY 2 "%E9%80%80%E8%B4%A7" "REFUND" *BB     (event: 退货 / REFUND)
//! ```
//!
//! Every framed line ends in ` *CC`, the CRC-8 ([`crc8`]) of everything before that space.
//! Requests are numbered by the client (`@seq`), events by the rig (`!seq`); replies carry the
//! request's number (`ACK seq`, `ERR seq CODE "text"`), or `-` when it is unknown.

mod codec;
mod model;
mod session;

pub use codec::{
    DecodeError, DecodeErrorKind, EncodeError, LineDecoder, MAX_DISPLAY_LINES, MAX_GAP_MS,
    MAX_KEYS, MAX_LINE, MAX_NAME, MAX_PRINTER_CHUNK, VERSION, crc8, decode_line, encode_line,
    escape_text, unescape_text,
};
pub use model::{
    Capability, CardAction, CardName, ErrCode, FaultKind, GetWhat, KeyName, LedState, Line, Mode,
    Report, Request, RigState, Tone,
};
pub use session::{
    ClientEvent, ClientSession, Incoming, KEY_PRESS_ALLOWANCE, Outcome, ServerSession,
};

/// The emulator's default TCP port for the rig link (ZVT uses 20007/20008, so not those).
pub const DEFAULT_TCP_PORT: u16 = 20010;

#[cfg(test)]
mod tests;
