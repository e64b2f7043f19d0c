//! Timestamps: milliseconds since the Unix epoch, the precision every dialect renders (Clerk as
//! integers, Infisical and PlanetScale as RFC 3339 with milliseconds), stored as a 64-bit integer
//! on both backends so that both compare and sort them the same way.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self((nanos / 1_000_000) as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// This time and `d` after it.
    pub fn plus(self, d: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_add(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    /// RFC 3339 in UTC with exactly three fractional digits: `2026-01-14T10:19:23.000Z`.
    pub fn to_rfc3339(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        // Digit by digit: every rendered object has a few of these, and `format!` with its
        // seven padded fields cost each some 6,000 instructions. (`time` keeps years within
        // ±9999: four digits.)
        let mut out = String::with_capacity(25);
        if dt.year() < 0 {
            out.push('-');
        }
        let year = dt.year().unsigned_abs();
        let mut push = |n: u32, width: u32, then: char| {
            for place in (0..width).rev() {
                out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
            }
            out.push(then);
        };
        push(year, 4, '-');
        push(u32::from(u8::from(dt.month())), 2, '-');
        push(u32::from(dt.day()), 2, 'T');
        push(u32::from(dt.hour()), 2, ':');
        push(u32::from(dt.minute()), 2, ':');
        push(u32::from(dt.second()), 2, '.');
        push(u32::from(dt.millisecond()), 3, 'Z');
        out
    }

    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        Some(Self((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_rendering_has_milliseconds_and_round_trips() {
        let t = Timestamp(1_610_619_563_042);
        assert_eq!(t.to_rfc3339(), "2021-01-14T10:19:23.042Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        let last = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(last.to_rfc3339(), "9999-12-31T23:59:59.999Z");
    }
}
