//! Money: currencies with their ISO 4217 exponents, amounts as `rust_decimal`, named rounding,
//! and the one fee formula the acquirer (merchant fee) and the terminal (surcharge) share.
//!
//! Wire formats (ISO 8583 field 4, ZVT BMP 04) carry minor units; the exponent that turns
//! minor units into major ones always comes from the [`Currency`], never from a constant.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency known to posrig.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Currency {
    alpha: &'static str,
    numeric: u16,
    exponent: u8,
}

const CURRENCIES: &[Currency] = &[
    Currency {
        alpha: "CNY",
        numeric: 156,
        exponent: 2,
    },
    Currency {
        alpha: "EUR",
        numeric: 978,
        exponent: 2,
    },
    Currency {
        alpha: "USD",
        numeric: 840,
        exponent: 2,
    },
    Currency {
        alpha: "AUD",
        numeric: 36,
        exponent: 2,
    },
    Currency {
        alpha: "GBP",
        numeric: 826,
        exponent: 2,
    },
    Currency {
        alpha: "HKD",
        numeric: 344,
        exponent: 2,
    },
    Currency {
        alpha: "CHF",
        numeric: 756,
        exponent: 2,
    },
    Currency {
        alpha: "JPY",
        numeric: 392,
        exponent: 0,
    },
    Currency {
        alpha: "KRW",
        numeric: 410,
        exponent: 0,
    },
    Currency {
        alpha: "KWD",
        numeric: 414,
        exponent: 3,
    },
    Currency {
        alpha: "BHD",
        numeric: 48,
        exponent: 3,
    },
    Currency {
        alpha: "JOD",
        numeric: 400,
        exponent: 3,
    },
];

impl Currency {
    pub fn from_alpha(code: &str) -> Option<Currency> {
        CURRENCIES
            .iter()
            .copied()
            .find(|c| c.alpha.eq_ignore_ascii_case(code))
    }
    pub fn from_numeric(n: u16) -> Option<Currency> {
        CURRENCIES.iter().copied().find(|c| c.numeric == n)
    }
    pub fn alpha(self) -> &'static str {
        self.alpha
    }
    pub fn numeric(self) -> u16 {
        self.numeric
    }
    /// Digits after the decimal point: CNY 2, JPY 0, KWD 3.
    pub fn exponent(self) -> u32 {
        self.exponent as u32
    }
    pub fn all() -> &'static [Currency] {
        CURRENCIES
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha)
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha)
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, MoneyError> {
        if let Some(c) = Currency::from_alpha(s) {
            return Ok(c);
        }
        s.parse::<u16>()
            .ok()
            .and_then(Currency::from_numeric)
            .ok_or_else(|| MoneyError::UnknownCurrency(s.to_string()))
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.alpha)
    }
}
impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {0:?} (expected an ISO 4217 code such as CNY, EUR, JPY, KWD)")]
    UnknownCurrency(String),
    #[error("amount {amount} has more decimals than {currency} allows ({exponent})")]
    TooManyDecimals {
        amount: String,
        currency: Currency,
        exponent: u32,
    },
    #[error("amount {0} is negative")]
    Negative(String),
    #[error("amount {0} does not fit the field")]
    Overflow(String),
    #[error(
        "{0:?} is not an amount (write major units as a string, e.g. \"33.33\", or {{minor: 3333}})"
    )]
    Malformed(String),
}

/// A rounding mode, always named: `rust_decimal`'s plain `round()` is banker's rounding.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// Half away from zero: 0.005 → 0.01. The usual retail rule.
    #[default]
    HalfUp,
    /// Banker's rounding: 0.005 → 0.00, 0.015 → 0.02.
    HalfEven,
    /// Truncate towards zero.
    Down,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::Down => RoundingStrategy::ToZero,
        }
    }
    /// Rounds `v` to `dp` decimal places.
    pub fn round(self, v: Decimal, dp: u32) -> Decimal {
        v.round_dp_with_strategy(dp, self.strategy())
    }
}

