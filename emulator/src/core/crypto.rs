//! The full PAN at rest: encrypted under the journal key (3DES ECB over the digits, padded with
//! `F` to whole blocks), kept only inside a pending reversal or advice.

use protocol::card::Pan;
use protocol::iso8583::keys::{DoubleKey, tdes_ecb_decrypt, tdes_ecb_encrypt};

pub fn encrypt_pan(key: &DoubleKey, pan: &Pan) -> Vec<u8> {
    let mut data = pan.expose().as_bytes().to_vec();
    data.push(b'F');
    while !data.len().is_multiple_of(8) {
        data.push(b'F');
    }
    // Whole blocks by construction.
    let _ = tdes_ecb_encrypt(key, &mut data);
    data
}

pub fn decrypt_pan(key: &DoubleKey, data: &[u8]) -> Option<Pan> {
    if data.is_empty() || !data.len().is_multiple_of(8) {
        return None;
    }
    let mut clear = data.to_vec();
    tdes_ecb_decrypt(key, &mut clear).ok()?;
    let digits: String = clear
        .iter()
        .take_while(|&&b| b != b'F')
        .map(|&b| b as char)
        .collect();
    Pan::new(&digits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_no_clear_digits() {
        let k = DoubleKey::new(*b"journal test key");
        let pan = Pan::new("6222021234567894").unwrap();
        let enc = encrypt_pan(&k, &pan);
        assert_eq!(enc.len(), 24);
        assert!(!enc.windows(4).any(|w| w == b"1234"));
        assert_eq!(decrypt_pan(&k, &enc), Some(pan));
        assert_eq!(
            decrypt_pan(&DoubleKey::new(*b"another key 1234"), &enc),
            None
        );
        assert_eq!(decrypt_pan(&k, &[1, 2, 3]), None);
    }
}
