//! TCP framing: a length prefix before each message, reassembled across reads.
//!
//! Shaped like tokio-util's `Decoder`: [`LengthPrefixed::decode`] takes the bytes read so far
//! and returns `Ok(None)` until a whole frame is there, then removes it from the buffer.
//!
//! ```
//! use protocol::iso8583::framing::{LengthPrefixed, PrefixKind};
//! let f = LengthPrefixed { kind: PrefixKind::Binary2, includes_self: false, max_frame: 4096 };
//! // "00 03" announces three bytes; they arrive in two reads.
//! let mut buf = vec![0x00, 0x03, 0xAA];
//! assert_eq!(f.decode(&mut buf).unwrap(), None);
//! buf.extend_from_slice(&[0xBB, 0xCC, 0x00]);
//! assert_eq!(f.decode(&mut buf).unwrap(), Some(vec![0xAA, 0xBB, 0xCC]));
//! assert_eq!(buf, vec![0x00]); // the start of the next frame stays
//! ```
//!
//! A length of zero yields an empty frame (some hosts use it as a keep-alive); callers skip it.
//! After an error the stream is out of step and the connection should be closed.

use serde::Deserialize;

/// How the length is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefixKind {
    /// Two bytes, big-endian (`01 AA` = 426). The CUP and jPOS `NACChannel` form.
    Binary2,
    /// Four bytes, big-endian.
    Binary4,
    /// Four ASCII digits (`"0426"`).
    Ascii4,
    /// Two bytes of packed BCD (`04 26`).
    Bcd2,
}

impl PrefixKind {
    /// Bytes the prefix takes.
    pub fn width(self) -> usize {
        match self {
            PrefixKind::Binary2 | PrefixKind::Bcd2 => 2,
            PrefixKind::Binary4 | PrefixKind::Ascii4 => 4,
        }
    }
    /// Largest number the prefix can carry.
    pub fn max_value(self) -> usize {
        match self {
            PrefixKind::Binary2 => 0xFFFF,
            PrefixKind::Binary4 => u32::MAX as usize,
            PrefixKind::Ascii4 | PrefixKind::Bcd2 => 9999,
        }
    }
}

/// A length-prefix codec. `includes_self`: the number counts the prefix's own bytes too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LengthPrefixed {
    pub kind: PrefixKind,
    pub includes_self: bool,
    /// Frames longer than this (payload bytes) are refused.
    pub max_frame: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("length prefix byte {byte:#04x} at offset {offset} is not a digit")]
    BadPrefix { offset: usize, byte: u8 },
    #[error("length prefix {value} is smaller than the prefix itself ({prefix_len} bytes)")]
    ShorterThanPrefix { value: usize, prefix_len: usize },
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLong { len: usize, max: usize },
}

/// A deliberately broken frame for fault injection (the acquirer simulator's "truncated
/// frame" and "wrong length prefix").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A correct prefix, but only the first `keep` payload bytes follow.
    Truncate { keep: usize },
    /// The prefix announces the true length plus `delta` (negative: fewer bytes).
    LengthDelta(i64),
    /// The prefix announces exactly `value`.
    Length(usize),
    /// A prefix that cannot be parsed (`"0x1F"` style garbage for ASCII/BCD; `FF FF` for
    /// binary, above any sane limit).
    Garbage,
}

impl LengthPrefixed {
    /// Two-byte binary, excluding itself: CUP and most ISO hosts.
    pub const fn binary2(max_frame: usize) -> LengthPrefixed {
        LengthPrefixed {
            kind: PrefixKind::Binary2,
            includes_self: false,
            max_frame,
        }
    }

