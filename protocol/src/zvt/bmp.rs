//! BMPs: the tagged fields inside ZVT APDUs (SPEC-C 13, reference/zvt.md §3).
//!
//! A BMP is a one-byte tag followed by a value whose length the tag alone decides:
//! - fixed: N bytes (binary, packed BCD or ASCII), e.g. `04` amount = 6 bytes BCD;
//! - LLVAR / LLLVAR: `Fx Fy` / `Fx Fy Fz` then `xy` / `xyz` bytes (only the low nibbles count);
//! - `06`: a BER-TLV container, `06 <BER length> <objects>` — **not** LLLVAR; read with
//!   [`crate::tlv`].
//!
//! A tag this table does not know makes the rest undecodable (its length is unknown):
//! decoding stops with [`BmpError::UnknownBmp`] and keeps the raw rest ([`BmpList::stop`]);
//! a PT answers such a command with `84 83 00`.
//!
//! ```
//! use protocol::zvt::bmp::{self, Bcd, CardNumber};
//! // 04 <amount 25.00> 22 <PAN LLVAR, masked by the terminal> 87 <receipt 0231>
//! let data = [0x04, 0, 0, 0, 0, 0x25, 0x00,
//!             0x22, 0xF0, 0xF8, 0x55, 0x98, 0x83, 0xEE, 0xEE, 0xEE, 0x80, 0x74,
//!             0x87, 0x02, 0x31];
//! let list = bmp::decode_list(&data, 0);
//! assert!(list.stop.is_none());
//! assert_eq!(bmp::amount(list.fields[0].value), Some(2500));
//! let pan = CardNumber::from_bcd(list.fields[1].value).unwrap();
//! assert_eq!(pan.masked(), "559883******8074");
//! assert_eq!(Bcd::<2>::try_from(list.fields[2].value).unwrap().to_u64(), Some(231));
//! ```

use std::fmt;

use crate::card::pan::{Pan, mask_digits};
use crate::tlv::{self, Tag, TlvError};

/// How a BMP's value is delimited.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Format {
    /// Exactly this many bytes.
    Fixed(usize),
    /// `Fx Fy` + up to 99 bytes.
    LlVar,
    /// `Fx Fy Fz` + up to 999 bytes.
    LllVar,
    /// BER length + TLV objects (BMP 06 only).
    Tlv,
}

/// The format of every BMP posrig knows (reference/zvt.md §3, ecrterm's table for the
/// display/input fields E0–FC); `None` for any other tag.
pub const fn format(tag: u8) -> Option<Format> {
    use Format::*;
    Some(match tag {
        0x01 | 0x02 | 0x03 | 0x05 | 0x19 | 0x27 | 0x8A | 0x8C | 0xA0 | 0xD0 | 0xD2 | 0xD3 => {
            Fixed(1)
        }
        0x04 => Fixed(6),
        0x06 => Tlv,
        0x0B | 0x0C | 0x37 | 0x3D | 0x88 | 0xAA => Fixed(3),
        0x0D | 0x0E | 0x17 | 0x3A | 0x49 | 0x87 => Fixed(2),
        0x29 => Fixed(4),
        0x2A => Fixed(15),
        0x3B | 0xEB => Fixed(8),
        0xBA => Fixed(5),
        0x22 | 0x23 | 0x2D | 0x4C | 0x8B | 0xA7 | 0xD1 => LlVar,
        0x24 | 0x2E | 0x3C | 0x60 | 0x92 | 0x9A | 0xAF => LllVar,
        0xE0 | 0xE9 | 0xEA | 0xF0 | 0xF9 | 0xFA | 0xFB | 0xFC => Fixed(1),
        0xE1..=0xE8 | 0xF1..=0xF8 => LlVar,
        _ => return None,
    })
}

