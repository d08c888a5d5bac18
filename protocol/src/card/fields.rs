//! Small card fields shared by the magnetic tracks, EMV data and card fixtures: the expiry
//! month and the three-digit service code.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// A card's expiry month. Tracks carry `YYMM` without a century; posrig reads `YY` as `20YY`
/// (test cards only, and none of them expire before 2000). A card is valid through the last day
/// of its expiry month.
///
/// ```
/// use protocol::card::Expiry;
/// let e = Expiry::parse_yymm("2512").unwrap();
/// assert_eq!((e.year(), e.month()), (2025, 12));
/// assert_eq!(e.to_yymm(), "2512");
/// ```
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Expiry {
    year: u16,
    month: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("expiry must be 4 digits YYMM, got {0} characters")]
    Length(usize),
    #[error("expiry has a non-digit at position {0}")]
    NotDigit(usize),
    #[error("expiry month {0:02} is not 01-12")]
    Month(u8),
    #[error("date must be 6 digits YYMMDD, got {0} characters")]
    DateLength(usize),
    #[error("date 20{0:02}-{1:02}-{2:02} does not exist")]
    NoSuchDate(u8, u8, u8),
}

impl Expiry {
    pub fn new(year: u16, month: u8) -> Result<Expiry, ExpiryError> {
        if !(1..=12).contains(&month) {
            return Err(ExpiryError::Month(month));
        }
        Ok(Expiry { year, month })
    }
    /// Parses `YYMM` (track 1/2, fixtures).
    pub fn parse_yymm(s: &str) -> Result<Expiry, ExpiryError> {
        let d = digits::<4>(s).map_err(|e| match e {
            DigitsError::Length(n) => ExpiryError::Length(n),
            DigitsError::NotDigit(i) => ExpiryError::NotDigit(i),
        })?;
        let yy = d[0] * 10 + d[1];
        let mm = d[2] * 10 + d[3];
        Expiry::new(2000 + yy as u16, mm)
    }
    pub fn year(self) -> u16 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn to_yymm(self) -> String {
        format!("{:02}{:02}", self.year % 100, self.month)
    }
    /// The last day the card is valid, the day EMV tag 5F24 conventionally carries.
    pub fn last_day(self) -> NaiveDate {
        let (ny, nm) = if self.month == 12 {
            (self.year as i32 + 1, 1)
        } else {
            (self.year as i32, self.month as u32 + 1)
        };
        NaiveDate::from_ymd_opt(ny, nm, 1)
            .and_then(|d| d.pred_opt())
            .unwrap_or(NaiveDate::MIN)
    }
    /// True once `today` is after the last day of the expiry month.
    pub fn is_expired_on(self, today: NaiveDate) -> bool {
        today > self.last_day()
    }
    /// The month of an EMV `YYMMDD` date (5F24); the day is dropped.
    pub fn from_date(d: NaiveDate) -> Option<Expiry> {
        let y = u16::try_from(d.year()).ok()?;
        Expiry::new(y, d.month() as u8).ok()
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_yymm())
    }
}

/// Parses an EMV `YYMMDD` date (5F24, 5F25, 9A) as `20YY-MM-DD`.
pub fn parse_yymmdd(s: &str) -> Result<NaiveDate, ExpiryError> {
    let d = digits::<6>(s).map_err(|e| match e {
        DigitsError::Length(n) => ExpiryError::DateLength(n),
        DigitsError::NotDigit(i) => ExpiryError::NotDigit(i),
    })?;
    let (yy, mm, dd) = (d[0] * 10 + d[1], d[2] * 10 + d[3], d[4] * 10 + d[5]);
    NaiveDate::from_ymd_opt(2000 + yy as i32, mm as u32, dd as u32)
        .ok_or(ExpiryError::NoSuchDate(yy, mm, dd))
}

/// Formats a date as EMV `YYMMDD`.
pub fn format_yymmdd(d: NaiveDate) -> String {
    format!(
        "{:02}{:02}{:02}",
        d.year().rem_euclid(100),
        d.month(),
        d.day()
    )
}

