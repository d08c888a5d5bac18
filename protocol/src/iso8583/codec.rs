//! Field-level wire encoding: BCD (left/right aligned), track-2 nibbles, ASCII, binary and the
//! LL/LLL length prefixes. No allocation on decode; encode appends to a caller's buffer.

use super::dialect::{Charset, DataEncoding, FieldSpec, LengthEncoding, LengthType, LengthUnit};
use super::message::{DecodeErrorKind, EncodeErrorKind, FieldRef};

/// Nibble used to pad an odd digit count.
const PAD: u8 = 0x0;

#[inline]
fn nibble_of(c: u8) -> u8 {
    if c == b'=' { 0xD } else { c - b'0' }
}

/// Canonical character of a value nibble (`D` is `=` in track data).
#[inline]
pub(crate) fn char_of(n: u8) -> u8 {
    if n == 0xD { b'=' } else { b'0' + n }
}

/// Checks `value` against the field's charset and length rules.
pub(crate) fn check(spec: &FieldSpec, value: &[u8]) -> Result<(), EncodeErrorKind> {
    let len = value.len();
    match spec.length {
        LengthType::Fixed if len != spec.max as usize => {
            return Err(EncodeErrorKind::WrongLength {
                len,
                expected: spec.max as usize,
            });
        }
        LengthType::Llvar | LengthType::Lllvar if len > spec.max as usize => {
            return Err(EncodeErrorKind::TooLong {
                len,
                max: spec.max as usize,
            });
        }
        _ => {}
    }
    if spec.data.is_packed() && spec.unit == LengthUnit::Bytes && len % 2 == 1 {
        return Err(EncodeErrorKind::OddDigits { len });
    }
    if let Some(pos) = first_bad(spec.charset, value) {
        return Err(EncodeErrorKind::BadChar {
            pos,
            byte: value.get(pos).copied().unwrap_or(0),
        });
    }
    Ok(())
}

/// Position of the first byte outside the charset; one tight loop per charset.
#[inline]
fn first_bad(c: Charset, v: &[u8]) -> Option<usize> {
    match c {
        Charset::B => None,
        Charset::N => v.iter().position(|b| !b.is_ascii_digit()),
        Charset::Z => v.iter().position(|&b| !(b.is_ascii_digit() || b == b'=')),
        Charset::An => v
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b' ')),
        Charset::Ans => v.iter().position(|&b| b < 0x20 || b == 0x7F),
    }
}

/// Appends the field (prefix + data) to `out`.
pub(crate) fn encode(
    spec: &FieldSpec,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeErrorKind> {
    check(spec, value)?;
    let len = value.len();
    if spec.length != LengthType::Fixed {
        let v = match spec.unit {
            LengthUnit::Digits => len,
            LengthUnit::Bytes => spec.wire_len(len),
        };
        write_len(spec, v, out);
    }
    match spec.data {
        DataEncoding::Ascii | DataEncoding::Binary => out.extend_from_slice(value),
        DataEncoding::BcdLeft | DataEncoding::Track2 => {
            let pairs = value.chunks_exact(2);
            let rem = pairs.remainder();
            out.extend(pairs.map(|p| (nibble_of(p[0]) << 4) | nibble_of(p[1])));
            if let [last] = rem {
                out.push((nibble_of(*last) << 4) | PAD);
            }
        }
        DataEncoding::BcdRight => {
            let rest = match value.split_first() {
                Some((first, rest)) if len % 2 == 1 => {
                    out.push((PAD << 4) | nibble_of(*first));
                    rest
                }
                _ => value,
            };
            out.extend(
                rest.chunks_exact(2)
                    .map(|p| (nibble_of(p[0]) << 4) | nibble_of(p[1])),
            );
        }
    }
    Ok(())
}

fn write_len(spec: &FieldSpec, v: usize, out: &mut Vec<u8>) {
    let three = spec.length == LengthType::Lllvar;
    match spec.length_encoding {
        LengthEncoding::Bcd => {
            if three {
                out.push((v / 100) as u8);
            }
            let t = (v % 100) as u8;
            out.push(((t / 10) << 4) | (t % 10));
        }
        LengthEncoding::Ascii => {
            if three {
                out.push(b'0' + (v / 100 % 10) as u8);
            }
            out.push(b'0' + (v / 10 % 10) as u8);
            out.push(b'0' + (v % 10) as u8);
        }
        LengthEncoding::Binary => {
            if three {
                out.push((v >> 8) as u8);
            }
            out.push(v as u8);
        }
    }
}

/// Reads the field at `pos`. On error, returns the byte offset of the fault.
#[inline]
pub(crate) fn decode<'a>(
    spec: &FieldSpec,
    buf: &'a [u8],
    start: usize,
) -> Result<(FieldRef<'a>, usize), (usize, DecodeErrorKind)> {
    let mut pos = start;
    let (len, wire) = match spec.length {
        LengthType::Fixed => (spec.max as usize, spec.wire_len(spec.max as usize)),
        _ => {
            let plen = spec.prefix_len();
            let p = take(buf, pos, plen)?;
            let v = read_len(spec, p).map_err(|k| (pos, k))?;
            let (len, wire) = match spec.unit {
                LengthUnit::Digits => (v, spec.wire_len(v)),
                LengthUnit::Bytes if spec.data.is_packed() => (v * 2, v),
                LengthUnit::Bytes => (v, v),
            };
            if len > spec.max as usize {
                return Err((
                    pos,
                    DecodeErrorKind::TooLong {
                        len,
                        max: spec.max as usize,
                    },
                ));
            }
            pos += plen;
            (len, wire)
        }
    };
    let data = take(buf, pos, wire)?;
    validate(spec, data, len).map_err(|(i, k)| (pos + i, k))?;
    Ok((
        FieldRef {
            data,
            len: len as u16,
            enc: spec.data,
            offset: start as u32,
        },
        pos + wire,
    ))
}