/// Well-known BMP tags.
pub mod tag {
    pub const TIMEOUT: u8 = 0x01;
    pub const MAX_STATUS_INFOS: u8 = 0x02;
    pub const SERVICE_BYTE: u8 = 0x03;
    pub const AMOUNT: u8 = 0x04;
    pub const PUMP: u8 = 0x05;
    pub const TLV: u8 = 0x06;
    pub const TRACE: u8 = 0x0B;
    pub const TIME: u8 = 0x0C;
    pub const DATE_MMDD: u8 = 0x0D;
    pub const EXPIRY: u8 = 0x0E;
    pub const CARD_SEQUENCE: u8 = 0x17;
    pub const TYPE_BYTE: u8 = 0x19;
    pub const PAN: u8 = 0x22;
    pub const TRACK2: u8 = 0x23;
    pub const TRACK3: u8 = 0x24;
    pub const RESULT: u8 = 0x27;
    pub const TID: u8 = 0x29;
    pub const VU: u8 = 0x2A;
    pub const TRACK1: u8 = 0x2D;
    pub const ORIGINAL_TRACE: u8 = 0x37;
    pub const CVV: u8 = 0x3A;
    pub const AID: u8 = 0x3B;
    pub const ADDITIONAL_TEXT: u8 = 0x3C;
    pub const PASSWORD: u8 = 0x3D;
    pub const CURRENCY: u8 = 0x49;
    pub const TOTALS: u8 = 0x60;
    pub const RECEIPT: u8 = 0x87;
    pub const TURNOVER: u8 = 0x88;
    pub const CARD_TYPE: u8 = 0x8A;
    pub const CARD_NAME: u8 = 0x8B;
    pub const NETWORK_CARD_TYPE: u8 = 0x8C;
    pub const RESULT_AS: u8 = 0xA0;
    pub const DATE_YYMMDD: u8 = 0xAA;
    pub const AID_PARAMETER: u8 = 0xBA;
    pub const CARD_OUTPUT_DIRECTION: u8 = 0xD2;
    pub const READER_ACTIVATION: u8 = 0xFA;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmpError {
    #[error("unknown BMP {tag:02X} at byte {offset}; the rest cannot be delimited")]
    UnknownBmp { tag: u8, offset: usize },
    #[error("BMP {tag:02X} at byte {offset} needs {needed} bytes, {available} remain")]
    Truncated {
        tag: u8,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("BMP {tag:02X}: length byte at {offset} is not of the form F0..F9")]
    BadLengthPrefix { tag: u8, offset: usize },
    #[error("BMP 06 TLV container at byte {offset}: {error}")]
    Tlv { offset: usize, error: TlvError },
    #[error("BMP {tag:02X} at byte {offset}: {what}")]
    BadValue {
        tag: u8,
        offset: usize,
        what: &'static str,
    },
    #[error("BMP {tag:02X} must be {expected} bytes, got {got}")]
    WrongLength {
        tag: u8,
        expected: usize,
        got: usize,
    },
    #[error("BMP {tag:02X} value of {len} bytes exceeds its maximum {max}")]
    TooLong { tag: u8, len: usize, max: usize },
}

impl BmpError {
    /// Byte offset of the problem (0 for encode-side errors).
    pub fn offset(&self) -> usize {
        match *self {
            BmpError::UnknownBmp { offset, .. }
            | BmpError::Truncated { offset, .. }
            | BmpError::BadLengthPrefix { offset, .. }
            | BmpError::Tlv { offset, .. }
            | BmpError::BadValue { offset, .. } => offset,
            BmpError::WrongLength { .. } | BmpError::TooLong { .. } => 0,
        }
    }
}

/// One decoded BMP, borrowing its value (without tag or length prefix).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Field<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    /// Offset of the tag byte, counted as the caller's `base` says.
    pub offset: usize,
    /// Offset of the first value byte.
    pub value_offset: usize,
}

/// Iterates the BMPs of a data block; stops after the first error.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    done: bool,
}

/// The BMPs of `data`; offsets are reported as `base + index`.
pub fn fields(data: &[u8], base: usize) -> Fields<'_> {
    Fields {
        data,
        pos: 0,
        base,
        done: false,
    }
}

impl<'a> Fields<'a> {
    /// The bytes not yet decoded (after an error: from the failing tag on).
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    fn read_var(&self, tag: u8, digits: usize) -> Result<(usize, usize), BmpError> {
        let at = self.pos + 1;
        let pre = self.data.get(at..at + digits).ok_or(BmpError::Truncated {
            tag,
            offset: self.base + self.pos,
            needed: digits,
            available: self.data.len().saturating_sub(at),
        })?;
        let mut len = 0usize;
        for (i, &b) in pre.iter().enumerate() {
            if b >> 4 != 0xF || b & 0x0F > 9 {
                return Err(BmpError::BadLengthPrefix {
                    tag,
                    offset: self.base + at + i,
                });
            }
            len = len * 10 + (b & 0x0F) as usize;
        }
        Ok((at + digits, len))
    }

