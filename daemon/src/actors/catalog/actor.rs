//! The catalog actor: state = parsed catalog.toml + the latest image-root
//! scan + the merged rows; a flat `match` over messages calling plain methods.

use super::entries::ORIGIN_URL;
use super::error::{CatalogError, LoadError};
use super::index::IndexedCatalog;
use super::messages::CatalogMessage;
use super::scanning::{ScanOrder, scan_off_runtime};
use crate::actors::Unavailable;
use crate::actors::hasher::HasherHandle;
use crate::events::EventBus;
use bty_store::catalog_file::{CatalogFile, ParsedCatalog};
use bty_store::merge::{MergeEntry, Row, SourceKind, Touched, remerge};
use bty_store::scan::ScannedFile;
use bty_store::{atomic::write_atomic, export::export_catalog};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// From this many rows and entries on, the catalog returns freed memory to
/// the kernel after parsing, writing or merging.
const LARGE_CATALOG_ROWS: usize = 10_000;

/// Debug builds check each incremental listing update against a whole
/// merge up to this many rows.
#[cfg(debug_assertions)]
const DEBUG_CHECKED_ROWS: usize = 2_000;

/// What the supervisor gives the catalog at each (re)start.
#[derive(Debug, Clone)]
pub struct CatalogArgs {
    /// The image store.
    pub image_root: PathBuf,
    /// `state_dir/catalog.toml`.
    pub catalog_path: PathBuf,
    /// The one size limit of a catalog: imports, writes and loading.
    pub max_catalog_bytes: usize,
    /// Where catalog events go.
    pub events: EventBus,
    /// Asked to hash files without a fresh sidecar.
    pub hasher: HasherHandle,
}

/// The behaviour.
#[derive(Debug, Default)]
pub struct CatalogActor;

/// The catalog's state.
#[derive(Debug)]
pub struct CatalogState {
    pub(super) args: CatalogArgs,
    pub(super) catalog: IndexedCatalog,
    /// Set when catalog.toml on disk does not parse: mutations are refused
    /// so the operator's file is never overwritten.
    pub(super) load_error: Option<String>,
    pub(super) scan: Vec<ScannedFile>,
    /// The merged listing, shared with readers; brought up to date when
    /// asked for after changes (`touched`), so a burst of changes merges
    /// once, and only the rows the changes reach.
    rows: Arc<Vec<Row>>,
    pub(super) touched: Touched,
    /// Cache files being downloaded: hashed inline, never by the hasher.
    pub(super) arriving: std::collections::BTreeSet<String>,
    /// Scans of the image root, in the order they were started.
    pub(super) scans: ScanOrder,
    /// This actor, for the results of work it runs off its mailbox.
    pub(super) myself: ActorRef<CatalogMessage>,
}

impl Actor for CatalogActor {
    type Msg = CatalogMessage;
    type State = CatalogState;
    type Arguments = CatalogArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: CatalogArgs,
    ) -> Result<CatalogState, ActorProcessingErr> {
        // Reading and indexing catalog.toml and scanning the image root
        // are independent: they run side by side on the blocking pool.
        let root = args.image_root.clone();
        let scanning = tokio::spawn(scan_off_runtime(root));
        let (path, max_bytes) = (args.catalog_path.clone(), args.max_catalog_bytes);
        let (catalog, load_error) = tokio::task::spawn_blocking(move || {
            let (parsed, load_error) = match load_catalog(&path, max_bytes) {
                Ok(parsed) => (parsed, None),
                Err(e) => {
                    let reason = crate::chain::chain(&e);
                    tracing::error!(path = %path.display(), %reason, "catalog.toml does not parse; catalog is read-only");
                    (ParsedCatalog::default(), Some(reason))
                }
            };
            (IndexedCatalog::from_parsed(parsed), load_error)
        })
        .await?;
        let mut state = CatalogState {
            args,
            catalog,
            load_error,
            scan: Vec::new(),
            rows: Arc::default(),
            touched: Touched::everything(),
            arriving: std::collections::BTreeSet::new(),
            scans: ScanOrder::default(),
            myself,
        };
        let seq = state.scans.start();
        state.scans.adopt(seq);
        state.take_scan(scanning.await.and_then(|outcome| outcome));
        state.rows();
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: CatalogMessage,
        state: &mut CatalogState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CatalogMessage::List { reply } => {
                let _ = reply.send(state.rows());
            }
            CatalogMessage::ListEntries { reply } => {
                let _ = reply.send(state.list_entries());
            }
            CatalogMessage::AddEntry { request, reply } => {
                let _ = reply.send(state.add_entry(request).await);
            }
            CatalogMessage::RemoveEntry { src_or_ref, reply } => {
                let _ = reply.send(state.remove_entry(&src_or_ref).await);
            }
            CatalogMessage::Import { import, reply } => {
                let _ = reply.send(state.import(import).await);
            }
            CatalogMessage::Export { base_url, reply } => {
                let _ = reply.send(export_catalog(&state.rows(), &base_url));
            }
            CatalogMessage::Rescan => state.rescan_in_background(),
            CatalogMessage::Scanned { seq, scanned } => state.scanned_in_background(seq, scanned),
            CatalogMessage::ImageHashed { name, sha256 } => {
                state.image_hashed(&name, &sha256).await;
            }
            CatalogMessage::RequeueUnhashed => state.requeue_unhashed(),
            CatalogMessage::DownloadSpec { key, update, reply } => {
                let _ = reply.send(state.download_spec(&key, update));
            }
            CatalogMessage::ExpectArrival { name, reply } => {
                state.arriving.insert(name);
                let _ = reply.send(());
            }
            CatalogMessage::Downloaded(done) => state.downloaded(done).await,
            CatalogMessage::Uploaded { name, sha256 } => state.uploaded(&name, &sha256).await,
            CatalogMessage::ArrivalAbandoned { name } => {
                state.arriving.remove(&name);
                state.rescan().await;
            }
            CatalogMessage::DeleteCache { key, reply } => {
                let _ = reply.send(state.delete_cache(&key).await);
            }
            CatalogMessage::ResolveLocal { key, reply } => {
                let _ = reply.send(state.resolve_local(&key));
            }
            #[cfg(feature = "fault-injection")]
            CatalogMessage::InjectPanic => panic!("injected catalog fault"),
        }
        Ok(())
    }
}