/// An amount in a currency. Non-negative; its scale never exceeds the currency's exponent.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    value: Decimal,
    currency: Currency,
}

impl Money {
    /// Major units, e.g. `33.33` CNY. Rejects more decimals than the currency has.
    pub fn new(value: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative(value.to_string()));
        }
        let exponent = currency.exponent();
        let normal = value.normalize();
        if normal.scale() > exponent {
            return Err(MoneyError::TooManyDecimals {
                amount: value.to_string(),
                currency,
                exponent,
            });
        }
        let mut v = normal;
        v.rescale(exponent);
        Ok(Money { value: v, currency })
    }
    /// From minor units as carried on the wire: 3333 CNY → 33.33, 3333 JPY → 3333, 3333 KWD → 3.333.
    pub fn from_minor(minor: u64, currency: Currency) -> Money {
        let value = Decimal::from_i128_with_scale(minor as i128, currency.exponent());
        Money { value, currency }
    }
    /// Parses a major-unit string (`"33.33"`).
    pub fn parse(s: &str, currency: Currency) -> Result<Money, MoneyError> {
        let d = Decimal::from_str(s.trim()).map_err(|_| MoneyError::Malformed(s.to_string()))?;
        Money::new(d, currency)
    }
    pub fn zero(currency: Currency) -> Money {
        Money::from_minor(0, currency)
    }
    pub fn value(self) -> Decimal {
        self.value
    }
    pub fn currency(self) -> Currency {
        self.currency
    }
    pub fn is_zero(self) -> bool {
        self.value.is_zero()
    }
    /// Minor units for the wire.
    pub fn minor(self) -> u64 {
        let m = self.value.mantissa();
        // Scale equals the exponent by construction, so the mantissa is the minor amount.
        u64::try_from(m).unwrap_or(u64::MAX)
    }
    pub fn checked_add(self, o: Money) -> Option<Money> {
        (self.currency == o.currency)
            .then(|| self.value.checked_add(o.value))
            .flatten()
            .map(|value| Money {
                value,
                currency: self.currency,
            })
    }
    /// `self - o`, or `None` if the result would be negative or currencies differ.
    pub fn checked_sub(self, o: Money) -> Option<Money> {
        if self.currency != o.currency || o.value > self.value {
            return None;
        }
        Some(Money {
            value: self.value - o.value,
            currency: self.currency,
        })
    }
    /// `self - o`, floored at zero.
    pub fn saturating_sub(self, o: Money) -> Money {
        self.checked_sub(o).unwrap_or(Money::zero(self.currency))
    }
}

impl fmt::Display for Money {
    /// `33.33`, `3333`, `3.333`: major units with exactly the currency's decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}
impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.currency)
    }
}

/// A percentage charge: the acquirer's merchant fee (MDR) and the terminal's surcharge use the
/// same rule, `clamp(round(base × rate, exp, mode), min, cap)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PercentCharge {
    /// Rate as a fraction written as a string: `"0.006"` is 0.6 %.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// Minimum in major units (`"0.50"`); absent means none.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub min: Option<Decimal>,
    /// Cap in major units; absent means none.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub cap: Option<Decimal>,
    #[serde(default)]
    pub rounding: Rounding,
}

impl PercentCharge {
    /// The charge on `base`, in `base`'s currency.
    pub fn on(&self, base: Money) -> Money {
        let exp = base.currency().exponent();
        let mut v = self.rounding.round(base.value() * self.rate, exp);
        if let Some(min) = self.min {
            v = v.max(self.rounding.round(min, exp));
        }
        if let Some(cap) = self.cap {
            v = v.min(self.rounding.round(cap, exp));
        }
        Money::new(v.max(Decimal::ZERO), base.currency()).unwrap_or(Money::zero(base.currency()))
    }
}