    fn next_field(&mut self) -> Result<Field<'a>, BmpError> {
        let data = self.data;
        let start = self.pos;
        let tag = data[start];
        let offset = self.base + start;
        let fmt = format(tag).ok_or(BmpError::UnknownBmp { tag, offset })?;
        let (value_at, len) = match fmt {
            Format::Fixed(n) => (start + 1, n),
            Format::LlVar => self.read_var(tag, 2)?,
            Format::LllVar => self.read_var(tag, 3)?,
            Format::Tlv => {
                let (t, used) = tlv::parse_one(&data[start..], offset)
                    .map_err(|error| BmpError::Tlv { offset, error })?;
                let value_at = start + used - t.value.len();
                (value_at, t.value.len())
            }
        };
        let value = data
            .get(value_at..value_at + len)
            .ok_or(BmpError::Truncated {
                tag,
                offset,
                needed: len,
                available: data.len().saturating_sub(value_at),
            })?;
        self.pos = value_at + len;
        Ok(Field {
            tag,
            value,
            offset,
            value_offset: self.base + value_at,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, BmpError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let r = self.next_field();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

/// Every BMP of a block, plus where and why decoding stopped, if it did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BmpList<'a> {
    pub fields: Vec<Field<'a>>,
    /// The error that stopped decoding and the raw bytes from the failing tag on.
    pub stop: Option<(BmpError, &'a [u8])>,
}

impl<'a> BmpList<'a> {
    pub fn get(&self, tag: u8) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.tag == tag)
    }
}

/// Decodes a whole block; never fails, see [`BmpList::stop`].
pub fn decode_list(data: &[u8], base: usize) -> BmpList<'_> {
    let mut it = fields(data, base);
    let mut list = BmpList::default();
    while let Some(r) = it.next() {
        match r {
            Ok(f) => list.fields.push(f),
            Err(e) => list.stop = Some((e, it.rest())),
        }
    }
    list
}

/// Appends one BMP (tag, length prefix as its format wants, value), checking the length.
pub fn write(out: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<(), BmpError> {
    let fmt = format(tag).ok_or(BmpError::UnknownBmp { tag, offset: 0 })?;
    let len = value.len();
    match fmt {
        Format::Fixed(n) => {
            if len != n {
                return Err(BmpError::WrongLength {
                    tag,
                    expected: n,
                    got: len,
                });
            }
            out.push(tag);
        }
        Format::LlVar => {
            if len > 99 {
                return Err(BmpError::TooLong { tag, len, max: 99 });
            }
            out.extend_from_slice(&[tag, 0xF0 | (len / 10) as u8, 0xF0 | (len % 10) as u8]);
        }
        Format::LllVar => {
            if len > 999 {
                return Err(BmpError::TooLong { tag, len, max: 999 });
            }
            out.extend_from_slice(&[
                tag,
                0xF0 | (len / 100) as u8,
                0xF0 | (len / 10 % 10) as u8,
                0xF0 | (len % 10) as u8,
            ]);
        }
        Format::Tlv => {
            tlv::write(out, Tag(tag as u32), value);
            return Ok(());
        }
    }
    out.extend_from_slice(value);
    Ok(())
}

/// A BMP kept as raw bytes: known to the table but not to the command that carried it.
/// Encoding writes it back with its tag and length prefix.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RawBmp {
    pub tag: u8,
    pub value: Vec<u8>,
}

impl RawBmp {
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), BmpError> {
        write(out, self.tag, &self.value)
    }
}

// ---------------------------------------------------------------------------------------
// Value types

/// Packed BCD of a fixed size, kept as raw bytes: `Bcd([0x22, 0x55, 0x58])` is 22:55:58.
/// Raw so that values a terminal sends outside BCD (`87 FF FF` = "no receipt") survive.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Bcd<const N: usize>(pub [u8; N]);

impl<const N: usize> Default for Bcd<N> {
    fn default() -> Self {
        Bcd([0; N])
    }
}

