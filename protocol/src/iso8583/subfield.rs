//! Composite fields: typed parse/build for CUP 60 and 61, ISO 90, the settlement totals of
//! field 48 (R-SETTLE) and posrig's fee field (R-FEE); and a generic renderer that shows any
//! field by the subfields its dialect declares (`60.1=25 60.2=000001 60.3=000`) with card data
//! masked.
//!
//! ```
//! use protocol::iso8583::subfield::Field60;
//! let f = Field60::parse("25000001000").unwrap();
//! assert_eq!((f.type_code, f.batch, f.network_code), (25, 1, Some(0)));
//! assert_eq!(f.to_digits().unwrap(), "25000001000");
//! ```

use std::fmt::Write as _;

use super::dialect::{Dialect, Mask};
use super::message::{FieldSource, Mti, hex};
use crate::card::pan::mask_digits;

/// A composite value that does not fit its layout. `position` counts characters in the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {kind} (at character {position})")]
pub struct SubfieldError {
    pub field: u8,
    pub position: usize,
    pub kind: SubfieldErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubfieldErrorKind {
    #[error("length {len} is none of {expected:?}")]
    Length {
        len: usize,
        expected: &'static [usize],
    },
    #[error("not a digit")]
    NotDigit,
    #[error("{what} = {value} does not fit {width} digits")]
    Overflow {
        what: &'static str,
        value: u64,
        width: usize,
    },
}

fn check_len(field: u8, v: &str, expected: &'static [usize]) -> Result<(), SubfieldError> {
    if let Some(p) = v.bytes().position(|b| !b.is_ascii_digit()) {
        return Err(SubfieldError {
            field,
            position: p,
            kind: SubfieldErrorKind::NotDigit,
        });
    }
    if expected.contains(&v.len()) {
        Ok(())
    } else {
        Err(SubfieldError {
            field,
            position: v.len(),
            kind: SubfieldErrorKind::Length {
                len: v.len(),
                expected,
            },
        })
    }
}

/// Digits `[at, at+w)` as a number; callers have checked length and digits.
fn num(v: &str, at: usize, w: usize) -> u64 {
    v.get(at..at + w).map_or(0, |s| {
        s.bytes().fold(0u64, |a, b| a * 10 + (b - b'0') as u64)
    })
}

fn put(
    out: &mut String,
    field: u8,
    what: &'static str,
    value: u64,
    width: usize,
) -> Result<(), SubfieldError> {
    if value >= 10u64.saturating_pow(width as u32) {
        return Err(SubfieldError {
            field,
            position: out.len(),
            kind: SubfieldErrorKind::Overflow { what, value, width },
        });
    }
    let _ = write!(out, "{value:0width$}");
    Ok(())
}

/// CUP field 60: 60.1 type code n2 | 60.2 batch n6 | 60.3 network-management code n3 |
/// 60.4 read capability n1 | 60.5 IC condition n1 | 60.6 partial-approval flag n1 |
/// 60.7 account type n3. Later subfields are optional; building fills skipped ones with 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Field60 {
    pub type_code: u8,
    pub batch: u32,
    pub network_code: Option<u16>,
    pub read_capability: Option<u8>,
    pub ic_condition: Option<u8>,
    pub partial_flag: Option<u8>,
    pub account_type: Option<u16>,
}

