//! The ZVT APDU: `CLASS INSTR LEN data`, the same on every transport (SPEC-T 5.2).
//!
//! LEN counts the data only. One byte `00..FE` holds up to 254 bytes; `FF LL HH` announces a
//! two-byte length, **low byte first**, for up to 65 535 bytes. The encoder always picks the
//! short form when it fits, so encode → decode → encode is byte-stable.
//!
//! ```
//! use protocol::zvt::apdu::Apdu;
//! // 80 00 00: positive acknowledgement, no data.
//! let (a, used) = Apdu::decode(&[0x80, 0x00, 0x00]).unwrap();
//! assert_eq!((a.class, a.instr, a.data, used), (0x80, 0x00, &[][..], 3));
//! // Extended length: 0x0100 data bytes announced as FF 00 01.
//! let data = vec![0xAB; 0x100];
//! let mut out = Vec::new();
//! Apdu::new(0x06, 0xD3, &data).encode(&mut out).unwrap();
//! assert_eq!(&out[..5], &[0x06, 0xD3, 0xFF, 0x00, 0x01]);
//! assert_eq!(Apdu::decode_exact(&out).unwrap().data.len(), 0x100);
//! ```

/// The longest data block an APDU can announce (two-byte LEN).
pub const MAX_DATA_LEN: usize = 0xFFFF;

/// One APDU, borrowing its data from the buffer it was decoded from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Apdu<'a> {
    pub class: u8,
    pub instr: u8,
    pub data: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    /// The header (CLASS INSTR LEN, or the extended `FF LL HH`) is cut short.
    #[error("APDU header cut short at byte {offset}")]
    TruncatedHeader { offset: usize },
    /// LEN announces more data than the buffer holds.
    #[error("APDU LEN at byte {offset} announces {needed} data bytes, {available} present")]
    TruncatedData {
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// Bytes follow the data block announced by LEN.
    #[error("{count} bytes after the APDU's end at byte {offset}")]
    TrailingBytes { offset: usize, count: usize },
    /// Encoding: more than 65 535 data bytes do not fit any LEN form.
    #[error("APDU data of {len} bytes exceeds the 65535-byte maximum")]
    TooLong { len: usize },
}

impl ApduError {
    /// Byte offset of the problem within the APDU.
    pub fn offset(&self) -> usize {
        match *self {
            ApduError::TruncatedHeader { offset }
            | ApduError::TruncatedData { offset, .. }
            | ApduError::TrailingBytes { offset, .. } => offset,
            ApduError::TooLong { .. } => 0,
        }
    }
}

/// Reads the header: `Ok(None)` while it is incomplete, else `(header_len, data_len)`.
/// The framing decoders use this to wait for a whole APDU.
pub fn peek_header(buf: &[u8]) -> Option<(usize, usize)> {
    match buf.get(2)? {
        0xFF => {
            let lo = *buf.get(3)? as usize;
            let hi = *buf.get(4)? as usize;
            Some((5, lo | (hi << 8)))
        }
        &n => Some((3, n as usize)),
    }
}

/// Bytes of header an APDU with `data_len` data bytes needs.
pub const fn header_len(data_len: usize) -> usize {
    if data_len <= 0xFE { 3 } else { 5 }
}

impl<'a> Apdu<'a> {
    pub const fn new(class: u8, instr: u8, data: &'a [u8]) -> Self {
        Apdu { class, instr, data }
    }

    /// Decodes one APDU from the start of `buf`; returns it and the bytes it took.
    pub fn decode(buf: &'a [u8]) -> Result<(Apdu<'a>, usize), ApduError> {
        let (class, instr) = match buf {
            [c, i, ..] => (*c, *i),
            _ => return Err(ApduError::TruncatedHeader { offset: buf.len() }),
        };
        let (hlen, dlen) =
            peek_header(buf).ok_or(ApduError::TruncatedHeader { offset: buf.len() })?;
        let data = buf.get(hlen..hlen + dlen).ok_or(ApduError::TruncatedData {
            offset: 2,
            needed: dlen,
            available: buf.len().saturating_sub(hlen),
        })?;
        Ok((Apdu { class, instr, data }, hlen + dlen))
    }

