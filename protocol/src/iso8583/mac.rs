//! ANSI X9.19 retail MAC (R-MAC), one implementation for terminal and acquirer.
//!
//! **Algorithm.** The key is double length, `KL‖KR`. The data is zero-padded to a multiple of
//! 8 bytes (none added when already aligned; ISO 9797-1 padding method 1). Single-DES CBC under
//! `KL` with a zero IV over all blocks; the last output block is then decrypted under `KR` and
//! encrypted under `KL`. The MAC is all 8 bytes of the result.
//!
//! **Which bytes.** The encoded message as it goes on the wire, from the first byte of the MTI
//! up to and including the last byte of the field before the MAC field — so the bitmap(s) and
//! every field's length prefix are covered; the TCP length prefix, the TPDU and the application
//! header are not.
//!
//! **Which field, and the bitmap.** The MAC goes in field 64, or in field 128 when the message
//! has a secondary bitmap (any field 65–127). The MAC field's bit is set in the bitmap that is
//! MACed (the MAC is computed over the message as sent, with the field present), and the other
//! MAC field is dropped. [`sign`] encodes once with 8 zero bytes in the MAC field, computes the
//! MAC over the bytes before it and writes it in place, so no second encode is needed.
//!
//! ```
//! use protocol::iso8583::keys::DoubleKey;
//! use protocol::iso8583::mac::retail_mac;
//! let k = DoubleKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
//! assert_eq!(retail_mac(&k, b"Now is the time for all "),
//!            [0xA1, 0xC7, 0x2E, 0x74, 0xEA, 0x3F, 0xA9, 0xB6]);
//! ```

use des::Des;
use des::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use super::dialect::{DataEncoding, Dialect, LengthType};
use super::keys::DoubleKey;
use super::message::{EncodeError, FieldSource, Message, MessageRef, hex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("the message has no MAC in field {field}")]
    Missing { field: u8 },
    #[error("field {field} of this dialect is not a fixed 8-byte binary field")]
    Layout { field: u8 },
    #[error("MAC mismatch: message carries {carried}, computed {computed}")]
    Mismatch { carried: String, computed: String },
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// X9.19 over `data`.
pub fn retail_mac(key: &DoubleKey, data: &[u8]) -> [u8; 8] {
    let kl = Des::new(&Array::from(key.left()));
    let kr = Des::new(&Array::from(key.right()));
    let mut c = Array::from([0u8; 8]);
    let mut any = false;
    for chunk in data.chunks(8) {
        any = true;
        let mut x: [u8; 8] = c.into();
        for (x, &d) in x.iter_mut().zip(chunk) {
            *x ^= d;
        }
        c = Array::from(x);
        kl.encrypt_block(&mut c);
    }
    if !any {
        kl.encrypt_block(&mut c);
    }
    kr.decrypt_block(&mut c);
    kl.encrypt_block(&mut c);
    c.0
}

/// 128 when the message has any field 65–127, else 64.
pub fn mac_field(m: &impl FieldSource) -> u8 {
    if (65..=127).any(|n| m.has(n)) {
        128
    } else {
        64
    }
}

fn check_layout(d: &Dialect, field: u8) -> Result<(), MacError> {
    match d.field(field) {
        Some(s)
            if s.data == DataEncoding::Binary && s.length == LengthType::Fixed && s.max == 8 =>
        {
            Ok(())
        }
        _ => Err(MacError::Layout { field }),
    }
}

/// Sets the MAC field of `m`, and appends the encoded message (no length prefix) with the MAC
/// in place to `out`.
pub fn sign(
    d: &Dialect,
    m: &mut Message,
    key: &DoubleKey,
    out: &mut Vec<u8>,
) -> Result<[u8; 8], MacError> {
    let f = mac_field(m);
    check_layout(d, f)?;
    m.remove(if f == 64 { 128 } else { 64 });
    m.set(f, [0u8; 8]);
    let start = out.len();
    m.encode_into(d, out)?;
    let end = out.len() - 8;
    let mac = retail_mac(
        key,
        out.get(start + d.header_len()..end).unwrap_or_default(),
    );
    if let Some(slot) = out.get_mut(end..) {
        slot.copy_from_slice(&mac);
    }
    m.set(f, mac);
    Ok(mac)
}

/// The bytes a received message's MAC covers.
pub fn mac_input<'a>(d: &Dialect, m: &MessageRef<'a>) -> Result<&'a [u8], MacError> {
    let f = mac_field(m);
    check_layout(d, f)?;
    let field = m.field(f).ok_or(MacError::Missing { field: f })?;
    m.frame()
        .get(m.mti_offset()..field.offset())
        .ok_or(MacError::Missing { field: f })
}

