//! Messages: [`MessageRef`] borrows a decoded frame (no allocation per field), [`Message`]
//! owns values in their canonical form for building and for state.
//!
//! Canonical form of a value: digits for `n`, digits and `=` for `z` (track 2), the characters
//! for `an`/`ans`, raw bytes for `b`. The dialect decides how that goes on the wire.
//!
//! The frame handed to [`MessageRef::decode`] is what the framing layer returns: header (if
//! the dialect has one), MTI, bitmap(s), fields — no length prefix. Byte offsets in errors
//! count from its first byte.
//!
//! ```
//! use protocol::iso8583::{Dialect, Message, MessageRef, Mti};
//! let d = Dialect::builtin("iso87-ascii").unwrap();
//! let mut m = Message::new(Mti::new(800).unwrap());
//! m.set(11, "000123").set(70, "001");
//! let mut wire = Vec::new();
//! m.encode_into(&d, &mut wire).unwrap();
//! // "0800", primary bitmap 80 20 00 00 00 00 00 00 (bit 1 = secondary follows, bit 11),
//! // secondary 04 00 00 00 00 00 00 00 (bit 70)
//! assert_eq!(&wire[..6], b"0800\x80\x20");
//! assert_eq!(&wire[12..14], b"\x04\x00");
//! let r = MessageRef::decode(&d, &wire).unwrap();
//! assert_eq!(r.field_str(70).as_deref(), Some("001"));
//! ```

use std::borrow::Cow;
use std::fmt;

use super::codec;
use super::dialect::{BitmapEncoding, DataEncoding, Dialect, MtiEncoding};
use crate::card::pan::mask_digits;

/// Message type indicator, 0000–9999 (`Mti::new(200)` is `0200`).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mti(u16);

impl Mti {
    pub const fn new(v: u16) -> Option<Mti> {
        if v <= 9999 { Some(Mti(v)) } else { None }
    }
    /// Values above 9999 become 9999.
    pub const fn new_clamped(v: u16) -> Mti {
        Mti(if v > 9999 { 9999 } else { v })
    }
    /// Four ASCII digits.
    pub fn parse(s: &str) -> Option<Mti> {
        let b = s.as_bytes();
        if b.len() != 4 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(Mti(b.iter().fold(0u16, |a, &c| a * 10 + (c - b'0') as u16)))
    }
    pub const fn value(self) -> u16 {
        self.0
    }
    pub fn digits(self) -> [u8; 4] {
        let v = self.0;
        [
            b'0' + (v / 1000) as u8,
            b'0' + (v / 100 % 10) as u8,
            b'0' + (v / 10 % 10) as u8,
            b'0' + (v % 10) as u8,
        ]
    }
    /// The third digit: 0 request, 1 response, 2 advice, 3 advice response…
    pub const fn function(self) -> u8 {
        (self.0 / 10 % 10) as u8
    }
    /// The response to this request or advice: function digit + 1, origin digit 0 (0200→0210,
    /// 0221→0230, 0401→0410). `None` for something that is already a response.
    pub const fn response(self) -> Option<Mti> {
        if self.function().is_multiple_of(2) {
            Some(Mti((self.0 / 10 + 1) * 10))
        } else {
            None
        }
    }
    pub const fn is_response(self) -> bool {
        self.function() % 2 == 1
    }
    /// The repeat form (last digit 1: 0400→0401, 0220→0221).
    pub const fn repeat(self) -> Mti {
        Mti(self.0 / 10 * 10 + 1)
    }
    pub const fn is_repeat(self) -> bool {
        self.0 % 10 == 1
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}
impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({:04})", self.0)
    }
}

/// One decoded field: the wire bytes (without the length prefix), borrowed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FieldRef<'a> {
    pub(crate) data: &'a [u8],
    /// Canonical length (digits, characters or bytes).
    pub(crate) len: u16,
    pub(crate) enc: DataEncoding,
    /// Offset of the field's first byte (its length prefix, if any) in the frame.
    pub(crate) offset: u32,
}

