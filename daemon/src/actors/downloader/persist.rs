//! Queued and running downloads are written to `state_dir/jobs/<ref>.json`
//! so a restarted daemon (even after kill -9) resumes them from their
//! `.partial` files.

use crate::actors::catalog::DownloadSpec;
use bty_store::atomic::write_atomic;
use std::path::{Path, PathBuf};

fn spec_path(jobs_dir: &Path, image_ref: &str) -> PathBuf {
    jobs_dir.join(format!("{image_ref}.json"))
}

/// Where the fetch core keeps its resume checkpoint for an entry.
pub(crate) fn checkpoint_path(jobs_dir: &Path, image_ref: &str) -> PathBuf {
    jobs_dir.join(format!("{image_ref}.checkpoint.json"))
}

/// Remember a queued download.
pub(crate) fn save(jobs_dir: &Path, spec: &DownloadSpec) -> std::io::Result<()> {
    std::fs::create_dir_all(jobs_dir)?;
    let json = serde_json::to_vec_pretty(spec).map_err(std::io::Error::other)?;
    write_atomic(&spec_path(jobs_dir, &spec.image_ref), &json)
}

/// Forget a download that ended.
pub(crate) fn remove(jobs_dir: &Path, image_ref: &str) {
    for path in [
        spec_path(jobs_dir, image_ref),
        checkpoint_path(jobs_dir, image_ref),
    ] {
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove job file");
        }
    }
}

/// Downloads that were queued or running when the daemon stopped.
pub(crate) fn load_all(jobs_dir: &Path) -> Vec<DownloadSpec> {
    let Ok(entries) = std::fs::read_dir(jobs_dir) else {
        return Vec::new();
    };
    let mut specs = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with(".checkpoint.json") || name.starts_with('.') {
            continue;
        }
        match std::fs::read(entry.path()).map(|b| serde_json::from_slice::<DownloadSpec>(&b)) {
            Ok(Ok(spec)) => specs.push(spec),
            Ok(Err(e)) => tracing::warn!(name, error = %e, "ignoring an unreadable job file"),
            Err(e) => tracing::warn!(name, error = %e, "cannot read a job file"),
        }
    }
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    specs
}
