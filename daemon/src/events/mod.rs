//! The daemon's event stream: job snapshots and catalog changes, fanned out
//! to every watcher (gRPC `Subscribe`, the web's SSE) with a bounded buffer,
//! plus the event log of notable events and operators' requests (the
//! timeline and the pages' activity cards), kept across restarts.

mod journal;
mod record;
mod timeline;

pub use journal::JournalError;
pub use record::{Actor, EventRecord, Origin, Outcome};
pub use timeline::{DEFAULT_CAPACITY, EventFilter, Timeline};

use crate::jobs::{JobSnapshot, now_ms};
use crate::metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast;

/// How many events a slow watcher may lag before it is told to resync.
const CHANNEL_CAPACITY: usize = 1024;

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

impl From<CatalogEventKind> for bty_proto::v1::CatalogEventKind {
    fn from(kind: CatalogEventKind) -> Self {
        use CatalogEventKind as K;
        match kind {
            K::EntryAdded => Self::EntryAdded,
            K::EntryDeleted => Self::EntryDeleted,
            K::CatalogImported => Self::CatalogImported,
            K::CatalogImportFailed => Self::CatalogImportFailed,
            K::ImageAppeared => Self::ImageAppeared,
            K::ImageRemoved => Self::ImageRemoved,
            K::ImageHashed => Self::ImageHashed,
            K::ImageUploaded => Self::ImageUploaded,
            K::ImageUploadFailed => Self::ImageUploadFailed,
            K::CachePopulated => Self::CachePopulated,
            K::CacheDeleted => Self::CacheDeleted,
            K::FlashInterrupted => Self::FlashInterrupted,
        }
    }
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
    timeline: Arc<Timeline>,
    metrics: Metrics,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// An empty bus whose log lives as long as the run.
    pub fn new() -> Self {
        Self::with_timeline(Timeline::in_memory(DEFAULT_CAPACITY))
    }

    /// A bus logging into `timeline`; event numbers go on after its
    /// newest, so ids stay unique across restarts.
    pub fn with_timeline(timeline: Timeline) -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self {
            tx,
            seq: Arc::new(AtomicU64::new(timeline.last_id() + 1)),
            timeline: Arc::new(timeline),
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

    /// Log an operator's request (only in the log: what it sets off is
    /// published by the actors that do it).
    pub fn request(&self, call: &str, subject: &str, origin: Origin) {
        let at_ms = now_ms();
        self.timeline.push_with(
            || self.next_seq(),
            |id| {
                let summary = match origin.on_behalf_of.as_str() {
                    "" => format!("{call} by {}", origin.peer),
                    on_behalf_of => format!("{call} by {} for {on_behalf_of}", origin.peer),
                };
                EventRecord::new(
                    id,
                    at_ms,
                    format!("request.{call}"),
                    subject.to_owned(),
                    summary,
                    Outcome::Info,
                    origin,
                )
            },
        );
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    fn publish(&self, body: EventBody, notable: bool) {
        let at_ms = now_ms();
        let event = if notable {
            let mut event = None;
            self.timeline.push_with(
                || self.next_seq(),
                |seq| {
                    let e = Arc::new(Event { seq, at_ms, body });
                    let record = EventRecord::of(&e);
                    event = Some(e);
                    record
                },
            );
            match event {
                Some(event) => event,
                None => return,
            }
        } else {
            Arc::new(Event {
                seq: self.next_seq(),
                at_ms,
                body,
            })
        };
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

    /// The event log.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
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
        assert_eq!(bus.timeline().query(&EventFilter::default(), 10).0.len(), 3);
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
        assert!(
            bus.timeline()
                .query(&EventFilter::default(), 100)
                .0
                .is_empty()
        );
        for i in 0..(DEFAULT_CAPACITY + 5) {
            bus.catalog(CatalogEvent::new(
                CatalogEventKind::ImageHashed,
                &i.to_string(),
                "",
            ));
        }
        let (all, _) = bus
            .timeline()
            .query(&EventFilter::default(), usize::MAX - 1);
        assert_eq!(all.len(), DEFAULT_CAPACITY);
        bus.request("AddEntry", "https://x/a.img", Origin::system());
        let (newest, _) = bus.timeline().query(&EventFilter::default(), 1);
        assert_eq!(newest[0].kind, "request.AddEntry");
        assert!(newest[0].id > all[0].id);
    }
}