impl<'a> FieldRef<'a> {
    /// The data bytes as on the wire (BCD still packed).
    pub fn wire(&self) -> &'a [u8] {
        self.data
    }
    /// Canonical length: digits for n/z, characters, or bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn encoding(&self) -> DataEncoding {
        self.enc
    }
    /// Byte offset of the field (its length prefix, if any) in the frame.
    pub fn offset(&self) -> usize {
        self.offset as usize
    }
    /// The canonical value as bytes: borrowed for ASCII/binary, unpacked for BCD.
    pub fn value(&self) -> Cow<'a, [u8]> {
        if self.enc.is_packed() {
            let mut v = Vec::with_capacity(self.len as usize);
            codec::unpack_into(self.enc, self.data, self.len as usize, &mut v);
            Cow::Owned(v)
        } else {
            Cow::Borrowed(self.data)
        }
    }
    /// The canonical value as text: digits for numeric fields, the characters for text fields
    /// (invalid UTF-8, e.g. GB18030, is replaced), upper-case hex for binary fields.
    pub fn to_str(&self) -> Cow<'a, str> {
        match self.enc {
            DataEncoding::Binary => Cow::Owned(hex(self.data)),
            DataEncoding::Ascii => String::from_utf8_lossy(self.data),
            _ => {
                let mut v = Vec::with_capacity(self.len as usize);
                codec::unpack_into(self.enc, self.data, self.len as usize, &mut v);
                // Only digits and '=' come out of unpack_into.
                Cow::Owned(String::from_utf8(v).unwrap_or_default())
            }
        }
    }
}

impl fmt::Debug for FieldRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value may be card data: show only its shape.
        write!(
            f,
            "FieldRef({:?}, len {}, at {})",
            self.enc, self.len, self.offset
        )
    }
}

/// Where and why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}byte {offset}: {kind}", match .field { Some(n) => format!("field {n} at "), None => String::new() })]
pub struct DecodeError {
    /// The field being read, `None` for header, MTI or bitmap.
    pub field: Option<u8>,
    pub offset: usize,
    pub kind: DecodeErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("needs {needed} bytes, {available} remain")]
    Truncated { needed: usize, available: usize },
    #[error("MTI is not four digits")]
    BadMti,
    #[error("bitmap is not hex")]
    BadBitmap,
    #[error("a secondary bitmap is present, but the dialect allows none")]
    SecondaryNotAllowed,
    #[error("the bitmap announces a field the dialect does not define")]
    UnknownField,
    #[error("length prefix byte {byte:#04x} is not a digit")]
    BadLengthPrefix { byte: u8 },
    #[error("length {len} exceeds the maximum {max}")]
    TooLong { len: usize, max: usize },
    #[error("byte {byte:#04x} is not packed digits")]
    BadDigit { byte: u8 },
    #[error("byte {byte:#04x} is not allowed in this field")]
    BadChar { byte: u8 },
    #[error("{count} bytes follow the last field")]
    TrailingBytes { count: usize },
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", match .field { Some(n) => format!("field {n}: "), None => String::new() })]
pub struct EncodeError {
    pub field: Option<u8>,
    pub kind: EncodeErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeErrorKind {
    #[error("the dialect does not define this field")]
    NotInDialect,
    #[error("field numbers run from 2 to 128")]
    NoSuchField,
    #[error("length {len}, the field is fixed at {expected}")]
    WrongLength { len: usize, expected: usize },
    #[error("length {len} exceeds the maximum {max}")]
    TooLong { len: usize, max: usize },
    #[error("byte {byte:#04x} at position {pos} is not allowed")]
    BadChar { pos: usize, byte: u8 },
    #[error("{len} digits cannot be counted in whole bytes")]
    OddDigits { len: usize },
    #[error("header has {len} bytes, the dialect expects {expected}")]
    HeaderLength { len: usize, expected: usize },
    #[error("fields above 64 need a secondary bitmap, which the dialect does not allow")]
    SecondaryNotAllowed,
}

/// Read access shared by [`Message`] and [`MessageRef`], for code that handles both (response
/// matching, builders, transcripts).
pub trait FieldSource {
    fn mti(&self) -> Mti;
    /// Header bytes (TPDU + header), if any.
    fn header(&self) -> Option<&[u8]>;
    /// The canonical value of field `n`.
    fn value(&self, n: u8) -> Option<Cow<'_, [u8]>>;
    fn has(&self, n: u8) -> bool;
    /// The canonical value as text (lossy for non-UTF-8 bytes).
    fn text(&self, n: u8) -> Option<Cow<'_, str>> {
        self.value(n).map(|v| match v {
            Cow::Borrowed(b) => String::from_utf8_lossy(b),
            Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
        })
    }
    /// Field numbers present, ascending.
    fn present(&self) -> Vec<u8> {
        (2..=128u8).filter(|&n| self.has(n)).collect()
    }
}

