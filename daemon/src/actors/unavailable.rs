//! Why an actor could not be asked: not running, the call failed (stopped),
//! no answer in time, or a helper task of it died. Every actor error wraps it.

use thiserror::Error;

/// An actor (or a task it started) could not answer.
#[derive(Debug, Error)]
pub enum Unavailable {
    /// Its slot is empty: restarting or stopped for good.
    #[error("{actor} actor is not running")]
    NotRunning {
        /// Which actor.
        actor: &'static str,
    },
    /// The call failed: the actor stopped or panicked.
    #[error("{actor} actor unavailable")]
    Call {
        /// Which actor.
        actor: &'static str,
        /// What ractor said (the message itself dropped).
        #[source]
        source: ractor::RactorErr<()>,
    },
    /// No answer within the request's bound: the actor is wedged (or far
    /// behind); the caller stops waiting, the actor keeps the request.
    #[error("{actor} actor did not answer within {after:?}")]
    Timeout {
        /// Which actor.
        actor: &'static str,
        /// How long the caller waited.
        after: std::time::Duration,
    },
    /// A blocking-pool or async task it waited for panicked or was cancelled.
    #[error("{what} stopped")]
    Task {
        /// What the task was doing ("catalog writer").
        what: &'static str,
        /// Why.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Unavailable {
    /// A failed call to `actor`.
    pub(crate) fn call<T>(actor: &'static str, err: ractor::RactorErr<T>) -> Self {
        Self::Call {
            actor,
            source: err.map(|_| ()),
        }
    }

    /// A failed cast to `actor` (only the test-only fault injection waits
    /// for a cast to be accepted).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn send<T>(actor: &'static str, err: ractor::MessagingErr<T>) -> Self {
        Self::call(actor, ractor::RactorErr::Messaging(err))
    }
}
