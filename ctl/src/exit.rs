//! How btyctl fails: one error type for every command, its one-line message
//! and the documented exit code it maps to.

use bty_proto::channel::ChannelError;
use std::error::Error as _;
use std::path::PathBuf;
use thiserror::Error;
use tonic::Code;

/// The exit-code table shown in `--help`; keep it in step with [`Exit`].
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other error
  2  usage error (bad flags or arguments)
  3  not found
  4  already exists / conflict
  5  invalid argument / refused input / flash not confirmed
  6  btyd unreachable (cannot connect, or unavailable)
  7  job failed or was cancelled
  8  failed precondition / permission denied";

/// Process exit codes scripts can rely on (see [`EXIT_CODES_HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Anything without a more specific code.
    Other = 1,
    /// The named thing does not exist.
    NotFound = 3,
    /// The thing exists already, or the request conflicts with the state.
    Conflict = 4,
    /// The daemon refused the input as invalid.
    Invalid = 5,
    /// btyd could not be reached.
    Unreachable = 6,
    /// A watched job ended failed or cancelled.
    JobFailed = 7,
    /// The state or permissions do not allow the operation.
    Refused = 8,
}

impl Exit {
    /// The code for a gRPC status returned by btyd.
    pub(crate) fn from_code(code: Code) -> Self {
        match code {
            Code::NotFound => Self::NotFound,
            Code::AlreadyExists | Code::Aborted => Self::Conflict,
            Code::InvalidArgument | Code::OutOfRange => Self::Invalid,
            Code::Unavailable => Self::Unreachable,
            Code::FailedPrecondition | Code::PermissionDenied | Code::Unauthenticated => {
                Self::Refused
            }
            _ => Self::Other,
        }
    }
}

impl From<Exit> for u8 {
    fn from(exit: Exit) -> Self {
        exit as u8
    }
}

