//! How times are written on the wire.

/// RFC 3339 UTC text for a Unix time, as every `*_at` field in the API is rendered.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A Unix time from RFC 3339 text (`2026-12-03T18:00:00Z`), or from a date
/// (`2026-12-03`, its midnight UTC) as a date field of a form sends it.
pub fn parse_time(raw: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let date = time::Date::parse(
        raw,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc_3339_allows_them_and_dates_as_midnight() {
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(parse_time("1970-01-01t00:01:00z"), Some(60));
        assert_eq!(parse_time("1970-01-01T01:01:00.5+01:00"), Some(60));
        assert_eq!(parse_time("1970-01-02"), Some(86_400));
        assert!(
            parse_time("2016-12-31T23:59:60Z").is_some(),
            "a leap second"
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(
            parse_time("1970-01-01T00:01:00"),
            None,
            "an offset is required"
        );
    }
}
