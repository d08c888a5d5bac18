//! The one clock type of posrig.
//!
//! Every sans-IO core takes `now` as an [`Instant`]: milliseconds since the Unix epoch (UTC).
//! It is a calendar instant, not only a monotonic one, because terminals print dates, compare
//! refund windows in their own time zone and put local time into ISO 8583 fields 12/13. The
//! harness owns a [`VirtualClock`] on emulated rigs; process rigs use a [`WallClock`],
//! optionally scaled so a 60 s host timeout passes in a fraction of that.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
pub use chrono_tz::Tz;

/// A point in time, in whole milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Instant(i64);

impl Instant {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }
    pub const fn as_millis(self) -> i64 {
        self.0
    }
    /// Parses RFC 3339 (`2026-11-26T10:00:00+08:00`).
    pub fn parse_rfc3339(s: &str) -> Result<Self, chrono::ParseError> {
        Ok(Self(DateTime::parse_from_rfc3339(s)?.timestamp_millis()))
    }
    pub fn to_utc(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }
    /// The calendar date-time in a terminal's time zone.
    pub fn to_local(self, tz: Tz) -> DateTime<Tz> {
        self.to_utc().with_timezone(&tz)
    }
    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_utc().format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Whole calendar days from `from` to `to`, both taken as local dates in `tz`.
/// Refund windows count calendar days in the terminal's zone (R-TIME), not 24 h periods.
pub fn calendar_days_between(from: Instant, to: Instant, tz: Tz) -> i64 {
    let a = from.to_local(tz).date_naive();
    let b = to.to_local(tz).date_naive();
    (b - a).num_days()
}

/// Resolves a date typed as MMDD to the most recent such date not after `today` (R-TIME):
/// `1226` typed on 2027-01-05 is 2026-12-26. An impossible date (`0230`, `1300`) is `None`.
/// `0229` resolves to the latest leap year's 29 February not after today.
pub fn resolve_mmdd(mm: u32, dd: u32, today: NaiveDate) -> Option<NaiveDate> {
    use chrono::Datelike;
    // 0229 exists in at most one year of four; look back far enough to find it.
    for back in 0..8 {
        let year = today.year() - back;
        if let Some(d) = NaiveDate::from_ymd_opt(year, mm, dd)
            && d <= today
        {
            return Some(d);
        }
    }
    None
}

/// A source of `now`. The one clock injected everywhere time is read.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The harness's clock on emulated rigs: it moves only when told to.
#[derive(Clone, Debug, Default)]
pub struct VirtualClock(Arc<AtomicI64>);

impl VirtualClock {
    pub fn new(start: Instant) -> Self {
        Self(Arc::new(AtomicI64::new(start.as_millis())))
    }
    pub fn set(&self, t: Instant) {
        self.0.store(t.as_millis(), Ordering::SeqCst);
    }
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    /// Moves to `t` if it lies in the future; time never runs backwards.
    pub fn advance_to(&self, t: Instant) {
        self.0.fetch_max(t.as_millis(), Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        Instant(self.0.load(Ordering::SeqCst))
    }
}

/// The OS clock, optionally running `scale` times faster from the moment it was made.
/// `--time-scale 10` makes a 60 s host timeout pass in 6 s of wall time.
#[derive(Clone, Debug)]
pub struct WallClock {
    origin: Instant,
    started: std::time::Instant,
    scale: f64,
}

impl WallClock {
    pub fn new(scale: f64) -> Self {
        let origin = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| Instant(d.as_millis() as i64))
            .unwrap_or_default();
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        Self {
            origin,
            started: std::time::Instant::now(),
            scale,
        }
    }
    /// A clock that reads `start` now and runs `scale` times faster than the OS clock from
    /// here: `posrig emulate --clock 2026-11-26T10:00:00+08:00` pins the terminal's calendar
    /// (refund windows, MMDD dates) while its timers still run on real time.
    pub fn starting_at(start: Instant, scale: f64) -> Self {
        Self {
            origin: start,
            ..Self::new(scale)
        }
    }
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// Wall time until the scaled clock reaches `deadline`.
    pub fn wall_until(&self, deadline: Instant) -> Duration {
        let virt = deadline.saturating_since(self.now());
        Duration::from_secs_f64(virt.as_secs_f64() / self.scale)
    }
}

impl Clock for WallClock {
    fn now(&self) -> Instant {
        let elapsed = self.started.elapsed().as_secs_f64() * self.scale;
        self.origin + Duration::from_secs_f64(elapsed)
    }
}

/// Parses an IANA zone name (`Asia/Shanghai`).
pub fn parse_tz(name: &str) -> Option<Tz> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmdd_resolves_to_most_recent_date_not_after_today() {
        let today = NaiveDate::from_ymd_opt(2027, 1, 5).unwrap();
        assert_eq!(
            resolve_mmdd(12, 26, today),
            NaiveDate::from_ymd_opt(2026, 12, 26)
        );
        assert_eq!(
            resolve_mmdd(1, 5, today),
            NaiveDate::from_ymd_opt(2027, 1, 5)
        );
        assert_eq!(resolve_mmdd(2, 30, today), None);
        assert_eq!(resolve_mmdd(13, 1, today), None);
        assert_eq!(
            resolve_mmdd(2, 29, today),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
    }

    #[test]
    fn calendar_days_count_in_the_terminal_zone() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-11-25 23:30 and 2026-11-26 00:30 local: one calendar day apart, one hour of time.
        let a = Instant::parse_rfc3339("2026-11-25T23:30:00+08:00").unwrap();
        let b = Instant::parse_rfc3339("2026-11-26T00:30:00+08:00").unwrap();
        assert_eq!(calendar_days_between(a, b, tz), 1);
        assert_eq!(calendar_days_between(a, b, Tz::UTC), 0);
    }

    #[test]
    fn wall_clock_starting_at_runs_from_the_given_instant_at_its_scale() {
        let start = Instant::parse_rfc3339("2026-11-26T10:00:00+08:00").unwrap();
        let c = WallClock::starting_at(start, 1000.0);
        let first = c.now();
        assert!(first >= start);
        std::thread::sleep(Duration::from_millis(20));
        // 20 ms of wall time at scale 1000 is at least 20 s on this clock.
        let later = c.now();
        assert!(later >= start + Duration::from_secs(20), "{later:?}");
        assert_eq!(c.scale(), 1000.0);
        // 60 s ahead on this clock is at most 60 ms of wall time.
        assert!(c.wall_until(later + Duration::from_secs(60)) <= Duration::from_millis(60));
        // A bad scale falls back to real time.
        assert_eq!(WallClock::starting_at(start, f64::NAN).scale(), 1.0);
    }

    #[test]
    fn virtual_clock_never_runs_backwards() {
        let c = VirtualClock::new(Instant::from_millis(1000));
        c.advance_to(Instant::from_millis(500));
        assert_eq!(c.now(), Instant::from_millis(1000));
        c.advance(Duration::from_secs(60));
        assert_eq!(c.now(), Instant::from_millis(61_000));
    }
}
