//! The daemon's event stream: job snapshots and catalog changes, fanned out
//! to every watcher (gRPC `Subscribe`, the web's SSE) with a bounded buffer,
//! plus a short history of notable events for the pages' activity cards.

use crate::jobs::{JobSnapshot, now_ms};
use crate::metrics::Metrics;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many events a slow watcher may lag before it is told to resync.
const CHANNEL_CAPACITY: usize = 1024;
/// How many notable events the activity history keeps.
const HISTORY: usize = 200;

/// What happened in the catalog (clients see it by the dotted name the
/// API gives each kind: `entry.added`, `catalog.imported`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogEventKind {
    /// A remote entry was added.
    EntryAdded,
    /// A remote entry was deleted.
    EntryDeleted,
    /// A catalog was imported (its summary counts errors, if any).
    CatalogImported,
    /// A catalog could not be imported at all.
    CatalogImportFailed,
    /// A file appeared in the image root.
    ImageAppeared,
    /// A file left the image root.
    ImageRemoved,
    /// A file's sha256 is known.
    ImageHashed,
    /// An upload was stored.
    ImageUploaded,
    /// An upload failed.
    ImageUploadFailed,
    /// A download landed in the cache.
    CachePopulated,
    /// Cached bytes were removed.
    CacheDeleted,
    /// A flash was cut short by a shutdown.
    FlashInterrupted,
}

impl CatalogEventKind {
    /// Whether this kind always reports a failure.
    fn is_failure(self) -> bool {
        matches!(
            self,
            Self::CatalogImportFailed | Self::ImageUploadFailed | Self::FlashInterrupted
        )
    }
}

/// Something in the catalog changed.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEvent {
    /// What happened.
    pub kind: CatalogEventKind,
    /// What it is about.
    pub subject: String,
    /// One line for an operator.
    pub summary: String,
    /// Whether it reports a failure.
    pub failed: bool,
}

impl CatalogEvent {
    /// An event; failed when its kind is a failure.
    pub fn new(kind: CatalogEventKind, subject: &str, summary: impl Into<String>) -> Self {
        Self {
            kind,
            subject: subject.to_owned(),
            summary: summary.into(),
            failed: kind.is_failure(),
        }
    }

    /// Mark a partial failure (an import with errors).
    #[must_use]
    pub fn failed_if(mut self, failed: bool) -> Self {
        self.failed |= failed;
        self
    }
}

/// Disks that appeared, went away or changed (another medium, size or
/// verdict) since the last listing, by device path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskChanges {
    /// New paths.
    pub added: Vec<String>,
    /// Paths gone.
    pub removed: Vec<String>,
    /// Same path, another disk or another verdict.
    pub changed: Vec<String>,
}