impl<const N: usize> Bcd<N> {
    /// `v` in 2N digits, `None` if it does not fit.
    pub fn from_u64(mut v: u64) -> Option<Self> {
        let mut out = [0u8; N];
        for b in out.iter_mut().rev() {
            let lo = (v % 10) as u8;
            v /= 10;
            let hi = (v % 10) as u8;
            v /= 10;
            *b = (hi << 4) | lo;
        }
        (v == 0).then_some(Bcd(out))
    }
    /// The number, `None` if a nibble is not a decimal digit.
    pub fn to_u64(&self) -> Option<u64> {
        bcd_to_u64(&self.0)
    }
    /// From up to 2N decimal digits, left-padded with zeros: `"123456"` → `12 34 56`.
    pub fn from_digits(s: &str) -> Option<Self> {
        if s.len() > 2 * N || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Self::from_u64(s.parse().ok()?)
    }
    /// The nibbles as text, `F` and other non-digits in hex: `"0231"`, `"FFFF"`.
    pub fn digits(&self) -> String {
        hex_upper(&self.0)
    }
}

impl<const N: usize> TryFrom<&[u8]> for Bcd<N> {
    type Error = usize;
    /// Fails with the slice's length when it is not N.
    fn try_from(v: &[u8]) -> Result<Self, usize> {
        <[u8; N]>::try_from(v).map(Bcd).map_err(|_| v.len())
    }
}

impl<const N: usize> fmt::Debug for Bcd<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bcd({})", self.digits())
    }
}
impl<const N: usize> fmt::Display for Bcd<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits())
    }
}

/// The 3-byte BCD password of 06 00, 06 20, 06 30, 06 31, 06 50, 06 93, 05 01 (positional).
pub type Password = Bcd<3>;

pub(crate) fn hex_upper(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

/// Packed BCD to a number; `None` on a non-decimal nibble or more than 19 digits.
pub fn bcd_to_u64(b: &[u8]) -> Option<u64> {
    if b.len() > 9 {
        return None;
    }
    let mut v = 0u64;
    for &x in b {
        let (hi, lo) = (x >> 4, x & 0x0F);
        if hi > 9 || lo > 9 {
            return None;
        }
        v = v * 100 + (hi * 10 + lo) as u64;
    }
    Some(v)
}

/// BMP 04 amount in minor units (`00 00 00 00 19 95` → 1995); `None` unless 6 BCD bytes.
pub fn amount(value: &[u8]) -> Option<u64> {
    if value.len() != 6 {
        return None;
    }
    bcd_to_u64(value)
}

/// The largest amount BMP 04 can carry (12 digits).
pub const MAX_AMOUNT: u64 = 999_999_999_999;

/// BMP 04 bytes for an amount in minor units; `None` above [`MAX_AMOUNT`].
pub fn amount_bytes(minor: u64) -> Option<[u8; 6]> {
    Bcd::<6>::from_u64(minor).map(|b| b.0)
}

/// BMP 49 / positional currency code (`09 78` → 978).
pub fn currency(value: &[u8]) -> Option<u16> {
    if value.len() != 2 {
        return None;
    }
    bcd_to_u64(value).map(|v| v as u16)
}

/// Currency code bytes; `None` above 9999.
pub fn currency_bytes(code: u16) -> Option<[u8; 2]> {
    Bcd::<2>::from_u64(code as u64).map(|b| b.0)
}

/// Text from a ZVT ASCII field for display: trailing NULs and spaces trimmed, bytes above
/// 0x7F shown as Latin-1 (ZVT's 7-bit/CP437 texts never lose meaning this way).
pub fn text_lossy(b: &[u8]) -> String {
    let end = b
        .iter()
        .rposition(|&c| c != 0 && c != b' ')
        .map_or(0, |i| i + 1);
    b[..end].iter().map(|&c| c as char).collect()
}

/// A fixed-size ASCII field padded with `pad` (BMP 2A: spaces, BMP 3B: NULs); longer text is
/// cut at N bytes.
pub fn padded<const N: usize>(s: &str, pad: u8) -> [u8; N] {
    let mut out = [pad; N];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b;
    }
    out
}