    /// Removes one whole frame (payload, without the prefix) from the front of `buf`.
    pub fn decode(&self, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, FramingError> {
        let p = self.kind.width();
        if buf.len() < p {
            return Ok(None);
        }
        let value = read_prefix(self.kind, &buf[..p])?;
        let len = if self.includes_self {
            value
                .checked_sub(p)
                .ok_or(FramingError::ShorterThanPrefix {
                    value,
                    prefix_len: p,
                })?
        } else {
            value
        };
        if len > self.max_frame {
            return Err(FramingError::TooLong {
                len,
                max: self.max_frame,
            });
        }
        let total = p + len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let frame = buf[p..total].to_vec();
        buf.drain(..total);
        Ok(Some(frame))
    }

    /// Appends the prefix and `payload` to `out`.
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FramingError> {
        if payload.len() > self.max_frame {
            return Err(FramingError::TooLong {
                len: payload.len(),
                max: self.max_frame,
            });
        }
        let value = payload.len()
            + if self.includes_self {
                self.kind.width()
            } else {
                0
            };
        if value > self.kind.max_value() {
            return Err(FramingError::TooLong {
                len: payload.len(),
                max: self.kind.max_value(),
            });
        }
        write_prefix(self.kind, value, out);
        out.extend_from_slice(payload);
        Ok(())
    }

    /// Appends a broken frame for fault injection. Never fails: out-of-range numbers are
    /// clamped to what the prefix can express.
    pub fn encode_fault(&self, payload: &[u8], fault: Fault, out: &mut Vec<u8>) {
        let selfl = if self.includes_self {
            self.kind.width()
        } else {
            0
        };
        let max = self.kind.max_value();
        let true_value = payload.len() + selfl;
        match fault {
            Fault::Truncate { keep } => {
                write_prefix(self.kind, true_value.min(max), out);
                out.extend_from_slice(&payload[..keep.min(payload.len())]);
            }
            Fault::LengthDelta(d) => {
                let v = (true_value as i64).saturating_add(d).clamp(0, max as i64) as usize;
                write_prefix(self.kind, v, out);
                out.extend_from_slice(payload);
            }
            Fault::Length(v) => {
                write_prefix(self.kind, v.min(max), out);
                out.extend_from_slice(payload);
            }
            Fault::Garbage => {
                match self.kind {
                    PrefixKind::Binary2 => out.extend_from_slice(&[0xFF, 0xFF]),
                    PrefixKind::Binary4 => out.extend_from_slice(&[0xFF; 4]),
                    PrefixKind::Ascii4 => out.extend_from_slice(b"0x1F"),
                    PrefixKind::Bcd2 => out.extend_from_slice(&[0xAB, 0xCD]),
                }
                out.extend_from_slice(payload);
            }
        }
    }
}

fn read_prefix(kind: PrefixKind, b: &[u8]) -> Result<usize, FramingError> {
    Ok(match kind {
        PrefixKind::Binary2 => u16::from_be_bytes([b[0], b[1]]) as usize,
        PrefixKind::Binary4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
        PrefixKind::Ascii4 => {
            let mut v = 0usize;
            for (i, &c) in b.iter().enumerate() {
                if !c.is_ascii_digit() {
                    return Err(FramingError::BadPrefix { offset: i, byte: c });
                }
                v = v * 10 + (c - b'0') as usize;
            }
            v
        }
        PrefixKind::Bcd2 => {
            let mut v = 0usize;
            for (i, &c) in b.iter().enumerate() {
                if c >> 4 > 9 || c & 0x0F > 9 {
                    return Err(FramingError::BadPrefix { offset: i, byte: c });
                }
                v = v * 100 + (c >> 4) as usize * 10 + (c & 0x0F) as usize;
            }
            v
        }
    })
}

fn write_prefix(kind: PrefixKind, v: usize, out: &mut Vec<u8>) {
    match kind {
        PrefixKind::Binary2 => out.extend_from_slice(&(v as u16).to_be_bytes()),
        PrefixKind::Binary4 => out.extend_from_slice(&(v as u32).to_be_bytes()),
        PrefixKind::Ascii4 => {
            let v = v % 10_000;
            out.extend_from_slice(&[
                b'0' + (v / 1000) as u8,
                b'0' + (v / 100 % 10) as u8,
                b'0' + (v / 10 % 10) as u8,
                b'0' + (v % 10) as u8,
            ]);
        }
        PrefixKind::Bcd2 => {
            let v = v % 10_000;
            let hi = (v / 100) as u8;
            let lo = (v % 100) as u8;
            out.extend_from_slice(&[((hi / 10) << 4) | (hi % 10), ((lo / 10) << 4) | (lo % 10)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec(kind: PrefixKind, includes_self: bool) -> LengthPrefixed {
        LengthPrefixed {
            kind,
            includes_self,
            max_frame: 9000,
        }
    }

    #[test]
    fn prefixes_on_the_wire() {
        let mut out = Vec::new();
        codec(PrefixKind::Binary2, false)
            .encode(&[1; 0x80], &mut out)
            .unwrap();
        assert_eq!(&out[..2], &[0x00, 0x80]); // the CUP 0220 of vectors.md
        out.clear();
        codec(PrefixKind::Ascii4, false)
            .encode(&[1; 426], &mut out)
            .unwrap();
        assert_eq!(&out[..4], b"0426");
        out.clear();
        codec(PrefixKind::Ascii4, true)
            .encode(&[1; 426], &mut out)
            .unwrap();
        assert_eq!(&out[..4], b"0430");
        out.clear();
        codec(PrefixKind::Bcd2, false)
            .encode(&[1; 426], &mut out)
            .unwrap();
        assert_eq!(&out[..2], &[0x04, 0x26]);
        out.clear();
        codec(PrefixKind::Binary4, true)
            .encode(&[1; 3], &mut out)
            .unwrap();
        assert_eq!(&out[..4], &[0, 0, 0, 7]);
    }

    #[test]
    fn errors() {
        let f = codec(PrefixKind::Ascii4, false);
        assert_eq!(
            f.decode(&mut b"00x1abc".to_vec()),
            Err(FramingError::BadPrefix {
                offset: 2,
                byte: b'x'
            })
        );
        let f = codec(PrefixKind::Binary2, true);
        assert_eq!(
            f.decode(&mut vec![0, 1, 9]),
            Err(FramingError::ShorterThanPrefix {
                value: 1,
                prefix_len: 2
            })
        );
        let f = codec(PrefixKind::Binary2, false);
        assert_eq!(
            f.decode(&mut vec![0xFF, 0xFF]),
            Err(FramingError::TooLong {
                len: 0xFFFF,
                max: 9000
            })
        );
        assert!(f.encode(&[0; 9001], &mut Vec::new()).is_err());
        // A zero length is an empty frame.
        assert_eq!(f.decode(&mut vec![0, 0]), Ok(Some(vec![])));
    }

    #[test]
    fn faults_are_detectable() {
        let f = codec(PrefixKind::Binary2, false);
        let payload = [7u8; 10];
        let mut out = Vec::new();
        f.encode_fault(&payload, Fault::Truncate { keep: 4 }, &mut out);
        assert_eq!(out, [&[0u8, 10][..], &[7; 4]].concat());
        assert_eq!(f.decode(&mut out), Ok(None));

        let mut out = Vec::new();
        f.encode_fault(&payload, Fault::LengthDelta(-3), &mut out);
        assert_eq!(&out[..2], &[0, 7]);
        assert_eq!(f.decode(&mut out).unwrap().unwrap().len(), 7);
        assert_eq!(out.len(), 3); // the rest looks like the start of another frame

        let mut out = Vec::new();
        f.encode_fault(&payload, Fault::Length(12), &mut out);
        assert_eq!(f.decode(&mut out), Ok(None));

        let mut out = Vec::new();
        codec(PrefixKind::Ascii4, false).encode_fault(&payload, Fault::Garbage, &mut out);
        assert!(codec(PrefixKind::Ascii4, false).decode(&mut out).is_err());
        let mut out = Vec::new();
        f.encode_fault(&payload, Fault::Garbage, &mut out);
        assert!(f.decode(&mut out).is_err());
    }

    proptest! {
        #[test]
        fn frames_survive_any_split(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
            cuts in proptest::collection::vec(1usize..64, 0..40),
            kind in prop_oneof![Just(PrefixKind::Binary2), Just(PrefixKind::Binary4), Just(PrefixKind::Ascii4), Just(PrefixKind::Bcd2)],
            includes_self in any::<bool>(),
        ) {
            let f = codec(kind, includes_self);
            let mut wire = Vec::new();
            for fr in &frames {
                f.encode(fr, &mut wire).unwrap();
            }
            let mut buf = Vec::new();
            let mut got = Vec::new();
            let mut pos = 0;
            let mut cut = cuts.iter().copied().cycle();
            while pos < wire.len() {
                let n = if cuts.is_empty() { wire.len() } else { cut.next().unwrap() };
                let end = (pos + n).min(wire.len());
                buf.extend_from_slice(&wire[pos..end]);
                pos = end;
                while let Some(fr) = f.decode(&mut buf).unwrap() {
                    got.push(fr);
                }
            }
            prop_assert_eq!(got, frames);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for kind in [PrefixKind::Binary2, PrefixKind::Binary4, PrefixKind::Ascii4, PrefixKind::Bcd2] {
                let mut b = bytes.clone();
                let _ = codec(kind, true).decode(&mut b);
            }
        }
    }
}
