//! Domain types ⇄ `bty.v1` messages, in one place.

use crate::actors::catalog::{ImportReport, ListedEntry};
use crate::actors::flasher::{FlashMode, flash_mode};
use crate::events::{Actor, Event, EventBody, EventRecord, Outcome};
use crate::jobs::{JobKind, JobPhase, JobSnapshot, JobState, TargetState};
use bty_proto::v1;
use bty_store::catalog_file::CatalogEntry;
use bty_store::merge::{Row, SourceKind};
use std::borrow::Cow;

/// A merged row.
pub(crate) fn image(row: &Row) -> v1::Image {
    // A local file without a fresh sidecar is queued or being hashed.
    let hashing = row.sha256.is_none() && row.sources.iter().any(|s| s.kind == SourceKind::Local);
    let flash = match flash_mode(row) {
        FlashMode::None => v1::FlashMode::None,
        FlashMode::Local => v1::FlashMode::Local,
        FlashMode::Streamed => v1::FlashMode::Streamed,
        FlashMode::FetchedFirst => v1::FlashMode::FetchedFirst,
    };
    v1::Image {
        id: row.id().to_hex(),
        names: row.names.iter().map(|n| n.to_string()).collect(),
        sha256: row.sha256.map(|d| d.to_hex()),
        format: row.format.as_deref().map(str::to_owned),
        size_bytes: row.size_bytes,
        sources: row
            .sources
            .iter()
            .map(|s| v1::Source {
                kind: source_kind(s.kind).into(),
                location: s.location.to_string(),
            })
            .collect(),
        cached: row.cached,
        actions: Some(v1::Actions {
            fetch: row.actions.fetch,
            update: row.actions.update,
            cache_delete: row.actions.cache_delete,
            entry_delete: row.actions.entry_delete,
        }),
        r#ref: row.image_ref.to_hex(),
        hashing,
        flash: flash.into(),
        signed_by: row.signed_by.as_deref().map(str::to_owned),
    }
}

/// A catalog entry with its ref.
pub(crate) fn entry(entry: CatalogEntry, image_ref: String) -> v1::Entry {
    v1::Entry {
        name: entry.name.to_string(),
        src: entry.src.to_string(),
        r#ref: image_ref,
        sha256: entry.sha256.map(|d| d.to_hex()),
        format: entry.format.map(Cow::into_owned),
        size_bytes: entry.size_bytes,
        description: entry.description.map(String::from),
        sha_url: entry.record.sha_url.map(String::from),
    }
}

/// A listed entry.
pub(crate) fn listed_entry(listed: ListedEntry) -> v1::ListedEntry {
    v1::ListedEntry {
        entry: Some(entry(listed.entry, listed.image_ref)),
        cached_sha256: listed.cached_sha256,
        added_at: listed.added_at,
    }
}

/// An import report.
pub(crate) fn import_report(report: ImportReport) -> v1::ImportReport {
    v1::ImportReport {
        source: report.source,
        imported: report.imported,
        updated: report.updated,
        skipped: report.skipped,
        errors: report
            .errors
            .into_iter()
            .map(|(name, error)| v1::EntryError { name, error })
            .collect(),
    }
}

/// A job kind from the wire (`UNSPECIFIED` = any).
pub(crate) fn job_kind_filter(kind: i32) -> Option<JobKind> {
    match v1::JobKind::try_from(kind).unwrap_or(v1::JobKind::Unspecified) {
        v1::JobKind::Download => Some(JobKind::Download),
        v1::JobKind::Hash => Some(JobKind::Hash),
        v1::JobKind::Flash => Some(JobKind::Flash),
        v1::JobKind::Push => Some(JobKind::Push),
        v1::JobKind::Upload => Some(JobKind::Upload),
        v1::JobKind::Unspecified => None,
    }
}

/// A job snapshot.
pub(crate) fn job(job: JobSnapshot) -> v1::Job {
    let kind = match job.kind {
        JobKind::Download => v1::JobKind::Download,
        JobKind::Hash => v1::JobKind::Hash,
        JobKind::Flash => v1::JobKind::Flash,
        JobKind::Push => v1::JobKind::Push,
        JobKind::Upload => v1::JobKind::Upload,
    };
    let state = match job.state {
        JobState::Queued => v1::JobState::Queued,
        JobState::Running => v1::JobState::Running,
        JobState::Completed => v1::JobState::Completed,
        JobState::Failed => v1::JobState::Failed,
        JobState::Cancelled => v1::JobState::Cancelled,
    };
    v1::Job {
        id: job.id,
        kind: kind.into(),
        subject: job.subject,
        state: state.into(),
        bytes_done: job.bytes_done,
        bytes_total: job.bytes_total,
        rate_bps: job.rate_bps,
        error: job.error,
        created_at_ms: job.created_at_ms,
        started_at_ms: job.started_at_ms,
        finished_at_ms: job.finished_at_ms,
        sha256: job.sha256,
        phase: job_phase(job.phase).into(),
        note: job.note,
        targets: job
            .targets
            .into_iter()
            .map(|t| v1::TargetStatus {
                path: t.path,
                state: target_state(t.state).into(),
                bytes_written: t.bytes_written,
                error: t.error,
                verified: t.verified,
                incremental: t.incremental.map(|d| v1::IncrementalCounts {
                    bytes_compared: d.compared,
                    bytes_written: d.written,
                    bytes_skipped: d.skipped,
                }),
            })
            .collect(),
        source_bytes: job.source_bytes,
    }
}

