//! The event log in memory: the newest `capacity` records, oldest first,
//! ids increasing, optionally backed by the journal on disk. Queries scan
//! newest first; the log is bounded, so a scan is too.

use super::journal::{self, Journal, JournalError, JournalOp, Records};
use super::record::{Actor, EventRecord, Outcome};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How many events the log keeps unless configured otherwise.
pub const DEFAULT_CAPACITY: usize = 5_000;

/// What a query keeps; every field left empty matches everything.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only ids below this (paging); 0 = no bound.
    pub before_id: u64,
    /// Kinds starting with any of these (none: every kind).
    pub kinds: Vec<String>,
    /// Subjects containing this, case-insensitively.
    pub subject: String,
    /// Peers or on-behalf-of containing this.
    pub source: String,
    /// At or after (epoch ms); 0 = no bound.
    pub since_ms: i64,
    /// Before (epoch ms); 0 = no bound.
    pub until_ms: i64,
    /// Only this actor.
    pub actor: Option<Actor>,
    /// Only failures.
    pub failed_only: bool,
    /// Only events not yet acknowledged.
    pub unacknowledged_only: bool,
}

impl EventFilter {
    fn keeps(&self, r: &EventRecord, subject_lower: &str) -> bool {
        (self.before_id == 0 || r.id < self.before_id)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| r.kind.starts_with(k.as_str())))
            && (subject_lower.is_empty() || r.subject.to_lowercase().contains(subject_lower))
            && (self.source.is_empty()
                || r.origin.peer.contains(&self.source)
                || r.origin.on_behalf_of.contains(&self.source))
            && r.at_ms >= self.since_ms
            && (self.until_ms == 0 || r.at_ms < self.until_ms)
            && self.actor.is_none_or(|a| a == r.origin.actor)
            && (!self.failed_only || r.outcome == Outcome::Failed)
            && (!self.unacknowledged_only || !r.acknowledged())
    }
}

/// The bounded log.
#[derive(Debug)]
pub struct Timeline {
    records: Records,
    capacity: usize,
    journal: Option<Journal>,
}

impl Timeline {
    /// A log that lives as long as the daemon run.
    pub fn in_memory(capacity: usize) -> Self {
        Self {
            records: Arc::new(Mutex::new(VecDeque::new())),
            capacity: capacity.max(1),
            journal: None,
        }
    }

    /// A log kept in the file at `path`, read back now.
    pub fn persisted(path: &Path, capacity: usize) -> Result<Self, JournalError> {
        let mut timeline = Self::in_memory(capacity);
        timeline.journal = Some(journal::open(path, timeline.capacity, &timeline.records)?);
        Ok(timeline)
    }

    /// The newest id kept (0 when empty): a new run numbers after it.
    pub fn last_id(&self) -> u64 {
        self.lock().back().map_or(0, |r| r.id)
    }

    /// Add a record built from the next id. `next_id` is called under the
    /// log's lock, so ids enter the log in increasing order.
    pub fn push_with(
        &self,
        next_id: impl FnOnce() -> u64,
        record: impl FnOnce(u64) -> EventRecord,
    ) {
        let mut records = self.lock();
        let record = Arc::new(record(next_id()));
        if records.len() == self.capacity {
            records.pop_front();
        }
        records.push_back(record.clone());
        if let Some(journal) = &self.journal {
            journal.send(JournalOp::Append(record));
        }
    }

    /// Up to `limit` matching records, newest first, and whether more match.
    pub fn query(&self, filter: &EventFilter, limit: usize) -> (Vec<Arc<EventRecord>>, bool) {
        let subject = filter.subject.to_lowercase();
        let records = self.lock();
        let mut found: Vec<Arc<EventRecord>> = records
            .iter()
            .rev()
            .filter(|r| filter.keeps(r, &subject))
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        let more = found.len() > limit;
        found.truncate(limit);
        (found, more)
    }

    /// Mark the records with these ids seen; the ids found.
    pub fn acknowledge(&self, ids: &[u64]) -> Vec<u64> {
        let records = self.lock();
        let mut done = Vec::new();
        for &id in ids {
            if let Ok(i) = records.binary_search_by_key(&id, |r| r.id) {
                records[i].acknowledge();
                done.push(id);
                if let Some(journal) = &self.journal {
                    journal.send(JournalOp::Ack(id));
                }
            }
        }
        done
    }

