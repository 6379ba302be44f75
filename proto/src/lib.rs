//! The bty gRPC contract: generated `bty.v1` messages, clients and servers,
//! and the one way clients (btyctl, bty-web) open a channel to btyd.

pub mod auth;
pub mod channel;

/// The message runtime, for `encoded_len` and friends without a second
/// dependency on it.
pub use prost;

/// Version 1 of the bty API.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("bty.v1");
}

/// Encoded `FileDescriptorSet` of `bty.v1` (with imports), for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("bty_descriptor");

/// Default Unix socket of a system-wide btyd.
pub const DEFAULT_SOCKET: &str = "/run/bty/btyd.sock";

impl v1::TargetState {
    /// The lower-case word shown to people and in JSON (`done`, `refused`…).
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::Queued => "queued",
            Self::Writing => "writing",
            Self::Syncing => "syncing",
            Self::Verifying => "verifying",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
        }
    }

    /// Whether the target ended without being written (failed, refused or
    /// cancelled).
    pub fn is_unwritten(self) -> bool {
        matches!(self, Self::Failed | Self::Refused | Self::Cancelled)
    }
}

impl v1::CatalogEventKind {
    /// The dotted, past-tense name shown to people and in JSON
    /// (`entry.added`, `catalog.imported`…).
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::EntryAdded => "entry.added",
            Self::EntryDeleted => "entry.deleted",
            Self::CatalogImported => "catalog.imported",
            Self::CatalogImportFailed => "catalog.import.failed",
            Self::ImageAppeared => "image.appeared",
            Self::ImageRemoved => "image.removed",
            Self::ImageHashed => "image.hashed",
            Self::ImageUploaded => "image.uploaded",
            Self::ImageUploadFailed => "image.upload.failed",
            Self::CachePopulated => "cache.populated",
            Self::CacheDeleted => "cache.deleted",
            Self::FlashInterrupted => "flash.interrupted",
        }
    }
}

impl v1::EventOutcome {
    /// The word shown to people and in JSON (`ok`, `failed`…).
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::Info => "info",
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl v1::EventActor {
    /// The word shown to people and in JSON (upstream's `system` and
    /// `operator`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::System => "system",
            Self::Operator => "operator",
        }
    }
}

impl v1::JobPhase {
    /// The lower-case word shown to people and in JSON (`downloading`,
    /// `writing`, `done`…); empty when there is no phase.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "",
            Self::Queued => "queued",
            Self::Downloading => "downloading",
            Self::Pushing => "pushing",
            Self::Hashing => "hashing",
            Self::Checking => "checking",
            Self::Writing => "writing",
            Self::Syncing => "syncing",
            Self::Verifying => "verifying",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl v1::Job {
    /// What to show as the job's phase: its note when it has one (a
    /// finished download's "up to date: …", a push's "pushed …"), else
    /// the phase's word.
    pub fn phase_text(&self) -> &str {
        match self.note.as_deref() {
            Some(note) if !note.is_empty() => note,
            _ => self.phase().label(),
        }
    }
}

impl v1::SourceKind {
    /// The word shown to people and in JSON (`local`, `url`, `manifest`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::Local => "local",
            Self::Url => "url",
            Self::Manifest => "manifest",
        }
    }

    /// Whether the bytes come from somewhere else (a catalog entry).
    pub fn is_remote(self) -> bool {
        matches!(self, Self::Url | Self::Manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::v1;

    #[test]
    fn a_note_is_shown_in_place_of_the_phase() {
        let mut job = v1::Job {
            phase: v1::JobPhase::Done.into(),
            ..v1::Job::default()
        };
        assert_eq!(job.phase_text(), "done");
        job.note = Some("up to date: upstream unchanged".into());
        assert_eq!(job.phase_text(), "up to date: upstream unchanged");
        assert_eq!(v1::Job::default().phase_text(), "");
        assert_eq!(v1::SourceKind::Manifest.label(), "manifest");
    }
}
