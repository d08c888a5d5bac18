//! Keys: double-length 3DES keys, check values, and the working keys that the 0810 sign-on
//! reply carries in field 62 under the terminal master key (TMK).
//!
//! Field 62 of an 0810 (posrig's layout, both dialects; binary):
//!
//! | bytes | content |
//! |---|---|
//! | 0–15  | PIN key, 3DES-ECB (two-key EDE) encrypted under the TMK |
//! | 16–19 | PIN key check value |
//! | 20–35 | MAC key, encrypted the same way |
//! | 36–39 | MAC key check value |
//!
//! A check value is the first 4 bytes of encrypting 8 zero bytes under the *clear* key.
//! Parsing also accepts the single-length form of CUP's 60.3 = 001 sign-on (24 bytes: 8 + 4 +
//! 8 + 4, each key becoming `K‖K`, which 3DES and X9.19 treat as single DES), and 60 bytes
//! (a third key, the track key, after the MAC key; checked and ignored).
//!
//! ```
//! use protocol::iso8583::keys::{DoubleKey, WorkingKeys};
//! let tmk = DoubleKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
//! let keys = WorkingKeys {
//!     pin: DoubleKey::from_hex("1A2B3C4D5E6F70818192A3B4C5D6E7F8").unwrap(),
//!     mac: DoubleKey::from_hex("89ABCDEF012345670123456789ABCDEF").unwrap(),
//! };
//! let f62 = keys.to_field62(&tmk);
//! assert_eq!(f62.len(), 40);
//! assert_eq!(WorkingKeys::from_field62(&tmk, &f62).unwrap(), keys);
//! ```

use std::fmt;

use des::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2};

/// A double-length (16-byte) DES key `KL‖KR`. Debug shows only its check value.
#[derive(Clone, PartialEq, Eq)]
pub struct DoubleKey([u8; 16]);

impl DoubleKey {
    pub const fn new(bytes: [u8; 16]) -> DoubleKey {
        DoubleKey(bytes)
    }
    /// A single-length key as `K‖K`.
    pub fn from_single(k: [u8; 8]) -> DoubleKey {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&k);
        b[8..].copy_from_slice(&k);
        DoubleKey(b)
    }
    /// 32 hex digits (spaces allowed).
    pub fn from_hex(s: &str) -> Option<DoubleKey> {
        let v = super::dialect::hex_decode(s)?;
        let b: [u8; 16] = v.try_into().ok()?;
        Some(DoubleKey(b))
    }
    /// The clear key bytes: only for cryptography and test fixtures, never for logs.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }
    pub fn left(&self) -> [u8; 8] {
        let mut k = [0u8; 8];
        k.copy_from_slice(&self.0[..8]);
        k
    }
    pub fn right(&self) -> [u8; 8] {
        let mut k = [0u8; 8];
        k.copy_from_slice(&self.0[8..]);
        k
    }
    /// First 4 bytes of 3DES(key, 00…00).
    pub fn check_value(&self) -> [u8; 4] {
        let e = tdes_encrypt_block(self, [0; 8]);
        [e[0], e[1], e[2], e[3]]
    }
}

impl fmt::Debug for DoubleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DoubleKey(kcv {})",
            super::message::hex(&self.check_value())
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("field 62 has {len} bytes; expected 24, 40 or 60")]
    Field62Length { len: usize },
    #[error("{which} key check value mismatch: field says {expected}, key gives {got}")]
    CheckValue {
        which: &'static str,
        expected: String,
        got: String,
    },
    #[error("data of {len} bytes is not a whole number of 8-byte blocks")]
    NotBlocks { len: usize },
}

/// Single DES on one block.
pub fn des_encrypt_block(key: [u8; 8], block: [u8; 8]) -> [u8; 8] {
    let c = Des::new(&Array::from(key));
    let mut b = Array::from(block);
    c.encrypt_block(&mut b);
    b.0
}

pub fn des_decrypt_block(key: [u8; 8], block: [u8; 8]) -> [u8; 8] {
    let c = Des::new(&Array::from(key));
    let mut b = Array::from(block);
    c.decrypt_block(&mut b);
    b.0
}

/// Two-key 3DES (EDE: encrypt KL, decrypt KR, encrypt KL) on one block.
pub fn tdes_encrypt_block(key: &DoubleKey, block: [u8; 8]) -> [u8; 8] {
    let c = TdesEde2::new(&Array::from(key.0));
    let mut b = Array::from(block);
    c.encrypt_block(&mut b);
    b.0
}