/// Why a btyctl command failed.
#[derive(Debug, Error)]
pub(crate) enum CtlError {
    /// No channel to btyd.
    #[error(transparent)]
    Connect(#[from] ChannelError),
    /// btyd could not be reached for a call (the channel connects lazily,
    /// so a missing daemon usually shows up here rather than as `Connect`).
    #[error("cannot reach btyd at {target}: {}", status_message(.status))]
    Unreachable {
        /// The endpoint tried.
        target: String,
        /// The `Unavailable` status of the call.
        status: tonic::Status,
    },
    /// btyd answered with an error status.
    #[error("{}", status_message(.0))]
    Status(#[from] tonic::Status),
    /// A watched job ended without completing.
    #[error("job {id} {state}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    JobEnded {
        /// The job id.
        id: String,
        /// `failed` or `cancelled`.
        state: &'static str,
        /// The job's error, when it has one.
        reason: Option<String>,
    },
    /// The job stream closed before the job reached a final state.
    #[error("job {0} is still {1} but the daemon stopped reporting it")]
    WatchEnded(String, &'static str),
    /// The event stream closed while watching disks.
    #[error("btyd stopped sending events")]
    EventsEnded,
    /// A local file named on the command line could not be read.
    #[error("cannot read {}", path.display())]
    ReadFile {
        /// The path as given.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A catalog file larger than btyd takes (its `max_catalog_bytes`),
    /// refused before it is sent.
    #[error("catalog at {} is {size} bytes, over the {max}-byte limit (max_catalog_bytes)", path.display())]
    CatalogTooLarge {
        /// The path as given.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// btyd's limit.
        max: u64,
    },
    /// A local file or directory could not be written.
    #[error("cannot write {}", path.display())]
    WriteFile {
        /// The path as given.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Writing to stdout failed (e.g. a closed pipe).
    #[error("cannot write output")]
    Output(#[source] std::io::Error),
    /// An upload whose image name cannot be taken from the file's path.
    #[error("cannot tell an image name from {}: pass --name", .0.display())]
    NoName(PathBuf),
    /// A flash target that is neither a listed disk nor an allowed file.
    #[error("no such disk: {0}")]
    NoSuchDisk(String),
    /// The operator did not type `yes` at the flash prompt.
    #[error("not confirmed")]
    NotConfirmed,
    /// A flash needs confirmation but stdin is not a terminal to ask on.
    #[error(
        "stdin is not a terminal, so btyctl will not prompt: pass --yes to confirm the targets"
    )]
    NoTerminal,
    /// Reading the operator's answer failed.
    #[error("cannot read the confirmation")]
    Prompt(#[source] std::io::Error),
    /// A `--sign` key file that is not a usable private key.
    #[error("signing key {}: {reason}", path.display())]
    SigningKey {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A completed push job whose note names no pushed manifest.
    #[error("push job {0} did not report the manifest it pushed; nothing was signed")]
    NoPushedManifest(String),
    /// A flash job ended with targets that were not written.
    #[error("job {id}: {} of {total} targets not written: {}", .failed.len(), .failed.join(", "))]
    TargetsFailed {
        /// The job id.
        id: String,
        /// How many targets the job had.
        total: usize,
        /// `path (state: error)` of each target that failed, was refused or cancelled.
        failed: Vec<String>,
    },
}

impl CtlError {
    /// The exit code for this failure.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            Self::Connect(ChannelError::Connect { .. }) => Exit::Unreachable,
            Self::Connect(_) => Exit::Other,
            Self::Unreachable { .. } => Exit::Unreachable,
            Self::Status(status) => Exit::from_code(status.code()),
            Self::JobEnded { .. } | Self::TargetsFailed { .. } => Exit::JobFailed,
            Self::WatchEnded(..)
            | Self::EventsEnded
            | Self::Output(_)
            | Self::Prompt(_)
            | Self::WriteFile { .. } => Exit::Other,
            Self::NoSuchDisk(_) => Exit::NotFound,
            Self::NoName(_)
            | Self::NotConfirmed
            | Self::NoTerminal
            | Self::CatalogTooLarge { .. }
            | Self::SigningKey { .. } => Exit::Invalid,
            Self::NoPushedManifest(_) => Exit::Other,
            Self::ReadFile { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => Exit::NotFound,
                std::io::ErrorKind::PermissionDenied => Exit::Refused,
                _ => Exit::Other,
            },
        }
    }

    /// Name the endpoint in an `Unavailable` status, which otherwise says
    /// only what the socket call said (e.g. "No such file or directory").
    pub(crate) fn with_target(self, target: &impl std::fmt::Display) -> Self {
        match self {
            Self::Status(status) if status.code() == Code::Unavailable => Self::Unreachable {
                target: target.to_string(),
                status,
            },
            other => other,
        }
    }

    /// One line for stderr: this error and its causes, without Debug noise.
    pub(crate) fn report(&self) -> String {
        let mut line = self.to_string();
        // A status's message is already what the daemon meant to say; its
        // source (if any) is a transport detail repeated in that message.
        if matches!(self, Self::Status(_) | Self::Unreachable { .. }) {
            return line;
        }
        let mut source = self.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        line
    }
}

/// The status message, or the code's description when the daemon sent none.
fn status_message(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        status.code().description().to_owned()
    } else {
        status.message().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_status_codes_to_documented_exit_codes() {
        let table = [
            (Code::NotFound, 3),
            (Code::AlreadyExists, 4),
            (Code::Aborted, 4),
            (Code::InvalidArgument, 5),
            (Code::Unavailable, 6),
            (Code::FailedPrecondition, 8),
            (Code::PermissionDenied, 8),
            (Code::Internal, 1),
            (Code::Unknown, 1),
        ];
        for (code, expected) in table {
            assert_eq!(u8::from(Exit::from_code(code)), expected, "{code:?}");
        }
    }

    #[test]
    fn reports_status_message_not_debug() {
        let err = CtlError::from(tonic::Status::not_found("no image named x"));
        assert_eq!(err.report(), "no image named x");
        let empty = CtlError::from(tonic::Status::new(Code::Internal, ""));
        assert!(!empty.report().is_empty());
    }

    #[test]
    fn reports_file_errors_with_their_cause() {
        let err = CtlError::ReadFile {
            path: "/x/catalog.toml".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(err.report().starts_with("cannot read /x/catalog.toml: "));
        assert_eq!(err.exit(), Exit::NotFound);
    }

    #[test]
    fn failed_job_exits_seven() {
        let err = CtlError::JobEnded {
            id: "j1".into(),
            state: "failed",
            reason: Some("digest mismatch".into()),
        };
        assert_eq!(u8::from(err.exit()), 7);
        assert_eq!(err.report(), "job j1 failed: digest mismatch");
    }

    #[test]
    fn flash_refusals_have_their_documented_codes() {
        assert_eq!(u8::from(CtlError::NotConfirmed.exit()), 5);
        assert_eq!(u8::from(CtlError::NoTerminal.exit()), 5);
        assert_eq!(u8::from(CtlError::NoSuchDisk("/dev/x".into()).exit()), 3);
        let failed = CtlError::TargetsFailed {
            id: "f1".into(),
            total: 2,
            failed: vec!["/dev/sdc (failed: write error)".into()],
        };
        assert_eq!(u8::from(failed.exit()), 7);
        assert_eq!(
            failed.report(),
            "job f1: 1 of 2 targets not written: /dev/sdc (failed: write error)"
        );
    }
}