    /// Wait up to `timeout` for every event logged so far to be on disk
    /// (the end of a run: the last events, a flash cut short among them,
    /// must not be lost with the process). Blocking; true when done.
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        self.journal.as_ref().is_none_or(|j| j.flush(timeout))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<EventRecord>>> {
        // A poisoned lock only means a panic elsewhere mid-push; the deque
        // itself is still valid.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::record::Origin;

    fn record(id: u64, kind: &str, outcome: Outcome, origin: Origin) -> EventRecord {
        EventRecord::new(
            id,
            i64::try_from(id).unwrap() * 1000,
            kind.into(),
            format!("Subject-{id}"),
            format!("summary {id}"),
            outcome,
            origin,
        )
    }

    fn operator(on_behalf_of: &str) -> Origin {
        Origin {
            actor: Actor::Operator,
            peer: "uid=0 gid=0 pid=1".into(),
            on_behalf_of: on_behalf_of.into(),
        }
    }

    fn fill(timeline: &Timeline, ids: std::ops::RangeInclusive<u64>) {
        for id in ids {
            let (kind, outcome, origin) = match id % 3 {
                0 => ("download.failed", Outcome::Failed, Origin::system()),
                1 => ("entry.added", Outcome::Ok, Origin::system()),
                _ => ("request.AddEntry", Outcome::Info, operator("web 192.0.2.7")),
            };
            timeline.push_with(|| id, |id| record(id, kind, outcome, origin));
        }
    }

    #[test]
    fn queries_filter_newest_first_and_page() {
        let timeline = Timeline::in_memory(100);
        fill(&timeline, 1..=30);
        let (page, more) = timeline.query(&EventFilter::default(), 5);
        assert_eq!(
            page.iter().map(|r| r.id).collect::<Vec<_>>(),
            [30, 29, 28, 27, 26]
        );
        assert!(more);
        let next = EventFilter {
            before_id: 26,
            kinds: vec!["download.".into()],
            ..EventFilter::default()
        };
        let (page, _) = timeline.query(&next, 3);
        assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [24, 21, 18]);
        let by_source = EventFilter {
            source: "192.0.2.7".into(),
            actor: Some(Actor::Operator),
            since_ms: 20_000,
            until_ms: 26_000,
            ..EventFilter::default()
        };
        let (page, more) = timeline.query(&by_source, 10);
        assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [23, 20]);
        assert!(!more);
        let by_subject = EventFilter {
            subject: "subject-1".into(),
            failed_only: true,
            ..EventFilter::default()
        };
        let (page, _) = timeline.query(&by_subject, 10);
        assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [18, 15, 12]);
    }

    #[test]
    fn acknowledged_events_drop_out_of_the_unacknowledged_view() {
        let timeline = Timeline::in_memory(100);
        fill(&timeline, 1..=6);
        assert_eq!(timeline.acknowledge(&[3, 6, 99]), [3, 6]);
        let open = EventFilter {
            failed_only: true,
            unacknowledged_only: true,
            ..EventFilter::default()
        };
        assert!(timeline.query(&open, 10).0.is_empty());
        let (all, _) = timeline.query(&EventFilter::default(), 10);
        assert!(all.iter().find(|r| r.id == 6).unwrap().acknowledged());
    }

    #[test]
    fn the_log_is_bounded() {
        let timeline = Timeline::in_memory(10);
        fill(&timeline, 1..=25);
        let (all, more) = timeline.query(&EventFilter::default(), 100);
        assert_eq!(all.len(), 10);
        assert_eq!(all.last().unwrap().id, 16);
        assert!(!more);
        assert_eq!(timeline.last_id(), 25);
    }

    #[test]
    fn a_persisted_log_survives_a_restart_with_its_acks_and_skips_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        {
            let timeline = Timeline::persisted(&path, 100).unwrap();
            fill(&timeline, 1..=9);
            timeline.acknowledge(&[3]);
            assert!(timeline.flush(std::time::Duration::from_secs(10)));
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 10);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{not json\n{\"v\":9,\"id\":100}\n")
            .unwrap();
        let timeline = Timeline::persisted(&path, 100).unwrap();
        assert_eq!(timeline.last_id(), 9);
        let (all, _) = timeline.query(&EventFilter::default(), 100);
        assert_eq!(all.len(), 9);
        let third = all.iter().find(|r| r.id == 3).unwrap();
        assert!(third.acknowledged());
        assert_eq!(third.kind, "download.failed");
        let second = all.iter().find(|r| r.id == 2).unwrap();
        assert_eq!(second.origin, operator("web 192.0.2.7"));
    }

    #[test]
    fn a_long_log_is_compacted_to_what_it_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        {
            let timeline = Timeline::persisted(&path, 10).unwrap();
            fill(&timeline, 1..=200);
            // The writer compacts after the batch that crossed the bound.
            wait_for(&path, |text| {
                text.lines().count() <= 10 * 2 + 64
                    && text
                        .lines()
                        .last()
                        .is_some_and(|l| l.contains("\"id\":200,"))
            });
        }
        let timeline = Timeline::persisted(&path, 10).unwrap();
        let (all, _) = timeline.query(&EventFilter::default(), 100);
        assert_eq!(all.iter().map(|r| r.id).max(), Some(200));
        assert_eq!(all.len(), 10);
    }

    #[test]
    fn a_symlink_planted_as_the_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"precious\n").unwrap();
        let path = dir.path().join("events.jsonl");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let error = Timeline::persisted(&path, 10).unwrap_err();
        assert!(error.to_string().contains("events.jsonl"), "{error}");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious\n");
    }

    use std::fs::OpenOptions;
    use std::io::Write;

    fn wait_for(path: &Path, done: impl Fn(&str) -> bool) {
        for _ in 0..200 {
            if std::fs::read_to_string(path).is_ok_and(|s| done(&s)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the event log at {} never caught up", path.display());
    }
}