#[inline]
fn take(buf: &[u8], pos: usize, n: usize) -> Result<&[u8], (usize, DecodeErrorKind)> {
    buf.get(pos..pos.saturating_add(n)).ok_or((
        pos,
        DecodeErrorKind::Truncated {
            needed: n,
            available: buf.len().saturating_sub(pos),
        },
    ))
}

fn read_len(spec: &FieldSpec, p: &[u8]) -> Result<usize, DecodeErrorKind> {
    let mut v = 0usize;
    match spec.length_encoding {
        LengthEncoding::Bcd => {
            for &b in p {
                let (hi, lo) = (b >> 4, b & 0x0F);
                if hi > 9 || lo > 9 {
                    return Err(DecodeErrorKind::BadLengthPrefix { byte: b });
                }
                v = v * 100 + (hi * 10 + lo) as usize;
            }
        }
        LengthEncoding::Ascii => {
            for &b in p {
                if !b.is_ascii_digit() {
                    return Err(DecodeErrorKind::BadLengthPrefix { byte: b });
                }
                v = v * 10 + (b - b'0') as usize;
            }
        }
        LengthEncoding::Binary => {
            for &b in p {
                v = v << 8 | b as usize;
            }
        }
    }
    Ok(v)
}

/// Charset / nibble checks, so that everything decoded re-encodes and `field_str` never fails.
#[inline]
fn validate(spec: &FieldSpec, data: &[u8], len: usize) -> Result<(), (usize, DecodeErrorKind)> {
    match spec.data {
        DataEncoding::Binary => Ok(()),
        DataEncoding::Ascii => match first_bad(spec.charset, data) {
            None => Ok(()),
            Some(i) => Err((
                i,
                DecodeErrorKind::BadChar {
                    byte: data.get(i).copied().unwrap_or(0),
                },
            )),
        },
        DataEncoding::BcdLeft | DataEncoding::Track2 => {
            let track = spec.data == DataEncoding::Track2;
            for (i, &b) in data.iter().enumerate() {
                let (hi, lo) = (b >> 4, b & 0x0F);
                let lo_is_pad = 2 * i + 1 >= len;
                let ok_hi = hi <= 9 || (track && hi == 0xD);
                let ok_lo = if lo_is_pad {
                    lo == 0 || lo == 0xF
                } else {
                    lo <= 9 || (track && lo == 0xD)
                };
                if !(ok_hi && ok_lo) {
                    return Err((i, DecodeErrorKind::BadDigit { byte: b }));
                }
            }
            Ok(())
        }
        DataEncoding::BcdRight => {
            let odd = len % 2 == 1;
            for (i, &b) in data.iter().enumerate() {
                let (hi, lo) = (b >> 4, b & 0x0F);
                let ok_hi = if odd && i == 0 {
                    hi == 0 || hi == 0xF
                } else {
                    hi <= 9
                };
                if !(ok_hi && lo <= 9) {
                    return Err((i, DecodeErrorKind::BadDigit { byte: b }));
                }
            }
            Ok(())
        }
    }
}

/// Canonical digits of a packed field, appended to `out`.
pub(crate) fn unpack_into(enc: DataEncoding, data: &[u8], len: usize, out: &mut Vec<u8>) {
    let skip = usize::from(enc == DataEncoding::BcdRight && len % 2 == 1);
    let mut i = 0usize;
    for &b in data {
        for n in [b >> 4, b & 0x0F] {
            if i >= skip && i < skip + len {
                out.push(char_of(n));
            }
            i += 1;
        }
    }
}