/// BMP 22: a card number (PAN / EF_ID) as the terminal sent it — packed BCD where an `E`
/// nibble is a digit the terminal masked and a final `F` pads an odd count.
///
/// Its `Debug`/`Display` always show the first 6 / last 4 only, whether the terminal masked
/// it or not (a manual-entry refund carries the full PAN).
///
/// ```
/// use protocol::zvt::bmp::CardNumber;
/// // From the Feig 04 0F capture: `22 F0 F8 55 98 83 EE EE EE 80 74`.
/// let c = CardNumber::from_bcd(&[0x55, 0x98, 0x83, 0xEE, 0xEE, 0xEE, 0x80, 0x74]).unwrap();
/// assert!(c.is_masked());
/// assert_eq!(c.masked(), "559883******8074");
/// assert_eq!(c.terminal_form(), "559883******8074");
/// // Odd length, F-padded: `47 11 00 80 05 75 70 38 00 4F` = 19 digits.
/// let c = CardNumber::from_bcd(&[0x47, 0x11, 0x00, 0x80, 0x05, 0x75, 0x70, 0x38, 0x00, 0x4F]).unwrap();
/// assert_eq!(c.digit_count(), 19);
/// assert_eq!(format!("{c:?}"), "CardNumber(471100*********8004)");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardNumber(Vec<u8>);

