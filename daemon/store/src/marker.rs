//! The storage marker `.bty-storage.json`: states which layout of file names
//! the image root uses, so a daemon never misreads a root written by an
//! incompatible version. Checked once at start-up, before anything else
//! touches the root.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use thiserror::Error;

use crate::atomic::write_atomic;
use crate::names::MARKER_FILE;

/// Layout version of the image root. Bump only when the file-name grammar
/// changes, never with the package version.
pub const STORAGE_FORMAT_VERSION: u64 = 1;

/// What [`ensure_marker`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// There was no marker; one was written.
    Created,
    /// A marker with the current version was already there (left untouched).
    Existing,
}

/// Why the image root cannot be used.
#[derive(Debug, Error)]
pub enum MarkerError {
    /// The image root could not be created.
    #[error("creating image root {path}")]
    CreateRoot {
        /// The image root.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The marker exists but cannot be read.
    #[error("reading storage marker {path}")]
    Read {
        /// The marker file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The marker is not the JSON bty writes.
    #[error(
        "storage marker {path} is not valid ({detail}); this image root was not written by a \
         compatible bty: archive or wipe it (or point image_root elsewhere), then restart"
    )]
    Invalid {
        /// The marker file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The marker names another layout version.
    #[error(
        "image root {root} uses storage format {found}, this bty uses {expected}; layouts are \
         not migrated automatically: run the bty version that wrote it, or archive or wipe the \
         image root (or point image_root elsewhere), then restart",
        root = .path.parent().unwrap_or(Path::new("")).display(),
        expected = STORAGE_FORMAT_VERSION
    )]
    VersionMismatch {
        /// The marker file.
        path: PathBuf,
        /// The version found in it.
        found: u64,
    },
    /// The marker could not be written.
    #[error("writing storage marker {path}")]
    Write {
        /// The marker file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
}

/// The marker's content, in the key order upstream writes.
#[derive(Serialize)]
struct Marker<'a> {
    format_version: u64,
    created_at: String,
    created_by_bty_version: &'a str,
}

/// Make sure `image_root` exists and carries a marker of the current
/// version: create the root (with parents) and the marker when missing,
/// refuse a marker that is unreadable or of another version. A matching
/// marker is never rewritten, so `created_at` stays put.
pub fn ensure_marker(image_root: &Path, created_by: &str) -> Result<MarkerOutcome, MarkerError> {
    fs::create_dir_all(image_root).map_err(|source| MarkerError::CreateRoot {
        path: image_root.to_owned(),
        source,
    })?;
    let path = image_root.join(MARKER_FILE);
    match read_marker(&path) {
        Ok(bytes) => check(&path, &bytes).map(|()| MarkerOutcome::Existing),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            write_marker(&path, created_by).map(|()| MarkerOutcome::Created)
        }
        Err(source) => Err(MarkerError::Read { path, source }),
    }
}