/// Read and parse catalog.toml; a missing file is an empty catalog.
fn load_catalog(path: &Path, max_bytes: usize) -> Result<ParsedCatalog, LoadError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(ParsedCatalog::parse(
            &bytes,
            &path.display().to_string(),
            max_bytes,
        )?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ParsedCatalog::default()),
        Err(source) => Err(LoadError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

impl CatalogState {
    /// The merged rows, brought up to date first if anything changed.
    pub(super) fn rows(&mut self) -> Arc<Vec<Row>> {
        if self.touched.is_empty() {
            return Arc::clone(&self.rows);
        }
        let touched = self.touched.take();
        let entries: Vec<MergeEntry<'_>> = self
            .catalog
            .with_refs()
            .filter_map(|(entry, image_ref)| {
                let kind = if entry.record.origin.as_deref() == Some(ORIGIN_URL) {
                    SourceKind::Url
                } else {
                    SourceKind::Manifest
                };
                Some(MergeEntry {
                    entry,
                    image_ref: image_ref?,
                    kind,
                })
            })
            .collect();
        // A reader still streaming the old rows keeps them: the update
        // then works on a copy.
        let rows = Arc::make_mut(&mut self.rows);
        let whole = remerge(rows, &self.scan, &entries, &touched);
        // Debug builds (every test of a real btyd) hold each update to a
        // whole merge while the listing is small.
        #[cfg(debug_assertions)]
        if rows.len() <= DEBUG_CHECKED_ROWS {
            debug_assert_eq!(
                *rows,
                bty_store::merge::merge(&self.scan, &entries),
                "the listing updated for {touched:?} differs from a whole merge"
            );
        }
        drop(entries);
        if whole {
            self.release_if_large();
        }
        Arc::clone(&self.rows)
    }

    /// After work on a large catalog, give its garbage back to the kernel
    /// (it is several times the catalog's size, freed but kept resident).
    fn release_if_large(&self) {
        if self.rows.len() + self.catalog.file().entries.len() >= LARGE_CATALOG_ROWS {
            crate::allocator::release_free_memory();
        }
    }

    pub(super) fn ensure_writable(&self) -> Result<(), CatalogError> {
        match &self.load_error {
            Some(reason) => Err(CatalogError::ReadOnly {
                path: self.args.catalog_path.display().to_string(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Write `catalog` to catalog.toml atomically (on the blocking pool:
    /// serialising a large catalog takes a while), then adopt it. On error
    /// nothing changed, on disk or here.
    pub(super) async fn persist(&mut self, catalog: IndexedCatalog) -> Result<(), CatalogError> {
        let path = self.args.catalog_path.clone();
        let max = self.args.max_catalog_bytes;
        let (catalog, written) = tokio::task::spawn_blocking(move || {
            let written = write_catalog(&path, catalog.file(), max);
            (catalog, written)
        })
        .await
        .map_err(|source| Unavailable::Task {
            what: "catalog writer",
            source,
        })?;
        written?;
        self.catalog = catalog;
        for image_ref in self.catalog.take_touched() {
            self.touched.entry(image_ref);
        }
        self.release_if_large();
        Ok(())
    }
}

/// Serialise `file` and write it to `path` atomically, unless it is larger
/// than the next start could load.
fn write_catalog(path: &Path, file: &CatalogFile, max: usize) -> Result<(), CatalogError> {
    let text = file.to_toml_string();
    if text.len() > max {
        return Err(CatalogError::StateTooLarge {
            size: text.len(),
            max,
        });
    }
    write_atomic(path, text.as_bytes()).map_err(|source| CatalogError::Io {
        what: format!("cannot write {}", path.display()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::catalog::{AddEntry, CatalogHandle};
    use crate::actors::slot::ActorSlot;
    use crate::domain::Downloaded;
    use bty_store::digest::sha256_bytes;
    use bty_store::sidecar::install_with_sidecar;

    /// A catalog actor on a fresh image root under `dir` (catalog.toml as
    /// `catalog_toml` when given), its handle, and its bus.
    async fn spawn_catalog(
        dir: &std::path::Path,
        catalog_toml: Option<&str>,
    ) -> (CatalogHandle, ActorRef<CatalogMessage>, EventBus) {
        let root = dir.join("images");
        std::fs::create_dir_all(&root).unwrap();
        if let Some(text) = catalog_toml {
            std::fs::write(dir.join("catalog.toml"), text).unwrap();
        }
        let events = EventBus::default();
        let args = CatalogArgs {
            image_root: root,
            catalog_path: dir.join("catalog.toml"),
            max_catalog_bytes: 1 << 20,
            events: events.clone(),
            hasher: HasherHandle::default(),
        };
        let (actor, _task) = Actor::spawn(None, CatalogActor, args).await.unwrap();
        let slot = ActorSlot::default();
        slot.set(actor.clone());
        (CatalogHandle::new(slot), actor, events)
    }

    /// The image-root and cache events logged so far, oldest first.
    fn kinds(events: &EventBus) -> Vec<String> {
        let (all, _) = events.timeline().query(
            &crate::events::EventFilter {
                kinds: vec!["image.".into(), "cache.".into()],
                ..crate::events::EventFilter::default()
            },
            100,
        );
        all.iter().rev().map(|e| e.kind.clone()).collect()
    }

    #[tokio::test]
    async fn a_rescan_follows_files_in_and_out_and_a_hash_marks_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("images");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("first.img"), b"1").unwrap();
        let (catalog, actor, events) = spawn_catalog(dir.path(), None).await;
        std::fs::write(root.join("second.img"), b"22").unwrap();
        catalog.rescan();
        let rows = listed(&catalog, 2).await;
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter().all(|r| r.sha256.is_none()),
            "unhashed until told"
        );
        let sha = sha256_bytes(b"22");
        catalog.image_hashed("second.img", &sha);
        let rows = catalog.list().await.unwrap();
        let second = rows
            .iter()
            .find(|r| r.first_name() == "second.img")
            .unwrap();
        assert_eq!(second.sha256.map(|d| d.to_hex()), Some(sha.clone()));
        std::fs::remove_file(root.join("first.img")).unwrap();
        catalog.rescan();
        assert_eq!(listed(&catalog, 1).await.len(), 1);
        assert_eq!(
            kinds(&events),
            ["image.appeared", "image.hashed", "image.removed"]
        );
        actor.stop(None);
    }

    /// The rows once the listing has `n` of them (a rescan asked for by
    /// the watcher runs off the mailbox), or after 5 s whatever it has.
    async fn listed(catalog: &CatalogHandle, n: usize) -> Arc<Vec<Row>> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let rows = catalog.list().await.unwrap();
            if rows.len() == n || tokio::time::Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn rescans_asked_in_a_burst_run_off_the_mailbox_and_settle_on_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("images");
        std::fs::create_dir_all(&root).unwrap();
        let (catalog, actor, events) = spawn_catalog(dir.path(), None).await;
        for i in 0..20 {
            std::fs::write(root.join(format!("f{i:02}.img")), [i]).unwrap();
            catalog.rescan();
            // The mailbox keeps answering while scans run.
            catalog.list().await.unwrap();
        }
        let rows = listed(&catalog, 20).await;
        assert_eq!(rows.len(), 20);
        // Each file appeared once, however the scans overlapped.
        assert_eq!(kinds(&events), vec!["image.appeared"; 20]);
        actor.stop(None);
    }

    #[tokio::test]
    async fn a_cache_file_being_downloaded_is_not_deleted_until_its_arrival_ends() {
        let dir = tempfile::tempdir().unwrap();
        let toml = "version = 1\n\n[[images]]\nname = \"a.img\"\nsrc = \"https://h/a.img\"\n";
        let (catalog, actor, events) = spawn_catalog(dir.path(), Some(toml)).await;
        let spec = catalog.download_spec("a.img", false).await.unwrap();
        let cached = dir.path().join("images").join(&spec.cache_file_name);
        std::fs::write(&cached, b"bytes").unwrap();
        catalog.expect_arrival(&spec.cache_file_name).await.unwrap();
        let refused = catalog.delete_cache("a.img").await.unwrap_err();
        assert!(
            matches!(refused, CatalogError::Downloading { .. }),
            "{refused}"
        );
        assert!(cached.exists());
        catalog.arrival_abandoned(&spec.cache_file_name);
        let deleted = catalog.delete_cache("a.img").await.unwrap();
        assert!(deleted.deleted, "{deleted:?}");
        assert!(!cached.exists());
        let again = catalog.delete_cache("a.img").await.unwrap();
        assert!(!again.deleted && again.reason == "not cached", "{again:?}");
        assert!(kinds(&events).iter().any(|k| k == "cache.deleted"));
        actor.stop(None);
    }

    #[tokio::test]
    async fn a_landed_download_fills_its_row_and_is_no_new_row_to_announce() {
        let dir = tempfile::tempdir().unwrap();
        let toml = "version = 1\n\n[[images]]\nname = \"a.img\"\nsrc = \"https://h/a.img\"\n";
        let (catalog, actor, events) = spawn_catalog(dir.path(), Some(toml)).await;
        let root = dir.path().join("images");
        std::fs::write(root.join("other.img"), b"o").unwrap();
        catalog.rescan();
        listed(&catalog, 2).await;
        let spec = catalog.download_spec("a.img", false).await.unwrap();
        catalog.expect_arrival(&spec.cache_file_name).await.unwrap();
        let sha = sha256_bytes(b"bytes");
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"bytes").unwrap();
        install_with_sidecar(&staged, &root.join(&spec.cache_file_name), &sha).unwrap();
        // The watcher sees the file land before the downloader reports it.
        catalog.rescan();
        catalog.downloaded(Downloaded {
            image_ref: spec.image_ref.clone(),
            cache_file_name: spec.cache_file_name.clone(),
            sha256: sha.clone(),
            etag: None,
            last_modified: None,
        });
        let rows = catalog.list().await.unwrap();
        let row = rows.iter().find(|r| r.first_name() == "a.img").unwrap();
        assert!(row.cached, "{row:?}");
        assert_eq!(
            kinds(&events),
            ["image.appeared", "cache.populated"],
            "other.img appeared; the landed cache file did not"
        );
        actor.stop(None);
    }

    #[tokio::test]
    async fn a_catalog_toml_that_does_not_parse_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = "version = 1\n[[images]\nname = ";
        let (catalog, actor, _) = spawn_catalog(dir.path(), Some(garbage)).await;
        let refused = catalog
            .add_entry(AddEntry {
                url: "https://h/b.img".into(),
                ..AddEntry::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(refused, CatalogError::ReadOnly { .. }),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("fix or move it aside"),
            "{refused}"
        );
        let on_disk = std::fs::read_to_string(dir.path().join("catalog.toml")).unwrap();
        assert_eq!(on_disk, garbage);
        actor.stop(None);
    }

    #[tokio::test]
    async fn an_uploaded_file_is_listed_with_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("images");
        let (catalog, actor, _) = spawn_catalog(dir.path(), None).await;

        // As the downloader stores an upload: announced, landed beside the
        // name with its sidecar, swapped in, then reported.
        catalog.expect_arrival("up.img").await.unwrap();
        let bytes = b"uploaded bytes".to_vec();
        let sha = sha256_bytes(&bytes);
        let staged = root.join(".up.img.tmp-test");
        std::fs::write(&staged, &bytes).unwrap();
        install_with_sidecar(&staged, &root.join("up.img"), &sha).unwrap();
        catalog.uploaded("up.img", &sha);

        let rows = catalog.list().await.unwrap();
        let row = rows
            .iter()
            .find(|r| r.names.iter().any(|n| &**n == "up.img"))
            .expect("the upload is listed");
        assert_eq!(row.sha256.map(|d| d.to_hex()), Some(sha.clone()));
        assert!(row.cached, "{row:?}");
        actor.stop(None);
    }
}