impl CardNumber {
    /// Checks the nibbles: digits or `E`; `F` only as the very last nibble.
    /// The error is the index of the offending byte.
    pub fn from_bcd(raw: &[u8]) -> Result<CardNumber, usize> {
        let n = raw.len();
        for (i, &b) in raw.iter().enumerate() {
            let (hi, lo) = (b >> 4, b & 0x0F);
            let ok = |x: u8| x <= 9 || x == 0xE;
            if !ok(hi) || !(ok(lo) || (lo == 0xF && i + 1 == n)) {
                return Err(i);
            }
        }
        Ok(CardNumber(raw.to_vec()))
    }
    /// From digits with `*` for masked ones: `"559883******8074"`. `None` on other chars.
    pub fn from_digits(s: &str) -> Option<CardNumber> {
        let mut nib = Vec::with_capacity(s.len() + 1);
        for c in s.bytes() {
            nib.push(match c {
                b'0'..=b'9' => c - b'0',
                b'*' => 0xE,
                _ => return None,
            });
        }
        if nib.len() % 2 == 1 {
            nib.push(0xF);
        }
        Some(CardNumber(
            nib.chunks(2).map(|p| (p[0] << 4) | p[1]).collect(),
        ))
    }
    pub fn from_pan(p: &Pan) -> CardNumber {
        // A Pan holds 12–19 ASCII digits, which from_digits always accepts.
        CardNumber::from_digits(p.expose()).unwrap_or(CardNumber(Vec::new()))
    }
    /// The BMP 22 value bytes.
    pub fn as_bcd(&self) -> &[u8] {
        &self.0
    }
    fn nibbles(&self) -> impl Iterator<Item = u8> + '_ {
        self.0
            .iter()
            .flat_map(|b| [b >> 4, b & 0x0F])
            .filter(|&n| n != 0xF)
    }
    pub fn digit_count(&self) -> usize {
        self.nibbles().count()
    }
    /// Did the terminal hide any digit (`E` nibbles)?
    pub fn is_masked(&self) -> bool {
        self.nibbles().any(|n| n == 0xE)
    }
    /// The number as the terminal masked it, `*` per `E`. Full digits if it did not mask:
    /// use only where a wire format needs them.
    pub fn terminal_form(&self) -> String {
        self.nibbles()
            .map(|n| if n == 0xE { '*' } else { (b'0' + n) as char })
            .collect()
    }
    /// First 6 / last 4 (card masking convention), whatever the terminal sent.
    pub fn masked(&self) -> String {
        mask_digits(&self.terminal_form())
    }
    /// The full PAN, if no digit is masked and it has 12–19 digits.
    pub fn to_pan(&self) -> Option<Pan> {
        if self.is_masked() {
            return None;
        }
        Pan::new(&self.terminal_form()).ok()
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}
impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Magnetic-stripe track data (BMP 2D, 23, 24). Never printed: `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct TrackData(pub Vec<u8>);

impl fmt::Debug for TrackData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackData(<{} bytes>)", self.0.len())
    }
}

/// BMP 60, individual totals of an End-of-Day: receipt range, then per card group a count
/// (1 byte binary) and a total (6 bytes BCD), in the order of [`TOTALS_GROUPS`].
///
/// ```
/// use protocol::zvt::bmp::{Bcd, IndividualTotals, TotalsEntry};
/// let t = IndividualTotals {
///     receipt_start: Bcd([0x00, 0x01]),
///     receipt_end: Bcd([0x00, 0x03]),
///     entries: vec![TotalsEntry { count: 2, amount_minor: 3995 }],
/// };
/// let mut v = Vec::new();
/// t.encode_value(&mut v).unwrap();
/// assert_eq!(v, [0x00, 0x01, 0x00, 0x03, 0x02, 0, 0, 0, 0, 0x39, 0x95]);
/// assert_eq!(IndividualTotals::decode_value(&v, 0).unwrap(), t);
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct IndividualTotals {
    pub receipt_start: Bcd<2>,
    pub receipt_end: Bcd<2>,
    /// Normally seven entries; kept as sent.
    pub entries: Vec<TotalsEntry>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TotalsEntry {
    pub count: u8,
    pub amount_minor: u64,
}

/// The card groups of BMP 60, in wire order (SPEC-C 13).
pub const TOTALS_GROUPS: [&str; 7] = [
    "girocard", "JCB", "Eurocard", "Amex", "VISA", "Diners", "others",
];

impl IndividualTotals {
    /// `offset` is where the value starts, for error reporting.
    pub fn decode_value(v: &[u8], offset: usize) -> Result<IndividualTotals, BmpError> {
        let bad = |what| BmpError::BadValue {
            tag: tag::TOTALS,
            offset,
            what,
        };
        if v.len() < 4 || !(v.len() - 4).is_multiple_of(7) {
            return Err(bad("individual totals must be 4 + 7n bytes"));
        }
        let mut entries = Vec::with_capacity((v.len() - 4) / 7);
        for (i, e) in v[4..].chunks_exact(7).enumerate() {
            let amount_minor = bcd_to_u64(&e[1..]).ok_or(BmpError::BadValue {
                tag: tag::TOTALS,
                offset: offset + 4 + i * 7 + 1,
                what: "total is not BCD",
            })?;
            entries.push(TotalsEntry {
                count: e[0],
                amount_minor,
            });
        }
        Ok(IndividualTotals {
            receipt_start: Bcd([v[0], v[1]]),
            receipt_end: Bcd([v[2], v[3]]),
            entries,
        })
    }
    pub fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), BmpError> {
        out.extend_from_slice(&self.receipt_start.0);
        out.extend_from_slice(&self.receipt_end.0);
        for e in &self.entries {
            out.push(e.count);
            out.extend_from_slice(&amount_bytes(e.amount_minor).ok_or(BmpError::BadValue {
                tag: tag::TOTALS,
                offset: 0,
                what: "total exceeds 12 digits",
            })?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn length_prefixes() {
        // reference/zvt.md §3: `F0 F8` = 8 bytes; `F1 F1` = 11.
        let data = [
            0x8B, 0xF1, 0xF1, b'M', b'a', b's', b't', b'e', b'r', b'C', b'a', b'r', b'd', 0,
        ];
        let l = decode_list(&data, 0);
        assert_eq!(l.fields[0].value.len(), 11);
        assert_eq!(text_lossy(l.fields[0].value), "MasterCard");
        let mut out = Vec::new();
        write(&mut out, 0x8B, l.fields[0].value).unwrap();
        assert_eq!(out, data);
        let mut out = Vec::new();
        write(&mut out, 0x3C, &[b'x'; 123]).unwrap();
        assert_eq!(&out[..4], &[0x3C, 0xF1, 0xF2, 0xF3]);
    }

    #[test]
    fn tlv_container_uses_ber_length() {
        // reference/zvt.md §1.1: `06 82 04 5D` means 0x045D bytes.
        let mut data = vec![0x06, 0x82, 0x04, 0x5D];
        data.extend(std::iter::repeat_n(0u8, 0x45D));
        let l = decode_list(&data, 10);
        assert!(l.stop.is_none());
        assert_eq!(l.fields[0].value.len(), 0x45D);
        assert_eq!(l.fields[0].value_offset, 14);
        let mut out = Vec::new();
        write(&mut out, 0x06, l.fields[0].value).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn unknown_bmp_stops_and_keeps_the_rest() {
        let data = [0x27, 0x00, 0x99, 0x01, 0x02];
        let l = decode_list(&data, 3);
        assert_eq!(l.fields.len(), 1);
        let (e, rest) = l.stop.unwrap();
        assert_eq!(
            e,
            BmpError::UnknownBmp {
                tag: 0x99,
                offset: 5
            }
        );
        assert_eq!(rest, &[0x99, 0x01, 0x02]);
    }

    #[test]
    fn errors_name_offsets() {
        let l = decode_list(&[0x04, 0x00, 0x00], 3);
        assert_eq!(
            l.stop.unwrap().0,
            BmpError::Truncated {
                tag: 4,
                offset: 3,
                needed: 6,
                available: 2
            }
        );
        let l = decode_list(&[0x22, 0xF0, 0x1A], 0);
        assert_eq!(
            l.stop.unwrap().0,
            BmpError::BadLengthPrefix {
                tag: 0x22,
                offset: 2
            }
        );
        let l = decode_list(&[0x22, 0xF0], 0);
        assert!(matches!(
            l.stop.unwrap().0,
            BmpError::Truncated { tag: 0x22, .. }
        ));
        assert_eq!(
            write(&mut Vec::new(), 0x04, &[0; 5]),
            Err(BmpError::WrongLength {
                tag: 4,
                expected: 6,
                got: 5
            })
        );
    }

    #[test]
    fn bcd_helpers() {
        assert_eq!(amount(&[0, 0, 0, 0, 0x19, 0x95]), Some(1995));
        assert_eq!(amount(&[0, 0, 0, 0, 0x1A, 0x95]), None);
        assert_eq!(amount_bytes(MAX_AMOUNT + 1), None);
        assert_eq!(currency(&[0x09, 0x78]), Some(978));
        assert_eq!(
            Bcd::<3>::from_digits("123456"),
            Some(Bcd([0x12, 0x34, 0x56]))
        );
        assert_eq!(Bcd::<3>::from_digits("1234567"), None);
        assert_eq!(Bcd::<2>([0xFF, 0xFF]).to_u64(), None);
        assert_eq!(Bcd::<2>([0xFF, 0xFF]).to_string(), "FFFF");
    }

    #[test]
    fn card_number_rules() {
        assert_eq!(CardNumber::from_bcd(&[0x12, 0xF4]), Err(1));
        assert_eq!(CardNumber::from_bcd(&[0x1A]), Err(0));
        let full = CardNumber::from_digits("6222021234567894").unwrap();
        assert_eq!(
            full.as_bcd(),
            &[0x62, 0x22, 0x02, 0x12, 0x34, 0x56, 0x78, 0x94]
        );
        assert_eq!(full.to_string(), "622202******7894");
        assert!(!format!("{full:?}").contains("1234567"));
        assert_eq!(full.to_pan().unwrap().expose(), "6222021234567894");
        assert_eq!(
            CardNumber::from_digits("12*"),
            Some(CardNumber(vec![0x12, 0xEF]))
        );
    }

    proptest! {
        #[test]
        fn any_block_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80), base in 0usize..10) {
            let l = decode_list(&data, base);
            if let Some((e, rest)) = l.stop {
                prop_assert!(e.offset() >= base);
                prop_assert!(rest.len() <= data.len());
            }
        }

        #[test]
        fn write_then_decode(tag: u8, value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            if write(&mut out, tag, &value).is_ok() {
                let l = decode_list(&out, 0);
                prop_assert!(l.stop.is_none());
                prop_assert_eq!(l.fields.len(), 1);
                prop_assert_eq!(l.fields[0].value, &value[..]);
            }
        }

        #[test]
        fn card_number_round_trip(s in "[0-9*]{1,19}") {
            let c = CardNumber::from_digits(&s).unwrap();
            let back = CardNumber::from_bcd(c.as_bcd()).unwrap();
            prop_assert_eq!(back.terminal_form(), s);
        }

        #[test]
        fn bcd_round_trip(v in 0u64..1_000_000) {
            prop_assert_eq!(Bcd::<3>::from_u64(v).unwrap().to_u64(), Some(v));
        }
    }
}
