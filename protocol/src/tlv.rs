//! BER-TLV, the one implementation behind ZVT's BMP 06 container and EMV card data.
//!
//! Tags follow ISO 7816 / SPEC-C 9.3.1: the low five bits of the first byte equal to `0x1F`
//! mean more tag bytes follow, each with bit 8 set while another follows. Lengths are BER:
//! `00..7F` one byte; `81 nn`; `82 HH LL` (big-endian); `83 …` three bytes.
//!
//! ```
//! use protocol::tlv::{Tag, Tlv, parse_all};
//! // ZVT TLV 1F16 (extended error code, 5 bytes) followed by 1F17 (text "Abbr").
//! let bytes = [0x1F, 0x16, 0x02, 0x00, 0x14, 0x1F, 0x17, 0x04, b'A', b'b', b'b', b'r'];
//! let items = parse_all(&bytes).unwrap();
//! assert_eq!(items[0].tag, Tag(0x1F16));
//! assert_eq!(items[1].value, b"Abbr");
//! ```

use std::fmt;

/// A tag, its bytes packed big-endian into a `u32` (`1F16` is `Tag(0x1F16)`).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// Bit 6 of the first byte: the value holds further TLV objects.
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }
    fn first_byte(self) -> u8 {
        let b = self.0.to_be_bytes();
        b.iter().copied().find(|&x| x != 0).unwrap_or(0)
    }
    /// The encoded tag bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        let b = self.0.to_be_bytes();
        let start = b.iter().position(|&x| x != 0).unwrap_or(3);
        b[start..].to_vec()
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}
impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

/// One data object, borrowing its value from the input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
    /// Byte offset of the tag within the buffer handed to the parser.
    pub offset: usize,
}

impl<'a> Tlv<'a> {
    /// The nested objects of a constructed tag.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, TlvError> {
        parse_all_at(self.value, self.offset + self.header_len())
    }
    fn header_len(&self) -> usize {
        self.tag.to_bytes().len() + length_len(self.value.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("TLV tag at byte {offset} is cut short")]
    TruncatedTag { offset: usize },
    #[error("TLV tag at byte {offset} is longer than 4 bytes")]
    TagTooLong { offset: usize },
    #[error("TLV length at byte {offset} is cut short")]
    TruncatedLength { offset: usize },
    #[error("TLV length form {first:#04x} at byte {offset} is not supported")]
    BadLength { offset: usize, first: u8 },
    #[error("TLV value of tag {tag} at byte {offset} needs {needed} bytes, {available} remain")]
    TruncatedValue {
        tag: Tag,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("TLV nesting deeper than {0} levels")]
    TooDeep(usize),
}

impl TlvError {
    pub fn offset(&self) -> usize {
        match *self {
            TlvError::TruncatedTag { offset }
            | TlvError::TagTooLong { offset }
            | TlvError::TruncatedLength { offset }
            | TlvError::BadLength { offset, .. }
            | TlvError::TruncatedValue { offset, .. } => offset,
            TlvError::TooDeep(_) => 0,
        }
    }
}

/// Reads one object from the start of `buf`. `base` is added to reported offsets.
/// Returns the object and the number of bytes it took.
pub fn parse_one(buf: &[u8], base: usize) -> Result<(Tlv<'_>, usize), TlvError> {
    let mut i = 0;
    let first = *buf.get(i).ok_or(TlvError::TruncatedTag { offset: base })?;
    let mut tag = first as u32;
    i += 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *buf.get(i).ok_or(TlvError::TruncatedTag { offset: base })?;
            if i >= 4 {
                return Err(TlvError::TagTooLong { offset: base });
            }
            tag = (tag << 8) | b as u32;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let len_at = base + i;
    let l0 = *buf
        .get(i)
        .ok_or(TlvError::TruncatedLength { offset: len_at })?;
    i += 1;
    let len = match l0 {
        0x00..=0x7F => l0 as usize,
        0x81..=0x83 => {
            let n = (l0 & 0x7F) as usize;
            let bytes = buf
                .get(i..i + n)
                .ok_or(TlvError::TruncatedLength { offset: len_at })?;
            i += n;
            bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize)
        }
        _ => {
            return Err(TlvError::BadLength {
                offset: len_at,
                first: l0,
            });
        }
    };
    let available = buf.len() - i;
    if len > available {
        return Err(TlvError::TruncatedValue {
            tag: Tag(tag),
            offset: base,
            needed: len,
            available,
        });
    }
    Ok((
        Tlv {
            tag: Tag(tag),
            value: &buf[i..i + len],
            offset: base,
        },
        i + len,
    ))
}

/// Reads every object in `buf` (one level; see [`Tlv::children`] for nesting).
pub fn parse_all(buf: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    parse_all_at(buf, 0)
}