fn job_phase(phase: JobPhase) -> v1::JobPhase {
    use v1::JobPhase as P;
    match phase {
        JobPhase::None => P::Unspecified,
        JobPhase::Queued => P::Queued,
        JobPhase::Downloading => P::Downloading,
        JobPhase::Pushing => P::Pushing,
        JobPhase::Hashing => P::Hashing,
        JobPhase::Checking => P::Checking,
        JobPhase::Writing => P::Writing,
        JobPhase::Syncing => P::Syncing,
        JobPhase::Verifying => P::Verifying,
        JobPhase::Done => P::Done,
        JobPhase::Failed => P::Failed,
        JobPhase::Cancelled => P::Cancelled,
    }
}

fn source_kind(kind: SourceKind) -> v1::SourceKind {
    match kind {
        SourceKind::Local => v1::SourceKind::Local,
        SourceKind::Url => v1::SourceKind::Url,
        SourceKind::Manifest => v1::SourceKind::Manifest,
    }
}

fn target_state(state: TargetState) -> v1::TargetState {
    match state {
        TargetState::Queued => v1::TargetState::Queued,
        TargetState::Writing => v1::TargetState::Writing,
        TargetState::Syncing => v1::TargetState::Syncing,
        TargetState::Verifying => v1::TargetState::Verifying,
        TargetState::Done => v1::TargetState::Done,
        TargetState::Failed => v1::TargetState::Failed,
        TargetState::Cancelled => v1::TargetState::Cancelled,
        TargetState::Refused => v1::TargetState::Refused,
    }
}

/// An event.
pub(crate) fn event(event: &Event) -> v1::Event {
    let body = match &event.body {
        EventBody::Job(j) => v1::event::Body::Job(job(j.clone())),
        EventBody::Catalog(c) => v1::event::Body::Catalog(v1::CatalogChanged {
            kind: v1::CatalogEventKind::from(c.kind).into(),
            subject: c.subject.clone(),
            summary: c.summary.clone(),
            failed: c.failed,
        }),
        EventBody::Disks(d) => v1::event::Body::Disks(v1::DisksChanged {
            added: d.added.clone(),
            removed: d.removed.clone(),
            changed: d.changed.clone(),
        }),
    };
    v1::Event {
        seq: event.seq,
        at_ms: event.at_ms,
        body: Some(body),
    }
}

/// An entry of the event log.
pub(crate) fn logged_event(record: &EventRecord) -> v1::LoggedEvent {
    v1::LoggedEvent {
        id: record.id,
        at_ms: record.at_ms,
        kind: record.kind.clone(),
        subject: record.subject.clone(),
        summary: record.summary.clone(),
        outcome: match record.outcome {
            Outcome::Info => v1::EventOutcome::Info,
            Outcome::Ok => v1::EventOutcome::Ok,
            Outcome::Failed => v1::EventOutcome::Failed,
            Outcome::Cancelled => v1::EventOutcome::Cancelled,
        }
        .into(),
        actor: match record.origin.actor {
            Actor::System => v1::EventActor::System,
            Actor::Operator => v1::EventActor::Operator,
        }
        .into(),
        peer: record.origin.peer.clone(),
        on_behalf_of: record.origin.on_behalf_of.clone(),
        acknowledged: record.acknowledged(),
    }
}

/// The "you missed events" marker for lagging watchers.
pub(crate) fn resync(missed: u64) -> v1::Event {
    v1::Event {
        seq: 0,
        at_ms: crate::jobs::now_ms(),
        body: Some(v1::event::Body::Resync(v1::Resync { missed })),
    }
}

/// A disk with its verdict.
pub(crate) fn disk(disk: bty_disks::Disk) -> v1::Disk {
    let refusals: Vec<String> = match &disk.verdict {
        bty_disks::Verdict::Writable => Vec::new(),
        bty_disks::Verdict::Refused(r) => r.iter().map(ToString::to_string).collect(),
    };
    v1::Disk {
        path: disk.path.display().to_string(),
        name: disk.name,
        size_bytes: disk.size_bytes,
        model: disk.model,
        vendor: disk.vendor,
        serial: disk.serial,
        transport: disk.transport,
        removable: disk.removable,
        read_only: disk.read_only,
        rotational: disk.rotational,
        logical_block_size: disk.logical_block_size,
        physical_block_size: disk.physical_block_size,
        partitions: disk
            .partitions
            .into_iter()
            .map(|p| v1::Partition {
                path: p.path.display().to_string(),
                size_bytes: p.size_bytes,
                mounts: p.mounts,
            })
            .collect(),
        mounts: disk.mounts,
        holders: disk.holders,
        swap: disk.swap,
        system_disk: disk.system_disk,
        diskseq: disk.diskseq,
        writable: refusals.is_empty(),
        refusals,
    }
}
