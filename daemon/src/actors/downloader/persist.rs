//! Queued and running downloads are written to `state_dir/jobs/<ref>.json`
//! so a restarted daemon (even after kill -9) resumes them from their
//! partial files, whose random names are recorded there (the jobs dir is
//! root-only; the image root is not).

use crate::domain::DownloadSpec;
use bty_store::atomic::write_atomic;
use bty_store::names::CACHE_PREFIX;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Suffix of a download's partial file.
const PARTIAL: &str = ".partial";
/// Suffix of a verified download waiting to replace the cached file.
const LANDED: &str = ".landed";

/// `.<cache file name>.<16 random hex>.partial`: hidden from the scan, and
/// unguessable, so nobody can plant a symlink under it before it exists.
pub(crate) fn new_partial_name(cache_file_name: &str) -> std::io::Result<String> {
    Ok(format!(
        ".{cache_file_name}.{}{PARTIAL}",
        bty_store::create::random_hex()?
    ))
}

/// The partial's name for `spec`, chosen now if the job has none yet (a
/// job file written by an older btyd).
pub(crate) fn ensure_partial_name(spec: &mut DownloadSpec) -> std::io::Result<()> {
    if spec.partial_name.is_none() {
        spec.partial_name = Some(new_partial_name(&spec.cache_file_name)?);
    }
    Ok(())
}

/// Where the verified bytes wait before replacing the cached file: the
/// partial's name with `.landed` instead of `.partial`.
pub(crate) fn landed_name(partial_name: &str) -> String {
    let stem = partial_name.strip_suffix(PARTIAL).unwrap_or(partial_name);
    format!("{stem}{LANDED}")
}

/// Whether `name` is a partial or landed file of ours: the random-name
/// form, or the `<cache file>.partial` of older releases.
fn is_download_leftover(name: &str) -> bool {
    if name.starts_with(CACHE_PREFIX) && name.ends_with(PARTIAL) {
        return true;
    }
    let Some(stem) = name
        .strip_suffix(PARTIAL)
        .or_else(|| name.strip_suffix(LANDED))
    else {
        return false;
    };
    let Some((_, random)) = stem.rsplit_once('.') else {
        return false;
    };
    name.starts_with('.') && random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Remove partial and landed files in `image_root` that no job in `specs`
/// resumes: what a crash between a job's end and its cleanup left. Only
/// regular files we own with our names go (never another user's file,
/// never through a link).
pub(crate) fn remove_orphans(image_root: &Path, specs: &[DownloadSpec]) {
    let keep: BTreeSet<String> = specs
        .iter()
        .filter_map(|s| s.partial_name.as_deref())
        .flat_map(|p| [p.to_owned(), landed_name(p)])
        .collect();
    let Ok(entries) = std::fs::read_dir(image_root) else {
        return;
    };
    let me = bty_store::create::effective_uid();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_download_leftover(&name) || keep.contains(&name) {
            continue;
        }
        match entry.metadata() {
            Ok(m) if m.is_file() && m.uid() == me => {}
            _ => continue,
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => tracing::info!(name, "removed a download leftover no job resumes"),
            Err(e) => tracing::warn!(name, error = %e, "cannot remove a download leftover"),
        }
    }
}

/// The job file's schema version. Files written before versions existed
/// have no `v` and read as version 1; a newer version is left alone (a
/// downgrade must not resume what it does not understand).
const JOB_FILE_VERSION: u32 = 1;

/// `jobs/<ref>.json`: the on-disk form of a queued download, kept apart
/// from [`DownloadSpec`] so the domain type can change without silently
/// changing what older or newer daemons read.
#[derive(Debug, Serialize, Deserialize)]
struct JobFile {
    #[serde(default = "version_one")]
    v: u32,
    image_ref: String,
    name: String,
    src: String,
    pinned_sha256: Option<String>,
    #[serde(default)]
    sha_url: Option<String>,
    size_bytes: Option<u64>,
    cache_file_name: String,
    update: bool,
    cached_sha256: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
    #[serde(default)]
    partial_name: Option<String>,
}

fn version_one() -> u32 {
    1
}

impl From<&DownloadSpec> for JobFile {
    fn from(s: &DownloadSpec) -> Self {
        Self {
            v: JOB_FILE_VERSION,
            image_ref: s.image_ref.clone(),
            name: s.name.clone(),
            src: s.src.clone(),
            pinned_sha256: s.pinned_sha256.clone(),
            sha_url: s.sha_url.clone(),
            size_bytes: s.size_bytes,
            cache_file_name: s.cache_file_name.clone(),
            update: s.update,
            cached_sha256: s.cached_sha256.clone(),
            etag: s.etag.clone(),
            last_modified: s.last_modified.clone(),
            partial_name: s.partial_name.clone(),
        }
    }
}

impl From<JobFile> for DownloadSpec {
    fn from(f: JobFile) -> Self {
        Self {
            image_ref: f.image_ref,
            name: f.name,
            src: f.src,
            pinned_sha256: f.pinned_sha256,
            sha_url: f.sha_url,
            size_bytes: f.size_bytes,
            cache_file_name: f.cache_file_name,
            update: f.update,
            cached_sha256: f.cached_sha256,
            etag: f.etag,
            last_modified: f.last_modified,
            partial_name: f.partial_name,
        }
    }
}

