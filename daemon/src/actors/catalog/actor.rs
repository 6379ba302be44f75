//! The catalog actor: state = parsed catalog.toml + the latest image-root
//! scan + the merged rows; a flat `match` over messages calling plain methods.

use super::entries::ORIGIN_URL;
use super::error::{CatalogError, LoadError};
use super::index::IndexedCatalog;
use super::messages::CatalogMessage;
use super::messages::Change;
use super::scanning::{ScanOrder, scan_off_runtime};
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
    /// Changes waiting for the one whose disk work runs (`changing`).
    pub(super) changes: std::collections::VecDeque<Change>,
    pub(super) changing: bool,
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
                    let reason = bty_store::chain::chain(&e);
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
            changes: std::collections::VecDeque::new(),
            changing: false,
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
            CatalogMessage::Change(change) => state.change(change),
            CatalogMessage::DiskWorkDone { done, then } => state.disk_work_done(done, then),
            CatalogMessage::Export { base_url, reply } => {
                let _ = reply.send(export_catalog(&state.rows(), &base_url));
            }
            CatalogMessage::Rescan => state.rescan_in_background(),
            CatalogMessage::Scanned { seq, scanned } => state.scanned_in_background(seq, scanned),
            CatalogMessage::ImageHashed { name, sha256 } => state.image_hashed(&name, &sha256),
            CatalogMessage::RequeueUnhashed => state.requeue_unhashed(),
            CatalogMessage::DownloadSpec { key, update, reply } => {
                let _ = reply.send(state.download_spec(&key, update));
            }
            CatalogMessage::ExpectArrival { name, reply } => {
                state.arriving.insert(name);
                let _ = reply.send(());
            }
            CatalogMessage::Downloaded(done) => state.downloaded(done),
            CatalogMessage::Uploaded {
                name,
                sha256,
                landed,
            } => state.uploaded(&name, &sha256, landed),
            CatalogMessage::ArrivalAbandoned { name } => {
                state.arriving.remove(&name);
                state.rescan_in_background();
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

    /// Adopt `catalog`, as written to catalog.toml; the listing follows
    /// the entries it changed.
    pub(super) fn adopt(&mut self, catalog: IndexedCatalog) {
        self.catalog = catalog;
        for image_ref in self.catalog.take_touched() {
            self.touched.entry(image_ref);
        }
        self.release_if_large();
    }
}

