//! Keypad entry fields: amounts with an implied decimal point (CUP terminals: keys `3 3 3 3`
//! show 33.33 in CNY, 3333 in JPY, 3.333 in KWD), digit strings (passwords, RRN, MMDD dates).

use protocol::money::{Currency, Money};

/// Digits typed so far, with a maximum length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DigitField {
    digits: String,
    max: usize,
}

impl DigitField {
    pub fn new(max: usize) -> Self {
        DigitField {
            digits: String::new(),
            max,
        }
    }
    /// Appends digits; refuses what would exceed the maximum (the terminal beeps).
    pub fn push(&mut self, d: &str) -> bool {
        if self.digits.len() + d.len() > self.max || !d.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        self.digits.push_str(d);
        true
    }
    pub fn backspace(&mut self) {
        self.digits.pop();
    }
    pub fn clear(&mut self) {
        self.digits.clear();
    }
    pub fn as_str(&self) -> &str {
        &self.digits
    }
    pub fn is_empty(&self) -> bool {
        self.digits.is_empty()
    }
    /// Stars for a password.
    pub fn masked(&self) -> String {
        "*".repeat(self.digits.len())
    }
}

/// An amount typed in minor units, shown with the currency's decimals as it grows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmountField {
    digits: DigitField,
    currency: Currency,
}

impl AmountField {
    /// Field 4 carries 12 digits.
    pub fn new(currency: Currency) -> Self {
        AmountField {
            digits: DigitField::new(12),
            currency,
        }
    }
    pub fn push(&mut self, d: &str) -> bool {
        // Leading zeros add nothing to an amount.
        if self.digits.is_empty() && d.bytes().all(|b| b == b'0') {
            return true;
        }
        self.digits.push(d)
    }
    pub fn backspace(&mut self) {
        self.digits.backspace()
    }
    pub fn clear(&mut self) {
        self.digits.clear()
    }
    pub fn value(&self) -> Money {
        let minor = self.digits.as_str().parse::<u64>().unwrap_or(0);
        Money::from_minor(minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_decimal_point_follows_the_currency() {
        for (code, shown) in [("CNY", "33.33"), ("JPY", "3333"), ("KWD", "3.333")] {
            let mut f = AmountField::new(Currency::from_alpha(code).unwrap());
            for _ in 0..4 {
                f.push("3");
            }
            assert_eq!(f.value().to_string(), shown);
        }
    }

    #[test]
    fn editing_keys() {
        let mut f = AmountField::new(Currency::from_alpha("CNY").unwrap());
        f.push("00");
        f.push("1");
        f.push("00");
        assert_eq!(f.value().to_string(), "1.00");
        f.backspace();
        assert_eq!(f.value().to_string(), "0.10");
        f.clear();
        assert!(f.value().is_zero());
        let mut d = DigitField::new(4);
        assert!(d.push("1126"));
        assert!(!d.push("1"));
        assert_eq!(d.masked(), "****");
    }
}
