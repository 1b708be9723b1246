//! UTC dates from seconds since the epoch, without a date crate: the SBOM's and the
//! OCF agent's log timestamps (RFC 3339) and the kernel's build date (what `date`
//! prints, shown by `uname -v`). One civil-from-days conversion for all of them.

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 (Sunday) to 6.
    pub weekday: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Utc {
    /// The date of `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_epoch(secs: u64) -> Utc {
        let days = (secs / 86_400) as i64;
        let rem = (secs % 86_400) as u32;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Utc {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u32,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC).
pub fn rfc3339(secs: u64) -> String {
    let t = Utc::from_epoch(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `Tue Nov 14 22:13:20 UTC 2023`: what `date -u` prints (the kernel shows its build
/// timestamp like this in `uname -v`).
pub fn date_utc(secs: u64) -> String {
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = Utc::from_epoch(secs);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} UTC {}",
        WD.get(t.weekday as usize % 7).unwrap_or(&"Sun"),
        MO.get((t.month as usize + 11) % 12).unwrap_or(&"Jan"),
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1767225600), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn dates_like_the_date_command() {
        assert_eq!(date_utc(0), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(date_utc(1_700_000_000), "Tue Nov 14 22:13:20 UTC 2023");
        assert_eq!(date_utc(951_782_400), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn now_is_a_civil_date() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let s = rfc3339(now.as_secs());
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }
}
