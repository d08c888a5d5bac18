//! ZVT over TCP (SPEC-T 2.2, 4): raw APDUs, no framing, no CRC, no link ACK, no DLE
//! doubling. A receiver must cut APDUs out of the byte stream by their LEN, whatever way TCP
//! split or joined them (Portalum issue #8 lost a 1648-byte APDU that came as 1024 + rest).
//!
//! ```
//! use protocol::zvt::tcp::ApduDecoder;
//! let mut d = ApduDecoder::default();
//! // Two APDUs, the second split: 80 00 00 | 04 FF 01 | 17
//! let mut buf = vec![0x80, 0x00, 0x00, 0x04, 0xFF, 0x01];
//! assert_eq!(d.decode(&mut buf).unwrap(), Some(vec![0x80, 0x00, 0x00]));
//! assert_eq!(d.decode(&mut buf).unwrap(), None);
//! buf.push(0x17);
//! assert_eq!(d.decode(&mut buf).unwrap(), Some(vec![0x04, 0xFF, 0x01, 0x17]));
//! ```

use std::collections::VecDeque;

use crate::zvt::apdu;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TcpError {
    /// LEN announces more than the configured maximum; the stream cannot be trusted after
    /// this and the connection should be closed.
    #[error("APDU at stream byte {offset} announces {len} bytes, above the {max}-byte limit")]
    TooLong { offset: u64, len: usize, max: usize },
}

/// tokio-util-`Decoder`-style reassembly: `Ok(None)` until a whole APDU is buffered.
#[derive(Clone, Debug)]
pub struct ApduDecoder {
    /// Largest whole APDU accepted (header included).
    pub max_apdu: usize,
    consumed: u64,
}

impl Default for ApduDecoder {
    fn default() -> Self {
        ApduDecoder::new(apdu::MAX_DATA_LEN + 5)
    }
}

impl ApduDecoder {
    pub fn new(max_apdu: usize) -> Self {
        ApduDecoder {
            max_apdu,
            consumed: 0,
        }
    }

    /// Takes one whole APDU off the front of `buf`, if there is one.
    pub fn decode(&mut self, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, TcpError> {
        let Some((h, d)) = apdu::peek_header(buf) else {
            return Ok(None);
        };
        let total = h + d;
        if total > self.max_apdu {
            return Err(TcpError::TooLong {
                offset: self.consumed,
                len: total,
                max: self.max_apdu,
            });
        }
        if buf.len() < total {
            return Ok(None);
        }
        let rest = buf.split_off(total);
        let out = std::mem::replace(buf, rest);
        self.consumed += total as u64;
        Ok(Some(out))
    }
}

/// The TCP counterpart of [`crate::zvt::link::SerialLink`]: reassembles incoming APDUs and
/// passes outgoing ones through unchanged.
#[derive(Clone, Debug, Default)]
pub struct TcpLink {
    decoder: ApduDecoder,
    inbuf: Vec<u8>,
    out: VecDeque<Vec<u8>>,
    received: VecDeque<Vec<u8>>,
    error: Option<TcpError>,
    error_reported: bool,
}

impl TcpLink {
    pub fn new(max_apdu: usize) -> Self {
        TcpLink {
            decoder: ApduDecoder::new(max_apdu),
            ..Default::default()
        }
    }
    /// Feeds bytes read from the socket. After an error the link ignores input until
    /// [`TcpLink::reset`] (the adapter closes the socket).
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), TcpError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.inbuf.extend_from_slice(bytes);
        loop {
            match self.decoder.decode(&mut self.inbuf) {
                Ok(Some(a)) => self.received.push_back(a),
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.inbuf.clear();
                    self.error = Some(e.clone());
                    return Err(e);
                }
            }
        }
    }
    pub fn send(&mut self, apdu: Vec<u8>) {
        self.out.push_back(apdu);
    }
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }
    pub fn poll_apdu(&mut self) -> Option<Vec<u8>> {
        self.received.pop_front()
    }
    /// The stream error, once, after every APDU decoded before it was taken.
    pub fn poll_error(&mut self) -> Option<TcpError> {
        if self.error_reported || !self.received.is_empty() {
            return None;
        }
        self.error_reported = true;
        self.error.clone()
    }
    /// Bytes of an incomplete APDU waiting for the rest (T3 case b is judged on this).
    pub fn pending_bytes(&self) -> usize {
        self.inbuf.len()
    }
    /// A new connection.
    pub fn reset(&mut self) {
        let max = self.decoder.max_apdu;
        *self = TcpLink::new(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn extended_length_across_reads() {
        // Portalum issue #8 (reference/zvt.md §1.3): 1648 bytes arriving as 1024 + rest.
        let data = vec![0x20u8; 1643];
        let apdu = crate::zvt::Apdu::new(0x06, 0xD3, &data).to_vec().unwrap();
        assert_eq!(apdu.len(), 1648);
        let mut d = ApduDecoder::default();
        let mut buf = apdu[..1024].to_vec();
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&apdu[1024..]);
        assert_eq!(d.decode(&mut buf).unwrap(), Some(apdu));
        assert!(buf.is_empty());
    }

    #[test]
    fn size_guard() {
        let mut d = ApduDecoder::new(100);
        let mut buf = vec![0x06, 0xD3, 0xFF, 0x00, 0x01];
        assert_eq!(
            d.decode(&mut buf),
            Err(TcpError::TooLong {
                offset: 0,
                len: 261,
                max: 100
            })
        );
        let mut l = TcpLink::new(100);
        assert!(
            l.handle_input(&[0x80, 0x00, 0x00, 0x06, 0xD3, 0xFF])
                .is_ok()
        );
        assert!(l.handle_input(&[0x00, 0x01]).is_err());
        assert!(l.handle_input(&[0x80, 0x00, 0x00]).is_err());
        assert_eq!(l.poll_apdu(), Some(vec![0x80, 0x00, 0x00]));
        l.reset();
        assert!(l.handle_input(&[0x80, 0x00, 0x00]).is_ok());
    }

    proptest! {
        #[test]
        fn reassembles_across_any_split(
            apdus in proptest::collection::vec(
                (any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..600)), 1..6),
            cuts in proptest::collection::vec(0usize..4000, 0..12),
        ) {
            let mut stream = Vec::new();
            let mut want = Vec::new();
            for (c, i, d) in &apdus {
                let a = crate::zvt::Apdu::new(*c, *i, d).to_vec().unwrap();
                stream.extend_from_slice(&a);
                want.push(a);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort();
            let mut link = TcpLink::default();
            let mut got = Vec::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain([stream.len()]) {
                link.handle_input(&stream[prev..c]).unwrap();
                prev = c;
                while let Some(a) = link.poll_apdu() { got.push(a); }
            }
            prop_assert_eq!(got, want);
            prop_assert_eq!(link.pending_bytes(), 0);
        }
    }
}
