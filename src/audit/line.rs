//! An [`AuditRecord`] as one JSON line, written by hand into a reused buffer: the fields in a fixed
//! order, every string escaped, absent values `null` (`checks` left out when absent), the time as
//! RFC 3339 in UTC with microseconds. No allocation once the buffer has grown.

use std::time::SystemTime;

use super::AuditRecord;

/// Appends `record` as one line (ending in `\n`) to `out`.
pub fn write(out: &mut Vec<u8>, record: &AuditRecord<'_>) {
    out.extend_from_slice(b"{\"time\":\"");
    write_time(out, record.time);
    out.extend_from_slice(b"\",\"decision_id\":");
    string(out, record.decision_id);
    field(out, "request_id", record.request_id);
    out.extend_from_slice(b",\"frontend\":");
    string(out, record.frontend);
    out.extend_from_slice(b",\"method\":");
    string(out, record.method);
    out.extend_from_slice(b",\"path\":");
    string(out, record.path);
    field(out, "account", record.account);
    field(out, "principal", record.principal);
    field(out, "permission", record.permission);
    field(out, "org", record.org);
    field(out, "project", record.project);
    field(out, "resource_type", record.resource_type);
    field(out, "resource_id", record.resource_id);
    out.extend_from_slice(if record.allowed {
        b",\"result\":\"allow\",\"reason\":"
    } else {
        b",\"result\":\"deny\",\"reason\":"
    });
    string(out, record.reason);
    out.extend_from_slice(b",\"latency_us\":");
    number(out, record.latency_us);
    field(out, "token_id", record.token_id);
    field(out, "issuer", record.issuer);
    if let Some(checks) = record.checks {
        out.extend_from_slice(b",\"checks\":");
        number(out, checks as u64);
    }
    out.extend_from_slice(if record.dry_run {
        b",\"dry_run\":true}\n"
    } else {
        b",\"dry_run\":false}\n"
    });
}

/// `,"name":value` (a string, or `null`).
fn field(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    match value {
        Some(value) => string(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string literal: `"`, `\` and control characters escaped, the rest (UTF-8) as is.
fn string(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'"' && b != b'\\' && b >= 0x20 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `n` as exactly `width` digits (zero-padded; `n` below `10^width`).
fn padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut n = n;
    for at in (0..width).rev() {
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC; a time before 1970 is written as the epoch).
fn write_time(out: &mut Vec<u8>, time: SystemTime) {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    padded(out, year, 4);
    out.push(b'-');
    padded(out, month, 2);
    out.push(b'-');
    padded(out, day, 2);
    out.push(b'T');
    padded(out, of_day / 3600, 2);
    out.push(b':');
    padded(out, of_day / 60 % 60, 2);
    out.push(b':');
    padded(out, of_day % 60, 2);
    out.push(b'.');
    padded(out, u64::from(since.subsec_micros()), 6);
    out.push(b'Z');
}

/// (year, month, day) of `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`, for days
/// on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_microseconds() {
        let text = |secs: u64, micros: u64| {
            let mut out = Vec::new();
            write_time(
                &mut out,
                SystemTime::UNIX_EPOCH + Duration::from_micros(secs * 1_000_000 + micros),
            );
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(text(1_700_000_000, 123_456), "2023-11-14T22:13:20.123456Z");
        assert_eq!(text(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(text(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
        // every day of a few years agrees with the time crate
        for day in (0..60_000u64).step_by(7) {
            let secs = day * 86_400 + 3_723;
            let expected = time::OffsetDateTime::from_unix_timestamp(secs.cast_signed()).unwrap();
            let got = text(secs, 0);
            assert_eq!(
                &got[..19],
                format!(
                    "{:04}-{:02}-{:02}T01:02:03",
                    expected.year(),
                    u8::from(expected.month()),
                    expected.day()
                ),
                "day {day}"
            );
        }
    }

    #[test]
    fn strings_are_escaped_and_numbers_plain() {
        let mut out = Vec::new();
        string(&mut out, "a\"b\\c\n\u{1}é");
        number(&mut out, 0);
        number(&mut out, 18_446_744_073_709_551_615);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\u0001é\"018446744073709551615"
        );
    }
}