impl Field60 {
    /// 60.1 + 60.2 + 60.3, the usual 11 digits.
    pub fn new(type_code: u8, batch: u32, network_code: u16) -> Field60 {
        Field60 {
            type_code,
            batch,
            network_code: Some(network_code),
            ..Field60::default()
        }
    }
    pub fn parse(v: &str) -> Result<Field60, SubfieldError> {
        check_len(60, v, &[2, 8, 11, 12, 13, 14, 17])?;
        let l = v.len();
        let opt = |at: usize, w: usize| (l >= at + w).then(|| num(v, at, w));
        Ok(Field60 {
            type_code: num(v, 0, 2) as u8,
            batch: opt(2, 6).unwrap_or(0) as u32,
            network_code: opt(8, 3).map(|x| x as u16),
            read_capability: opt(11, 1).map(|x| x as u8),
            ic_condition: opt(12, 1).map(|x| x as u8),
            partial_flag: opt(13, 1).map(|x| x as u8),
            account_type: opt(14, 3).map(|x| x as u16),
        })
    }
    /// Fails when a number does not fit its width.
    pub fn to_digits(&self) -> Result<String, SubfieldError> {
        let mut s = String::with_capacity(17);
        put(&mut s, 60, "60.1", self.type_code as u64, 2)?;
        put(&mut s, 60, "60.2", self.batch as u64, 6)?;
        let tail = [
            (self.network_code.map(u64::from), 3, "60.3"),
            (self.read_capability.map(u64::from), 1, "60.4"),
            (self.ic_condition.map(u64::from), 1, "60.5"),
            (self.partial_flag.map(u64::from), 1, "60.6"),
            (self.account_type.map(u64::from), 3, "60.7"),
        ];
        let last = tail.iter().rposition(|t| t.0.is_some());
        if let Some(last) = last {
            for &(v, w, what) in &tail[..=last] {
                put(&mut s, 60, what, v.unwrap_or(0), w)?;
            }
        }
        Ok(s)
    }
}

/// CUP field 61 (original message data): 61.1 original batch n6 | 61.2 original trace n6 |
/// 61.3 original date MMDD n4 | 61.4 auth method n2 | 61.5 auth institution n11.
/// A void sends 61.1+61.2 (12 digits); a refund 61.1–61.3 (16).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Field61 {
    pub orig_batch: u32,
    pub orig_stan: u32,
    /// `MMDD`.
    pub orig_date: Option<String>,
    pub auth_method: Option<u8>,
    pub auth_institution: Option<String>,
}

impl Field61 {
    pub fn parse(v: &str) -> Result<Field61, SubfieldError> {
        check_len(61, v, &[12, 16, 18, 29])?;
        let l = v.len();
        Ok(Field61 {
            orig_batch: num(v, 0, 6) as u32,
            orig_stan: num(v, 6, 6) as u32,
            orig_date: v.get(12..16).map(str::to_string),
            auth_method: (l >= 18).then(|| num(v, 16, 2) as u8),
            auth_institution: v.get(18..29).map(str::to_string),
        })
    }
    /// Fails when a number does not fit its width.
    pub fn to_digits(&self) -> Result<String, SubfieldError> {
        let mut s = String::with_capacity(29);
        put(&mut s, 61, "61.1", self.orig_batch as u64, 6)?;
        put(&mut s, 61, "61.2", self.orig_stan as u64, 6)?;
        let more = self.auth_method.is_some() || self.auth_institution.is_some();
        if self.orig_date.is_some() || more {
            digits_exact(&mut s, 61, self.orig_date.as_deref().unwrap_or("0000"), 4)?;
        }
        if more {
            put(&mut s, 61, "61.4", self.auth_method.unwrap_or(0) as u64, 2)?;
        }
        if let Some(inst) = &self.auth_institution {
            digits_exact(&mut s, 61, inst, 11)?;
        }
        Ok(s)
    }
}

fn digits_exact(out: &mut String, field: u8, v: &str, w: usize) -> Result<(), SubfieldError> {
    if let Some(p) = v.bytes().position(|b| !b.is_ascii_digit()) {
        return Err(SubfieldError {
            field,
            position: out.len() + p,
            kind: SubfieldErrorKind::NotDigit,
        });
    }
    if v.len() > w {
        return Err(SubfieldError {
            field,
            position: out.len(),
            kind: SubfieldErrorKind::Overflow {
                what: "subfield",
                value: v.parse().unwrap_or(u64::MAX),
                width: w,
            },
        });
    }
    // Right-justified, zero-filled (institution IDs, dates).
    for _ in v.len()..w {
        out.push('0');
    }
    out.push_str(v);
    Ok(())
}

