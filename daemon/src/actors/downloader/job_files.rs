//! The downloader's job files, written off its handler: one thread per
//! actor incarnation saves and removes `jobs/<ref>.json` (and unlinks
//! partials of jobs that ended) in the order asked, so a removal never
//! overtakes a later save of the same entry, and no handler waits on an
//! fsync while the runtime's threads could run other work.

use super::persist;
use crate::domain::DownloadSpec;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};

enum Op {
    /// Name the partial if needed, write the job file, answer with the spec.
    Record(
        Box<DownloadSpec>,
        tokio::sync::oneshot::Sender<std::io::Result<DownloadSpec>>,
    ),
    /// The job ended: its files go, and its partial when it will never be
    /// resumed.
    Forget {
        image_ref: String,
        partial: Option<PathBuf>,
    },
}

/// The writer's end; the thread ends with the last clone.
#[derive(Debug, Clone)]
pub(crate) struct JobFiles {
    tx: Sender<Op>,
}

impl JobFiles {
    /// Start the thread writing into `jobs_dir`.
    pub(crate) fn start(jobs_dir: PathBuf) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("job-files".into())
            .spawn(move || run(&jobs_dir, &rx))?;
        Ok(Self { tx })
    }

    /// Record a queued download (its partial named first, if it has no
    /// name yet); the spec as recorded.
    pub(crate) async fn record(&self, spec: DownloadSpec) -> std::io::Result<DownloadSpec> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Op::Record(Box::new(spec), done))
            .map_err(|_| lost())?;
        answer.await.map_err(|_| lost())?
    }

    /// Forget a download that ended, and unlink `partial` (an entry, never
    /// a link's target) when given.
    pub(crate) fn forget(&self, image_ref: &str, partial: Option<PathBuf>) {
        let op = Op::Forget {
            image_ref: image_ref.to_owned(),
            partial,
        };
        if self.tx.send(op).is_err() {
            tracing::warn!(
                image_ref,
                "the job-file thread is gone; a job file stays behind"
            );
        }
    }
}

fn lost() -> std::io::Error {
    std::io::Error::other("the job-file thread ended")
}

fn run(jobs_dir: &std::path::Path, rx: &Receiver<Op>) {
    while let Ok(op) = rx.recv() {
        match op {
            Op::Record(mut spec, done) => {
                let result = persist::ensure_partial_name(&mut spec)
                    .and_then(|()| persist::save(jobs_dir, &spec))
                    .map(|()| *spec);
                let _ = done.send(result);
            }
            Op::Forget { image_ref, partial } => {
                persist::remove(jobs_dir, &image_ref);
                if let Some(partial) = partial
                    && let Err(e) = std::fs::remove_file(&partial)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %partial.display(), error = %e, "cannot remove an ended download's partial");
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A download of `a.img` from `https://h/` under `image_ref`.
    pub(in crate::actors::downloader) fn spec(image_ref: &str) -> DownloadSpec {
        DownloadSpec {
            image_ref: image_ref.into(),
            name: "a.img".into(),
            src: "https://h/a.img".into(),
            pinned_sha256: None,
            sha_url: None,
            size_bytes: None,
            cache_file_name: "catalog-abababababab-a.img".into(),
            update: false,
            cached_sha256: None,
            etag: None,
            last_modified: None,
            partial_name: None,
        }
    }

    #[tokio::test]
    async fn records_and_forgets_run_in_the_order_asked() {
        let dir = tempfile::tempdir().unwrap();
        let files = JobFiles::start(dir.path().to_owned()).unwrap();
        let recorded = files.record(spec("r1")).await.unwrap();
        assert!(recorded.partial_name.is_some(), "a partial is named");
        let partial = dir.path().join("p.partial");
        std::fs::write(&partial, b"x").unwrap();
        // Forget, then record the same entry again at once: the new file
        // survives the older removal.
        files.forget("r1", Some(partial.clone()));
        files.record(spec("r1")).await.unwrap();
        assert_eq!(persist::load_all(dir.path()).len(), 1);
        assert!(!partial.exists());
        files.forget("r1", None);
        // A record after it is a barrier: the forget ran before.
        files.record(spec("r2")).await.unwrap();
        let left: Vec<String> = persist::load_all(dir.path())
            .into_iter()
            .map(|s| s.image_ref)
            .collect();
        assert_eq!(left, ["r2"]);
    }
}