/// Serialise `file` and write it to `path` atomically, unless it is larger
/// than the next start could load.
pub(super) fn write_catalog(
    path: &Path,
    file: &CatalogFile,
    max: usize,
) -> Result<(), CatalogError> {
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
    use bty_store::scan::scan_one;
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
            max_catalog_bytes: 64 << 20,
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
            landed: scan_one(&root, &spec.cache_file_name).unwrap(),
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

    /// Store `up.img` in `root` as an upload does (beside the name with
    /// its sidecar, then swapped in) and report it; its sha256.
    fn land_upload(catalog: &CatalogHandle, root: &std::path::Path) -> String {
        let bytes = b"uploaded bytes".to_vec();
        let sha = sha256_bytes(&bytes);
        let staged = root.join(".up.img.tmp-test");
        std::fs::write(&staged, &bytes).unwrap();
        install_with_sidecar(&staged, &root.join("up.img"), &sha).unwrap();
        catalog.uploaded("up.img", &sha, scan_one(root, "up.img").unwrap());
        sha
    }

    #[tokio::test]
    async fn an_uploaded_file_is_listed_with_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("images");
        let (catalog, actor, _) = spawn_catalog(dir.path(), None).await;

        // As the downloader stores an upload: announced, landed beside the
        // name with its sidecar, swapped in, then reported.
        catalog.expect_arrival("up.img").await.unwrap();
        let sha = land_upload(&catalog, &root);

        let rows = catalog.list().await.unwrap();
        let row = rows
            .iter()
            .find(|r| r.names.iter().any(|n| &**n == "up.img"))
            .expect("the upload is listed");
        assert_eq!(row.sha256.map(|d| d.to_hex()), Some(sha.clone()));
        assert!(row.cached, "{row:?}");
        actor.stop(None);
    }

    /// `message`, made around a fresh reply port, straight into the
    /// actor's mailbox (so the order of messages is the test's); the
    /// port's receiving end.
    fn send<T: Send + 'static>(
        actor: &ActorRef<CatalogMessage>,
        message: impl FnOnce(ractor::RpcReplyPort<T>) -> CatalogMessage,
    ) -> tokio::sync::oneshot::Receiver<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        actor.cast(message(reply.into())).unwrap();
        answer
    }

    fn add(url: &str) -> AddEntry {
        AddEntry {
            url: url.into(),
            ..AddEntry::default()
        }
    }

    #[tokio::test]
    async fn readers_are_answered_while_a_change_writes_catalog_toml() {
        let dir = tempfile::tempdir().unwrap();
        // Large enough that writing catalog.toml takes a while.
        let toml: String = std::iter::once("version = 1\n".to_owned())
            .chain((0..10_000).map(|i| {
                format!("\n[[images]]\nname = \"e{i}.img\"\nsrc = \"https://h/e{i}.img\"\n")
            }))
            .collect();
        let (catalog, actor, _) = spawn_catalog(dir.path(), Some(&toml)).await;
        assert_eq!(catalog.list().await.unwrap().len(), 10_000);
        let mut added = send(&actor, |reply| {
            CatalogMessage::Change(Change::Add {
                request: add("https://h/new.img"),
                reply,
            })
        });
        // Behind the add in the mailbox, answered while the add's write
        // runs, from the catalog before it.
        let rows = catalog.list().await.unwrap();
        assert_eq!(rows.len(), 10_000, "an add is listed only once stored");
        assert!(
            matches!(
                added.try_recv(),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty)
            ),
            "the listing was answered before the write ended"
        );
        let (entry, _) = added.await.unwrap().unwrap();
        assert_eq!(&*entry.name, "new.img");
        assert_eq!(catalog.list().await.unwrap().len(), 10_001);
        let on_disk = std::fs::read_to_string(dir.path().join("catalog.toml")).unwrap();
        assert!(on_disk.contains("https://h/new.img"));
        actor.stop(None);
    }

    #[tokio::test]
    async fn changes_asked_together_apply_one_after_another_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, actor, events) = spawn_catalog(dir.path(), None).await;
        let adds: Vec<_> = (0..8)
            .map(|i| {
                send(&actor, |reply| {
                    CatalogMessage::Change(Change::Add {
                        request: add(&format!("https://h/{i}.img")),
                        reply,
                    })
                })
            })
            .collect();
        // Each change is decided on the catalog the ones before it left.
        let again = send(&actor, |reply| {
            CatalogMessage::Change(Change::Add {
                request: add("https://h/0.img"),
                reply,
            })
        });
        let removed = send(&actor, |reply| {
            CatalogMessage::Change(Change::Remove {
                src_or_ref: "https://h/3.img".into(),
                reply,
            })
        });
        for added in adds {
            added.await.unwrap().unwrap();
        }
        let again = again.await.unwrap().unwrap_err();
        assert!(
            matches!(again, CatalogError::AlreadyExists { .. }),
            "{again}"
        );
        assert_eq!(&*removed.await.unwrap().unwrap().entry.name, "3.img");
        let want = [
            "0.img", "1.img", "2.img", "4.img", "5.img", "6.img", "7.img",
        ];
        let listed: Vec<String> = catalog
            .list_entries()
            .await
            .unwrap()
            .iter()
            .map(|e| e.entry.name.to_string())
            .collect();
        assert_eq!(listed, want);
        let on_disk = load_catalog(&dir.path().join("catalog.toml"), 1 << 20).unwrap();
        let stored: Vec<&str> = on_disk.file.entries.iter().map(|e| &*e.name).collect();
        assert_eq!(stored, want, "what the next start loads");
        let (all, _) = events.timeline().query(
            &crate::events::EventFilter {
                kinds: vec!["entry.".into()],
                ..crate::events::EventFilter::default()
            },
            100,
        );
        assert_eq!(all.len(), 9, "8 added, 1 deleted, each announced once");
        actor.stop(None);
    }

    #[tokio::test]
    async fn a_landed_upload_is_listed_at_once_and_stays_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("images");
        let (catalog, actor, _) = spawn_catalog(dir.path(), None).await;
        catalog.expect_arrival("up.img").await.unwrap();
        // A watcher scan starts before the upload lands, and finishes
        // after the catalog was told.
        catalog.rescan();
        let sha = land_upload(&catalog, &root);
        for _ in 0..20 {
            let rows = catalog.list().await.unwrap();
            assert_eq!(rows.len(), 1, "the landed file stays listed: {rows:?}");
            assert_eq!(rows[0].sha256.map(|d| d.to_hex()), Some(sha.clone()));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        actor.stop(None);
    }
}