/// ISO 8583:1987 field 90 (original data elements, n42): original MTI n4 | original STAN n6 |
/// original transmission date-time (field 7, MMDDhhmmss) n10 | acquirer ID (32) n11 |
/// forwarding ID (33) n11, IDs right-justified zero-filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field90 {
    pub orig_mti: Mti,
    pub orig_stan: u32,
    pub orig_transmission: String,
    pub acquirer_id: String,
    pub forwarding_id: String,
}

impl Field90 {
    pub fn parse(v: &str) -> Result<Field90, SubfieldError> {
        check_len(90, v, &[42])?;
        Ok(Field90 {
            orig_mti: Mti::new_clamped(num(v, 0, 4) as u16),
            orig_stan: num(v, 4, 6) as u32,
            orig_transmission: v.get(10..20).unwrap_or_default().to_string(),
            acquirer_id: v.get(20..31).unwrap_or_default().to_string(),
            forwarding_id: v.get(31..42).unwrap_or_default().to_string(),
        })
    }
    /// Fails when a number does not fit its width.
    pub fn to_digits(&self) -> Result<String, SubfieldError> {
        let mut s = String::with_capacity(42);
        put(&mut s, 90, "90.1", self.orig_mti.value() as u64, 4)?;
        put(&mut s, 90, "90.2", self.orig_stan as u64, 6)?;
        digits_exact(&mut s, 90, &self.orig_transmission, 10)?;
        digits_exact(&mut s, 90, &self.acquirer_id, 11)?;
        digits_exact(&mut s, 90, &self.forwarding_id, 11)?;
        Ok(s)
    }
}

/// One card group's totals in field 48 (R-SETTLE): debit amount n12 + count n3, credit amount
/// n12 + count n3, reconciliation code n1. Sales count as debits, refunds as credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub debit_amount: u64,
    pub debit_count: u32,
    pub credit_amount: u64,
    pub credit_count: u32,
    pub reconciliation: u8,
}

/// Reconciliation codes: what the terminal sends, and the 0510's answer.
pub mod reconciliation {
    pub const REQUEST: u8 = 0;
    pub const BALANCED: u8 = 1;
    pub const NOT_BALANCED: u8 = 2;
    pub const ERROR: u8 = 3;
}

/// Field 48 of 0500/0510: domestic totals (31 digits) then foreign totals (31 digits).
/// Layout: CUP common practice, UNVERIFIED in detail (DESIGN.md R-SETTLE).
///
/// ```
/// use protocol::iso8583::subfield::{SettlementTotals, Totals};
/// let t = SettlementTotals {
///     domestic: Totals { debit_amount: 10000, debit_count: 1, credit_amount: 3333,
///                        credit_count: 1, reconciliation: 0 },
///     foreign: Totals::default(),
/// };
/// assert_eq!(&t.to_digits().unwrap()[..31], "0000000100000010000000033330010");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SettlementTotals {
    pub domestic: Totals,
    pub foreign: Totals,
}

impl SettlementTotals {
    /// 62 digits, or 31 (domestic only) from hosts that send no foreign group.
    pub fn parse(v: &str) -> Result<SettlementTotals, SubfieldError> {
        check_len(48, v, &[31, 62])?;
        let group = |at: usize| Totals {
            debit_amount: num(v, at, 12),
            debit_count: num(v, at + 12, 3) as u32,
            credit_amount: num(v, at + 15, 12),
            credit_count: num(v, at + 27, 3) as u32,
            reconciliation: num(v, at + 30, 1) as u8,
        };
        Ok(SettlementTotals {
            domestic: group(0),
            foreign: if v.len() == 62 {
                group(31)
            } else {
                Totals::default()
            },
        })
    }
    /// Fails when a number does not fit its width.
    pub fn to_digits(&self) -> Result<String, SubfieldError> {
        let mut s = String::with_capacity(62);
        for t in [&self.domestic, &self.foreign] {
            put(&mut s, 48, "debit amount", t.debit_amount, 12)?;
            put(&mut s, 48, "debit count", t.debit_count as u64, 3)?;
            put(&mut s, 48, "credit amount", t.credit_amount, 12)?;
            put(&mut s, 48, "credit count", t.credit_count as u64, 3)?;
            put(
                &mut s,
                48,
                "reconciliation code",
                t.reconciliation as u64,
                1,
            )?;
        }
        Ok(s)
    }
    /// Both groups balanced (the 0510's answer when the host agrees).
    pub fn is_balanced(&self) -> bool {
        self.domestic.reconciliation == reconciliation::BALANCED
            && matches!(
                self.foreign.reconciliation,
                reconciliation::BALANCED | reconciliation::REQUEST
            )
    }
}

