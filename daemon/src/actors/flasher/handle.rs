//! The flasher's handle: one async method per request, no logic.

use super::error::FlasherError;
use super::messages::{FlashOrder, FlasherMessage};
use crate::actors::job_query::Jobs;
use crate::actors::{Unavailable, slot::ActorSlot};
use crate::jobs::JobSnapshot;
use bty_disks::Disk;
use ractor::ActorRef;

/// Cheap to clone; follows the flasher across restarts.
#[derive(Debug, Clone, Default)]
pub struct FlasherHandle {
    slot: ActorSlot<FlasherMessage>,
}

fn unavailable<T>(e: ractor::RactorErr<T>) -> FlasherError {
    Unavailable::call("flasher", e).into()
}

impl FlasherHandle {
    /// The slot the supervisor fills.
    pub(crate) fn slot(&self) -> &ActorSlot<FlasherMessage> {
        &self.slot
    }

    fn actor(&self) -> Result<ActorRef<FlasherMessage>, FlasherError> {
        self.slot
            .get()
            .ok_or(FlasherError::Unavailable(Unavailable::NotRunning {
                actor: "flasher",
            }))
    }

    /// Block devices with verdicts.
    pub async fn list_disks(&self) -> Result<Vec<Disk>, FlasherError> {
        ractor::call!(self.actor()?, |reply| FlasherMessage::ListDisks { reply })
            .map_err(unavailable)?
    }

    /// Check the targets and start a flash.
    pub async fn flash(&self, order: FlashOrder) -> Result<JobSnapshot, FlasherError> {
        ractor::call!(self.actor()?, |reply| FlasherMessage::Flash {
            order,
            reply
        })
        .map_err(unavailable)?
    }

    /// Cancel, list or look at its jobs (`handle.jobs().cancel(id)`).
    pub fn jobs(&self) -> Jobs<'_, FlasherMessage, FlasherError> {
        Jobs {
            slot: &self.slot,
            name: "flasher",
            wrap: FlasherMessage::Jobs,
            unavailable: FlasherError::Unavailable,
        }
    }

    /// Task report: the job progressed.
    pub(crate) fn progress(&self, job: JobSnapshot) {
        self.report(FlasherMessage::Progress { job });
    }

    /// Task report: the job ended.
    pub(crate) fn finished(&self, job: JobSnapshot) {
        self.report(FlasherMessage::Finished { job });
    }

    /// A report nobody hears (the flasher is restarting) is not lost for
    /// good: the next incarnation adopts the job at its next report.
    fn report(&self, message: FlasherMessage) {
        if let Ok(actor) = self.actor() {
            let _ = actor.cast(message);
        }
    }

    /// Test-only: make the flasher panic.
    #[cfg(feature = "fault-injection")]
    pub fn inject_panic(&self) -> Result<(), FlasherError> {
        self.actor()?
            .cast(FlasherMessage::InjectPanic)
            .map_err(|e| Unavailable::send("flasher", e).into())
    }
}
