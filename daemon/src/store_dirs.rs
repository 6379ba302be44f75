//! The store's directories at start-up: created with safe modes when btyd
//! makes them, the storage marker checked, and what a crash left cleaned.

use crate::config::Config;
use crate::daemon::DaemonError;
use crate::daemon::VERSION;
use bty_store::atomic::remove_stale_temp_files;
use bty_store::marker::ensure_marker;
use bty_store::scan::unrecognised_files;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Create the directories, check the storage marker, clean up after a crash.
pub(crate) fn prepare_store(config: &Config) -> Result<(), DaemonError> {
    let jobs_dir = config.jobs_dir();
    // The jobs dir names the partials' random names: root-only. The image
    // root is setgid (files keep the group) and sticky (nobody renames or
    // deletes a file they do not own, btyd's included) when btyd makes it.
    for (dir, mode) in [
        (&config.state_dir, None),
        (&jobs_dir, Some(0o700)),
        (&config.image_root, Some(0o3770)),
    ] {
        create_dir(dir, mode).map_err(|source| DaemonError::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }
    warn_if_not_sticky(&config.image_root);
    ensure_marker(&config.image_root, VERSION)?;
    // A kill during an atomic write leaves its temp file: in the state dir
    // (catalog.toml), the jobs dir (download checkpoints) or the image root.
    for dir in [&config.state_dir, &jobs_dir, &config.image_root] {
        match remove_stale_temp_files(dir) {
            Ok(removed) => {
                for path in removed {
                    tracing::info!(path = %path.display(), "removed a temp file left by a crash");
                }
            }
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot clean temp files"),
        }
    }
    if let Ok(names) = unrecognised_files(&config.image_root) {
        for name in names {
            tracing::warn!(
                name,
                "unrecognised file in the image root; ignored by the scan"
            );
        }
    }
    Ok(())
}

/// Create `dir` and its parents if missing; a directory btyd creates itself
/// gets `mode` (set after the mkdir: the umask and mkdir drop setgid).
/// An existing directory is left as the operator made it.
fn create_dir(dir: &Path, mode: Option<u32>) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(mode) = mode {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// A group- or world-writable image root without the sticky bit lets any
/// member replace btyd's own files: say so (btyd still never follows a
/// planted link, but the operator should know).
fn warn_if_not_sticky(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(root)
        && meta.mode() & 0o022 != 0
        && meta.mode() & 0o1000 == 0
    {
        tracing::warn!(
            image_root = %root.display(),
            mode = format!("{:o}", meta.mode() & 0o7777),
            "the image root is writable by others but not sticky: anyone who can write it can \
             rename or delete btyd's files; chmod +t it (deploy/tmpfiles.d uses 3770)"
        );
    }
}