/// A decoded message borrowing from its frame. Built for speed: one fixed array of slots,
/// no allocation.
#[derive(Clone)]
pub struct MessageRef<'a> {
    pub mti: Mti,
    /// Header bytes (TPDU + application header for CUP), if the dialect has one.
    pub header: Option<&'a [u8]>,
    frame: &'a [u8],
    fields: [Option<FieldRef<'a>>; 129],
}

impl<'a> MessageRef<'a> {
    /// Decodes one frame (without its length prefix). Never panics.
    pub fn decode(dialect: &Dialect, frame: &'a [u8]) -> Result<MessageRef<'a>, DecodeError> {
        let fail = |field, offset, kind| DecodeError {
            field,
            offset,
            kind,
        };
        let mut pos = 0usize;
        let header = match &dialect.header {
            None => None,
            Some(h) => {
                let b = frame.get(..h.length).ok_or(fail(
                    None,
                    0,
                    DecodeErrorKind::Truncated {
                        needed: h.length,
                        available: frame.len(),
                    },
                ))?;
                pos = h.length;
                Some(b)
            }
        };
        let trunc = |pos: usize, needed: usize| {
            fail(
                None,
                pos,
                DecodeErrorKind::Truncated {
                    needed,
                    available: frame.len().saturating_sub(pos),
                },
            )
        };
        let mti = match dialect.mti {
            MtiEncoding::Bcd => {
                let b = frame.get(pos..pos + 2).ok_or_else(|| trunc(pos, 2))?;
                let mut v = 0u16;
                for &x in b {
                    let (hi, lo) = (x >> 4, x & 0x0F);
                    if hi > 9 || lo > 9 {
                        return Err(fail(None, pos, DecodeErrorKind::BadMti));
                    }
                    v = v * 100 + (hi * 10 + lo) as u16;
                }
                pos += 2;
                Mti(v)
            }
            MtiEncoding::Ascii => {
                let b = frame.get(pos..pos + 4).ok_or_else(|| trunc(pos, 4))?;
                let s = std::str::from_utf8(b).ok().and_then(Mti::parse);
                let m = s.ok_or(fail(None, pos, DecodeErrorKind::BadMti))?;
                pos += 4;
                m
            }
        };
        let primary =
            read_bitmap(dialect.bitmap, frame, &mut pos).map_err(|(o, k)| fail(None, o, k))?;
        let secondary = if primary & (1 << 63) != 0 {
            if !dialect.secondary_bitmap {
                return Err(fail(None, pos, DecodeErrorKind::SecondaryNotAllowed));
            }
            read_bitmap(dialect.bitmap, frame, &mut pos).map_err(|(o, k)| fail(None, o, k))?
        } else {
            0
        };
        let mut fields: [Option<FieldRef<'a>>; 129] = [None; 129];
        for (base, map) in [(0u32, primary & !(1 << 63)), (64, secondary)] {
            let mut m = map;
            while m != 0 {
                let bit = m.leading_zeros();
                m &= !(1u64 << (63 - bit));
                let n = (base + bit + 1) as u8;
                let spec =
                    dialect
                        .field(n)
                        .ok_or(fail(Some(n), pos, DecodeErrorKind::UnknownField))?;
                let (f, next) =
                    codec::decode(spec, frame, pos).map_err(|(o, k)| fail(Some(n), o, k))?;
                if let Some(slot) = fields.get_mut(n as usize) {
                    *slot = Some(f);
                }
                pos = next;
            }
        }
        if pos != frame.len() {
            return Err(fail(
                None,
                pos,
                DecodeErrorKind::TrailingBytes {
                    count: frame.len() - pos,
                },
            ));
        }
        Ok(MessageRef {
            mti,
            header,
            frame,
            fields,
        })
    }

    /// The frame this message was decoded from.
    pub fn frame(&self) -> &'a [u8] {
        self.frame
    }
    /// Offset of the MTI in the frame (the header length).
    pub fn mti_offset(&self) -> usize {
        self.header.map_or(0, <[u8]>::len)
    }
    #[inline]
    pub fn field(&self, n: u8) -> Option<&FieldRef<'a>> {
        self.fields.get(n as usize).and_then(Option::as_ref)
    }
    #[inline]
    pub fn has(&self, n: u8) -> bool {
        self.field(n).is_some()
    }
    /// Digits for numeric fields, characters for text, hex for binary.
    pub fn field_str(&self, n: u8) -> Option<Cow<'a, str>> {
        self.field(n).map(FieldRef::to_str)
    }
    /// The data bytes as on the wire (for binary fields: the value).
    pub fn field_bytes(&self, n: u8) -> Option<&'a [u8]> {
        self.field(n).map(FieldRef::wire)
    }
    /// Present fields in ascending order.
    pub fn fields(&self) -> impl Iterator<Item = (u8, &FieldRef<'a>)> {
        self.fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|f| (i as u8, f)))
    }
    /// An owned copy in canonical form.
    pub fn to_owned(&self) -> Message {
        let mut m = Message::new(self.mti);
        m.header = self.header.map(<[u8]>::to_vec);
        let total: usize = self.fields().map(|(_, f)| f.len()).sum();
        m.arena.reserve(total);
        for (n, f) in self.fields() {
            let start = m.arena.len();
            if f.enc.is_packed() {
                codec::unpack_into(f.enc, f.data, f.len as usize, &mut m.arena);
            } else {
                m.arena.extend_from_slice(f.data);
            }
            m.slots[n as usize] = Slot {
                start: start as u32,
                len: (m.arena.len() - start) as u32,
            };
            m.present[(n >> 6) as usize] |= 1 << (n & 63);
        }
        m
    }
}

