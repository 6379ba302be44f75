//! The resume checkpoint: a small JSON file next to the partial download
//! that remembers which entity the partial bytes belong to, so a restarted
//! daemon can ask for the rest with `Range` + `If-Range`.

use std::io;
use std::path::Path;

use reqwest::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderMap, LAST_MODIFIED,
};
use serde::{Deserialize, Serialize};

/// What we know about the entity whose bytes are in the partial file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The URL the request was made to (before redirects).
    pub url: String,
    /// The entity's `ETag`, as sent (quotes and `W/` included).
    pub etag: Option<String>,
    /// The entity's `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// The entity's full size, when the server declared it.
    pub total: Option<u64>,
    /// Whether the server advertised `Accept-Ranges: bytes`.
    pub accepts_ranges: bool,
}

impl Checkpoint {
    /// Describe the entity of a full (`200`) response.
    pub(crate) fn from_full_response(url: &str, headers: &HeaderMap) -> Self {
        Self {
            url: url.to_owned(),
            etag: header_string(headers, ETAG.as_str()),
            last_modified: header_string(headers, LAST_MODIFIED.as_str()),
            total: content_length(headers),
            accepts_ranges: accepts_byte_ranges(headers),
        }
    }

    /// The `If-Range` value: a strong ETag, else `Last-Modified`. Weak ETags
    /// are not allowed in `If-Range` (RFC 9110 §13.1.5).
    pub fn validator(&self) -> Option<&str> {
        match self.etag.as_deref() {
            Some(tag) if is_strong_etag(tag) => Some(tag),
            _ => self.last_modified.as_deref(),
        }
    }

    /// Whether a `Range` request for the rest may be made. With a validator
    /// the server itself refuses to mix entities; without one we need it to
    /// support ranges and a known total to compare with `Content-Range`.
    pub fn can_resume(&self) -> bool {
        self.validator().is_some() || (self.accepts_ranges && self.total.is_some())
    }

    /// Whether a `206` with `headers` continues bytes of this entity that
    /// end at `offset`: it starts there and agrees with every size we know.
    /// Also picks up the total if it was unknown, and keeps the validators
    /// current for the next resume (they match, or the server would have
    /// sent a `200`).
    pub(crate) fn continued_by(
        &mut self,
        headers: &HeaderMap,
        offset: u64,
        expected_size: Option<u64>,
    ) -> bool {
        let Some(range) = headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_content_range)
        else {
            return false;
        };
        let agrees = |known: Option<u64>| match (known, range.total) {
            (Some(k), Some(t)) => k == t,
            _ => true,
        };
        if range.first != offset || !agrees(self.total) || !agrees(expected_size) {
            return false;
        }
        if self.total.is_none() {
            self.total = range.total;
        }
        if let Some(tag) = header_string(headers, ETAG.as_str()) {
            self.etag = Some(tag);
        }
        if let Some(lm) = header_string(headers, LAST_MODIFIED.as_str()) {
            self.last_modified = Some(lm);
        }
        true
    }

    /// Read a checkpoint; `None` if it is missing or unreadable (a corrupt
    /// checkpoint only costs a restart from byte 0).
    pub fn load(path: &Path) -> Option<Self> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read download checkpoint");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(cp) => Some(cp),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring corrupt download checkpoint");
                None
            }
        }
    }

    /// Write the checkpoint atomically (temp file, fsync, rename).
    pub fn store(&self, path: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        bty_store::atomic::write_atomic(path, &json)
    }

    /// Delete a checkpoint file; a missing one is fine.
    pub fn remove(path: &Path) -> io::Result<()> {
        remove_if_exists(path)
    }
}

/// `remove_file`, treating "already gone" as success.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A header as an owned string, if present and visible ASCII.
pub(crate) fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Content-Length` read from the header itself: reqwest's
/// `content_length()` reports 0 for HEAD responses.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether `Accept-Ranges` lists `bytes`.
pub(crate) fn accepts_byte_ranges(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_RANGES)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|unit| unit.trim().eq_ignore_ascii_case("bytes"))
}

/// Whether an ETag is strong (not `W/"…"`).
pub(crate) fn is_strong_etag(tag: &str) -> bool {
    !tag.starts_with("W/")
}

/// A parsed `Content-Range: bytes <first>-<last>/<total or *>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) total: Option<u64>,
}

/// Parse a `Content-Range` value; `None` for anything but a satisfied byte
/// range.
pub(crate) fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let first = first.trim().parse().ok()?;
    let last = last.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let consistent = first <= last && total.is_none_or(|t| last < t);
    consistent.then_some(ContentRange { first, last, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn parses_content_ranges() {
        let cr = |first, last, total| Some(ContentRange { first, last, total });
        assert_eq!(parse_content_range("bytes 0-0/10"), cr(0, 0, Some(10)));
        assert_eq!(parse_content_range("bytes 5-9/10"), cr(5, 9, Some(10)));
        assert_eq!(parse_content_range("bytes 5-9/*"), cr(5, 9, None));
        for bad in [
            "bytes */10",
            "bytes 9-5/10",
            "bytes 5-10/10",
            "items 0-1/2",
            "bytes 0-x/3",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn validator_prefers_strong_etag_then_last_modified() {
        let mut cp = Checkpoint {
            url: "u".into(),
            etag: Some("\"abc\"".into()),
            last_modified: Some("Tue, 01 Jan 2030 00:00:00 GMT".into()),
            total: None,
            accepts_ranges: false,
        };
        assert_eq!(cp.validator(), Some("\"abc\""));
        cp.etag = Some("W/\"abc\"".into());
        assert_eq!(cp.validator(), Some("Tue, 01 Jan 2030 00:00:00 GMT"));
        cp.last_modified = None;
        assert_eq!(cp.validator(), None);
        assert!(!cp.can_resume());
        cp.accepts_ranges = true;
        assert!(!cp.can_resume(), "needs a total to compare");
        cp.total = Some(3);
        assert!(cp.can_resume());
    }

    #[test]
    fn reads_response_headers() {
        let mut h = HeaderMap::new();
        h.insert(ETAG, HeaderValue::from_static("\"e1\""));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("42"));
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("none, Bytes"));
        let cp = Checkpoint::from_full_response("http://h/f", &h);
        assert_eq!(cp.etag.as_deref(), Some("\"e1\""));
        assert_eq!(cp.total, Some(42));
        assert!(cp.accepts_ranges);
        assert_eq!(cp.last_modified, None);
    }

    #[test]
    fn round_trips_through_a_file_and_tolerates_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.checkpoint");
        assert_eq!(Checkpoint::load(&path), None);
        let cp = Checkpoint {
            url: "http://h/f".into(),
            etag: None,
            last_modified: Some("lm".into()),
            total: Some(7),
            accepts_ranges: true,
        };
        cp.store(&path).unwrap();
        assert_eq!(Checkpoint::load(&path), Some(cp));
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(Checkpoint::load(&path), None);
        Checkpoint::remove(&path).unwrap();
        Checkpoint::remove(&path).unwrap();
    }
}
