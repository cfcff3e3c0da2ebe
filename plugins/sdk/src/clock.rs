//! The host's wall clock (`clock` import of the registry and trigger worlds):
//! for values a service wants unique or dated, such as Matrix transaction
//! ids, JWT `iat`/`exp`, SigV4 dates and token expiry.

// A plugin crate enables one world; natively (workspace tests) several may
// be unified, and either world's import serves.
#[cfg(feature = "registry")]
use crowsnest_plugin_world_registry::crowsnest::plugin::clock as wit_clock;
#[cfg(all(feature = "trigger", not(feature = "registry")))]
use crowsnest_plugin_world_trigger::crowsnest::plugin::clock as wit_clock;

/// Seconds and nanoseconds since the Unix epoch (UTC), from the host. Outside
/// wasm (a plugin's native unit tests) there is no host: the process's clock.
pub fn now() -> (u64, u32) {
    if cfg!(target_arch = "wasm32") {
        let now = wit_clock::now();
        return (now.seconds, now.nanoseconds);
    }
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (since_epoch.as_secs(), since_epoch.subsec_nanos())
}

/// Seconds since the Unix epoch (UTC), from the host.
pub fn unix_seconds() -> u64 {
    now().0
}

/// The UTC calendar date and time of `seconds` since the Unix epoch:
/// `(year, month, day, hour, minute, second)` (Howard Hinnant's
/// `civil_from_days`; a date crate would be the only dependency of the
/// plugins that need this).
pub fn utc_parts(seconds: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = seconds / 86_400;
    let of_day = seconds % 86_400;
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (
        year,
        month,
        day,
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
    )
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time such as
/// `2015-09-10T20:49:56Z` or `2015-09-10T20:49:56.123+00:00` (fractions
/// dropped); `None` for anything else.
pub fn parse_utc(text: &str) -> Option<u64> {
    let number = |range: std::ops::Range<usize>| -> Option<u64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let zone = text
        .get(19..)?
        .trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if !matches!(zone, "Z" | "z" | "+00:00" | "") || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    // days_from_civil, the inverse of `utc_parts`.
    let year = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = year / 400;
    let year_of_era = year % 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = (era * 146_097 + day_of_era).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trip() {
        // 2015-08-30T12:36:00Z: the date of AWS's SigV4 example.
        assert_eq!(utc_parts(1_440_938_160), (2015, 8, 30, 12, 36, 0));
        assert_eq!(parse_utc("2015-08-30T12:36:00Z"), Some(1_440_938_160));
        assert_eq!(
            parse_utc("2024-02-29T00:00:00.5+00:00"),
            Some(1_709_164_800)
        );
        assert_eq!(utc_parts(1_709_164_800), (2024, 2, 29, 0, 0, 0));
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(parse_utc("2024-02-29T00:00:00+02:00"), None);
    }
}
