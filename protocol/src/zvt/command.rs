//! Typed ZVT commands: every APDU posrig's emulator (PT role) and harness (ECR role) build or
//! parse, as owned structs, plus [`Command::Raw`] for any other APDU.
//!
//! ```
//! use protocol::zvt::command::{Command, Context, Refund};
//! use protocol::zvt::bmp::Password;
//! // reference/vectors.md: refund 19.95 EUR, password 123456.
//! let bytes = [0x06, 0x31, 0x0D, 0x12, 0x34, 0x56, 0x04, 0, 0, 0, 0, 0x19, 0x95, 0x49, 0x09, 0x78];
//! let Command::Refund(r) = Command::decode(&bytes, Context::None).unwrap() else { panic!() };
//! assert_eq!((r.amount_minor, r.currency), (Some(1995), Some(978)));
//! let built = Refund {
//!     password: Password::from_digits("123456").unwrap(),
//!     amount_minor: Some(1995),
//!     currency: Some(978),
//!     ..Default::default()
//! };
//! assert_eq!(Command::Refund(built).to_bytes().unwrap(), bytes);
//! ```
//!
//! # Positional parts and [`Context`]
//! Most data blocks are BMP lists, but some start with untagged positional fields: the
//! password (06 00, 06 20, 06 30, 06 31, 06 50, 06 93, 05 01), the config byte and currency of
//! 06 00, the result code of 06 1E (plus the currency when it is `6F`), the status and T4
//! byte of 04 FF, the attribute of 06 D1. They need no context. The one APDU whose layout
//! depends on what it answers is **06 0F**: after a Status-Enquiry (05 01) it is
//! `[<SW version LLLVAR>] <terminal status> [06 TLV]`; after anything else (06 00, 06 01,
//! …) it is a BMP list (`19 <status byte> 29 <TID> 49 <CC>` after Registration). Decode it
//! with `Context::Answering(CommandKind::StatusEnquiry)` to get
//! [`Command::EnquiryCompletion`]. The SW-version field is optional and has no tag; it is
//! taken as present when the first three bytes are `Fx Fy Fz` and the announced length leaves
//! a status byte (ecrterm's rule; a status `F0`–`F9` followed by two more `Fx` bytes is the
//! one ambiguous case).
//!
//! # Strictness
//! An unknown BMP is an error ([`CommandError::Bmp`] with [`BmpError::UnknownBmp`]; a PT
//! answers `84 83 00`), and so is a malformed amount, currency or card number (`84 9A 00`,
//! DESIGN.md R-ZERO); see [`CommandError::refusal_code`]. A known BMP that a command does not
//! list is kept in the struct's `other` and written back after the listed ones — never
//! dropped. BMP 06 is kept as raw TLV bytes (`tlv: Some(vec![])` is the empty container
//! `06 00`, which still tells the PT that the ECR accepts TLV) and parsed on access with
//! [`crate::tlv`].
//!
//! # posrig's private TLV: the original of a refund
//! DESIGN.md §2 step 2 lets the ECR name the sale a refund returns money for. posrig
//! carries it inside BMP 06 of `06 31` in **private-class** BER tags (`DF xx`): ZVT assigns
//! its own tags in the universal/application/context classes (07, 09, 0A, 14, 1A, 1F07,
//! 1F16, 1F17, 1F1F, 1F2B, 24, 25, 26, 2F, 41, …), so a private-class tag cannot collide with
//! a present or future ZVT tag, and a terminal that does not know it skips it.
//!
//! | tag | content | format |
//! |---|---|---|
//! | `DF60` | original trace number (STAN, ISO 8583 field 11) | 3 bytes BCD (6 digits) |
//! | `DF61` | batch number of the original (CUP 60.2) | 3 bytes BCD (6 digits) |
//! | `DF62` | RRN of the original (field 37) | 1–12 bytes ASCII |
//! | `DF63` | original transaction date MMDD (field 13) | 2 bytes BCD |
//! | `DF64` | authorisation code of the original (field 38) | 1–6 bytes ASCII |
//!
//! Exactly one key is sent: `DF60`+`DF61`, or `DF62`+`DF63`, or `DF64`
//! ([`OriginalRef`]). Example — refund 33.33 CNY of the sale with trace 000123 in batch
//! 000001:
//! ```text
//! 06 31 1B  12 34 56  04 00 00 00 00 33 33  49 01 56
//!           06 0C  DF 60 03 00 01 23  DF 61 03 00 00 01
//! ```
//! by RRN 000000000001 from 26 November: `06 14 DF 62 0C "000000000001" DF 63 02 11 26`;
//! by auth code: `06 09 DF 64 06 "A1B2C3"`.
//!
//! TLV `1F1F` (the PT's unique transaction id / receipt number, mirrored by the ECR in its
//! next command for synchronisation, reference/zvt.md §2.3) doubles as the ECR reference for
//! duplicate detection (DESIGN.md R-DUP); see [`Refund::ecr_reference`].

use std::time::Duration;

use crate::tlv::{self, Tag, TlvError};
use crate::zvt::apdu::{self, Apdu, ApduError};
use crate::zvt::bmp::{
    self, Bcd, BmpError, CardNumber, Field, IndividualTotals, Password, RawBmp, TrackData, tag,
};

/// What a command is, without its data; also the key of the ECR's reply rules.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum CommandKind {
    Registration,
    Authorization,
    LogOff,
    /// 06 0F, either layout.
    Completion,
    /// 06 1E, abort from the PT.
    Abort,
    RepeatReceipt,
    Reversal,
    Refund,
    EndOfDay,
    Diagnosis,
    Initialisation,
    /// 06 B0.
    AbortFromEcr,
    PrintLine,
    PrintTextBlock,
    StatusInformation,
    IntermediateStatus,
    SetDateTime,
    StatusEnquiry,
    /// 80 00.
    Ack,
    /// 84 xx.
    Nack,
    Other([u8; 2]),
}

impl CommandKind {
    pub fn of(class: u8, instr: u8) -> CommandKind {
        use CommandKind::*;
        match (class, instr) {
            (0x06, 0x00) => Registration,
            (0x06, 0x01) => Authorization,
            (0x06, 0x02) => LogOff,
            (0x06, 0x0F) => Completion,
            (0x06, 0x1E) => Abort,
            (0x06, 0x20) => RepeatReceipt,
            (0x06, 0x30) => Reversal,
            (0x06, 0x31) => Refund,
            (0x06, 0x50) => EndOfDay,
            (0x06, 0x70) => Diagnosis,
            (0x06, 0x93) => Initialisation,
            (0x06, 0xB0) => AbortFromEcr,
            (0x06, 0xD1) => PrintLine,
            (0x06, 0xD3) => PrintTextBlock,
            (0x04, 0x0F) => StatusInformation,
            (0x04, 0xFF) => IntermediateStatus,
            (0x04, 0x01) => SetDateTime,
            (0x05, 0x01) => StatusEnquiry,
            (0x80, 0x00) => Ack,
            (0x84, _) => Nack,
            (c, i) => Other([c, i]),
        }
    }
    /// The kind of an encoded APDU (`Other([0, 0])` if it is shorter than two bytes).
    pub fn of_apdu(bytes: &[u8]) -> CommandKind {
        match bytes {
            [c, i, ..] => CommandKind::of(*c, *i),
            _ => CommandKind::Other([0, 0]),
        }
    }
    /// `80 00` or `84 xx`: an answer, not a command.
    pub fn is_answer(self) -> bool {
        matches!(self, CommandKind::Ack | CommandKind::Nack)
    }
    /// Accepting it hands master rights to the PT until 06 0F / 06 1E (ecrterm's
    /// `wait_for_completion`). Log-Off and Abort-from-ECR are answered with `80 00 00` alone;
    /// PT-to-ECR messages and answers never hand over. Unknown commands are assumed to
    /// (06 18 Reset, 06 C0 Read Card … do).
    pub fn awaits_completion(self) -> bool {
        use CommandKind::*;
        match self {
            Registration | Authorization | RepeatReceipt | Reversal | Refund | EndOfDay
            | Diagnosis | Initialisation | StatusEnquiry => true,
            LogOff | AbortFromEcr | Completion | Abort | PrintLine | PrintTextBlock
            | StatusInformation | IntermediateStatus | SetDateTime | Ack | Nack => false,
            Other(_) => true,
        }
    }
    /// 06 0F or 06 1E: the PT hands master rights back with it.
    pub fn ends_transaction(self) -> bool {
        matches!(self, CommandKind::Completion | CommandKind::Abort)
    }
}

