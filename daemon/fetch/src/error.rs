//! The one error type of bty-fetch, and which of its cases are worth a retry.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use thiserror::Error;

/// Why a download, probe or document fetch failed.
///
/// Messages are lowercase and do not repeat their `#[source]`: print the
/// whole chain (e.g. with `{:#}` in anyhow, or by walking `source()`) to see
/// the root cause.
#[derive(Debug, Error)]
pub enum FetchError {
    /// The HTTP client could not be built (bad TLS setup).
    #[error("building the http client")]
    Client(#[source] reqwest::Error),
    /// The server answered with a status that is not a success.
    #[error("{url} answered http {status}")]
    Http {
        /// The requested URL.
        url: String,
        /// The status received.
        status: StatusCode,
    },
    /// Connecting, sending or reading the body failed below HTTP.
    #[error("request to {url} failed")]
    Transport {
        /// The requested URL.
        url: String,
        /// The underlying failure (without the URL, which may carry secrets).
        #[source]
        source: reqwest::Error,
    },
    /// No byte arrived for longer than the stall timeout.
    #[error("no data from {url} for {after:?}")]
    Stalled {
        /// The requested URL.
        url: String,
        /// How long we waited.
        after: Duration,
    },
    /// The body ended before, or ran past, its declared length.
    #[error("{url} delivered {got} bytes, expected {expected}")]
    Length {
        /// The requested URL.
        url: String,
        /// Bytes the server declared (or the caller pinned).
        expected: u64,
        /// Bytes the file holds after this response.
        got: u64,
    },
    /// The server declares a size other than the one the caller pinned.
    #[error("{url} declares {declared} bytes, expected {expected}")]
    SizeMismatch {
        /// The requested URL.
        url: String,
        /// The size the caller pinned (`expected_size`).
        expected: u64,
        /// The size the server declared.
        declared: u64,
    },
    /// The complete file does not hash to the pinned sha256; it was discarded.
    #[error("sha256 mismatch for {url}: expected {expected}, got {actual}; discarded")]
    DigestMismatch {
        /// The requested URL.
        url: String,
        /// The pinned sha256 (lowercase hex).
        expected: String,
        /// The sha256 of the bytes received (lowercase hex).
        actual: String,
    },
    /// The pinned sha256 is not 64 hex digits.
    #[error("expected sha256 {value:?} is not 64 hex digits")]
    InvalidDigest {
        /// What the caller passed.
        value: String,
    },
    /// A document was larger than the caller's cap.
    #[error("{url} is larger than the {cap}-byte cap")]
    TooLarge {
        /// The requested URL.
        url: String,
        /// The cap in bytes.
        cap: usize,
    },
    /// A body whose size the caller did not pin is larger than the limit
    /// ([`FetchOptions::max_size`](crate::FetchOptions::max_size)).
    #[error(
        "{url} is larger than the {cap}-byte limit for an image whose size is not declared; \
         nothing was kept"
    )]
    OverCap {
        /// The requested URL.
        url: String,
        /// The limit in bytes.
        cap: u64,
    },
    /// The filesystem the file lands on has less room than the rest of
    /// the file needs.
    #[error("not enough free space in {dir}: {needed} bytes needed, {free} free")]
    NoSpace {
        /// The directory the file lands in.
        dir: PathBuf,
        /// Bytes still to be written.
        needed: u64,
        /// Bytes available to write.
        free: u64,
    },
    /// The server broke the HTTP range protocol in a way we cannot recover from.
    #[error("{url}: {detail}")]
    Protocol {
        /// The requested URL.
        url: String,
        /// What was wrong.
        detail: &'static str,
    },
    /// A local file operation failed.
    #[error("file i/o on {path}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The caller cancelled; the partial file and checkpoint were removed.
    #[error("download cancelled")]
    Cancelled,
    /// Every attempt failed with a transient error; the partial file is kept
    /// so a later call resumes it.
    #[error("gave up on {url} after {attempts} attempts")]
    RetriesExhausted {
        /// The requested URL.
        url: String,
        /// Attempts made in this call.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<FetchError>,
    },
}

impl FetchError {
    /// Whether retrying (and resuming) may succeed: connection trouble,
    /// stalls, short bodies and HTTP 408/429/500/502/503/504.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { status, .. } => is_transient_status(*status),
            Self::Transport { source, .. } => !(source.is_builder() || source.is_redirect()),
            Self::Stalled { .. } => true,
            Self::Length { expected, got, .. } => got < expected,
            _ => false,
        }
    }

    /// The HTTP status, if the failure was (or ended in) an HTTP error status.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Http { status, .. } => Some(*status),
            Self::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn transport(url: &str, source: reqwest::Error) -> Self {
        Self::Transport {
            url: url.to_owned(),
            source: source.without_url(),
        }
    }
}

/// Statuses that mean "try again later" rather than "this will never work".
pub(crate) fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(code: u16) -> FetchError {
        FetchError::Http {
            url: "http://x/".into(),
            status: StatusCode::from_u16(code).unwrap(),
        }
    }

    #[test]
    fn classifies_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(http(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 416, 501] {
            assert!(!http(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn short_body_is_transient_long_body_is_not() {
        let len = |expected, got| FetchError::Length {
            url: "u".into(),
            expected,
            got,
        };
        assert!(len(10, 5).is_transient());
        assert!(!len(10, 11).is_transient());
    }

    #[test]
    fn digest_mismatch_names_both_digests() {
        let e = FetchError::DigestMismatch {
            url: "http://h/f".into(),
            expected: "aa".into(),
            actual: "bb".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains("aa") && msg.contains("bb") && msg.contains("http://h/f"));
        assert!(!e.is_transient());
    }

    #[test]
    fn status_looks_through_retries_exhausted() {
        let e = FetchError::RetriesExhausted {
            url: "u".into(),
            attempts: 3,
            last: Box::new(http(503)),
        };
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    }
}