impl FieldSource for MessageRef<'_> {
    fn mti(&self) -> Mti {
        self.mti
    }
    fn header(&self) -> Option<&[u8]> {
        self.header
    }
    fn value(&self, n: u8) -> Option<Cow<'_, [u8]>> {
        self.field(n).map(FieldRef::value)
    }
    fn has(&self, n: u8) -> bool {
        MessageRef::has(self, n)
    }
    fn text(&self, n: u8) -> Option<Cow<'_, str>> {
        self.field_str(n)
    }
}

impl fmt::Debug for MessageRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MessageRef");
        d.field("mti", &self.mti);
        let present: Vec<u8> = self.fields().map(|(n, _)| n).collect();
        d.field("fields", &present);
        d.finish()
    }
}

fn read_bitmap(
    enc: BitmapEncoding,
    frame: &[u8],
    pos: &mut usize,
) -> Result<u64, (usize, DecodeErrorKind)> {
    let n = match enc {
        BitmapEncoding::Binary => 8,
        BitmapEncoding::Hex => 16,
    };
    let b = frame.get(*pos..*pos + n).ok_or((
        *pos,
        DecodeErrorKind::Truncated {
            needed: n,
            available: frame.len().saturating_sub(*pos),
        },
    ))?;
    let v = match enc {
        BitmapEncoding::Binary => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_be_bytes(a)
        }
        BitmapEncoding::Hex => {
            let mut v = 0u64;
            for (i, &c) in b.iter().enumerate() {
                let d = (c as char)
                    .to_digit(16)
                    .ok_or((*pos + i, DecodeErrorKind::BadBitmap))?;
                v = v << 4 | d as u64;
            }
            v
        }
    };
    *pos += n;
    Ok(v)
}