    /// Like [`Apdu::decode`], but the buffer must hold exactly one APDU.
    pub fn decode_exact(buf: &'a [u8]) -> Result<Apdu<'a>, ApduError> {
        let (a, used) = Apdu::decode(buf)?;
        if used != buf.len() {
            return Err(ApduError::TrailingBytes {
                offset: used,
                count: buf.len() - used,
            });
        }
        Ok(a)
    }

    /// Offset of the first data byte within the encoded APDU.
    pub fn data_offset(&self) -> usize {
        header_len(self.data.len())
    }

    /// `[CLASS, INSTR]`, e.g. `[0x06, 0x31]` for a refund.
    pub fn code(&self) -> [u8; 2] {
        [self.class, self.instr]
    }

    /// Appends the encoded APDU (short LEN form whenever it fits).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ApduError> {
        let len = self.data.len();
        if len > MAX_DATA_LEN {
            return Err(ApduError::TooLong { len });
        }
        out.reserve(header_len(len) + len);
        out.push(self.class);
        out.push(self.instr);
        if len <= 0xFE {
            out.push(len as u8);
        } else {
            out.extend_from_slice(&[0xFF, len as u8, (len >> 8) as u8]);
        }
        out.extend_from_slice(self.data);
        Ok(())
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, ApduError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }
}

/// Writes `CLASS INSTR LEN` in front of a data block that was built in place: `out` holds
/// `start..` = data. Used by the command encoders to avoid a second buffer.
pub(crate) fn wrap_in_place(
    out: &mut Vec<u8>,
    start: usize,
    class: u8,
    instr: u8,
) -> Result<(), ApduError> {
    let len = out.len() - start;
    if len > MAX_DATA_LEN {
        out.truncate(start);
        return Err(ApduError::TooLong { len });
    }
    let header: &[u8] = if len <= 0xFE {
        &[class, instr, len as u8]
    } else {
        &[class, instr, 0xFF, len as u8, (len >> 8) as u8]
    };
    out.splice(start..start, header.iter().copied());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_extended_length_capture() {
        // reference/zvt.md §1.1: `06 D3 FF 61 04 ...` has 0x0461 = 1121 data bytes; the APDU is
        // 1126 = 5 + 1121 bytes.
        let mut buf = vec![0x06, 0xD3, 0xFF, 0x61, 0x04];
        buf.extend(std::iter::repeat_n(0x20, 1121));
        let (a, used) = Apdu::decode(&buf).unwrap();
        assert_eq!(a.data.len(), 1121);
        assert_eq!(used, 1126);
        assert_eq!(a.data_offset(), 5);
        let mut again = Vec::new();
        a.encode(&mut again).unwrap();
        assert_eq!(again, buf);
    }

    #[test]
    fn short_form_up_to_fe_then_extended() {
        let d = vec![0u8; 0xFE];
        assert_eq!(Apdu::new(1, 2, &d).to_vec().unwrap()[2], 0xFE);
        let d = vec![0u8; 0xFF];
        assert_eq!(
            &Apdu::new(1, 2, &d).to_vec().unwrap()[..5],
            &[1, 2, 0xFF, 0xFF, 0x00]
        );
        let d = vec![0u8; MAX_DATA_LEN + 1];
        assert_eq!(
            Apdu::new(1, 2, &d).to_vec(),
            Err(ApduError::TooLong { len: 0x10000 })
        );
    }

    #[test]
    fn errors_name_offsets() {
        assert_eq!(
            Apdu::decode(&[0x06]),
            Err(ApduError::TruncatedHeader { offset: 1 })
        );
        assert_eq!(
            Apdu::decode(&[0x06, 0xD3, 0xFF, 0x61]),
            Err(ApduError::TruncatedHeader { offset: 4 })
        );
        assert_eq!(
            Apdu::decode(&[0x06, 0x31, 0x03, 0x12]),
            Err(ApduError::TruncatedData {
                offset: 2,
                needed: 3,
                available: 1
            })
        );
        assert_eq!(
            Apdu::decode_exact(&[0x80, 0x00, 0x00, 0x10]),
            Err(ApduError::TrailingBytes {
                offset: 3,
                count: 1
            })
        );
    }

    #[test]
    fn wrap_in_place_matches_encode() {
        for n in [0usize, 1, 0xFE, 0xFF, 1000] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut a = vec![0xEE];
            a.extend_from_slice(&data);
            wrap_in_place(&mut a, 1, 0x04, 0x0F).unwrap();
            let mut b = vec![0xEE];
            Apdu::new(0x04, 0x0F, &data).encode(&mut b).unwrap();
            assert_eq!(a, b);
        }
    }

    proptest! {
        #[test]
        fn round_trip(class: u8, instr: u8, data in proptest::collection::vec(any::<u8>(), 0..700)) {
            let bytes = Apdu::new(class, instr, &data).to_vec().unwrap();
            let a = Apdu::decode_exact(&bytes).unwrap();
            prop_assert_eq!((a.class, a.instr, a.data), (class, instr, &data[..]));
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Apdu::decode(&bytes);
            let _ = Apdu::decode_exact(&bytes);
            let _ = peek_header(&bytes);
        }
    }
}