pub fn tdes_decrypt_block(key: &DoubleKey, block: [u8; 8]) -> [u8; 8] {
    let c = TdesEde2::new(&Array::from(key.0));
    let mut b = Array::from(block);
    c.decrypt_block(&mut b);
    b.0
}

/// 3DES-ECB in place over whole 8-byte blocks.
pub fn tdes_ecb_encrypt(key: &DoubleKey, data: &mut [u8]) -> Result<(), KeyError> {
    ecb(key, data, true)
}

pub fn tdes_ecb_decrypt(key: &DoubleKey, data: &mut [u8]) -> Result<(), KeyError> {
    ecb(key, data, false)
}

fn ecb(key: &DoubleKey, data: &mut [u8], enc: bool) -> Result<(), KeyError> {
    if !data.len().is_multiple_of(8) {
        return Err(KeyError::NotBlocks { len: data.len() });
    }
    let c = TdesEde2::new(&Array::from(key.0));
    for chunk in data.chunks_exact_mut(8) {
        let mut blk = [0u8; 8];
        blk.copy_from_slice(chunk);
        let mut b = Array::from(blk);
        if enc {
            c.encrypt_block(&mut b);
        } else {
            c.decrypt_block(&mut b);
        }
        chunk.copy_from_slice(&b.0);
    }
    Ok(())
}

/// The session keys a sign-on delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingKeys {
    pub pin: DoubleKey,
    pub mac: DoubleKey,
}

impl WorkingKeys {
    /// Field 62 of the 0810: 40 bytes, see the module docs.
    pub fn to_field62(&self, tmk: &DoubleKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        for k in [&self.pin, &self.mac] {
            let mut e = k.0;
            // 16 bytes: always whole blocks.
            let _ = tdes_ecb_encrypt(tmk, &mut e);
            out.extend_from_slice(&e);
            out.extend_from_slice(&k.check_value());
        }
        out
    }