/// The marker's bytes: never through a symlink (a group member could point
/// it at a host file, a FIFO or `/dev/zero`), only a regular file, at most
/// [`MARKER_MAX`] bytes.
fn read_marker(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = crate::identity::open_nofollow(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            "the marker is not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MARKER_MAX).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A marker is a few lines of JSON; anything larger is not one.
const MARKER_MAX: u64 = 64 << 10;

fn check(path: &Path, bytes: &[u8]) -> Result<(), MarkerError> {
    let invalid = |detail: String| MarkerError::Invalid {
        path: path.to_owned(),
        detail,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let version = value
        .get("format_version")
        .ok_or_else(|| invalid("no \"format_version\" key".to_owned()))?;
    let found = version.as_u64().ok_or_else(|| {
        invalid(format!(
            "\"format_version\" is {version}, not a whole number"
        ))
    })?;
    if found == STORAGE_FORMAT_VERSION {
        Ok(())
    } else {
        Err(MarkerError::VersionMismatch {
            path: path.to_owned(),
            found,
        })
    }
}

fn write_marker(path: &Path, created_by: &str) -> Result<(), MarkerError> {
    let marker = Marker {
        format_version: STORAGE_FORMAT_VERSION,
        created_at: rfc3339_utc(SystemTime::now()),
        created_by_bty_version: created_by,
    };
    let write_err = |source| MarkerError::Write {
        path: path.to_owned(),
        source,
    };
    let mut json = serde_json::to_string_pretty(&marker).map_err(|e| write_err(e.into()))?;
    json.push('\n');
    write_atomic(path, json.as_bytes()).map_err(write_err)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `t` (UTC, whole seconds; times before 1970
/// clamp to the epoch).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_timestamps() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_210_096, "2024-02-29T12:34:56Z"),
            (1_798_761_599, "2026-12-31T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
        ] {
            assert_eq!(
                rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs)),
                want,
                "{secs}"
            );
        }
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn creates_root_and_marker_then_leaves_it_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("a/b/images");
        assert_eq!(
            ensure_marker(&root, "0.1.0").expect("create"),
            MarkerOutcome::Created
        );
        let path = root.join(MARKER_FILE);
        let text = fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with("{\n  \"format_version\": 1,\n  \"created_at\": \""),
            "{text}"
        );
        assert!(
            text.ends_with("\"created_by_bty_version\": \"0.1.0\"\n}\n"),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        let created = value["created_at"].as_str().expect("created_at");
        assert_eq!(created.len(), 20, "{created}");

        assert_eq!(
            ensure_marker(&root, "9.9.9").expect("again"),
            MarkerOutcome::Existing
        );
        assert_eq!(fs::read_to_string(&path).expect("read"), text);
    }

    #[test]
    fn accepts_upstream_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let upstream = "{\n  \"format_version\": 1,\n  \"created_at\": \
                        \"2026-05-26T10:00:00.123456+00:00\",\n  \
                        \"created_by_bty_version\": \"0.33.29\"\n}\n";
        fs::write(dir.path().join(MARKER_FILE), upstream).expect("write");
        assert_eq!(
            ensure_marker(dir.path(), "x").expect("ok"),
            MarkerOutcome::Existing
        );
    }

    #[test]
    fn refuses_bad_markers() {
        for (content, check) in [
            ("{\"format_version\": 2}", "storage format 2"),
            ("{\"format_version\": 0}", "storage format 0"),
            ("not json", "not JSON"),
            ("{}", "no \"format_version\""),
            ("{\"format_version\": \"1\"}", "not a whole number"),
            ("[1]", "no \"format_version\""),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(MARKER_FILE);
            fs::write(&path, content).expect("write");
            let err = ensure_marker(dir.path(), "x").expect_err(content);
            let msg = err.to_string();
            assert!(msg.contains(check), "{content}: {msg}");
            assert!(msg.contains("archive or wipe"), "{msg}");
            // Never "repaired" behind the operator's back.
            assert_eq!(fs::read_to_string(&path).expect("read"), content);
        }
    }

    #[test]
    fn a_marker_planted_as_a_link_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("images");
        fs::create_dir(&root).expect("mkdir");
        std::os::unix::fs::symlink("/dev/zero", root.join(MARKER_FILE)).expect("symlink");
        let err = ensure_marker(&root, "t").unwrap_err();
        assert!(matches!(err, MarkerError::Read { .. }), "{err}");
    }

    #[test]
    fn unreadable_marker_and_unusable_root_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join(MARKER_FILE)).expect("mkdir");
        assert!(matches!(
            ensure_marker(dir.path(), "x"),
            Err(MarkerError::Read { .. })
        ));
        let file = dir.path().join("plain");
        fs::write(&file, b"").expect("write");
        assert!(matches!(
            ensure_marker(&file.join("images"), "x"),
            Err(MarkerError::CreateRoot { .. })
        ));
    }
}