/// posrig's fee field (R-FEE; CUP 57, iso87 63, named by the dialect's `fee_field`): fee n12 |
/// net n12 | returned fee n12, minor units of field 49's currency.
///
/// For a sale: the fee charged, `net = amount − fee`, returned 0. For a refund: fee 0, the fee
/// given back, `net = refund − returned fee` (the magnitude debited from the merchant).
///
/// ```
/// use protocol::iso8583::subfield::FeeInfo;
/// // Sale of 100.00 at 0.6 %: fee 0.60, net 99.40.
/// let f = FeeInfo { fee: 60, net: 9940, returned_fee: 0 };
/// assert_eq!(f.to_digits().unwrap(), "000000000060000000009940000000000000");
/// assert_eq!(FeeInfo::parse(&f.to_digits().unwrap()).unwrap(), f);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeeInfo {
    pub fee: u64,
    pub net: u64,
    pub returned_fee: u64,
}

impl FeeInfo {
    /// Errors name field 57; [`FeeInfo::from_message`] names the dialect's fee field.
    pub fn parse(v: &str) -> Result<FeeInfo, SubfieldError> {
        check_len(57, v, &[36])?;
        Ok(FeeInfo {
            fee: num(v, 0, 12),
            net: num(v, 12, 12),
            returned_fee: num(v, 24, 12),
        })
    }
    /// Fails when a number does not fit its width.
    pub fn to_digits(&self) -> Result<String, SubfieldError> {
        let mut s = String::with_capacity(36);
        put(&mut s, 57, "fee", self.fee, 12)?;
        put(&mut s, 57, "net", self.net, 12)?;
        put(&mut s, 57, "returned fee", self.returned_fee, 12)?;
        Ok(s)
    }
    /// The fee field of a reply, if present and well formed.
    pub fn from_message(
        dialect: &Dialect,
        m: &impl FieldSource,
    ) -> Option<Result<FeeInfo, SubfieldError>> {
        m.text(dialect.fee_field).map(|v| {
            FeeInfo::parse(&v).map_err(|e| SubfieldError {
                field: dialect.fee_field,
                ..e
            })
        })
    }
}

/// Renders one field for a transcript: by subfield when the dialect declares subfields and the
/// value ends on a subfield boundary (`60.1=25 60.2=000001 60.3=000`), whole otherwise
/// (`37=123456789012`). Binary values show as hex; PAN, track and secret fields are masked.
pub fn render_field(dialect: &Dialect, n: u8, value: &[u8]) -> String {
    let spec = dialect.field(n);
    let mask = spec.map_or(Mask::None, |s| s.mask);
    let binary = spec.is_some_and(|s| s.charset == super::dialect::Charset::B)
        || std::str::from_utf8(value).is_err();
    let text = match mask {
        Mask::Secret => return format!("{n}=<{} bytes>", value.len()),
        Mask::Pan => mask_digits(&String::from_utf8_lossy(value)),
        Mask::Track => mask_track(&String::from_utf8_lossy(value)),
        Mask::None if binary => hex(value),
        Mask::None => String::from_utf8_lossy(value).into_owned(),
    };
    if let Some(spec) = spec
        && !spec.subfields.is_empty()
        && mask == Mask::None
        && !binary
    {
        let mut ends = spec.subfields.iter().scan(0usize, |acc, s| {
            *acc += s.len as usize;
            Some(*acc)
        });
        let chars: Vec<char> = text.chars().collect();
        if ends.any(|e| e == chars.len()) {
            let mut out = String::new();
            let mut at = 0usize;
            for s in &spec.subfields {
                if at >= chars.len() {
                    break;
                }
                let end = at + s.len as usize;
                let part: String = chars.get(at..end).unwrap_or_default().iter().collect();
                if !out.is_empty() {
                    out.push(' ');
                }
                let _ = write!(out, "{n}.{}={part}", s.id);
                at = end;
            }
            return out;
        }
    }
    format!("{n}={text}")
}

