//! The hasher's handle: one async method per request, no logic.

use super::error::HasherError;
use super::messages::{HashOutcome, HasherMessage};
use crate::actors::call::{QUICK, ask};
use crate::actors::job_query::Jobs;
use crate::actors::{Unavailable, slot::ActorSlot};
use crate::jobs::JobSnapshot;

/// Cheap to clone; follows the hasher across restarts.
#[derive(Debug, Clone, Default)]
pub struct HasherHandle {
    slot: ActorSlot<HasherMessage>,
}

impl HasherHandle {
    /// A handle reading `slot`.
    pub fn new(slot: ActorSlot<HasherMessage>) -> Self {
        Self { slot }
    }

    /// The slot the supervisor fills.
    pub(crate) fn slot(&self) -> &ActorSlot<HasherMessage> {
        &self.slot
    }

    fn actor(&self) -> Result<ractor::ActorRef<HasherMessage>, HasherError> {
        self.slot
            .get()
            .ok_or(HasherError::Unavailable(Unavailable::NotRunning {
                actor: "hasher",
            }))
    }

    /// Queue a hash job for `name` (or get the active one).
    pub async fn enqueue(&self, name: &str) -> Result<JobSnapshot, HasherError> {
        let name = name.to_owned();
        ask(&self.slot, "hasher", QUICK, |reply| {
            HasherMessage::Enqueue {
                name,
                reply: Some(reply),
            }
        })
        .await?
    }

    /// Queue without waiting for the answer (the catalog's auto-enqueue).
    pub fn enqueue_detached(&self, name: &str) {
        if let Ok(actor) = self.actor() {
            let msg = HasherMessage::Enqueue {
                name: name.to_owned(),
                reply: None,
            };
            if actor.cast(msg).is_err() {
                tracing::warn!(name, "hasher stopped; hash request dropped until restart");
            }
        }
    }

    /// Cancel, list or look at its jobs (`handle.jobs().cancel(id)`).
    pub fn jobs(&self) -> Jobs<'_, HasherMessage, HasherError> {
        Jobs {
            slot: &self.slot,
            name: "hasher",
            wrap: HasherMessage::Jobs,
            unavailable: HasherError::Unavailable,
        }
    }

    /// Task report: progress. Dropped if the hasher is restarting.
    pub(crate) fn progress(&self, id: &str, bytes_done: u64) {
        if let Ok(actor) = self.actor() {
            let _ = actor.cast(HasherMessage::Progress {
                id: id.to_owned(),
                bytes_done,
            });
        }
    }

    /// Task report: the end. Goes to whichever hasher is current.
    pub(crate) fn finished(&self, id: &str, name: &str, outcome: HashOutcome) {
        let msg = HasherMessage::Finished {
            id: id.to_owned(),
            name: name.to_owned(),
            outcome,
        };
        match self.actor() {
            Ok(actor) => {
                if actor.cast(msg).is_err() {
                    tracing::warn!(id, name, "hasher stopped before a job's result arrived");
                }
            }
            Err(_) => tracing::warn!(id, name, "hasher stopped before a job's result arrived"),
        }
    }

    /// Test-only: make the hasher panic.
    #[cfg(feature = "fault-injection")]
    pub fn inject_panic(&self) -> Result<(), HasherError> {
        self.actor()?
            .cast(HasherMessage::InjectPanic)
            .map_err(|e| Unavailable::send("hasher", e).into())
    }
}
