//! The flash pipeline (and the wait for a download) checks an `AtomicBool`;
//! the job table cancels a `CancellationToken`. A [`CancelFlag`] is the
//! bridge: a small task sets the flag when the token is cancelled, and
//! ends with the flag, so no task outlives its flash.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::{CancellationToken, DropGuard};

/// An `AtomicBool` that follows a job's token while it lives.
#[derive(Debug)]
pub(crate) struct CancelFlag {
    flag: Arc<AtomicBool>,
    /// Dropped with the flag: stops the task that watches the token.
    _watch: DropGuard,
}

impl CancelFlag {
    /// A flag set once `token` is cancelled (at once if it already is).
    /// Spawns on the current tokio runtime; never blocks.
    pub(crate) fn follow(token: &CancellationToken) -> Self {
        let flag = Arc::new(AtomicBool::new(token.is_cancelled()));
        let done = CancellationToken::new();
        let (token, set, ended) = (token.clone(), flag.clone(), done.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => set.store(true, Ordering::Relaxed),
                () = ended.cancelled() => {}
            }
        });
        Self {
            flag,
            _watch: done.drop_guard(),
        }
    }
}

impl Deref for CancelFlag {
    type Target = AtomicBool;

    fn deref(&self) -> &AtomicBool {
        &self.flag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn set(flag: &CancelFlag) -> bool {
        for _ in 0..100 {
            if flag.load(Ordering::Relaxed) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn the_flag_follows_the_token() {
        let token = CancellationToken::new();
        let flag = CancelFlag::follow(&token);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!flag.load(Ordering::Relaxed), "set before the cancel");
        token.cancel();
        assert!(set(&flag).await, "the cancel never reached the flag");
        let already = CancelFlag::follow(&token);
        assert!(already.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn the_watch_ends_with_the_flag() {
        let token = CancellationToken::new();
        let flag = CancelFlag::follow(&token);
        let watched = Arc::downgrade(&flag.flag);
        drop(flag);
        // The watching task held the other reference: once it ended, the
        // flag is gone.
        for _ in 0..100 {
            if watched.upgrade().is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the watching task outlived its flag");
    }
}
