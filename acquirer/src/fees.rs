//! Merchant-fee schedules (`fixtures/fees/*.yaml`): what the acquirer charges per sale and how
//! much of it a refund gives back (DESIGN.md R-FEE).
//!
//! ```yaml
//! name: CNY 0.6 % proportional
//! rate: "0.006"          # a fraction, as a string
//! min: "0.10"            # optional, major units
//! cap: "50.00"           # optional
//! rounding: half-up      # half-up | half-even | down
//! refund_policy: proportional   # proportional | none | full_only
//! ```

use std::path::Path;

use protocol::fixture::yaml::{self, YamlError};
use protocol::money::{FeeRefundPolicy, Money, PercentCharge, Rounding};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeSchedule {
    pub name: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub min: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub cap: Option<Decimal>,
    #[serde(default)]
    pub rounding: Rounding,
    #[serde(default)]
    pub refund_policy: FeeRefundPolicy,
}

impl Default for FeeSchedule {
    /// No fee at all: a host without a schedule charges nothing.
    fn default() -> Self {
        FeeSchedule {
            name: "no fee".into(),
            rate: Decimal::ZERO,
            min: None,
            cap: None,
            rounding: Rounding::HalfUp,
            refund_policy: FeeRefundPolicy::Proportional,
        }
    }
}

impl FeeSchedule {
    pub fn from_yaml_str(src: &str, file: &str) -> Result<FeeSchedule, YamlError> {
        let s: FeeSchedule = yaml::from_str(src, file)?;
        if s.rate.is_sign_negative() || s.rate >= Decimal::ONE {
            let (l, c) = protocol::fixture::terminal::locate_key(src, "rate");
            return Err(YamlError::at(
                file,
                l,
                c,
                format!("rate {} must be a fraction in [0, 1)", s.rate),
            ));
        }
        if let (Some(min), Some(cap)) = (s.min, s.cap)
            && min > cap
        {
            let (l, c) = protocol::fixture::terminal::locate_key(src, "min");
            return Err(YamlError::at(
                file,
                l,
                c,
                format!("min {min} exceeds cap {cap}"),
            ));
        }
        Ok(s)
    }

    pub fn from_path(path: &Path) -> Result<FeeSchedule, YamlError> {
        let file = path.display().to_string();
        let src =
            std::fs::read_to_string(path).map_err(|e| YamlError::at(&file, 0, 0, e.to_string()))?;
        Self::from_yaml_str(&src, &file)
    }

    fn charge(&self) -> PercentCharge {
        PercentCharge {
            rate: self.rate,
            min: self.min,
            cap: self.cap,
            rounding: self.rounding,
        }
    }

    /// The fee on a sale of `amount` (field 4, surcharge included).
    pub fn fee_on_sale(&self, amount: Money) -> Money {
        self.charge().on(amount)
    }

    /// The fee a refund gives back, by the schedule's policy and the cumulative method.
    pub fn fee_on_refund(
        &self,
        fee: Money,
        refundable: Money,
        refunded_before: Money,
        refund: Money,
        returned_before: Money,
    ) -> Money {
        self.refund_policy.fee_to_return(
            fee,
            refundable,
            refunded_before,
            refund,
            returned_before,
            self.rounding,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::money::Currency;

    #[test]
    fn worked_example_2_non_refundable_surcharge() {
        // DESIGN.md R-FEE worked example 2: sale 101.00 USD incl. a non-refundable surcharge of
        // 1.00, rate 1 % → fee 1.01, A = 100.00; refund 100.00 returns 1.01.
        let usd = Currency::from_alpha("USD").unwrap();
        let s = FeeSchedule::from_yaml_str("name: x\nrate: \"0.01\"\n", "f.yaml").unwrap();
        let fee = s.fee_on_sale(Money::parse("101.00", usd).unwrap());
        assert_eq!(fee.to_string(), "1.01");
        let a = Money::parse("100.00", usd).unwrap();
        let back = s.fee_on_refund(fee, a, Money::zero(usd), a, Money::zero(usd));
        assert_eq!(back.to_string(), "1.01");
    }

    #[test]
    fn bad_rate_is_located() {
        let e = FeeSchedule::from_yaml_str("name: x\nrate: \"1.5\"\n", "f.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        // An unquoted rate is read from its text, never through a float.
        let s = FeeSchedule::from_yaml_str("name: x\nrate: 0.0035\n", "f.yaml").unwrap();
        assert_eq!(s.rate, Decimal::new(35, 4));
    }
}