/// How much of an original's fee goes back to the merchant when it is refunded (R-FEE).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeRefundPolicy {
    /// Cumulative pro rata: after refunds totalling R of a refundable amount A with fee F,
    /// `round(F × R / A)` has been returned in all.
    #[default]
    Proportional,
    /// The fee is kept.
    None,
    /// F is returned by the refund that makes R = A.
    FullOnly,
}

impl FeeRefundPolicy {
    /// The fee to return with a refund that raises the cumulative refunded amount from
    /// `refunded_before` to `refunded_before + refund`, given the original's `fee`, its
    /// refundable amount `refundable`, and the fee `returned_before` by earlier refunds.
    ///
    /// Worked example (DESIGN.md R-FEE): F = 0.60, A = 100.00; refunds 33.33, 33.33, 33.34
    /// return 0.20, 0.20, 0.20.
    pub fn fee_to_return(
        self,
        fee: Money,
        refundable: Money,
        refunded_before: Money,
        refund: Money,
        returned_before: Money,
        rounding: Rounding,
    ) -> Money {
        let cur = fee.currency();
        let Some(total) = refunded_before.checked_add(refund) else {
            return Money::zero(cur);
        };
        let target = match self {
            FeeRefundPolicy::None => Money::zero(cur),
            FeeRefundPolicy::FullOnly => {
                if total.value() >= refundable.value() {
                    fee
                } else {
                    Money::zero(cur)
                }
            }
            FeeRefundPolicy::Proportional => {
                if refundable.is_zero() {
                    Money::zero(cur)
                } else if total.value() >= refundable.value() {
                    fee
                } else {
                    let v = rounding.round(
                        fee.value() * total.value() / refundable.value(),
                        cur.exponent(),
                    );
                    Money::new(v, cur).unwrap_or(Money::zero(cur))
                }
            }
        };
        target.saturating_sub(returned_before)
    }
}

/// An amount as written in YAML: a major-unit string (`"33.33"`) or `{minor: 3333}`; never a
/// float, so `33.33` unquoted is rejected rather than silently turned into binary floating point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AmountSpec {
    Major(String),
    Minor {
        minor: u64,
    },
    /// `{minor: "1${start_mmss}"}`: minor units the harness knows once it substituted its
    /// variables ([`AmountSpec::with_text`]).
    MinorText {
        minor: String,
    },
}

impl AmountSpec {
    pub fn resolve(&self, currency: Currency) -> Result<Money, MoneyError> {
        match self {
            AmountSpec::Major(s) => Money::parse(s, currency),
            AmountSpec::Minor { minor } => Ok(Money::from_minor(*minor, currency)),
            AmountSpec::MinorText { minor } => minor
                .trim()
                .parse()
                .map(|m| Money::from_minor(m, currency))
                .map_err(|_| MoneyError::Malformed(minor.clone())),
        }
    }

    /// The same amount with its text rewritten (variables substituted), or `f`'s error.
    pub fn with_text<E>(&self, f: impl FnOnce(&str) -> Result<String, E>) -> Result<AmountSpec, E> {
        Ok(match self {
            AmountSpec::Major(s) => AmountSpec::Major(f(s)?),
            AmountSpec::MinorText { minor } => AmountSpec::MinorText { minor: f(minor)? },
            m @ AmountSpec::Minor { .. } => m.clone(),
        })
    }
}

