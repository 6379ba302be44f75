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
    /// Largest body accepted when the request does not pin its size
    /// (`expected_size`): a larger declared length is refused before a
    /// byte is written, and a body that runs past it is stopped. `None`:
    /// no limit. Default [`DEFAULT_MAX_SIZE`].
    pub max_size: Option<u64>,
}

/// Default [`FetchOptions::max_size`]: 256 GiB, beyond any disk image bty
/// is meant for, far below what fills a lab server's disk by surprise.
pub const DEFAULT_MAX_SIZE: u64 = 256 << 30;

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            stall_timeout: Duration::from_secs(30),
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_size: Some(DEFAULT_MAX_SIZE),
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

/// The retry budget of one call: only failures in a row without progress
/// count, so a long transfer over a flaky link keeps going.
pub(crate) struct Budget {
    failures: u32,
    high_water: u64,
}

impl Budget {
    /// A budget for a transfer that starts with `reached` bytes done.
    pub(crate) fn new(reached: u64) -> Self {
        Self {
            failures: 0,
            high_water: reached,
        }
    }

    /// After a failed attempt that left `reached` bytes done: how long to
    /// wait before the next attempt, or the error to give up with.
    pub(crate) fn next_wait(
        &mut self,
        opts: &FetchOptions,
        url: &str,
        reached: u64,
        attempts: u32,
        error: FetchError,
        retry_after: Option<Duration>,
    ) -> Result<Duration, FetchError> {
        if !error.is_transient() {
            return Err(error);
        }
        // Progress past anything seen before earns a fresh budget.
        if reached > self.high_water {
            self.high_water = reached;
            self.failures = 1;
        } else {
            self.failures += 1;
        }
        if self.failures >= opts.max_attempts {
            return Err(FetchError::RetriesExhausted {
                url: url.to_owned(),
                attempts,
                last: Box::new(error),
            });
        }
        let delay = opts.backoff(self.failures, retry_after);
        tracing::warn!(
            url, attempt = attempts, bytes_done = reached, error = %error, ?delay,
            "transfer attempt failed; retrying"
        );
        Ok(delay)
    }
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

    #[test]
    fn budget_counts_only_failures_without_progress() {
        let o = FetchOptions {
            max_attempts: 3,
            ..opts()
        };
        let stalled = || FetchError::Stalled {
            url: "u".into(),
            after: Duration::from_secs(1),
        };
        let mut budget = Budget::new(0);
        assert!(budget.next_wait(&o, "u", 0, 1, stalled(), None).is_ok());
        assert!(budget.next_wait(&o, "u", 0, 2, stalled(), None).is_ok());
        // Progress resets the count; two more failures in place exhaust it.
        assert!(budget.next_wait(&o, "u", 10, 3, stalled(), None).is_ok());
        assert!(budget.next_wait(&o, "u", 10, 4, stalled(), None).is_ok());
        let gave_up = budget.next_wait(&o, "u", 10, 5, stalled(), None);
        assert!(matches!(
            gave_up,
            Err(FetchError::RetriesExhausted { attempts: 5, .. })
        ));
        let permanent = FetchError::Cancelled;
        assert!(matches!(
            Budget::new(0).next_wait(&o, "u", 0, 1, permanent, None),
            Err(FetchError::Cancelled)
        ));
    }

    #[tokio::test]
    async fn wait_returns_cancelled_when_token_fires() {
        let token = CancellationToken::new();
        token.cancel();
        let r = wait(Duration::from_secs(60), &token).await;
        assert!(matches!(r, Err(FetchError::Cancelled)));
    }
}
