//! The flasher's handle: one async method per request, no logic.

use super::error::FlasherError;
use super::messages::{FlashOrder, FlasherMessage};
use crate::actors::call::{ask, ask_running};
use crate::actors::job_query::Jobs;
use crate::actors::{Unavailable, slot::ActorSlot};
use crate::jobs::JobSnapshot;
use bty_disks::Disk;
use ractor::ActorRef;
use std::time::Duration;

/// Listing reads sysfs and procfs on the blocking pool: milliseconds, or a
/// few seconds behind a busy pool; longer means a device that hangs.
const LIST_DISKS: Duration = Duration::from_secs(30);

/// Cheap to clone; follows the flasher across restarts.
#[derive(Debug, Clone, Default)]
pub struct FlasherHandle {
    slot: ActorSlot<FlasherMessage>,
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
        ask(&self.slot, "flasher", LIST_DISKS, |reply| {
            FlasherMessage::ListDisks { reply }
        })
        .await?
    }

    /// Check the targets and start a flash. Accepted at once; resolving a
    /// streamed image then waits for its first bytes, bounded by the
    /// stream's own timeouts.
    pub async fn flash(&self, order: FlashOrder) -> Result<JobSnapshot, FlasherError> {
        ask_running(&self.slot, "flasher", "flash check", |reply| {
            FlasherMessage::Flash { order, reply }
        })
        .await
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