/// Like [`parse_all`], with `base` added to every reported offset.
pub fn parse_all_at(buf: &[u8], base: usize) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < buf.len() {
        let (t, n) = parse_one(&buf[i..], base + i)?;
        out.push(t);
        i += n;
    }
    Ok(out)
}

/// Finds `tag` anywhere in `buf`, descending into constructed objects up to 8 levels.
pub fn find<'a>(buf: &'a [u8], tag: Tag) -> Result<Option<Tlv<'a>>, TlvError> {
    fn walk<'a>(
        buf: &'a [u8],
        base: usize,
        tag: Tag,
        depth: usize,
    ) -> Result<Option<Tlv<'a>>, TlvError> {
        if depth > 8 {
            return Err(TlvError::TooDeep(8));
        }
        for t in parse_all_at(buf, base)? {
            if t.tag == tag {
                return Ok(Some(t));
            }
            if t.tag.is_constructed()
                && let Some(found) = walk(t.value, t.offset + t.header_len(), tag, depth + 1)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
    walk(buf, 0, tag, 0)
}

fn length_len(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        _ => 4,
    }
}

/// Appends a BER length.
pub fn write_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
}

/// Appends one object.
pub fn write(out: &mut Vec<u8>, tag: Tag, value: &[u8]) {
    out.extend_from_slice(&tag.to_bytes());
    write_length(out, value.len());
    out.extend_from_slice(value);
}

/// Builds a TLV sequence fluently.
#[derive(Default, Clone, Debug)]
pub struct TlvBuilder {
    buf: Vec<u8>,
}

impl TlvBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(mut self, tag: u32, value: &[u8]) -> Self {
        write(&mut self.buf, Tag(tag), value);
        self
    }
    /// A constructed object whose value is another builder's output.
    pub fn nest(mut self, tag: u32, inner: TlvBuilder) -> Self {
        write(&mut self.buf, Tag(tag), &inner.buf);
        self
    }
    pub fn build(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn long_lengths_are_big_endian() {
        // reference/zvt.md §1.1: `06 82 04 5D` means 0x045D bytes.
        let mut v = vec![];
        write_length(&mut v, 0x045D);
        assert_eq!(v, [0x82, 0x04, 0x5D]);
        let mut v = vec![];
        write_length(&mut v, 0x90);
        assert_eq!(v, [0x81, 0x90]);
    }

    #[test]
    fn multi_byte_tags_and_nesting() {
        // EMV: 9F02 amount inside a constructed 70 template.
        let inner = TlvBuilder::new()
            .put(0x9F02, &[0, 0, 0, 0, 0x19, 0x95])
            .put(0x5A, &[0x41, 0x11]);
        let bytes = TlvBuilder::new().nest(0x70, inner).build();
        let outer = parse_all(&bytes).unwrap();
        assert_eq!(outer[0].tag, Tag(0x70));
        assert!(outer[0].tag.is_constructed());
        let kids = outer[0].children().unwrap();
        assert_eq!(kids[0].tag, Tag(0x9F02));
        assert_eq!(kids[0].offset, 2);
        assert_eq!(
            find(&bytes, Tag(0x5A)).unwrap().unwrap().value,
            &[0x41, 0x11]
        );
    }

    #[test]
    fn truncation_names_the_offset() {
        assert_eq!(
            parse_all(&[0x1F]),
            Err(TlvError::TruncatedTag { offset: 0 })
        );
        assert_eq!(
            parse_all(&[0x07, 0x81]),
            Err(TlvError::TruncatedLength { offset: 1 })
        );
        assert_eq!(
            parse_all(&[0x07, 0x01, 0x41, 0x07, 0x05, 0x41]),
            Err(TlvError::TruncatedValue {
                tag: Tag(0x07),
                offset: 3,
                needed: 5,
                available: 1
            })
        );
        assert_eq!(
            parse_all(&[0x07, 0x84]),
            Err(TlvError::BadLength {
                offset: 1,
                first: 0x84
            })
        );
        assert_eq!(
            parse_all(&[0x1F, 0x81, 0x81, 0x81, 0x81, 0x01]),
            Err(TlvError::TagTooLong { offset: 0 })
        );
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_all(&bytes);
            let _ = find(&bytes, Tag(0x1F16));
        }

        #[test]
        fn round_trip(items in proptest::collection::vec(
            (prop_oneof![Just(0x07u32), Just(0x1F16), Just(0x9F02), Just(0x14)],
             proptest::collection::vec(any::<u8>(), 0..400)), 0..6)) {
            let mut b = TlvBuilder::new();
            for (t, v) in &items { b = b.put(*t, v); }
            let bytes = b.build();
            let parsed = parse_all(&bytes).unwrap();
            prop_assert_eq!(parsed.len(), items.len());
            for (p, (t, v)) in parsed.iter().zip(&items) {
                prop_assert_eq!(p.tag, Tag(*t));
                prop_assert_eq!(p.value, &v[..]);
            }
        }
    }
}