/// The ISO 7813 service code: three digits telling the terminal how the card may be used.
///
/// Digit meanings as commonly published from ISO/IEC 7813 (the standard itself was not read):
/// first digit 1/2 international, 5/6 national, 2/6 "integrated circuit card" (chip); second
/// digit 0 normal, 2 online authorisation by issuer, 4 by issuer except under bilateral
/// agreement; third digit 0/3/5 PIN required.
///
/// ```
/// use protocol::card::ServiceCode;
/// assert!(ServiceCode::parse("201").unwrap().is_chip());
/// assert!(!ServiceCode::parse("101").unwrap().is_chip());
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ServiceCode([u8; 3]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceCodeError {
    #[error("service code must be 3 digits, got {0} characters")]
    Length(usize),
    #[error("service code has a non-digit at position {0}")]
    NotDigit(usize),
}

impl ServiceCode {
    pub fn parse(s: &str) -> Result<ServiceCode, ServiceCodeError> {
        digits::<3>(s).map(ServiceCode).map_err(|e| match e {
            DigitsError::Length(n) => ServiceCodeError::Length(n),
            DigitsError::NotDigit(i) => ServiceCodeError::NotDigit(i),
        })
    }
    pub fn digits(self) -> [u8; 3] {
        self.0
    }
    /// First digit 2 or 6: the card has a chip, so a swipe must be refused with "insert card"
    /// unless a chip read already failed (R-CARD-READ).
    pub fn is_chip(self) -> bool {
        matches!(self.0[0], 2 | 6)
    }
    /// First digit 1 or 2.
    pub fn is_international(self) -> bool {
        matches!(self.0[0], 1 | 2)
    }
    /// Second digit 2 or 4: the issuer wants every transaction online.
    pub fn online_only(self) -> bool {
        matches!(self.0[1], 2 | 4)
    }
    /// Third digit 0, 3 or 5.
    pub fn pin_required(self) -> bool {
        matches!(self.0[2], 0 | 3 | 5)
    }
}

impl fmt::Display for ServiceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.0[0], self.0[1], self.0[2])
    }
}

enum DigitsError {
    Length(usize),
    NotDigit(usize),
}

fn digits<const N: usize>(s: &str) -> Result<[u8; N], DigitsError> {
    if let Some(i) = s.bytes().position(|b| !b.is_ascii_digit()) {
        return Err(DigitsError::NotDigit(i));
    }
    if s.len() != N {
        return Err(DigitsError::Length(s.chars().count()));
    }
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b - b'0';
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_month_bounds_and_last_day() {
        assert_eq!(Expiry::parse_yymm("2513"), Err(ExpiryError::Month(13)));
        assert_eq!(Expiry::parse_yymm("2500"), Err(ExpiryError::Month(0)));
        assert_eq!(Expiry::parse_yymm("251"), Err(ExpiryError::Length(3)));
        assert_eq!(Expiry::parse_yymm("25a1"), Err(ExpiryError::NotDigit(2)));
        let feb = Expiry::parse_yymm("2802").unwrap();
        assert_eq!(
            feb.last_day(),
            NaiveDate::from_ymd_opt(2028, 2, 29).unwrap()
        );
        let dec = Expiry::parse_yymm("2612").unwrap();
        assert_eq!(
            dec.last_day(),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
        assert!(!dec.is_expired_on(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()));
        assert!(dec.is_expired_on(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()));
    }

    #[test]
    fn yymmdd() {
        let d = parse_yymmdd("301231").unwrap();
        assert_eq!(format_yymmdd(d), "301231");
        assert_eq!(
            parse_yymmdd("300230"),
            Err(ExpiryError::NoSuchDate(30, 2, 30))
        );
        assert_eq!(Expiry::from_date(d).unwrap().to_yymm(), "3012");
    }

    #[test]
    fn service_code_digits() {
        let s = ServiceCode::parse("620").unwrap();
        assert!(s.is_chip() && !s.is_international() && s.online_only() && s.pin_required());
        let s = ServiceCode::parse("101").unwrap();
        assert!(!s.is_chip() && s.is_international() && !s.pin_required());
        assert_eq!(s.to_string(), "101");
        assert_eq!(
            ServiceCode::parse("1x1"),
            Err(ServiceCodeError::NotDigit(1))
        );
        assert_eq!(ServiceCode::parse("1011"), Err(ServiceCodeError::Length(4)));
    }
}