/// Checks a received message's MAC.
pub fn verify(d: &Dialect, m: &MessageRef<'_>, key: &DoubleKey) -> Result<(), MacError> {
    let f = mac_field(m);
    let input = mac_input(d, m)?;
    let carried = m.field_bytes(f).ok_or(MacError::Missing { field: f })?;
    let computed = retail_mac(key, input);
    // Compare every byte (no early exit).
    let diff = carried
        .iter()
        .zip(computed.iter())
        .fold(carried.len() ^ 8, |a, (x, y)| a | (x ^ y) as usize);
    if diff == 0 {
        Ok(())
    } else {
        Err(MacError::Mismatch {
            carried: hex(carried),
            computed: hex(&computed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso8583::Mti;
    use crate::iso8583::dialect::hex_decode;
    use crate::iso8583::tests::cup_0220_wire;

    fn k(s: &str) -> DoubleKey {
        DoubleKey::from_hex(s).unwrap()
    }

    /// Known answers computed with an independent implementation (Python, pycryptodome:
    /// `DES.new(KL, MODE_CBC, iv=bytes(8)).encrypt(zero_padded)[-8:]`, then
    /// `DES(KL).encrypt(DES(KR).decrypt(…))`), which agrees with a hand-written block loop.
    /// "Now is the time for all " under 0123456789ABCDEF FEDCBA9876543210 is also the classic
    /// X9.19 example and gives A1C72E74EA3FA9B6.
    #[test]
    fn x919_known_answers() {
        let key = k("0123456789ABCDEFFEDCBA9876543210");
        assert_eq!(
            retail_mac(&key, b"Now is the time for all ").to_vec(),
            hex_decode("A1C72E74EA3FA9B6").unwrap()
        );
        // 10 bytes: zero padding to 16.
        assert_eq!(
            retail_mac(&key, b"1234567890").to_vec(),
            hex_decode("18418B7C9E1A1522").unwrap()
        );
        let mut padded = b"1234567890".to_vec();
        padded.resize(16, 0);
        assert_eq!(retail_mac(&key, &padded), retail_mac(&key, b"1234567890"));
        // K‖K degenerates to single-DES CBC-MAC.
        let single = DoubleKey::from_single(key.left());
        let mut c = [0u8; 8];
        for blk in b"Now is the time for all ".chunks(8) {
            for (x, y) in c.iter_mut().zip(blk) {
                *x ^= y;
            }
            c = crate::iso8583::keys::des_encrypt_block(key.left(), c);
        }
        assert_eq!(retail_mac(&single, b"Now is the time for all "), c);
    }

    /// The CUP 0220 of vectors.md: MAC input = the frame after TPDU + header, through field 61
    /// (109 bytes, bitmap with bit 64 set). MAK 11223344556677888877665544332211 gives
    /// 6B1267B52BC867A9 (pycryptodome, as above).
    #[test]
    fn cup_0220_sign_and_verify() {
        let cup = Dialect::builtin("cup").unwrap();
        let wire = cup_0220_wire();
        let frame = &wire[2..];
        let mak = k("11223344556677888877665544332211");
        let r = MessageRef::decode(&cup, frame).unwrap();
        assert_eq!(mac_input(&cup, &r).unwrap(), &frame[11..frame.len() - 8]);
        assert_eq!(mac_input(&cup, &r).unwrap().len(), 109);

        let mut m = r.to_owned();
        m.remove(64); // sign adds it back
        let mut out = Vec::new();
        let mac = sign(&cup, &mut m, &mak, &mut out).unwrap();
        assert_eq!(mac.to_vec(), hex_decode("6B1267B52BC867A9").unwrap());
        assert_eq!(&out[..frame.len() - 8], &frame[..frame.len() - 8]);
        assert_eq!(&out[frame.len() - 8..], &mac);
        assert_eq!(m.get(64), Some(&mac[..]));

        let signed = MessageRef::decode(&cup, &out).unwrap();
        verify(&cup, &signed, &mak).unwrap();
        // The zero MAC of the vector does not verify; neither does a tampered amount.
        assert!(matches!(
            verify(&cup, &r, &mak),
            Err(MacError::Mismatch { .. })
        ));
        let mut bad = out.clone();
        bad[30] ^= 0x01;
        if let Ok(b) = MessageRef::decode(&cup, &bad) {
            assert!(verify(&cup, &b, &mak).is_err());
        }
        // A different key fails.
        assert!(verify(&cup, &signed, &k("11223344556677881122334455667788")).is_err());
    }

    #[test]
    fn secondary_bitmap_uses_field_128() {
        let iso = Dialect::builtin("iso87-ascii").unwrap();
        let mak = k("0123456789ABCDEFFEDCBA9876543210");
        let mut m = Message::new(Mti::new(400).unwrap());
        m.set(11, "000001")
            .set(90, "020000012411260200000000001234500000000000")
            .set(64, [1u8; 8]);
        let mut out = Vec::new();
        sign(&iso, &mut m, &mak, &mut out).unwrap();
        assert!(!m.has(64));
        assert!(m.has(128));
        let r = MessageRef::decode(&iso, &out).unwrap();
        verify(&iso, &r, &mak).unwrap();
        assert_eq!(mac_input(&iso, &r).unwrap(), &out[..out.len() - 8]);

        let mut plain = Message::new(Mti::new(200).unwrap());
        plain.set(11, "000001");
        let plain_wire = plain.encode(&iso).unwrap();
        let r2 = MessageRef::decode(&iso, &plain_wire).unwrap();
        assert_eq!(
            verify(&iso, &r2, &mak),
            Err(MacError::Missing { field: 64 })
        );
    }
}