fn spec_path(jobs_dir: &Path, image_ref: &str) -> PathBuf {
    jobs_dir.join(format!("{image_ref}.json"))
}

/// Where the fetch core keeps its resume checkpoint for an entry.
pub(crate) fn checkpoint_path(jobs_dir: &Path, image_ref: &str) -> PathBuf {
    jobs_dir.join(format!("{image_ref}.checkpoint.json"))
}

/// Remember a queued download.
pub(crate) fn save(jobs_dir: &Path, spec: &DownloadSpec) -> std::io::Result<()> {
    create_private_dir(jobs_dir)?;
    let json = serde_json::to_vec_pretty(&JobFile::from(spec)).map_err(std::io::Error::other)?;
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

/// Create `dir` (mode 0700) if missing: job files name the partials.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Downloads that were queued or running when the daemon stopped.
pub(crate) fn load_all(jobs_dir: &Path) -> Vec<DownloadSpec> {
    let Ok(entries) = std::fs::read_dir(jobs_dir) else {
        return Vec::new();
    };
    let mut specs: Vec<DownloadSpec> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with(".checkpoint.json") || name.starts_with('.') {
            continue;
        }
        match std::fs::read(entry.path()).map(|b| serde_json::from_slice::<JobFile>(&b)) {
            Ok(Ok(file)) if file.v > JOB_FILE_VERSION => tracing::warn!(
                name,
                version = file.v,
                "leaving a job file of a newer btyd alone"
            ),
            Ok(Ok(file)) => specs.push(file.into()),
            Ok(Err(e)) => tracing::warn!(name, error = %e, "ignoring an unreadable job file"),
            Err(e) => tracing::warn!(name, error = %e, "cannot read a job file"),
        }
    }
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DownloadSpec {
        DownloadSpec {
            image_ref: "ab".repeat(32),
            name: "a.img".into(),
            src: "https://h/a.img".into(),
            pinned_sha256: None,
            sha_url: Some("https://h/SHA256SUMS".into()),
            size_bytes: Some(7),
            cache_file_name: "catalog-abababababab-a.img".into(),
            update: false,
            cached_sha256: None,
            etag: Some("\"e\"".into()),
            last_modified: None,
            partial_name: Some(".catalog-abababababab-a.img.0123456789abcdef.partial".into()),
        }
    }

    #[test]
    fn job_files_carry_their_version_and_older_and_newer_ones_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &spec()).unwrap();
        let path = spec_path(dir.path(), &spec().image_ref);
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(written["v"], 1);
        assert_eq!(load_all(dir.path()), [spec()]);

        // A file from before versions: read as version 1.
        let mut old = written.clone();
        old.as_object_mut().unwrap().remove("v");
        old.as_object_mut().unwrap().remove("sha_url");
        std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        let loaded = load_all(dir.path());
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].sha_url, None);

        // A newer daemon's file: left alone, not resumed.
        let mut newer = written;
        newer["v"] = 2.into();
        std::fs::write(&path, serde_json::to_vec(&newer).unwrap()).unwrap();
        assert!(load_all(dir.path()).is_empty());
        assert!(path.exists(), "a newer job file is kept for its daemon");
    }

    #[test]
    fn partial_names_are_random_hidden_and_recognised() {
        let a = new_partial_name("catalog-0123456789ab-x.img").unwrap();
        let b = new_partial_name("catalog-0123456789ab-x.img").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(".catalog-0123456789ab-x.img.") && a.ends_with(".partial"));
        assert!(is_download_leftover(&a));
        assert!(is_download_leftover(&landed_name(&a)));
        assert!(landed_name(&a).ends_with(".landed"));
        assert!(is_download_leftover("catalog-0123456789ab-x.img.partial"));
        for other in [
            "x.img",
            ".x.img.partial",
            ".x.img.tmp-1-2",
            "x.img.partial",
            ".a.zzzzzzzzzzzzzzzz.partial",
        ] {
            assert!(!is_download_leftover(other), "{other}");
        }
    }

    #[test]
    fn orphans_go_resumed_partials_and_foreign_files_stay() {
        let root = tempfile::tempdir().unwrap();
        let resumed = new_partial_name("catalog-0123456789ab-a.img").unwrap();
        let orphan = new_partial_name("catalog-0123456789ab-b.img").unwrap();
        let foreign = new_partial_name("catalog-0123456789ab-c.img").unwrap();
        for name in [&resumed, &orphan, &foreign] {
            std::fs::write(root.path().join(name), b"x").unwrap();
        }
        assert_eq!(
            bty_store::create::effective_uid(),
            0,
            "plays another user: run as root"
        );
        std::os::unix::fs::chown(root.path().join(&foreign), Some(4242), None).unwrap();
        let spec = DownloadSpec {
            image_ref: "r".into(),
            name: "a".into(),
            src: "https://h/a.img".into(),
            pinned_sha256: None,
            sha_url: None,
            size_bytes: None,
            cache_file_name: "catalog-0123456789ab-a.img".into(),
            update: false,
            cached_sha256: None,
            etag: None,
            last_modified: None,
            partial_name: Some(resumed.clone()),
        };
        remove_orphans(root.path(), &[spec]);
        assert!(root.path().join(&resumed).exists());
        assert!(!root.path().join(&orphan).exists());
        assert!(root.path().join(&foreign).exists());
    }
}