fn write_bitmap(enc: BitmapEncoding, v: u64, out: &mut Vec<u8>) {
    match enc {
        BitmapEncoding::Binary => out.extend_from_slice(&v.to_be_bytes()),
        BitmapEncoding::Hex => {
            for i in (0..16).rev() {
                out.push(b"0123456789ABCDEF"[(v >> (i * 4)) as usize & 0xF]);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Slot {
    start: u32,
    len: u32,
}
const ABSENT: Slot = Slot { start: 0, len: 0 };

/// An owned message. Values live in one arena; slots cover every `u8` so no field number can
/// index out of bounds (numbers outside 2–128 fail at encode).
#[derive(Clone)]
pub struct Message {
    pub mti: Mti,
    /// Header bytes (TPDU + header); `None` uses the dialect's default.
    pub header: Option<Vec<u8>>,
    /// One bit per field number (word `n / 64`, bit `n % 64`).
    present: [u64; 4],
    slots: [Slot; 256],
    arena: Vec<u8>,
}

impl Message {
    pub fn new(mti: Mti) -> Message {
        Message {
            mti,
            header: None,
            present: [0; 4],
            slots: [ABSENT; 256],
            arena: Vec::new(),
        }
    }
    /// Sets field `n` to its canonical value (digits for n, characters for an/ans, bytes
    /// for b). Checked against the dialect at encode.
    pub fn set(&mut self, n: u8, value: impl AsRef<[u8]>) -> &mut Message {
        let v = value.as_ref();
        let had = self.has(n);
        self.present[(n >> 6) as usize] |= 1 << (n & 63);
        let slot = &mut self.slots[n as usize];
        if had && v.len() <= slot.len as usize {
            let s = slot.start as usize;
            self.arena[s..s + v.len()].copy_from_slice(v);
            slot.len = v.len() as u32;
        } else {
            *slot = Slot {
                start: self.arena.len() as u32,
                len: v.len() as u32,
            };
            self.arena.extend_from_slice(v);
        }
        self
    }
    /// Sets a numeric field from an integer, zero-padded to `width` digits.
    pub fn set_num(&mut self, n: u8, v: u64, width: usize) -> &mut Message {
        self.set(n, format!("{v:0width$}"))
    }
    pub fn remove(&mut self, n: u8) -> &mut Message {
        self.present[(n >> 6) as usize] &= !(1 << (n & 63));
        self
    }
    #[inline]
    pub fn get(&self, n: u8) -> Option<&[u8]> {
        if !self.has(n) {
            return None;
        }
        let s = self.slots[n as usize];
        self.arena
            .get(s.start as usize..(s.start as usize + s.len as usize))
    }
    /// The value as text, if it is UTF-8.
    pub fn get_str(&self, n: u8) -> Option<&str> {
        self.get(n).and_then(|b| std::str::from_utf8(b).ok())
    }
    #[inline]
    pub fn has(&self, n: u8) -> bool {
        self.present[(n >> 6) as usize] & (1 << (n & 63)) != 0
    }
    /// Present fields in ascending order (including any out-of-range numbers that were set).
    pub fn fields(&self) -> impl Iterator<Item = (u8, &[u8])> {
        (0..=255u8).filter_map(|n| self.get(n).map(|v| (n, v)))
    }

    /// Appends the encoded message (header, MTI, bitmap, fields; no length prefix) to `out`.
    /// On error `out` is left as it was.
    pub fn encode_into(&self, dialect: &Dialect, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let r = self.encode_inner(dialect, out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// Encodes into a new buffer.
    pub fn encode(&self, dialect: &Dialect) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(256);
        self.encode_into(dialect, &mut v)?;
        Ok(v)
    }

    fn encode_inner(&self, dialect: &Dialect, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let fail = |field, kind| EncodeError { field, kind };
        let [w0, w1, w2, w3] = self.present;
        // Fields 0, 1 and 129–255 have no place on the wire.
        if w0 & 0b11 != 0 || w2 & !1 != 0 || w3 != 0 {
            let n = self
                .fields()
                .map(|(n, _)| n)
                .find(|n| !(2..=128).contains(n));
            return Err(fail(n, EncodeErrorKind::NoSuchField));
        }
        // ISO bit order: field n of 1–64 is bit 64 − n of the big-endian word.
        let mut primary = ((w0 >> 1) | (w1 << 63)).reverse_bits();
        let secondary = ((w1 >> 1) | (w2 << 63)).reverse_bits();
        if secondary != 0 {
            if !dialect.secondary_bitmap {
                let first = (65..=128u8).find(|&n| self.has(n));
                return Err(fail(first, EncodeErrorKind::SecondaryNotAllowed));
            }
            primary |= 1 << 63;
        }
        out.reserve(dialect.header_len() + 36 + self.arena.len() + 3 * 16);
        if let Some(h) = &dialect.header {
            let hb = self.header.as_deref().unwrap_or(&h.default);
            if hb.len() != h.length {
                return Err(fail(
                    None,
                    EncodeErrorKind::HeaderLength {
                        len: hb.len(),
                        expected: h.length,
                    },
                ));
            }
            out.extend_from_slice(hb);
        }
        match dialect.mti {
            MtiEncoding::Bcd => {
                let d = self.mti.digits();
                out.extend_from_slice(&[
                    ((d[0] - b'0') << 4) | (d[1] - b'0'),
                    ((d[2] - b'0') << 4) | (d[3] - b'0'),
                ]);
            }
            MtiEncoding::Ascii => out.extend_from_slice(&self.mti.digits()),
        }
        write_bitmap(dialect.bitmap, primary, out);
        if secondary != 0 {
            write_bitmap(dialect.bitmap, secondary, out);
        }
        for (base, map) in [(0u32, primary & !(1 << 63)), (64, secondary)] {
            let mut m = map;
            while m != 0 {
                let bit = m.leading_zeros();
                m &= !(1u64 << (63 - bit));
                let n = (base + bit + 1) as u8;
                let s = self.slots[n as usize];
                let v = self
                    .arena
                    .get(s.start as usize..s.start as usize + s.len as usize)
                    .unwrap_or_default();
                let spec = dialect
                    .field(n)
                    .ok_or(fail(Some(n), EncodeErrorKind::NotInDialect))?;
                codec::encode(spec, v, out).map_err(|k| fail(Some(n), k))?;
            }
        }
        Ok(())
    }
}

impl FieldSource for Message {
    fn mti(&self) -> Mti {
        self.mti
    }
    fn header(&self) -> Option<&[u8]> {
        self.header.as_deref()
    }
    fn value(&self, n: u8) -> Option<Cow<'_, [u8]>> {
        self.get(n).map(Cow::Borrowed)
    }
    fn has(&self, n: u8) -> bool {
        Message::has(self, n)
    }
}

impl From<&MessageRef<'_>> for Message {
    fn from(r: &MessageRef<'_>) -> Message {
        r.to_owned()
    }
}

/// Equal MTI, header and the same canonical values (arena layout does not matter).
impl PartialEq for Message {
    fn eq(&self, o: &Message) -> bool {
        self.mti == o.mti && self.header == o.header && (0..=255u8).all(|n| self.get(n) == o.get(n))
    }
}
impl Eq for Message {}

/// Field numbers that carry card secrets by ISO convention; Debug never prints them.
fn debug_value(n: u8, v: &[u8]) -> String {
    match n {
        2 => mask_digits(&String::from_utf8_lossy(v)),
        35 | 36 | 45 | 52 | 55 => format!("<{} bytes hidden>", v.len()),
        _ if v.iter().all(|&b| (0x20..0x7F).contains(&b)) => {
            String::from_utf8_lossy(v).into_owned()
        }
        _ => format!("0x{}", hex(v)),
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Message({}", self.mti)?;
        for (n, v) in self.fields() {
            write!(f, " {n}={}", debug_value(n, v))?;
        }
        write!(f, ")")
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(b"0123456789ABCDEF"[(x >> 4) as usize] as char);
        s.push(b"0123456789ABCDEF"[(x & 0xF) as usize] as char);
    }
    s
}