    /// Decrypts and checks field 62 (24, 40 or 60 bytes).
    pub fn from_field62(tmk: &DoubleKey, f62: &[u8]) -> Result<WorkingKeys, KeyError> {
        let klen = match f62.len() {
            24 => 8,
            40 | 60 => 16,
            len => return Err(KeyError::Field62Length { len }),
        };
        let mut keys = Vec::with_capacity(3);
        for (i, which) in ["PIN", "MAC", "track"].iter().enumerate() {
            let at = i * (klen + 4);
            let Some(chunk) = f62.get(at..at + klen + 4) else {
                break;
            };
            let mut clear = chunk[..klen].to_vec();
            tdes_ecb_decrypt(tmk, &mut clear)?;
            let key = if klen == 8 {
                let mut k = [0u8; 8];
                k.copy_from_slice(&clear);
                DoubleKey::from_single(k)
            } else {
                let mut k = [0u8; 16];
                k.copy_from_slice(&clear);
                DoubleKey(k)
            };
            let got = key.check_value();
            if got[..] != chunk[klen..] {
                return Err(KeyError::CheckValue {
                    which,
                    expected: super::message::hex(&chunk[klen..]),
                    got: super::message::hex(&got),
                });
            }
            keys.push(key);
        }
        let mut it = keys.into_iter();
        match (it.next(), it.next()) {
            (Some(pin), Some(mac)) => Ok(WorkingKeys { pin, mac }),
            _ => Err(KeyError::Field62Length { len: f62.len() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h8(s: &str) -> [u8; 8] {
        super::super::dialect::hex_decode(s)
            .unwrap()
            .try_into()
            .unwrap()
    }

    /// NIST SP 800-17 (Modes of Operation Validation System), Table A.1 variable-plaintext and
    /// Table A.2 variable-key known answers; FIPS 81 Appendix B "Now is t".
    #[test]
    fn des_nist_kats() {
        let zero_key = h8("0101010101010101");
        assert_eq!(
            des_encrypt_block(zero_key, h8("8000000000000000")),
            h8("95F8A5E5DD31D900")
        );
        assert_eq!(
            des_encrypt_block(zero_key, h8("4000000000000000")),
            h8("DD7F121CA5015619")
        );
        assert_eq!(
            des_encrypt_block(h8("8001010101010101"), [0; 8]),
            h8("95A8D72813DAA94D")
        );
        assert_eq!(
            des_encrypt_block(h8("0123456789ABCDEF"), *b"Now is t"),
            h8("3FA40E8A984D4815")
        );
        assert_eq!(
            des_decrypt_block(h8("0123456789ABCDEF"), h8("3FA40E8A984D4815")),
            *b"Now is t"
        );
    }

    /// NIST SP 800-67 Rev. 1, Appendix B example (three-key TDEA, ECB): keys 0123456789ABCDEF,
    /// 23456789ABCDEF01, 456789ABCDEF0123; "The qufck brown fox jump" →
    /// A826FD8CE53B855F CCE21C8112256FE6 68D5C05DD9B6B900.
    #[test]
    fn tdes_sp800_67_example() {
        let key =
            super::super::dialect::hex_decode("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
                .unwrap();
        let c = des::TdesEde3::new_from_slice(&key).unwrap();
        let expect = ["A826FD8CE53B855F", "CCE21C8112256FE6", "68D5C05DD9B6B900"];
        for (p, e) in b"The qufck brown fox jump".chunks(8).zip(expect) {
            let mut b = Array::from(<[u8; 8]>::try_from(p).unwrap());
            c.encrypt_block(&mut b);
            assert_eq!(b.0, h8(e));
        }
    }

    /// Two-key EDE is checked by its
    /// definition (E_KL(D_KR(E_KL(x)))) against single DES, and against pycryptodome's DES3 for
    /// the value 08D7B4FB629D0885 (`DES3.new(k, MODE_ECB).encrypt(bytes(8))`).
    #[test]
    fn tdes_two_key() {
        let k = DoubleKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let by_def = des_encrypt_block(
            k.left(),
            des_decrypt_block(k.right(), des_encrypt_block(k.left(), [0; 8])),
        );
        assert_eq!(tdes_encrypt_block(&k, [0; 8]), by_def);
        assert_eq!(by_def, h8("08D7B4FB629D0885"));
        assert_eq!(tdes_decrypt_block(&k, by_def), [0; 8]);
        assert_eq!(k.check_value(), [0x08, 0xD7, 0xB4, 0xFB]);
        // K‖K is single DES.
        let s = DoubleKey::from_single(h8("0123456789ABCDEF"));
        assert_eq!(tdes_encrypt_block(&s, *b"Now is t"), h8("3FA40E8A984D4815"));
    }

    /// Field 62 computed independently with pycryptodome (DES3 ECB under the TMK, check value
    /// = first 4 bytes of DES3(clear key, 00×8)):
    /// TMK 0123456789ABCDEFFEDCBA9876543210, PIK 1A2B3C4D5E6F70818192A3B4C5D6E7F8 (kcv F11357B0),
    /// MAK 89ABCDEF012345670123456789ABCDEF (kcv DB122D3B).
    #[test]
    fn field62_known_answer() {
        let tmk = DoubleKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let keys = WorkingKeys {
            pin: DoubleKey::from_hex("1A2B3C4D5E6F70818192A3B4C5D6E7F8").unwrap(),
            mac: DoubleKey::from_hex("89ABCDEF012345670123456789ABCDEF").unwrap(),
        };
        let expect = super::super::dialect::hex_decode(
            "41b1f3d154c3079aff42de6476a95e24 f11357b0 4230ef1cb26849551a4d672dca6cb335 db122d3b",
        )
        .unwrap();
        assert_eq!(keys.to_field62(&tmk), expect);
        assert_eq!(WorkingKeys::from_field62(&tmk, &expect).unwrap(), keys);

        let mut bad = expect.clone();
        bad[39] ^= 1;
        assert!(matches!(
            WorkingKeys::from_field62(&tmk, &bad),
            Err(KeyError::CheckValue { which: "MAC", .. })
        ));
        let wrong_tmk = DoubleKey::from_hex("00000000000000000000000000000001").unwrap();
        assert!(WorkingKeys::from_field62(&wrong_tmk, &expect).is_err());
        assert_eq!(
            WorkingKeys::from_field62(&tmk, &expect[..39]),
            Err(KeyError::Field62Length { len: 39 })
        );
    }

    #[test]
    fn field62_single_length_form() {
        let tmk = DoubleKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let pik = DoubleKey::from_single(h8("1A2B3C4D5E6F7081"));
        let mak = DoubleKey::from_single(h8("89ABCDEF01234567"));
        let mut f = Vec::new();
        for k in [&pik, &mak] {
            let mut e = k.left();
            tdes_ecb_encrypt(&tmk, &mut e).unwrap();
            f.extend_from_slice(&e);
            f.extend_from_slice(&k.check_value());
        }
        assert_eq!(f.len(), 24);
        let w = WorkingKeys::from_field62(&tmk, &f).unwrap();
        assert_eq!((w.pin, w.mac), (pik, mak));
    }

    #[test]
    fn debug_hides_the_key() {
        let k = DoubleKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let d = format!("{k:?}");
        assert_eq!(d, "DoubleKey(kcv 08D7B4FB)");
        assert!(tdes_ecb_encrypt(&k, &mut [0u8; 7]).is_err());
    }
}
