//! Small pure formatting helpers shared by pages and routes: percent
//! encoding, the request origin, byte counts, timestamps, job labels.

use axum::http::HeaderMap;
use axum::http::header::HOST;
use bty_proto::v1::{JobKind, JobState};
use std::fmt::Write as _;

/// Percent-encode everything but RFC 3986 unreserved characters (like
/// Python's `quote(s, safe="")`), for path segments and query values.
pub(crate) fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for byte in input.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The `name=value` pairs of an urlencoded form, decoded, in order and
/// with repeated names kept (several checkboxes share one name).
pub(crate) fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Undo form encoding: `+` is a space, `%XX` a byte; bad escapes stay.
fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| char::from(b).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        // Two hex digits make at most 255.
                        out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `http(s)://<Host>` of the request. A missing or odd Host header (anything
/// but a host name, IPv4/IPv6 literal and port) falls back to localhost, so
/// a forged header cannot inject text into URLs we hand out.
pub(crate) fn origin(headers: &HeaderMap, tls: bool) -> String {
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost:8080");
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// A byte count for people: `1.5 GiB`, `812 B`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision loss above 2^53 bytes is irrelevant for a one-decimal label.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Percent done, 0..=100, when the total is known.
pub(crate) fn percent(done: u64, total: Option<u64>) -> Option<u8> {
    let total = total.filter(|t| *t > 0)?;
    let pct = (u128::from(done.min(total)) * 100) / u128::from(total);
    u8::try_from(pct).ok()
}

/// Unix epoch milliseconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub(crate) fn timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Unix epoch milliseconds as RFC 3339 UTC, for JSON.
pub(crate) fn rfc3339(ms: i64) -> String {
    let mut s = timestamp(ms);
    s.replace_range(10..11, "T");
    s.push('Z');
    s
}

/// Unix epoch milliseconds as an HTTP date (`Last-Modified`), e.g.
/// `Thu, 01 Jan 1970 00:00:00 GMT`.
pub(crate) fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let weekday = usize::try_from(days.rem_euclid(7)).unwrap_or(0);
    let month = MONTHS[usize::try_from(m.saturating_sub(1)).unwrap_or(0).min(11)];
    format!(
        "{}, {d:02} {month} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[weekday],
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), H. Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is 1..=31 and m 1..=12 by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// The lower-case name of a job state, as upstream's JSON spells it.
pub(crate) fn job_state(state: i32) -> &'static str {
    match JobState::try_from(state).unwrap_or(JobState::Unspecified) {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Completed => "completed",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
        JobState::Unspecified => "unknown",
    }
}

/// The lower-case name of a job kind.
pub(crate) fn job_kind(kind: i32) -> &'static str {
    match JobKind::try_from(kind).unwrap_or(JobKind::Unspecified) {
        JobKind::Download => "download",
        JobKind::Hash => "hash",
        JobKind::Flash => "flash",
        JobKind::Push => "push",
        JobKind::Upload => "upload",
        JobKind::Unspecified => "job",
    }
}

/// Whether a job state is queued or running.
pub(crate) fn job_active(state: i32) -> bool {
    matches!(
        JobState::try_from(state),
        Ok(JobState::Queued | JobState::Running)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_python_quote_with_no_safe_chars() {
        assert_eq!(
            percent_encode("a b (x86_64).img"),
            "a%20b%20%28x86_64%29.img"
        );
        assert_eq!(percent_encode("a/b?c&d=é"), "a%2Fb%3Fc%26d%3D%C3%A9");
        assert_eq!(percent_encode("A-z.0_~"), "A-z.0_~");
    }

    #[test]
    fn decodes_forms_with_repeated_names() {
        assert_eq!(
            form_pairs("target=%2Fdev%2Fsda&target=%2Fdev%2Fsdb&x=a+b&bad=%zz&end=%4"),
            [
                ("target".to_owned(), "/dev/sda".to_owned()),
                ("target".to_owned(), "/dev/sdb".to_owned()),
                ("x".to_owned(), "a b".to_owned()),
                ("bad".to_owned(), "%zz".to_owned()),
                ("end".to_owned(), "%4".to_owned()),
            ]
        );
    }

    #[test]
    fn origin_rejects_forged_hosts() {
        let mut headers = HeaderMap::new();
        assert_eq!(origin(&headers, false), "http://localhost:8080");
        headers.insert(HOST, "bty.lan:8080".parse().unwrap());
        assert_eq!(origin(&headers, false), "http://bty.lan:8080");
        headers.insert(HOST, "[::1]:80".parse().unwrap());
        assert_eq!(origin(&headers, false), "http://[::1]:80");
        headers.insert(HOST, "evil\"/x".parse().unwrap());
        assert_eq!(origin(&headers, false), "http://localhost:8080");
    }

    #[test]
    fn formats_timestamps_and_sizes() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(timestamp(1_795_633_457_000), "2026-11-25 19:04:17");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(percent(50, Some(200)), Some(25));
        assert_eq!(percent(5, None), None);
        assert_eq!(percent(500, Some(200)), Some(100));
    }
}