impl DiskChanges {
    /// What differs from `before` to `now` (both keyed by path, sorted).
    pub fn between<D: PartialEq>(
        before: &std::collections::BTreeMap<String, D>,
        now: &std::collections::BTreeMap<String, D>,
    ) -> Self {
        let mut changes = Self::default();
        for (path, disk) in now {
            match before.get(path) {
                None => changes.added.push(path.clone()),
                Some(old) if old != disk => changes.changed.push(path.clone()),
                Some(_) => {}
            }
        }
        changes.removed = before
            .keys()
            .filter(|path| !now.contains_key(*path))
            .cloned()
            .collect();
        changes
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What an event carries.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    /// A job changed.
    Job(JobSnapshot),
    /// The catalog changed.
    Catalog(CatalogEvent),
    /// Disks were plugged in, pulled or changed.
    Disks(DiskChanges),
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Monotonic per daemon run.
    pub seq: u64,
    /// Epoch milliseconds.
    pub at_ms: i64,
    /// The payload.
    pub body: EventBody,
}

/// A cheap, cloneable publisher/subscriber hub.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    seq: Arc<AtomicU64>,
    history: Arc<Mutex<VecDeque<Arc<Event>>>>,
    metrics: Metrics,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self {
            tx,
            seq: Arc::new(AtomicU64::new(1)),
            history: Arc::new(Mutex::new(VecDeque::with_capacity(HISTORY))),
            metrics: Metrics::default(),
        }
    }

    /// Publish a job snapshot (progress and state changes).
    pub fn job(&self, job: &JobSnapshot) {
        self.metrics.job_finished(job);
        let notable = !job.state.is_active() || job.started_at_ms.is_none();
        self.publish(EventBody::Job(job.clone()), notable);
    }

    /// Publish a catalog change.
    pub fn catalog(&self, event: CatalogEvent) {
        let (kind, subject) = (event.kind, &event.subject);
        if event.failed {
            tracing::warn!(?kind, subject, summary = %event.summary, "catalog event");
        } else {
            tracing::info!(?kind, subject, summary = %event.summary, "catalog event");
        }
        self.publish(EventBody::Catalog(event), true);
    }

    /// Publish a change in the disks present (an empty one says "look
    /// again" and stays out of the activity history).
    pub fn disks(&self, changes: DiskChanges) {
        let notable = !changes.is_empty();
        self.publish(EventBody::Disks(changes), notable);
    }

    fn publish(&self, body: EventBody, notable: bool) {
        let event = Arc::new(Event {
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            at_ms: now_ms(),
            body,
        });
        if notable {
            // A poisoned lock only means a panic elsewhere mid-push; the
            // deque itself is still valid.
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back(event.clone());
        }
        // No subscribers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    /// Counters fed by job events.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A live subscription; lagging receivers get `RecvError::Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Notable events, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Arc<Event>> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.iter().rev().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobKind, JobState};

    #[tokio::test]
    async fn subscribers_see_events_in_order() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        bus.catalog(CatalogEvent::new(
            CatalogEventKind::EntryAdded,
            "https://x/a.img",
            "added a.img",
        ));
        let mut job = JobSnapshot::queued(JobKind::Hash, "a.img", Some(1));
        bus.job(&job);
        job.finish(JobState::Completed, None);
        bus.job(&job);
        let a = rx.recv().await.unwrap();
        let b = rx.recv().await.unwrap();
        assert!(a.seq < b.seq);
        assert!(matches!(&a.body, EventBody::Catalog(c) if c.kind == CatalogEventKind::EntryAdded));
        assert_eq!(bus.recent(10).len(), 3);
    }

    #[test]
    fn disk_changes_name_what_was_added_removed_and_changed() {
        use std::collections::BTreeMap;
        let before: BTreeMap<String, u64> = [
            ("/dev/loop1".into(), 1),
            ("/dev/sdb".into(), 8),
            ("/dev/sdc".into(), 9),
        ]
        .into();
        let now: BTreeMap<String, u64> = [
            ("/dev/loop1".into(), 1),
            ("/dev/sdb".into(), 16),
            ("/dev/sdd".into(), 4),
        ]
        .into();
        let changes = DiskChanges::between(&before, &now);
        assert_eq!(changes.added, ["/dev/sdd"]);
        assert_eq!(changes.removed, ["/dev/sdc"]);
        assert_eq!(changes.changed, ["/dev/sdb"]);
        assert!(DiskChanges::between(&now, &now).is_empty());
    }

    #[test]
    fn history_skips_progress_and_is_bounded() {
        let bus = EventBus::new();
        let mut job = JobSnapshot::queued(JobKind::Hash, "a", None);
        job.start(crate::jobs::JobPhase::Hashing);
        for _ in 0..10 {
            bus.job(&job);
        }
        assert!(bus.recent(100).is_empty());
        for i in 0..(HISTORY + 5) {
            bus.catalog(CatalogEvent::new(
                CatalogEventKind::ImageHashed,
                &i.to_string(),
                "",
            ));
        }
        assert_eq!(bus.recent(usize::MAX).len(), HISTORY);
    }
}