/// Every present field of a message, rendered, in field order.
pub fn render_fields(dialect: &Dialect, m: &impl FieldSource) -> Vec<String> {
    m.present()
        .into_iter()
        .filter_map(|n| m.value(n).map(|v| render_field(dialect, n, &v)))
        .collect()
}

/// `6222021234567890123=30121011234` → `622202*********0123=***********`.
fn mask_track(t: &str) -> String {
    match t.split_once('=') {
        Some((pan, rest)) => format!("{}={}", mask_digits(pan), "*".repeat(rest.chars().count())),
        None => "*".repeat(t.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn field60_forms() {
        let f = Field60::parse("22000001").unwrap();
        assert_eq!(f.network_code, None);
        assert_eq!(f.to_digits().unwrap(), "22000001");
        let f = Field60::parse("00000123003").unwrap();
        assert_eq!(f, Field60::new(0, 123, 3));
        let mut g = Field60::new(22, 1, 0);
        g.ic_condition = Some(2); // fallback swipe: 60.4 filled with 0
        assert_eq!(g.to_digits().unwrap(), "2200000100002");
        assert_eq!(
            Field60::parse(&g.to_digits().unwrap())
                .unwrap()
                .read_capability,
            Some(0)
        );
        assert!(matches!(
            Field60::parse("2200000").unwrap_err().kind,
            SubfieldErrorKind::Length { len: 7, .. }
        ));
        assert_eq!(Field60::parse("22x00001").unwrap_err().position, 2);
        let big = Field60::new(22, 1_000_000, 0);
        assert!(matches!(
            big.to_digits().unwrap_err().kind,
            SubfieldErrorKind::Overflow { what: "60.2", .. }
        ));
    }

    #[test]
    fn field61_void_and_refund_forms() {
        let void = Field61 {
            orig_batch: 1,
            orig_stan: 123,
            ..Field61::default()
        };
        assert_eq!(void.to_digits().unwrap(), "000001000123");
        let refund = Field61 {
            orig_date: Some("1126".into()),
            ..void.clone()
        };
        assert_eq!(refund.to_digits().unwrap(), "0000010001231126");
        assert_eq!(Field61::parse("0000010001231126").unwrap(), refund);
        let full = Field61 {
            auth_method: Some(1),
            auth_institution: Some("4800".into()),
            ..refund
        };
        assert_eq!(full.to_digits().unwrap(), "00000100012311260100000004800");
        assert_eq!(
            Field61::parse(&full.to_digits().unwrap())
                .unwrap()
                .auth_institution
                .as_deref(),
            Some("00000004800")
        );
    }

    #[test]
    fn field90_layout() {
        let f = Field90 {
            orig_mti: Mti::new(200).unwrap(),
            orig_stan: 124,
            orig_transmission: "1126020000".into(),
            acquirer_id: "12345".into(),
            forwarding_id: String::new(),
        };
        let d = f.to_digits().unwrap();
        assert_eq!(d, "020000012411260200000000001234500000000000");
        assert_eq!(d.len(), 42);
        let back = Field90::parse(&d).unwrap();
        assert_eq!(back.orig_stan, 124);
        assert_eq!(back.acquirer_id, "00000012345");
    }

    #[test]
    fn settlement_totals() {
        let t = SettlementTotals {
            domestic: Totals {
                debit_amount: 10000,
                debit_count: 1,
                credit_amount: 10000,
                credit_count: 3,
                reconciliation: reconciliation::BALANCED,
            },
            foreign: Totals::default(),
        };
        let d = t.to_digits().unwrap();
        assert_eq!(d.len(), 62);
        assert_eq!(&d[..31], "0000000100000010000000100000031");
        assert_eq!(SettlementTotals::parse(&d).unwrap(), t);
        assert!(t.is_balanced());
        let mut over = t;
        over.foreign.credit_count = 1000;
        assert!(matches!(
            over.to_digits().unwrap_err().kind,
            SubfieldErrorKind::Overflow {
                what: "credit count",
                value: 1000,
                width: 3
            }
        ));
        assert_eq!(SettlementTotals::parse(&d[..31]).unwrap(), t);
    }

    #[test]
    fn render_by_subfield_and_masked() {
        let cup = Dialect::builtin("cup").unwrap();
        assert_eq!(
            render_field(&cup, 60, b"25000001000"),
            "60.1=25 60.2=000001 60.3=000"
        );
        assert_eq!(
            render_field(&cup, 61, b"0000010001231126"),
            "61.1=000001 61.2=000123 61.3=1126"
        );
        assert_eq!(render_field(&cup, 37, b"123456789012"), "37=123456789012");
        assert_eq!(
            render_field(&cup, 2, b"6222021234567890123"),
            "2=622202*********0123"
        );
        assert_eq!(
            render_field(&cup, 35, b"6222021234567890123=30121011234"),
            "35=622202*********0123=***********"
        );
        assert_eq!(render_field(&cup, 52, &[1; 8]), "52=<8 bytes>");
        assert_eq!(render_field(&cup, 64, &[0xAB; 8]), "64=ABABABABABABABAB");
        // Not on a boundary: whole.
        assert_eq!(render_field(&cup, 48, b"0012"), "48=0012");
        let iso = Dialect::builtin("iso87-ascii").unwrap();
        assert_eq!(
            render_field(&iso, 90, b"020000012411260200000000001234500000000000"),
            "90.1=0200 90.2=000124 90.3=1126020000 90.4=00000012345 90.5=00000000000"
        );
    }

    proptest! {
        #[test]
        fn composites_round_trip(tc in 0u8..100, batch in 0u32..1_000_000, nc in proptest::option::of(0u16..1000),
                                 stan in 0u32..1_000_000, amt in 0u64..1_000_000_000_000, cnt in 0u32..1000) {
            let f = Field60 { network_code: nc, ..Field60::new(tc, batch, 0) };
            prop_assert_eq!(Field60::parse(&f.to_digits().unwrap()).unwrap(), f);
            let g = Field61 { orig_batch: batch, orig_stan: stan, orig_date: Some("0229".into()), ..Field61::default() };
            prop_assert_eq!(Field61::parse(&g.to_digits().unwrap()).unwrap(), g);
            let t = SettlementTotals { domestic: Totals { debit_amount: amt, debit_count: cnt, credit_amount: amt / 3, credit_count: cnt / 2, reconciliation: 2 }, foreign: Totals { debit_amount: amt / 7, ..Totals::default() } };
            prop_assert_eq!(SettlementTotals::parse(&t.to_digits().unwrap()).unwrap(), t);
            let fee = FeeInfo { fee: amt / 100, net: amt - amt / 100, returned_fee: amt / 1000 };
            prop_assert_eq!(FeeInfo::parse(&fee.to_digits().unwrap()).unwrap(), fee);
        }

        #[test]
        fn parsers_never_panic(s in "[0-9a-z=]{0,70}") {
            let _ = Field60::parse(&s);
            let _ = Field61::parse(&s);
            let _ = Field90::parse(&s);
            let _ = SettlementTotals::parse(&s);
            let _ = FeeInfo::parse(&s);
        }
    }
}