impl<'de> Deserialize<'de> for AmountSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum MinorValue {
            Number(u64),
            Text(String),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Minor {
            minor: MinorValue,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Str(String),
            Minor(Minor),
            Float(f64),
            Int(i64),
        }
        match Raw::deserialize(d)? {
            // `"1${start_mmss}"`: the harness substitutes its variables, then parses.
            Raw::Str(s) if s.contains("${") => Ok(AmountSpec::Major(s)),
            Raw::Str(s) => {
                Decimal::from_str(s.trim()).map_err(|_| {
                    serde::de::Error::custom(format!("{s:?} is not an amount in major units"))
                })?;
                Ok(AmountSpec::Major(s))
            }
            Raw::Minor(Minor {
                minor: MinorValue::Number(minor),
            }) => Ok(AmountSpec::Minor { minor }),
            Raw::Minor(Minor {
                minor: MinorValue::Text(minor),
            }) if minor.contains("${") => Ok(AmountSpec::MinorText { minor }),
            Raw::Minor(Minor {
                minor: MinorValue::Text(t),
            }) => Err(serde::de::Error::custom(format!(
                "minor: {t:?} is not a whole number of minor units"
            ))),
            Raw::Float(f) => Err(serde::de::Error::custom(format!(
                "amount {f} is a YAML number; write it as a string (\"{f}\") or {{minor: N}}"
            ))),
            Raw::Int(i) => Err(serde::de::Error::custom(format!(
                "amount {i} is a YAML number; write it as a string (\"{i}\") or {{minor: N}}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn cny(s: &str) -> Money {
        Money::parse(s, Currency::from_alpha("CNY").unwrap()).unwrap()
    }

    #[test]
    fn minor_units_follow_the_currency_exponent() {
        let jpy = Currency::from_alpha("JPY").unwrap();
        let kwd = Currency::from_alpha("KWD").unwrap();
        assert_eq!(cny("33.33").minor(), 3333);
        assert_eq!(Money::from_minor(3333, jpy).to_string(), "3333");
        assert_eq!(Money::from_minor(3333, kwd).to_string(), "3.333");
        assert_eq!(cny("33.3").to_string(), "33.30");
        assert!(Money::parse("1.001", Currency::from_alpha("EUR").unwrap()).is_err());
        assert!(Money::parse("1.5", jpy).is_err());
        assert!(Money::parse("-1", jpy).is_err());
    }

    #[test]
    fn worked_example_1_proportional_fee_over_three_partials() {
        // DESIGN.md R-FEE worked example 1.
        let charge = PercentCharge {
            rate: Decimal::new(6, 3),
            min: None,
            cap: None,
            rounding: Rounding::HalfUp,
        };
        let fee = charge.on(cny("100.00"));
        assert_eq!(fee, cny("0.60"));
        let mut refunded = cny("0");
        let mut returned = cny("0");
        let mut parts = vec![];
        for r in ["33.33", "33.33", "33.34"] {
            let back = FeeRefundPolicy::Proportional.fee_to_return(
                fee,
                cny("100.00"),
                refunded,
                cny(r),
                returned,
                Rounding::HalfUp,
            );
            parts.push(back.to_string());
            refunded = refunded.checked_add(cny(r)).unwrap();
            returned = returned.checked_add(back).unwrap();
        }
        assert_eq!(parts, ["0.20", "0.20", "0.20"]);
        assert_eq!(returned, fee);
    }

    #[test]
    fn rounding_modes_differ_at_half_a_minor_unit() {
        let half = Decimal::new(5, 3); // 0.005
        assert_eq!(Rounding::HalfUp.round(half, 2), Decimal::new(1, 2));
        assert_eq!(Rounding::HalfEven.round(half, 2), Decimal::ZERO);
        assert_eq!(Rounding::Down.round(Decimal::new(9, 3), 2), Decimal::ZERO);
    }

    #[test]
    fn min_and_cap_clamp_the_charge() {
        let charge = PercentCharge {
            rate: Decimal::new(1, 2),
            min: Some(Decimal::new(50, 2)),
            cap: Some(Decimal::new(200, 2)),
            rounding: Rounding::HalfUp,
        };
        assert_eq!(charge.on(cny("10.00")), cny("0.50"));
        assert_eq!(charge.on(cny("1000.00")), cny("2.00"));
        assert_eq!(charge.on(cny("100.00")), cny("1.00"));
    }
}
