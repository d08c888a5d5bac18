//! A primary account number that cannot leak by accident.
//!
//! `Pan`'s `Debug` and `Display` print the first 6 and last 4 digits only
//! (`622202******7894`); the full digits come out only through [`Pan::expose`], which callers
//! use where a wire format needs them (ISO 8583 field 2, an encrypted journal column).
//! Comparisons across storage use a keyed hash ([`Pan::keyed_hash`]), never the digits.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pan(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PanError {
    #[error("PAN has {0} digits; expected 12 to 19")]
    Length(usize),
    #[error("PAN has a non-digit at position {0}")]
    NotDigit(usize),
    #[error("PAN fails the Luhn check")]
    Luhn,
}

impl Pan {
    /// Accepts 12–19 digits. The Luhn check is separate ([`Pan::luhn_ok`]) because a terminal
    /// must still be able to carry a card that fails it to the host.
    pub fn new(digits: &str) -> Result<Pan, PanError> {
        if let Some(i) = digits.bytes().position(|b| !b.is_ascii_digit()) {
            return Err(PanError::NotDigit(i));
        }
        if !(12..=19).contains(&digits.len()) {
            return Err(PanError::Length(digits.len()));
        }
        Ok(Pan(digits.to_string()))
    }
    /// Like [`Pan::new`] but also requires a valid Luhn check digit.
    pub fn new_checked(digits: &str) -> Result<Pan, PanError> {
        let p = Pan::new(digits)?;
        if p.luhn_ok() {
            Ok(p)
        } else {
            Err(PanError::Luhn)
        }
    }
    pub fn luhn_ok(&self) -> bool {
        luhn_valid(&self.0)
    }
    /// The full digits. Use only to build a wire field or to encrypt; never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// First 6 and last 4 digits, the rest as `*`: `622202******7894`.
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
    /// HMAC-SHA256 of the digits under `key`: equal cards give equal hashes, and the hash
    /// says nothing about the digits without the key.
    pub fn keyed_hash(&self, key: &[u8]) -> PanHash {
        // HMAC takes keys of any length, so this never fails in practice.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
            return PanHash([0; 32]);
        };
        mac.update(self.0.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut h = [0u8; 32];
        h.copy_from_slice(&out);
        PanHash(h)
    }
}

/// Masks a digit string first 6 / last 4; shorter strings are masked entirely but the last 4.
pub fn mask_digits(d: &str) -> String {
    let n = d.chars().count();
    if n <= 10 {
        return d
            .chars()
            .enumerate()
            .map(|(i, c)| if i + 4 >= n { c } else { '*' })
            .collect();
    }
    d.chars()
        .enumerate()
        .map(|(i, c)| if i < 6 || i + 4 >= n { c } else { '*' })
        .collect()
}

/// The Luhn (mod 10) check over a digit string.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = (b - b'0') as u32;
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}
impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// A keyed hash of a PAN; printable as hex.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct PanHash(pub [u8; 32]);

impl PanHash {
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
    pub fn from_hex(s: &str) -> Option<PanHash> {
        if s.len() != 64 {
            return None;
        }
        let mut h = [0u8; 32];
        for (i, out) in h.iter_mut().enumerate() {
            *out = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(PanHash(h))
    }
}
impl fmt::Debug for PanHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PanHash({}…)", &self.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_debug_never_show_the_middle_digits() {
        let p = Pan::new_checked("6222021234567894").unwrap();
        assert_eq!(p.to_string(), "622202******7894");
        assert_eq!(format!("{p:?}"), "Pan(622202******7894)");
        assert!(!format!("{p:?}").contains("1234567"));
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid("4111111111111112"));
        assert_eq!(Pan::new_checked("4111111111111112"), Err(PanError::Luhn));
        assert_eq!(Pan::new("41111"), Err(PanError::Length(5)));
        assert_eq!(Pan::new("4111x11111111111"), Err(PanError::NotDigit(4)));
    }

    #[test]
    fn keyed_hash_depends_on_key_and_digits() {
        let a = Pan::new("4111111111111111").unwrap();
        let b = Pan::new("4111111111111129").unwrap();
        assert_eq!(a.keyed_hash(b"k"), a.keyed_hash(b"k"));
        assert_ne!(a.keyed_hash(b"k"), b.keyed_hash(b"k"));
        assert_ne!(a.keyed_hash(b"k"), a.keyed_hash(b"j"));
        let h = a.keyed_hash(b"k");
        assert_eq!(PanHash::from_hex(&h.to_hex()), Some(h));
    }
}