/// What an APDU answers, for the layouts that depend on it (06 0F only).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub enum Context {
    #[default]
    None,
    Answering(CommandKind),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Apdu(#[from] ApduError),
    #[error(transparent)]
    Bmp(#[from] BmpError),
    /// A positional field is missing.
    #[error("{what} missing at byte {offset}")]
    Missing { what: &'static str, offset: usize },
    /// A positional field or a value is malformed.
    #[error("{what} at byte {offset}")]
    Invalid { what: &'static str, offset: usize },
}

impl CommandError {
    /// Byte offset within the APDU.
    pub fn offset(&self) -> usize {
        match self {
            CommandError::Apdu(e) => e.offset(),
            CommandError::Bmp(e) => e.offset(),
            CommandError::Missing { offset, .. } | CommandError::Invalid { offset, .. } => *offset,
        }
    }
    /// The `84 xx` a PT answers with: `83` for an unknown BMP (SPEC-C 13), `9A` (protocol
    /// error, mandatory element missing) for the rest — the latter is UNVERIFIED in SPEC-T.
    pub fn refusal_code(&self) -> u8 {
        match self {
            CommandError::Bmp(BmpError::UnknownBmp { .. }) => 0x83,
            _ => 0x9A,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Apdu(#[from] ApduError),
    #[error(transparent)]
    Bmp(#[from] BmpError),
    #[error("cannot encode: {0}")]
    Invalid(&'static str),
}

// ---------------------------------------------------------------------------------------
// Private TLV tags and TLV helpers

/// TLV tags inside BMP 06 that posrig reads or writes.
pub mod tlv_tag {
    pub const TEXT_LINE: u32 = 0x07;
    pub const ATTRIBUTE: u32 = 0x09;
    pub const ZVT_COMMAND: u32 = 0x0A;
    pub const CHARACTER_SET: u32 = 0x14;
    pub const MAX_APDU_LENGTH: u32 = 0x1A;
    pub const DISPLAY_TEXTS: u32 = 0x24;
    pub const PRINT_TEXTS: u32 = 0x25;
    pub const PERMITTED_COMMANDS: u32 = 0x26;
    pub const RECEIPT_TYPE: u32 = 0x1F07;
    pub const EXTENDED_ERROR_CODE: u32 = 0x1F16;
    pub const EXTENDED_ERROR_TEXT: u32 = 0x1F17;
    /// Unique transaction id (receipt number) for synchronisation; posrig's ECR reference.
    pub const TRANSACTION_ID: u32 = 0x1F1F;
    pub const LONG_TRACE: u32 = 0x1F2B;
    /// posrig private: original trace (STAN), 3 bytes BCD.
    pub const ORIGINAL_TRACE: u32 = 0xDF60;
    /// posrig private: original batch, 3 bytes BCD.
    pub const ORIGINAL_BATCH: u32 = 0xDF61;
    /// posrig private: original RRN, ASCII.
    pub const ORIGINAL_RRN: u32 = 0xDF62;
    /// posrig private: original date MMDD, 2 bytes BCD.
    pub const ORIGINAL_DATE: u32 = 0xDF63;
    /// posrig private: original auth code, ASCII.
    pub const ORIGINAL_AUTH_CODE: u32 = 0xDF64;
}

/// The value of a top-level object of a BMP 06 container.
pub fn tlv_get(container: Option<&[u8]>, tag: u32) -> Result<Option<&[u8]>, TlvError> {
    let Some(c) = container else { return Ok(None) };
    Ok(tlv::parse_all(c)?
        .into_iter()
        .find(|t| t.tag == Tag(tag))
        .map(|t| t.value))
}

/// Replaces (or adds) top-level objects of a container, creating it if absent; `None`
/// removes the tag.
pub fn tlv_set(
    container: &mut Option<Vec<u8>>,
    edits: &[(u32, Option<&[u8]>)],
) -> Result<(), TlvError> {
    let old = container.take().unwrap_or_default();
    let mut out = Vec::with_capacity(old.len() + 16);
    let res = (|| {
        for t in tlv::parse_all(&old)? {
            if !edits.iter().any(|(tag, _)| Tag(*tag) == t.tag) {
                tlv::write(&mut out, t.tag, t.value);
            }
        }
        Ok(())
    })();
    if let Err(e) = res {
        *container = Some(old);
        return Err(e);
    }
    for (tag, v) in edits {
        if let Some(v) = v {
            tlv::write(&mut out, Tag(*tag), v);
        }
    }
    *container = Some(out);
    Ok(())
}

/// How the ECR names the original sale of a refund (posrig private TLV, see module docs).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OriginalRef {
    /// Trace (STAN) + batch, while the original is in the open batch.
    TraceBatch { trace: u32, batch: u32 },
    /// RRN + original date, after settlement.
    RrnDate { rrn: String, month: u8, day: u8 },
    /// Authorisation code.
    AuthCode(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginalRefError {
    #[error(transparent)]
    Tlv(#[from] TlvError),
    #[error("TLV {0:04X} present without its partner")]
    Incomplete(u32),
    #[error("TLV {0:04X} is malformed")]
    Malformed(u32),
}

impl OriginalRef {
    fn from_tlv(c: Option<&[u8]>) -> Result<Option<OriginalRef>, OriginalRefError> {
        use tlv_tag::*;
        let get = |t| tlv_get(c, t);
        let bcd6 = |t: u32, v: &[u8]| {
            (v.len() == 3)
                .then(|| bmp::bcd_to_u64(v))
                .flatten()
                .map(|x| x as u32)
                .ok_or(OriginalRefError::Malformed(t))
        };
        let ascii = |t: u32, v: &[u8], max: usize| {
            (!v.is_empty() && v.len() <= max && v.iter().all(|b| b.is_ascii_graphic()))
                .then(|| v.iter().map(|&b| b as char).collect::<String>())
                .ok_or(OriginalRefError::Malformed(t))
        };
        match (get(ORIGINAL_TRACE)?, get(ORIGINAL_BATCH)?) {
            (Some(t), Some(b)) => {
                return Ok(Some(OriginalRef::TraceBatch {
                    trace: bcd6(ORIGINAL_TRACE, t)?,
                    batch: bcd6(ORIGINAL_BATCH, b)?,
                }));
            }
            (Some(_), None) => return Err(OriginalRefError::Incomplete(ORIGINAL_TRACE)),
            (None, Some(_)) => return Err(OriginalRefError::Incomplete(ORIGINAL_BATCH)),
            (None, None) => {}
        }
        match (get(ORIGINAL_RRN)?, get(ORIGINAL_DATE)?) {
            (Some(r), Some(d)) => {
                let md = (d.len() == 2)
                    .then(|| bmp::bcd_to_u64(d))
                    .flatten()
                    .ok_or(OriginalRefError::Malformed(ORIGINAL_DATE))?;
                return Ok(Some(OriginalRef::RrnDate {
                    rrn: ascii(ORIGINAL_RRN, r, 12)?,
                    month: (md / 100) as u8,
                    day: (md % 100) as u8,
                }));
            }
            (Some(_), None) => return Err(OriginalRefError::Incomplete(ORIGINAL_RRN)),
            (None, Some(_)) => return Err(OriginalRefError::Incomplete(ORIGINAL_DATE)),
            (None, None) => {}
        }
        match get(ORIGINAL_AUTH_CODE)? {
            Some(a) => Ok(Some(OriginalRef::AuthCode(ascii(
                ORIGINAL_AUTH_CODE,
                a,
                6,
            )?))),
            None => Ok(None),
        }
    }

    /// The TLV objects (tag, value) this reference is carried in.
    pub fn to_tlv(&self) -> Result<Vec<(u32, Vec<u8>)>, EncodeError> {
        use tlv_tag::*;
        let bcd3 = |v: u32| {
            Bcd::<3>::from_u64(v as u64)
                .map(|b| b.0.to_vec())
                .ok_or(EncodeError::Invalid("trace/batch above 999999"))
        };
        let ascii = |s: &str, max: usize| {
            if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_graphic()) {
                Err(EncodeError::Invalid("RRN/auth code must be 1-12/1-6 ASCII"))
            } else {
                Ok(s.as_bytes().to_vec())
            }
        };
        Ok(match self {
            OriginalRef::TraceBatch { trace, batch } => vec![
                (ORIGINAL_TRACE, bcd3(*trace)?),
                (ORIGINAL_BATCH, bcd3(*batch)?),
            ],
            OriginalRef::RrnDate { rrn, month, day } => {
                let md = Bcd::<2>::from_u64(*month as u64 * 100 + *day as u64)
                    .filter(|_| *month < 100 && *day < 100)
                    .ok_or(EncodeError::Invalid("month/day above 99"))?;
                vec![
                    (ORIGINAL_RRN, ascii(rrn, 12)?),
                    (ORIGINAL_DATE, md.0.to_vec()),
                ]
            }
            OriginalRef::AuthCode(a) => vec![(ORIGINAL_AUTH_CODE, ascii(a, 6)?)],
        })
    }
}

// ---------------------------------------------------------------------------------------
// Decoding helpers

type DResult<T> = Result<T, CommandError>;

fn bad(what: &'static str, offset: usize) -> CommandError {
    CommandError::Invalid { what, offset }
}

fn fixed<const N: usize>(f: &Field<'_>) -> DResult<[u8; N]> {
    <[u8; N]>::try_from(f.value).map_err(|_| bad("BMP has the wrong length", f.offset))
}
fn byte(f: &Field<'_>) -> DResult<u8> {
    Ok(fixed::<1>(f)?[0])
}
fn bcd<const N: usize>(f: &Field<'_>) -> DResult<Bcd<N>> {
    fixed::<N>(f).map(Bcd)
}
fn amount(f: &Field<'_>) -> DResult<u64> {
    bmp::amount(f.value).ok_or(CommandError::Bmp(BmpError::BadValue {
        tag: f.tag,
        offset: f.value_offset,
        what: "amount is not 6 bytes of BCD",
    }))
}
fn currency(f: &Field<'_>) -> DResult<u16> {
    bmp::currency(f.value).ok_or(CommandError::Bmp(BmpError::BadValue {
        tag: f.tag,
        offset: f.value_offset,
        what: "currency code is not BCD",
    }))
}
fn card(f: &Field<'_>) -> DResult<CardNumber> {
    CardNumber::from_bcd(f.value).map_err(|i| {
        CommandError::Bmp(BmpError::BadValue {
            tag: f.tag,
            offset: f.value_offset + i,
            what: "card number nibble is not a digit, E, or final F",
        })
    })
}
fn bytes(f: &Field<'_>) -> Vec<u8> {
    f.value.to_vec()
}

/// Walks a BMP list; `take` returns `Ok(false)` for a field it does not want (or already
/// has), which then lands in `other`.
fn each_bmp<'a>(
    data: &'a [u8],
    base: usize,
    mut take: impl FnMut(&Field<'a>) -> DResult<bool>,
) -> DResult<Vec<RawBmp>> {
    let mut other = Vec::new();
    for r in bmp::fields(data, base) {
        let f = r?;
        if !take(&f)? {
            other.push(RawBmp {
                tag: f.tag,
                value: bytes(&f),
            });
        }
    }
    Ok(other)
}

/// Sets an empty slot; a second occurrence of the same BMP goes to `other`.
macro_rules! put {
    ($slot:expr, $val:expr) => {{
        if $slot.is_some() {
            return Ok(false);
        }
        $slot = Some($val);
        Ok(true)
    }};
}

/// Reads positional fields.
struct Pos<'a> {
    data: &'a [u8],
    i: usize,
    base: usize,
}

impl<'a> Pos<'a> {
    fn new(data: &'a [u8], base: usize) -> Self {
        Pos { data, i: 0, base }
    }
    fn take(&mut self, n: usize, what: &'static str) -> DResult<&'a [u8]> {
        let s = self
            .data
            .get(self.i..self.i + n)
            .ok_or(CommandError::Missing {
                what,
                offset: self.base + self.i,
            })?;
        self.i += n;
        Ok(s)
    }
    fn byte(&mut self, what: &'static str) -> DResult<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn password(&mut self) -> DResult<Password> {
        let s = self.take(3, "password (3 bytes BCD)")?;
        Ok(Bcd([s[0], s[1], s[2]]))
    }
    fn currency(&mut self) -> DResult<u16> {
        let at = self.base + self.i;
        let s = self.take(2, "currency code")?;
        bmp::currency(s).ok_or(bad("currency code is not BCD", at))
    }
    fn rest(&self) -> &'a [u8] {
        self.data.get(self.i..).unwrap_or(&[])
    }
    fn at_end(&self) -> bool {
        self.i >= self.data.len()
    }
    fn offset(&self) -> usize {
        self.base + self.i
    }
}

// ---------------------------------------------------------------------------------------
// Encoding helpers

struct W<'a>(&'a mut Vec<u8>);

impl W<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn bmp(&mut self, tag: u8, v: Option<&[u8]>) -> Result<(), EncodeError> {
        if let Some(v) = v {
            bmp::write(self.0, tag, v)?;
        }
        Ok(())
    }
    fn u8(&mut self, tag: u8, v: Option<u8>) -> Result<(), EncodeError> {
        self.bmp(tag, v.as_ref().map(std::slice::from_ref))
    }
    fn bcd<const N: usize>(&mut self, tag: u8, v: Option<&Bcd<N>>) -> Result<(), EncodeError> {
        self.bmp(tag, v.map(|b| &b.0[..]))
    }
    fn amount(&mut self, v: Option<u64>) -> Result<(), EncodeError> {
        if let Some(a) = v {
            let b = bmp::amount_bytes(a).ok_or(EncodeError::Invalid("amount above 12 digits"))?;
            bmp::write(self.0, tag::AMOUNT, &b)?;
        }
        Ok(())
    }
    fn currency(&mut self, v: Option<u16>) -> Result<(), EncodeError> {
        if let Some(c) = v {
            bmp::write(self.0, tag::CURRENCY, &currency_bytes(c)?)?;
        }
        Ok(())
    }
    fn tlv(&mut self, v: Option<&Vec<u8>>) -> Result<(), EncodeError> {
        self.bmp(tag::TLV, v.map(|v| &v[..]))
    }
    fn other(&mut self, o: &[RawBmp]) -> Result<(), EncodeError> {
        for b in o {
            b.encode(self.0)?;
        }
        Ok(())
    }
}

fn currency_bytes(c: u16) -> Result<[u8; 2], EncodeError> {
    bmp::currency_bytes(c).ok_or(EncodeError::Invalid("currency code above 9999"))
}

// ---------------------------------------------------------------------------------------
// Command structs

/// Card data an ECR may send instead of a card read (manual entry, mail order).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ManualCard {
    /// BMP 2D.
    pub track1: Option<TrackData>,
    /// BMP 0E, YYMM.
    pub expiry: Option<Bcd<2>>,
    /// BMP 22.
    pub pan: Option<CardNumber>,
    /// BMP 23.
    pub track2: Option<TrackData>,
    /// BMP 24.
    pub track3: Option<TrackData>,
    /// BMP 3A, BCD, F-padded.
    pub cvv: Option<Bcd<2>>,
}

impl ManualCard {
    pub fn is_empty(&self) -> bool {
        *self == ManualCard::default()
    }
    fn take(&mut self, f: &Field<'_>) -> DResult<bool> {
        match f.tag {
            tag::TRACK1 => put!(self.track1, TrackData(bytes(f))),
            tag::EXPIRY => put!(self.expiry, bcd(f)?),
            tag::PAN => put!(self.pan, card(f)?),
            tag::TRACK2 => put!(self.track2, TrackData(bytes(f))),
            tag::TRACK3 => put!(self.track3, TrackData(bytes(f))),
            tag::CVV => put!(self.cvv, bcd(f)?),
            _ => Ok(false),
        }
    }
    /// 2D 0E 22 23 24, the order of SPEC-C's layouts (CVV goes elsewhere).
    fn encode_tracks(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.bmp(tag::TRACK1, self.track1.as_ref().map(|t| &t.0[..]))?;
        w.bcd(tag::EXPIRY, self.expiry.as_ref())?;
        w.bmp(tag::PAN, self.pan.as_ref().map(|p| p.as_bcd()))?;
        w.bmp(tag::TRACK2, self.track2.as_ref().map(|t| &t.0[..]))?;
        w.bmp(tag::TRACK3, self.track3.as_ref().map(|t| &t.0[..]))
    }
}

/// Registration config-byte bits (SPEC-C Table 1).
pub mod config {
    pub const ECR_PRINTS_PAYMENT_RECEIPT: u8 = 0x02;
    pub const ECR_PRINTS_ADMIN_RECEIPT: u8 = 0x04;
    pub const INTERMEDIATE_STATUS: u8 = 0x08;
    pub const ECR_CONTROLS_PAYMENT: u8 = 0x10;
    pub const ECR_CONTROLS_ADMIN: u8 = 0x20;
    /// Set: receipts via 06 D1/06 D3; clear: the ECR builds them from 04 0F.
    pub const ECR_PRINT_TYPE: u8 = 0x80;
    /// The config byte a PT falls back to after Log-Off (SPEC-C; CC-PRAEZ says 0xBE).
    pub const AFTER_LOG_OFF: u8 = 0x86;
}

/// 06 00: `pw <config> [<CC> [03 <service>] [06 TLV]]` — the currency is positional (no 49).
///
/// ```
/// use protocol::zvt::command::{Command, Context};
/// // Feig capture (reference/vectors.md): password 123456, config 0xDE, EUR.
/// let c = Command::decode(&[0x06, 0x00, 0x06, 0x12, 0x34, 0x56, 0xDE, 0x09, 0x78], Context::None).unwrap();
/// let Command::Registration(r) = c else { panic!() };
/// assert_eq!((r.password.to_string().as_str(), r.config, r.currency), ("123456", 0xDE, Some(978)));
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Registration {
    pub password: Password,
    pub config: u8,
    pub currency: Option<u16>,
    pub service_byte: Option<u8>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl Registration {
    /// TLV 26: the commands the ECR lets the PT send (each `0A 02 CL IN`).
    pub fn permitted_commands(&self) -> Result<Vec<[u8; 2]>, TlvError> {
        let Some(list) = tlv_get(self.tlv.as_deref(), tlv_tag::PERMITTED_COMMANDS)? else {
            return Ok(Vec::new());
        };
        Ok(tlv::parse_all(list)?
            .into_iter()
            .filter(|t| t.tag == Tag(tlv_tag::ZVT_COMMAND))
            .filter_map(|t| <[u8; 2]>::try_from(t.value).ok())
            .collect())
    }
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut p = Pos::new(data, base);
        let mut r = Registration {
            password: p.password()?,
            config: p.byte("config byte")?,
            ..Default::default()
        };
        if p.at_end() {
            return Ok(r);
        }
        r.currency = Some(p.currency()?);
        r.other = each_bmp(p.rest(), p.offset(), |f| match f.tag {
            tag::SERVICE_BYTE => put!(r.service_byte, byte(f)?),
            tag::TLV => put!(r.tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(r)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.raw(&self.password.0);
        w.raw(&[self.config]);
        let more = self.service_byte.is_some() || self.tlv.is_some() || !self.other.is_empty();
        match self.currency {
            Some(c) => w.raw(&currency_bytes(c)?),
            None if more => {
                return Err(EncodeError::Invalid(
                    "Registration needs its currency before any BMP",
                ));
            }
            None => return Ok(()),
        }
        w.u8(tag::SERVICE_BYTE, self.service_byte)?;
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
}

/// 06 01: a BMP list, no password.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Authorization {
    pub amount_minor: Option<u64>,
    pub currency: Option<u16>,
    /// BMP 19 payment type (0x40: PT decides, excluding GeldKarte).
    pub payment_type: Option<u8>,
    pub card: ManualCard,
    /// BMP 01: seconds the PT waits for the ECR's issue-of-goods answer.
    pub timeout: Option<u8>,
    /// BMP 02: how often the ECR may answer 04 0F with `84 9C`.
    pub max_status_infos: Option<u8>,
    pub pump: Option<u8>,
    pub additional_text: Option<Vec<u8>>,
    /// BMP 8A.
    pub card_type: Option<u8>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl Authorization {
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut a = Authorization::default();
        a.other = each_bmp(data, base, |f| match f.tag {
            tag::AMOUNT => put!(a.amount_minor, amount(f)?),
            tag::CURRENCY => put!(a.currency, currency(f)?),
            tag::TYPE_BYTE => put!(a.payment_type, byte(f)?),
            tag::TIMEOUT => put!(a.timeout, byte(f)?),
            tag::MAX_STATUS_INFOS => put!(a.max_status_infos, byte(f)?),
            tag::PUMP => put!(a.pump, byte(f)?),
            tag::ADDITIONAL_TEXT => put!(a.additional_text, bytes(f)),
            tag::CARD_TYPE => put!(a.card_type, byte(f)?),
            tag::TLV => put!(a.tlv, bytes(f)),
            _ => a.card.take(f),
        })?;
        Ok(a)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.amount(self.amount_minor)?;
        w.currency(self.currency)?;
        w.u8(tag::TYPE_BYTE, self.payment_type)?;
        self.card.encode_tracks(w)?;
        w.u8(tag::TIMEOUT, self.timeout)?;
        w.u8(tag::MAX_STATUS_INFOS, self.max_status_infos)?;
        w.u8(tag::PUMP, self.pump)?;
        w.bcd(tag::CVV, self.card.cvv.as_ref())?;
        w.bmp(tag::ADDITIONAL_TEXT, self.additional_text.as_deref())?;
        w.u8(tag::CARD_TYPE, self.card_type)?;
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
}

/// 06 0F after anything but a Status-Enquiry: a BMP list
/// (`[27][0C][AA][19][29][49][06]`, after Registration `19 <status> 29 <TID> 49 <CC>`).
///
/// ```
/// use protocol::zvt::command::{Command, Context, CommandKind};
/// // Feig capture: Registration completion, status byte 0x10, TID 52523535, EUR.
/// let b = [0x06, 0x0F, 0x0A, 0x19, 0x10, 0x29, 0x52, 0x52, 0x35, 0x35, 0x49, 0x09, 0x78];
/// let c = Command::decode(&b, Context::Answering(CommandKind::Registration)).unwrap();
/// let Command::Completion(c) = c else { panic!() };
/// assert_eq!(c.status_byte, Some(0x10));
/// assert_eq!(c.tid.unwrap().to_string(), "52523535");
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Completion {
    pub result: Option<u8>,
    pub time: Option<Bcd<3>>,
    /// BMP AA, YYMMDD.
    pub date: Option<Bcd<3>>,
    /// BMP 19: after Registration the PT's status byte (0x01 initialisation needed, …).
    pub status_byte: Option<u8>,
    pub tid: Option<Bcd<4>>,
    pub currency: Option<u16>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl Completion {
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut c = Completion::default();
        c.other = each_bmp(data, base, |f| match f.tag {
            tag::RESULT => put!(c.result, byte(f)?),
            tag::TIME => put!(c.time, bcd(f)?),
            tag::DATE_YYMMDD => put!(c.date, bcd(f)?),
            tag::TYPE_BYTE => put!(c.status_byte, byte(f)?),
            tag::TID => put!(c.tid, bcd(f)?),
            tag::CURRENCY => put!(c.currency, currency(f)?),
            tag::TLV => put!(c.tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(c)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.u8(tag::RESULT, self.result)?;
        w.bcd(tag::TIME, self.time.as_ref())?;
        w.bcd(tag::DATE_YYMMDD, self.date.as_ref())?;
        w.u8(tag::TYPE_BYTE, self.status_byte)?;
        w.bcd(tag::TID, self.tid.as_ref())?;
        w.currency(self.currency)?;
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
}

/// 06 0F answering a Status-Enquiry (05 01):
/// `[<SW version LLLVAR>] <terminal status> [06 TLV]`.
///
/// ```
/// use protocol::zvt::command::{Command, Context, CommandKind};
/// // mathiasfrey/ecrterm issue #2 trace: `06 0F 15 F0 F1 F7 "061022a M IC_ Std" 00`.
/// let mut b = vec![0x06, 0x0F, 0x15, 0xF0, 0xF1, 0xF7];
/// b.extend_from_slice(b"061022a M IC_ Std");
/// b.push(0x00);
/// let c = Command::decode(&b, Context::Answering(CommandKind::StatusEnquiry)).unwrap();
/// let Command::EnquiryCompletion(c) = c else { panic!() };
/// assert_eq!(c.sw_version.as_deref(), Some(&b"061022a M IC_ Std"[..]));
/// assert_eq!(c.terminal_status, Some(0x00));
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct EnquiryCompletion {
    pub sw_version: Option<Vec<u8>>,
    /// See [`crate::zvt::codes::TerminalStatus`]; `None` only for an empty `06 0F 00`.
    pub terminal_status: Option<u8>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl EnquiryCompletion {
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut c = EnquiryCompletion::default();
        let mut p = Pos::new(data, base);
        if let [a, b, d, ..] = data
            && [a, b, d].iter().all(|x| *x >> 4 == 0xF && *x & 0xF <= 9)
        {
            let l = ((a & 0xF) as usize) * 100 + ((b & 0xF) as usize) * 10 + (d & 0xF) as usize;
            if 3 + l < data.len() {
                p.take(3, "SW version length")?;
                c.sw_version = Some(p.take(l, "SW version")?.to_vec());
            }
        }
        if p.at_end() {
            return Ok(c);
        }
        c.terminal_status = Some(p.byte("terminal status")?);
        c.other = each_bmp(p.rest(), p.offset(), |f| match f.tag {
            tag::TLV => put!(c.tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(c)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        if let Some(sw) = &self.sw_version {
            let l = sw.len();
            if l > 999 {
                return Err(EncodeError::Invalid("SW version above 999 bytes"));
            }
            w.raw(&[
                0xF0 | (l / 100) as u8,
                0xF0 | (l / 10 % 10) as u8,
                0xF0 | (l % 10) as u8,
            ]);
            w.raw(sw);
        }
        match self.terminal_status {
            Some(s) => w.raw(&[s]),
            None if self.sw_version.is_some() || self.tlv.is_some() || !self.other.is_empty() => {
                return Err(EncodeError::Invalid(
                    "Status-Enquiry completion needs its terminal status byte",
                ));
            }
            None => {}
        }
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
}

/// 06 1E, abort from the PT: `<result> [<CC> if result is 6F] [87 <receipt>] [06 TLV]`.
/// After `6F` a first byte `00..09` other than `06` is the currency; a leading `06` is the
/// currency too unless the rest parses as a BMP list (TLV).
///
/// ```
/// use protocol::zvt::command::{Abort, Command, Context};
/// // Feig capture: abort "no open pre-authorisation", receipt FFFF.
/// let Command::Abort(a) = Command::decode(&[0x06, 0x1E, 0x04, 0xB8, 0x87, 0xFF, 0xFF], Context::None).unwrap()
/// else { panic!() };
/// assert_eq!((a.result, a.receipt.unwrap().to_string().as_str()), (0xB8, "FFFF"));
/// // posrig's non-numeric host decline: FF + TLV 1F16 code, 1F17 text.
/// let a = Abort::with_extended_error(0xFF, b"A0", b"DECLINED A0");
/// assert_eq!(a.extended_error_code().unwrap(), Some(&b"A0"[..]));
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Abort {
    pub result: u8,
    /// Positional, only with result `6F` (wrong currency): the PT's currency.
    pub currency: Option<u16>,
    pub receipt: Option<Bcd<2>>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl Abort {
    pub fn new(result: u8) -> Abort {
        Abort {
            result,
            ..Default::default()
        }
    }
    /// An abort carrying TLV 1F16 (extended error code) and 1F17 (extended error text).
    pub fn with_extended_error(result: u8, code: &[u8], text: &[u8]) -> Abort {
        let mut tlv = Vec::new();
        tlv::write(&mut tlv, Tag(tlv_tag::EXTENDED_ERROR_CODE), code);
        tlv::write(&mut tlv, Tag(tlv_tag::EXTENDED_ERROR_TEXT), text);
        Abort {
            result,
            tlv: Some(tlv),
            ..Default::default()
        }
    }
    pub fn extended_error_code(&self) -> Result<Option<&[u8]>, TlvError> {
        tlv_get(self.tlv.as_deref(), tlv_tag::EXTENDED_ERROR_CODE)
    }
    pub fn extended_error_text(&self) -> Result<Option<&[u8]>, TlvError> {
        tlv_get(self.tlv.as_deref(), tlv_tag::EXTENDED_ERROR_TEXT)
    }
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut p = Pos::new(data, base);
        let mut a = Abort::new(p.byte("result code")?);
        if a.result == 0x6F {
            // The CC is positional (first byte 00..09). Only BMP 06 shares that range: a
            // leading 06 is a currency (RUB is 06 43) unless the rest parses as BMPs.
            let rest = p.rest();
            let cc = match rest.first() {
                Some(0x06) => !bmp::fields(rest, 0).all(|r| r.is_ok()),
                Some(&b) => b <= 0x09,
                None => false,
            };
            if cc {
                a.currency = Some(p.currency()?);
            }
        }
        a.other = each_bmp(p.rest(), p.offset(), |f| match f.tag {
            tag::RECEIPT => put!(a.receipt, bcd(f)?),
            tag::TLV => put!(a.tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(a)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.raw(&[self.result]);
        if let Some(c) = self.currency {
            if self.result != 0x6F {
                return Err(EncodeError::Invalid(
                    "06 1E carries a currency only with result 6F",
                ));
            }
            w.raw(&currency_bytes(c)?);
        }
        w.bcd(tag::RECEIPT, self.receipt.as_ref())?;
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
}

/// A command that is a password and optional BMPs: 06 20 Repeat Receipt, 06 50 End-of-Day,
/// 06 93 Initialisation.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PasswordCommand {
    pub password: Password,
    pub service_byte: Option<u8>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl PasswordCommand {
    pub fn new(password: Password) -> Self {
        PasswordCommand {
            password,
            ..Default::default()
        }
    }
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut p = Pos::new(data, base);
        let mut c = PasswordCommand::new(p.password()?);
        c.other = each_bmp(p.rest(), p.offset(), |f| match f.tag {
            tag::SERVICE_BYTE => put!(c.service_byte, byte(f)?),
            tag::TLV => put!(c.tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(c)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.raw(&self.password.0);
        w.u8(tag::SERVICE_BYTE, self.service_byte)?;
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
    /// TLV 1F1F as mirrored by the ECR.
    pub fn ecr_reference(&self) -> Result<Option<&[u8]>, TlvError> {
        tlv_get(self.tlv.as_deref(), tlv_tag::TRANSACTION_ID)
    }
}

/// 06 30 Reversal: `pw 87 <receipt> [04][49][19][2D][0E][22][23][24][3C][06]`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Reversal {
    pub password: Password,
    /// Mandatory in SPEC-C; kept optional so an ECR that omits it can be answered `84 9A`
    /// (or served "the last transaction", as some terminals do) by the application.
    pub receipt: Option<Bcd<2>>,
    pub amount_minor: Option<u64>,
    pub currency: Option<u16>,
    pub payment_type: Option<u8>,
    pub card: ManualCard,
    pub additional_text: Option<Vec<u8>>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl Reversal {
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut p = Pos::new(data, base);
        let mut r = Reversal {
            password: p.password()?,
            ..Default::default()
        };
        r.other = each_bmp(p.rest(), p.offset(), |f| match f.tag {
            tag::RECEIPT => put!(r.receipt, bcd(f)?),
            tag::AMOUNT => put!(r.amount_minor, amount(f)?),
            tag::CURRENCY => put!(r.currency, currency(f)?),
            tag::TYPE_BYTE => put!(r.payment_type, byte(f)?),
            tag::ADDITIONAL_TEXT => put!(r.additional_text, bytes(f)),
            tag::TLV => put!(r.tlv, bytes(f)),
            _ => r.card.take(f),
        })?;
        Ok(r)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.raw(&self.password.0);
        w.bcd(tag::RECEIPT, self.receipt.as_ref())?;
        w.amount(self.amount_minor)?;
        w.currency(self.currency)?;
        w.u8(tag::TYPE_BYTE, self.payment_type)?;
        self.card.encode_tracks(w)?;
        w.bcd(tag::CVV, self.card.cvv.as_ref())?;
        w.bmp(tag::ADDITIONAL_TEXT, self.additional_text.as_deref())?;
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
    pub fn ecr_reference(&self) -> Result<Option<&[u8]>, TlvError> {
        tlv_get(self.tlv.as_deref(), tlv_tag::TRANSACTION_ID)
    }
}

/// 06 31 Refund: `pw [04][49][19][2D][0E][22][23][24][3B][3C][8A][06]` (SPEC-C 2.15).
///
/// ```
/// use protocol::zvt::command::{Command, Context, OriginalRef, Refund};
/// use protocol::zvt::bmp::{Bcd, CardNumber, Password};
/// // reference/vectors.md: 19.95 EUR with manual card entry, expiry 2812.
/// let b = [0x06, 0x31, 0x1B, 0x12, 0x34, 0x56, 0x04, 0, 0, 0, 0, 0x19, 0x95, 0x49, 0x09, 0x78,
///          0x0E, 0x28, 0x12, 0x22, 0xF0, 0xF8, 0x62, 0x22, 0x02, 0x12, 0x34, 0x56, 0x78, 0x94];
/// let Command::Refund(r) = Command::decode(&b, Context::None).unwrap() else { panic!() };
/// assert_eq!(r.card.expiry, Some(Bcd([0x28, 0x12])));
/// assert_eq!(r.card.pan.as_ref().unwrap().to_string(), "622202******7894");
///
/// // Naming the original (posrig private TLV DF60/DF61).
/// let mut r = Refund { password: Password::from_digits("123456").unwrap(), amount_minor: Some(3333),
///                      currency: Some(156), ..Default::default() };
/// r.set_original_ref(&OriginalRef::TraceBatch { trace: 123, batch: 1 }).unwrap();
/// assert_eq!(r.tlv.as_deref(), Some(&[0xDF, 0x60, 0x03, 0x00, 0x01, 0x23,
///                                     0xDF, 0x61, 0x03, 0x00, 0x00, 0x01][..]));
/// assert_eq!(r.original_ref().unwrap(), Some(OriginalRef::TraceBatch { trace: 123, batch: 1 }));
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Refund {
    pub password: Password,
    pub amount_minor: Option<u64>,
    pub currency: Option<u16>,
    pub payment_type: Option<u8>,
    pub card: ManualCard,
    /// BMP 3B, 8 bytes ASCII NUL-padded.
    pub aid: Option<[u8; 8]>,
    pub additional_text: Option<Vec<u8>>,
    pub card_type: Option<u8>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl Refund {
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut p = Pos::new(data, base);
        let mut r = Refund {
            password: p.password()?,
            ..Default::default()
        };
        r.other = each_bmp(p.rest(), p.offset(), |f| match f.tag {
            tag::AMOUNT => put!(r.amount_minor, amount(f)?),
            tag::CURRENCY => put!(r.currency, currency(f)?),
            tag::TYPE_BYTE => put!(r.payment_type, byte(f)?),
            tag::AID => put!(r.aid, fixed(f)?),
            tag::ADDITIONAL_TEXT => put!(r.additional_text, bytes(f)),
            tag::CARD_TYPE => put!(r.card_type, byte(f)?),
            tag::TLV => put!(r.tlv, bytes(f)),
            _ => r.card.take(f),
        })?;
        Ok(r)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.raw(&self.password.0);
        w.amount(self.amount_minor)?;
        w.currency(self.currency)?;
        w.u8(tag::TYPE_BYTE, self.payment_type)?;
        self.card.encode_tracks(w)?;
        w.bcd(tag::CVV, self.card.cvv.as_ref())?;
        w.bmp(tag::AID, self.aid.as_ref().map(|a| &a[..]))?;
        w.bmp(tag::ADDITIONAL_TEXT, self.additional_text.as_deref())?;
        w.u8(tag::CARD_TYPE, self.card_type)?;
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
    /// The original sale named in posrig's private TLV, if any.
    pub fn original_ref(&self) -> Result<Option<OriginalRef>, OriginalRefError> {
        OriginalRef::from_tlv(self.tlv.as_deref())
    }
    /// Writes the original's key into BMP 06, replacing any earlier one.
    pub fn set_original_ref(&mut self, r: &OriginalRef) -> Result<(), EncodeError> {
        use tlv_tag::*;
        let objs = r.to_tlv()?;
        let mut edits: Vec<(u32, Option<&[u8]>)> = [
            ORIGINAL_TRACE,
            ORIGINAL_BATCH,
            ORIGINAL_RRN,
            ORIGINAL_DATE,
            ORIGINAL_AUTH_CODE,
        ]
        .iter()
        .filter(|t| !objs.iter().any(|(o, _)| o == *t))
        .map(|t| (*t, None))
        .collect();
        edits.extend(objs.iter().map(|(t, v)| (*t, Some(&v[..]))));
        tlv_set(&mut self.tlv, &edits)
            .map_err(|_| EncodeError::Invalid("BMP 06 of the refund is not valid TLV"))
    }
    /// TLV 1F1F: the ECR's reference (duplicate detection, synchronisation).
    pub fn ecr_reference(&self) -> Result<Option<&[u8]>, TlvError> {
        tlv_get(self.tlv.as_deref(), tlv_tag::TRANSACTION_ID)
    }
    pub fn set_ecr_reference(&mut self, r: &[u8]) -> Result<(), TlvError> {
        tlv_set(&mut self.tlv, &[(tlv_tag::TRANSACTION_ID, Some(r))])
    }
}

/// A command whose data is a BMP list with at most a TLV container: 06 70 Diagnosis
/// (`[06 TLV]`), 06 02 Log-Off (empty).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct TlvOnly {
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl TlvOnly {
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut c = TlvOnly::default();
        c.other = each_bmp(data, base, |f| match f.tag {
            tag::TLV => put!(c.tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(c)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
}

/// 06 B0, abort from the ECR: `[D2 <card output direction>][FA <reader activation>]`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AbortFromEcr {
    pub card_output_direction: Option<u8>,
    pub reader_activation: Option<u8>,
    pub other: Vec<RawBmp>,
}

impl AbortFromEcr {
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut c = AbortFromEcr::default();
        c.other = each_bmp(data, base, |f| match f.tag {
            tag::CARD_OUTPUT_DIRECTION => put!(c.card_output_direction, byte(f)?),
            tag::READER_ACTIVATION => put!(c.reader_activation, byte(f)?),
            _ => Ok(false),
        })?;
        Ok(c)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.u8(tag::CARD_OUTPUT_DIRECTION, self.card_output_direction)?;
        w.u8(tag::READER_ACTIVATION, self.reader_activation)?;
        w.other(&self.other)
    }
}

/// 06 D1 Print Line: `<attribute> <text>` (text in the character set of TLV 14, CP437 by
/// default).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PrintLine {
    pub attribute: u8,
    pub text: Vec<u8>,
}

/// 06 D3 Print Text-Block: `06 <TLV: 1F07 receipt type, 25 {09 attr, 07 line…}, …>`.
///
/// ```
/// use protocol::zvt::command::PrintTextBlock;
/// let b = PrintTextBlock::from_lines(1, &[b"REFUND", b"EUR 19.95"]);
/// assert_eq!(b.tlv, [0x1F, 0x07, 0x01, 0x01, 0x25, 0x13,
///                    0x07, 0x06, b'R', b'E', b'F', b'U', b'N', b'D',
///                    0x07, 0x09, b'E', b'U', b'R', b' ', b'1', b'9', b'.', b'9', b'5']);
/// assert_eq!(b.receipt_type().unwrap(), Some(1));
/// assert_eq!(b.text_lines().unwrap(), vec![b"REFUND".to_vec(), b"EUR 19.95".to_vec()]);
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PrintTextBlock {
    /// The content of BMP 06 (mandatory).
    pub tlv: Vec<u8>,
    pub other: Vec<RawBmp>,
}

impl PrintTextBlock {
    /// Receipt type (1F07: 1 merchant, 2 customer, 3 administration) and text lines.
    pub fn from_lines(receipt_type: u8, lines: &[&[u8]]) -> PrintTextBlock {
        let mut inner = Vec::new();
        for l in lines {
            tlv::write(&mut inner, Tag(tlv_tag::TEXT_LINE), l);
        }
        let mut t = Vec::new();
        tlv::write(&mut t, Tag(tlv_tag::RECEIPT_TYPE), &[receipt_type]);
        tlv::write(&mut t, Tag(tlv_tag::PRINT_TEXTS), &inner);
        PrintTextBlock {
            tlv: t,
            other: Vec::new(),
        }
    }
    pub fn receipt_type(&self) -> Result<Option<u8>, TlvError> {
        Ok(tlv_get(Some(&self.tlv), tlv_tag::RECEIPT_TYPE)?.and_then(|v| v.first().copied()))
    }
    /// The 07 lines inside every 25 container, in order.
    pub fn text_lines(&self) -> Result<Vec<Vec<u8>>, TlvError> {
        let mut out = Vec::new();
        for t in tlv::parse_all(&self.tlv)? {
            if t.tag == Tag(tlv_tag::PRINT_TEXTS) {
                for l in tlv::parse_all(t.value)? {
                    if l.tag == Tag(tlv_tag::TEXT_LINE) {
                        out.push(l.value.to_vec());
                    }
                }
            }
        }
        Ok(out)
    }
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut tlv = None;
        let other = each_bmp(data, base, |f| match f.tag {
            tag::TLV => put!(tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(PrintTextBlock {
            tlv: tlv.ok_or(CommandError::Missing {
                what: "BMP 06 of Print Text-Block",
                offset: base,
            })?,
            other,
        })
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.tlv(Some(&self.tlv))?;
        w.other(&self.other)
    }
}

/// 04 0F Status-Information: the transaction's result and data, a BMP list in any order.
/// Encoded as 27 first, then ascending tags, 06 last ("table order", which old ECRs may
/// rely on), then `other`.
///
/// ```
/// use protocol::zvt::command::{Command, StatusInformation};
/// use protocol::zvt::bmp::CardNumber;
/// let si = StatusInformation {
///     result: Some(0x00),
///     amount_minor: Some(1995),
///     pan: CardNumber::from_digits("622202******7894"),
///     ..Default::default()
/// };
/// assert_eq!(Command::from(si).to_bytes().unwrap(),
///            [0x04, 0x0F, 0x14, 0x27, 0x00, 0x04, 0, 0, 0, 0, 0x19, 0x95,
///             0x22, 0xF0, 0xF8, 0x62, 0x22, 0x02, 0xEE, 0xEE, 0xEE, 0x78, 0x94]);
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct StatusInformation {
    /// BMP 27, see [`crate::zvt::codes::ResultCode`].
    pub result: Option<u8>,
    pub amount_minor: Option<u64>,
    pub trace: Option<Bcd<3>>,
    /// BMP 0C, HHMMSS.
    pub time: Option<Bcd<3>>,
    /// BMP 0D, MMDD.
    pub date: Option<Bcd<2>>,
    /// BMP 0E, YYMM.
    pub expiry: Option<Bcd<2>>,
    pub card_sequence: Option<Bcd<2>>,
    /// BMP 19: 40 offline, 50 card checked, 60 online, 70 PIN.
    pub payment_type: Option<u8>,
    pub pan: Option<CardNumber>,
    pub tid: Option<Bcd<4>>,
    /// BMP 2A, 15 bytes ASCII space-padded.
    pub vu: Option<[u8; 15]>,
    pub original_trace: Option<Bcd<3>>,
    /// BMP 3B, 8 bytes ASCII NUL-padded.
    pub aid: Option<[u8; 8]>,
    pub additional_text: Option<Vec<u8>>,
    pub currency: Option<u16>,
    pub totals: Option<IndividualTotals>,
    pub receipt: Option<Bcd<2>>,
    pub turnover: Option<Bcd<3>>,
    pub card_type: Option<u8>,
    /// BMP 8B, ASCII, NUL-terminated on the wire (kept as sent).
    pub card_name: Option<Vec<u8>>,
    pub network_card_type: Option<u8>,
    pub result_as: Option<u8>,
    /// BMP AA, YYMMDD.
    pub date_yymmdd: Option<Bcd<3>>,
    pub aid_parameter: Option<[u8; 5]>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl StatusInformation {
    /// TLV 1F1F, the PT's unique transaction id for synchronisation.
    pub fn transaction_id(&self) -> Result<Option<&[u8]>, TlvError> {
        tlv_get(self.tlv.as_deref(), tlv_tag::TRANSACTION_ID)
    }
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut s = StatusInformation::default();
        s.other = each_bmp(data, base, |f| match f.tag {
            tag::RESULT => put!(s.result, byte(f)?),
            tag::AMOUNT => put!(s.amount_minor, amount(f)?),
            tag::TRACE => put!(s.trace, bcd(f)?),
            tag::TIME => put!(s.time, bcd(f)?),
            tag::DATE_MMDD => put!(s.date, bcd(f)?),
            tag::EXPIRY => put!(s.expiry, bcd(f)?),
            tag::CARD_SEQUENCE => put!(s.card_sequence, bcd(f)?),
            tag::TYPE_BYTE => put!(s.payment_type, byte(f)?),
            tag::PAN => put!(s.pan, card(f)?),
            tag::TID => put!(s.tid, bcd(f)?),
            tag::VU => put!(s.vu, fixed(f)?),
            tag::ORIGINAL_TRACE => put!(s.original_trace, bcd(f)?),
            tag::AID => put!(s.aid, fixed(f)?),
            tag::ADDITIONAL_TEXT => put!(s.additional_text, bytes(f)),
            tag::CURRENCY => put!(s.currency, currency(f)?),
            tag::TOTALS => put!(
                s.totals,
                IndividualTotals::decode_value(f.value, f.value_offset)?
            ),
            tag::RECEIPT => put!(s.receipt, bcd(f)?),
            tag::TURNOVER => put!(s.turnover, bcd(f)?),
            tag::CARD_TYPE => put!(s.card_type, byte(f)?),
            tag::CARD_NAME => put!(s.card_name, bytes(f)),
            tag::NETWORK_CARD_TYPE => put!(s.network_card_type, byte(f)?),
            tag::RESULT_AS => put!(s.result_as, byte(f)?),
            tag::DATE_YYMMDD => put!(s.date_yymmdd, bcd(f)?),
            tag::AID_PARAMETER => put!(s.aid_parameter, fixed(f)?),
            tag::TLV => put!(s.tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(s)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.u8(tag::RESULT, self.result)?;
        w.amount(self.amount_minor)?;
        w.bcd(tag::TRACE, self.trace.as_ref())?;
        w.bcd(tag::TIME, self.time.as_ref())?;
        w.bcd(tag::DATE_MMDD, self.date.as_ref())?;
        w.bcd(tag::EXPIRY, self.expiry.as_ref())?;
        w.bcd(tag::CARD_SEQUENCE, self.card_sequence.as_ref())?;
        w.u8(tag::TYPE_BYTE, self.payment_type)?;
        w.bmp(tag::PAN, self.pan.as_ref().map(|p| p.as_bcd()))?;
        w.bcd(tag::TID, self.tid.as_ref())?;
        w.bmp(tag::VU, self.vu.as_ref().map(|v| &v[..]))?;
        w.bcd(tag::ORIGINAL_TRACE, self.original_trace.as_ref())?;
        w.bmp(tag::AID, self.aid.as_ref().map(|v| &v[..]))?;
        w.bmp(tag::ADDITIONAL_TEXT, self.additional_text.as_deref())?;
        w.currency(self.currency)?;
        if let Some(t) = &self.totals {
            let mut v = Vec::with_capacity(53);
            t.encode_value(&mut v)?;
            w.bmp(tag::TOTALS, Some(&v))?;
        }
        w.bcd(tag::RECEIPT, self.receipt.as_ref())?;
        w.bcd(tag::TURNOVER, self.turnover.as_ref())?;
        w.u8(tag::CARD_TYPE, self.card_type)?;
        w.bmp(tag::CARD_NAME, self.card_name.as_deref())?;
        w.u8(tag::NETWORK_CARD_TYPE, self.network_card_type)?;
        w.u8(tag::RESULT_AS, self.result_as)?;
        w.bcd(tag::DATE_YYMMDD, self.date_yymmdd.as_ref())?;
        w.bmp(
            tag::AID_PARAMETER,
            self.aid_parameter.as_ref().map(|v| &v[..]),
        )?;
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
}

/// 04 FF Intermediate Status: `<status> [<T4 minutes, 1 byte BCD>] [06 TLV(24 display)]`.
/// The timeout byte is mandatory when TLV follows.
///
/// ```
/// use std::time::Duration;
/// use protocol::zvt::command::{Command, Context};
/// // reference/zvt.md §5: `04 FF 02 0A 01` = insert card, T4 = 1 minute.
/// let Command::IntermediateStatus(s) = Command::decode(&[0x04, 0xFF, 0x02, 0x0A, 0x01], Context::None).unwrap()
/// else { panic!() };
/// assert_eq!((s.status, s.t4()), (0x0A, Some(Duration::from_secs(60))));
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct IntermediateStatus {
    /// See [`crate::zvt::codes::IntermediateStatus`].
    pub status: u8,
    /// Raw BCD minutes (`0x10` = 10 min).
    pub timeout: Option<u8>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl IntermediateStatus {
    pub fn new(status: u8) -> Self {
        IntermediateStatus {
            status,
            ..Default::default()
        }
    }
    /// The T4 this message sets, if it carries a non-zero BCD timeout.
    pub fn t4(&self) -> Option<Duration> {
        let m = bmp::bcd_to_u64(&[self.timeout?])?;
        (m > 0).then(|| Duration::from_secs(m * 60))
    }
    /// Text lines of TLV 24 (display texts) → 07.
    pub fn display_lines(&self) -> Result<Vec<Vec<u8>>, TlvError> {
        let Some(d) = tlv_get(self.tlv.as_deref(), tlv_tag::DISPLAY_TEXTS)? else {
            return Ok(Vec::new());
        };
        Ok(tlv::parse_all(d)?
            .into_iter()
            .filter(|t| t.tag == Tag(tlv_tag::TEXT_LINE))
            .map(|t| t.value.to_vec())
            .collect())
    }
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut p = Pos::new(data, base);
        let mut s = IntermediateStatus::new(p.byte("intermediate status")?);
        if !p.at_end() {
            s.timeout = Some(p.byte("timeout")?);
        }
        s.other = each_bmp(p.rest(), p.offset(), |f| match f.tag {
            tag::TLV => put!(s.tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(s)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.raw(&[self.status]);
        match self.timeout {
            Some(t) => w.raw(&[t]),
            None if self.tlv.is_some() || !self.other.is_empty() => {
                return Err(EncodeError::Invalid(
                    "04 FF needs its timeout byte before TLV",
                ));
            }
            None => {}
        }
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
}

/// 04 01 Set Date/Time in ECR: `AA <YYMMDD> 0C <HHMMSS>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SetDateTime {
    pub date: Option<Bcd<3>>,
    pub time: Option<Bcd<3>>,
    pub other: Vec<RawBmp>,
}

impl SetDateTime {
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut s = SetDateTime::default();
        s.other = each_bmp(data, base, |f| match f.tag {
            tag::DATE_YYMMDD => put!(s.date, bcd(f)?),
            tag::TIME => put!(s.time, bcd(f)?),
            _ => Ok(false),
        })?;
        Ok(s)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        w.bcd(tag::DATE_YYMMDD, self.date.as_ref())?;
        w.bcd(tag::TIME, self.time.as_ref())?;
        w.other(&self.other)
    }
}

/// 05 01 Status-Enquiry: `[pw [03 <service>] [06 TLV]]`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct StatusEnquiry {
    pub password: Option<Password>,
    pub service_byte: Option<u8>,
    pub tlv: Option<Vec<u8>>,
    pub other: Vec<RawBmp>,
}

impl StatusEnquiry {
    fn decode(data: &[u8], base: usize) -> DResult<Self> {
        let mut s = StatusEnquiry::default();
        if data.is_empty() {
            return Ok(s);
        }
        let mut p = Pos::new(data, base);
        s.password = Some(p.password()?);
        s.other = each_bmp(p.rest(), p.offset(), |f| match f.tag {
            tag::SERVICE_BYTE => put!(s.service_byte, byte(f)?),
            tag::TLV => put!(s.tlv, bytes(f)),
            _ => Ok(false),
        })?;
        Ok(s)
    }
    fn encode(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        match &self.password {
            Some(p) => w.raw(&p.0),
            None if self.service_byte.is_some() || self.tlv.is_some() || !self.other.is_empty() => {
                return Err(EncodeError::Invalid(
                    "Status-Enquiry needs its password before any BMP",
                ));
            }
            None => return Ok(()),
        }
        w.u8(tag::SERVICE_BYTE, self.service_byte)?;
        w.tlv(self.tlv.as_ref())?;
        w.other(&self.other)
    }
}

/// `84 xx`: negative acknowledgement (`84 00` counts as positive, SPEC-T 5.2.3). Usually
/// 3 bytes; may carry data (`84 9D 07 04 <amount>`, partial issue of goods).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Nack {
    pub code: u8,
    pub data: Vec<u8>,
}

/// Any other APDU, kept whole.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RawApdu {
    pub class: u8,
    pub instr: u8,
    pub data: Vec<u8>,
}

/// Every ZVT APDU posrig speaks, typed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command {
    /// 06 00.
    Registration(Registration),
    /// 06 01.
    Authorization(Authorization),
    /// 06 02.
    LogOff(TlvOnly),
    /// 06 0F (BMP-list layout).
    Completion(Completion),
    /// 06 0F answering 05 01.
    EnquiryCompletion(EnquiryCompletion),
    /// 06 1E.
    Abort(Abort),
    /// 06 20.
    RepeatReceipt(PasswordCommand),
    /// 06 30.
    Reversal(Reversal),
    /// 06 31.
    Refund(Refund),
    /// 06 50.
    EndOfDay(PasswordCommand),
    /// 06 70.
    Diagnosis(TlvOnly),
    /// 06 93.
    Initialisation(PasswordCommand),
    /// 06 B0.
    AbortFromEcr(AbortFromEcr),
    /// 06 D1.
    PrintLine(PrintLine),
    /// 06 D3.
    PrintTextBlock(PrintTextBlock),
    /// 04 0F.
    StatusInformation(Box<StatusInformation>),
    /// 04 FF.
    IntermediateStatus(IntermediateStatus),
    /// 04 01.
    SetDateTime(SetDateTime),
    /// 05 01.
    StatusEnquiry(StatusEnquiry),
    /// `80 00 00`.
    Ack,
    /// `84 xx …`.
    Nack(Nack),
    /// Anything else, including `80 00` with data.
    Raw(RawApdu),
}

impl From<StatusInformation> for Command {
    fn from(s: StatusInformation) -> Command {
        Command::StatusInformation(Box::new(s))
    }
}

impl Command {
    /// Decodes one whole APDU (exactly; trailing bytes are an error).
    pub fn decode(bytes: &[u8], ctx: Context) -> Result<Command, CommandError> {
        Command::from_apdu(&Apdu::decode_exact(bytes)?, ctx)
    }

    /// Decodes the data of an already-split APDU.
    pub fn from_apdu(a: &Apdu<'_>, ctx: Context) -> Result<Command, CommandError> {
        let d = a.data;
        let b = a.data_offset();
        use CommandKind as K;
        Ok(match CommandKind::of(a.class, a.instr) {
            K::Registration => Command::Registration(Registration::decode(d, b)?),
            K::Authorization => Command::Authorization(Authorization::decode(d, b)?),
            K::LogOff => Command::LogOff(TlvOnly::decode(d, b)?),
            K::Completion => match ctx {
                Context::Answering(K::StatusEnquiry) => {
                    Command::EnquiryCompletion(EnquiryCompletion::decode(d, b)?)
                }
                _ => Command::Completion(Completion::decode(d, b)?),
            },
            K::Abort => Command::Abort(Abort::decode(d, b)?),
            K::RepeatReceipt => Command::RepeatReceipt(PasswordCommand::decode(d, b)?),
            K::Reversal => Command::Reversal(Reversal::decode(d, b)?),
            K::Refund => Command::Refund(Refund::decode(d, b)?),
            K::EndOfDay => Command::EndOfDay(PasswordCommand::decode(d, b)?),
            K::Diagnosis => Command::Diagnosis(TlvOnly::decode(d, b)?),
            K::Initialisation => Command::Initialisation(PasswordCommand::decode(d, b)?),
            K::AbortFromEcr => Command::AbortFromEcr(AbortFromEcr::decode(d, b)?),
            K::PrintLine => {
                let mut p = Pos::new(d, b);
                Command::PrintLine(PrintLine {
                    attribute: p.byte("print attribute")?,
                    text: p.rest().to_vec(),
                })
            }
            K::PrintTextBlock => Command::PrintTextBlock(PrintTextBlock::decode(d, b)?),
            K::StatusInformation => {
                Command::StatusInformation(Box::new(StatusInformation::decode(d, b)?))
            }
            K::IntermediateStatus => Command::IntermediateStatus(IntermediateStatus::decode(d, b)?),
            K::SetDateTime => Command::SetDateTime(SetDateTime::decode(d, b)?),
            K::StatusEnquiry => Command::StatusEnquiry(StatusEnquiry::decode(d, b)?),
            K::Ack if d.is_empty() => Command::Ack,
            K::Nack => Command::Nack(Nack {
                code: a.instr,
                data: d.to_vec(),
            }),
            K::Ack | K::Other(_) => Command::Raw(RawApdu {
                class: a.class,
                instr: a.instr,
                data: d.to_vec(),
            }),
        })
    }

    pub fn kind(&self) -> CommandKind {
        let [c, i] = self.code();
        CommandKind::of(c, i)
    }

    /// `[CLASS, INSTR]`.
    pub fn code(&self) -> [u8; 2] {
        match self {
            Command::Registration(_) => [0x06, 0x00],
            Command::Authorization(_) => [0x06, 0x01],
            Command::LogOff(_) => [0x06, 0x02],
            Command::Completion(_) | Command::EnquiryCompletion(_) => [0x06, 0x0F],
            Command::Abort(_) => [0x06, 0x1E],
            Command::RepeatReceipt(_) => [0x06, 0x20],
            Command::Reversal(_) => [0x06, 0x30],
            Command::Refund(_) => [0x06, 0x31],
            Command::EndOfDay(_) => [0x06, 0x50],
            Command::Diagnosis(_) => [0x06, 0x70],
            Command::Initialisation(_) => [0x06, 0x93],
            Command::AbortFromEcr(_) => [0x06, 0xB0],
            Command::PrintLine(_) => [0x06, 0xD1],
            Command::PrintTextBlock(_) => [0x06, 0xD3],
            Command::StatusInformation(_) => [0x04, 0x0F],
            Command::IntermediateStatus(_) => [0x04, 0xFF],
            Command::SetDateTime(_) => [0x04, 0x01],
            Command::StatusEnquiry(_) => [0x05, 0x01],
            Command::Ack => [0x80, 0x00],
            Command::Nack(n) => [0x84, n.code],
            Command::Raw(r) => [r.class, r.instr],
        }
    }

    /// The BMP 06 container of the commands that carry one (`Some(&[])` for `06 00`).
    pub fn tlv(&self) -> Option<&[u8]> {
        match self {
            Command::Registration(c) => c.tlv.as_deref(),
            Command::Authorization(c) => c.tlv.as_deref(),
            Command::LogOff(c) | Command::Diagnosis(c) => c.tlv.as_deref(),
            Command::Completion(c) => c.tlv.as_deref(),
            Command::EnquiryCompletion(c) => c.tlv.as_deref(),
            Command::Abort(c) => c.tlv.as_deref(),
            Command::RepeatReceipt(c) | Command::EndOfDay(c) | Command::Initialisation(c) => {
                c.tlv.as_deref()
            }
            Command::Reversal(c) => c.tlv.as_deref(),
            Command::Refund(c) => c.tlv.as_deref(),
            Command::PrintTextBlock(c) => Some(&c.tlv),
            Command::StatusInformation(c) => c.tlv.as_deref(),
            Command::IntermediateStatus(c) => c.tlv.as_deref(),
            Command::StatusEnquiry(c) => c.tlv.as_deref(),
            Command::AbortFromEcr(_)
            | Command::PrintLine(_)
            | Command::SetDateTime(_)
            | Command::Ack
            | Command::Nack(_)
            | Command::Raw(_) => None,
        }
    }

    /// BMP 02 (max. status infos), wherever the command carries it.
    pub fn max_status_infos(&self) -> Option<u8> {
        let other = match self {
            Command::Authorization(a) => return a.max_status_infos,
            Command::Refund(r) => &r.other,
            Command::Reversal(r) => &r.other,
            Command::RepeatReceipt(c) | Command::EndOfDay(c) | Command::Initialisation(c) => {
                &c.other
            }
            Command::Diagnosis(c) => &c.other,
            _ => return None,
        };
        other
            .iter()
            .find(|b| b.tag == tag::MAX_STATUS_INFOS)
            .and_then(|b| b.value.first().copied())
    }

    /// `84 code 00`.
    pub fn nack(code: u8) -> Command {
        Command::Nack(Nack {
            code,
            data: Vec::new(),
        })
    }

    /// Appends the encoded APDU to `out`; on error `out` is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let r = self.encode_data(&mut W(out));
        if let Err(e) = r {
            out.truncate(start);
            return Err(e);
        }
        let [c, i] = self.code();
        apdu::wrap_in_place(out, start, c, i)?;
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }

    fn encode_data(&self, w: &mut W<'_>) -> Result<(), EncodeError> {
        match self {
            Command::Registration(c) => c.encode(w),
            Command::Authorization(c) => c.encode(w),
            Command::LogOff(c) | Command::Diagnosis(c) => c.encode(w),
            Command::Completion(c) => c.encode(w),
            Command::EnquiryCompletion(c) => c.encode(w),
            Command::Abort(c) => c.encode(w),
            Command::RepeatReceipt(c) | Command::EndOfDay(c) | Command::Initialisation(c) => {
                c.encode(w)
            }
            Command::Reversal(c) => c.encode(w),
            Command::Refund(c) => c.encode(w),
            Command::AbortFromEcr(c) => c.encode(w),
            Command::PrintLine(p) => {
                w.raw(&[p.attribute]);
                w.raw(&p.text);
                Ok(())
            }
            Command::PrintTextBlock(c) => c.encode(w),
            Command::StatusInformation(c) => c.encode(w),
            Command::IntermediateStatus(c) => c.encode(w),
            Command::SetDateTime(c) => c.encode(w),
            Command::StatusEnquiry(c) => c.encode(w),
            Command::Ack => Ok(()),
            Command::Nack(n) => {
                w.raw(&n.data);
                Ok(())
            }
            Command::Raw(r) => {
                w.raw(&r.data);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
