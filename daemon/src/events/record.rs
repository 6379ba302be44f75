//! One entry of the event log: what happened, to what, how it ended and
//! who asked, flattened from the live event so it can outlive the daemon
//! run (the live bodies carry whole job snapshots; the log keeps a line).

use super::{CatalogEventKind, DiskChanges, Event, EventBody};
use crate::jobs::{JobSnapshot, JobState};
use std::sync::atomic::{AtomicBool, Ordering};

/// How an event ended, for colour and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Something started or changed (queued, plugged in, requested).
    Info,
    /// Ended well.
    Ok,
    /// Ended with an error.
    Failed,
    /// Stopped on request.
    Cancelled,
}

/// Who made it happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// btyd on its own.
    System,
    /// A request through the API.
    Operator,
}

/// Where an operator's request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Who made it happen.
    pub actor: Actor,
    /// The caller as the transport saw it (peer credentials or address).
    pub peer: String,
    /// Whom the caller said it acted for (bty-web: the browser's address).
    pub on_behalf_of: String,
}

impl Origin {
    /// btyd itself.
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            peer: String::new(),
            on_behalf_of: String::new(),
        }
    }
}

/// One logged event.
#[derive(Debug)]
pub struct EventRecord {
    /// Unique and increasing, across restarts when the log is kept.
    pub id: u64,
    /// Epoch milliseconds.
    pub at_ms: i64,
    /// Dotted name (`download.failed`, `entry.added`, `request.AddEntry`).
    pub kind: String,
    /// What it is about.
    pub subject: String,
    /// One line for an operator.
    pub summary: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Who made it happen.
    pub origin: Origin,
    acknowledged: AtomicBool,
}

impl EventRecord {
    /// A record, not yet acknowledged.
    pub fn new(
        id: u64,
        at_ms: i64,
        kind: String,
        subject: String,
        summary: String,
        outcome: Outcome,
        origin: Origin,
    ) -> Self {
        Self {
            id,
            at_ms,
            kind,
            subject,
            summary,
            outcome,
            origin,
            acknowledged: AtomicBool::new(false),
        }
    }

    /// The log's line for a live event.
    pub fn of(event: &Event) -> Self {
        let (kind, subject, summary, outcome) = match &event.body {
            EventBody::Job(job) => job_line(job),
            EventBody::Catalog(change) => (
                change.kind.label().to_owned(),
                change.subject.clone(),
                change.summary.clone(),
                if change.failed {
                    Outcome::Failed
                } else {
                    Outcome::Ok
                },
            ),
            EventBody::Disks(disks) => (
                "disks.changed".to_owned(),
                disks_subject(disks),
                disks_summary(disks),
                Outcome::Info,
            ),
        };
        Self::new(
            event.seq,
            event.at_ms,
            kind,
            subject,
            summary,
            outcome,
            Origin::system(),
        )
    }

    /// Whether an operator has marked it seen.
    pub fn acknowledged(&self) -> bool {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Mark it seen (or restore the mark when loading the log).
    pub fn acknowledge(&self) {
        self.acknowledged.store(true, Ordering::Relaxed);
    }
}

impl CatalogEventKind {
    /// The dotted name clients show (`entry.added`…), as the API's enum
    /// spells it.
    pub fn label(self) -> &'static str {
        bty_proto::v1::CatalogEventKind::from(self).label()
    }
}

fn job_line(job: &JobSnapshot) -> (String, String, String, Outcome) {
    let kind = job.kind.label();
    let mut summary = format!("{kind} of {} {}", job.subject, job.state.label());
    let targets: Vec<&str> = job.targets.iter().map(|t| t.path.as_str()).collect();
    if !targets.is_empty() {
        summary = format!(
            "{kind} of {} onto {} {}",
            job.subject,
            targets.join(", "),
            job.state.label()
        );
    }
    if let Some(detail) = job.error.as_ref().or(job.note.as_ref()) {
        summary.push_str(": ");
        summary.push_str(detail);
    }
    let outcome = match job.state {
        JobState::Queued | JobState::Running => Outcome::Info,
        JobState::Completed => Outcome::Ok,
        JobState::Failed => Outcome::Failed,
        JobState::Cancelled => Outcome::Cancelled,
    };
    (
        format!("{kind}.{}", job.state.label()),
        job.subject.clone(),
        summary,
        outcome,
    )
}

fn disks_subject(disks: &DiskChanges) -> String {
    [&disks.added, &disks.removed, &disks.changed]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn disks_summary(disks: &DiskChanges) -> String {
    let mut parts = Vec::new();
    for (what, paths) in [
        ("plugged in", &disks.added),
        ("removed", &disks.removed),
        ("changed", &disks.changed),
    ] {
        if !paths.is_empty() {
            parts.push(format!("{} {what}", paths.join(", ")));
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::CatalogEvent;
    use crate::jobs::JobKind;

    fn event(body: EventBody) -> Event {
        Event {
            seq: 7,
            at_ms: 1_000,
            body,
        }
    }

    #[test]
    fn a_failed_job_is_a_failed_line_with_its_error() {
        let mut job = JobSnapshot::queued(JobKind::Download, "debian.img", None);
        job.finish(JobState::Failed, Some("HTTP 404".into()));
        let record = EventRecord::of(&event(EventBody::Job(job)));
        assert_eq!(record.kind, "download.failed");
        assert_eq!(record.subject, "debian.img");
        assert_eq!(record.summary, "download of debian.img failed: HTTP 404");
        assert_eq!(record.outcome, Outcome::Failed);
        assert_eq!(record.origin.actor, Actor::System);
        assert!(!record.acknowledged());
    }

    #[test]
    fn catalog_and_disk_events_keep_their_names() {
        let added = EventRecord::of(&event(EventBody::Catalog(CatalogEvent::new(
            CatalogEventKind::EntryAdded,
            "https://x/a.img",
            "added a.img",
        ))));
        assert_eq!(
            (added.kind.as_str(), added.outcome),
            ("entry.added", Outcome::Ok)
        );
        let disks = EventRecord::of(&event(EventBody::Disks(DiskChanges {
            added: vec!["/dev/sdb".into()],
            removed: vec!["/dev/sdc".into()],
            changed: Vec::new(),
        })));
        assert_eq!(disks.kind, "disks.changed");
        assert_eq!(disks.subject, "/dev/sdb /dev/sdc");
        assert_eq!(disks.summary, "/dev/sdb plugged in; /dev/sdc removed");
    }
}
