//! Retry policy: options, exponential backoff with jitter, `Retry-After`,
//! and a cancellable wait.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio_util::sync::CancellationToken;

use crate::error::FetchError;

/// Timeouts and retry budget for [`fetch`](crate::fetch) and
/// [`fetch_document`](crate::fetch_document).
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// No byte (or no response head) for this long is a transient failure.
    /// Default 30 s.
    pub stall_timeout: Duration,
    /// Attempts in a row that may fail without progress before giving up.
    /// An attempt that grows the file beyond anything seen before resets
    /// the count, so a long download over a flaky link keeps going.
    /// Default 6.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled per retry. Default 250 ms.
    pub initial_backoff: Duration,
    /// Upper bound for any wait, including `Retry-After`. Default 8 s.
    pub max_backoff: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            stall_timeout: Duration::from_secs(30),
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl FetchOptions {
    /// How long to wait after the `failures`-th failure in a row (1-based).
    ///
    /// A server's `Retry-After` wins (capped at `max_backoff`); otherwise
    /// exponential backoff with "equal jitter": half fixed, half random, so
    /// parallel downloads that failed together do not retry in lockstep.
    pub(crate) fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_backoff);
        }
        let shift = failures.saturating_sub(1).min(20);
        let base = self
            .initial_backoff
            .saturating_mul(1 << shift)
            .min(self.max_backoff);
        let half = base / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = match nanos {
            0 => 0,
            n => random_u64() % n,
        };
        half + Duration::from_nanos(jitter)
    }
}

/// A random number good enough for jitter, without a `rand` dependency:
/// every `RandomState` is freshly keyed.
fn random_u64() -> u64 {
    RandomState::new().hash_one(0u8)
}

/// `Retry-After` in seconds; the HTTP-date form is ignored (we fall back to
/// our own backoff then).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sleep for `delay` unless `cancel` fires first.
pub(crate) async fn wait(delay: Duration, cancel: &CancellationToken) -> Result<(), FetchError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(FetchError::Cancelled),
        () = tokio::time::sleep(delay) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn opts() -> FetchOptions {
        FetchOptions {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..FetchOptions::default()
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_caps() {
        let o = opts();
        for (failures, base_ms) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            for _ in 0..50 {
                let d = o.backoff(failures, None);
                let base = Duration::from_millis(base_ms);
                assert!(d >= base / 2 && d <= base, "{failures}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let o = opts();
        assert_eq!(
            o.backoff(1, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            o.backoff(1, Some(Duration::from_secs(60))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn parses_retry_after_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static(" 3 "));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[tokio::test]
    async fn wait_returns_cancelled_when_token_fires() {
        let token = CancellationToken::new();
        token.cancel();
        let r = wait(Duration::from_secs(60), &token).await;
        assert!(matches!(r, Err(FetchError::Cancelled)));
    }
}
