//! The catalog actor: state = parsed catalog.toml + the latest image-root
//! scan + the merged rows; a flat `match` over messages calling plain methods.

use super::error::CatalogError;
use super::import::{ImportReport, import_entries};
use super::messages::{AddEntry, CatalogMessage, ImportSource, RemovedEntry};
use crate::actors::hasher::HasherHandle;
use crate::events::EventBus;
use bty_store::canon::{Scheme, canonicalise_src, image_ref, scheme, url_file_name};
use bty_store::catalog_file::{CatalogEntry, CatalogFile, MAX_CATALOG_BYTES};
use bty_store::digest::is_sha256_hex;
use bty_store::format::format_from_name;
use bty_store::merge::{MergeEntry, Row, SourceKind, merge};
use bty_store::scan::{ScannedFile, scan_image_root};
use bty_store::sidecar::{Sidecar, remove_sidecar};
use bty_store::{atomic::write_atomic, export::export_catalog};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Extra key marking entries added by URL (shown as source kind `url`).
/// Upstream ignores unknown keys, so the file stays compatible.
const ORIGIN_KEY: &str = "origin";

/// What the supervisor gives the catalog at each (re)start.
#[derive(Debug, Clone)]
pub struct CatalogArgs {
    /// The image store.
    pub image_root: PathBuf,
    /// `state_dir/catalog.toml`.
    pub catalog_path: PathBuf,
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
    pub(super) file: CatalogFile,
    /// Set when catalog.toml on disk does not parse: mutations are refused
    /// so the operator's file is never overwritten.
    pub(super) load_error: Option<String>,
    pub(super) scan: Vec<ScannedFile>,
    pub(super) rows: Vec<Row>,
    /// Cache files being downloaded: hashed inline, never by the hasher.
    pub(super) landing: std::collections::BTreeSet<String>,
}

impl Actor for CatalogActor {
    type Msg = CatalogMessage;
    type State = CatalogState;
    type Arguments = CatalogArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: CatalogArgs,
    ) -> Result<CatalogState, ActorProcessingErr> {
        let (file, load_error) = match load_catalog(&args.catalog_path) {
            Ok(file) => (file, None),
            Err(reason) => {
                tracing::error!(path = %args.catalog_path.display(), %reason, "catalog.toml does not parse; catalog is read-only");
                (CatalogFile::default(), Some(reason))
            }
        };
        let mut state = CatalogState {
            args,
            file,
            load_error,
            scan: Vec::new(),
            rows: Vec::new(),
            landing: std::collections::BTreeSet::new(),
        };
        state.rescan();
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: CatalogMessage,
        state: &mut CatalogState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CatalogMessage::List { query, reply } => {
                let _ = reply.send(state.list(&query));
            }
            CatalogMessage::AddEntry { request, reply } => {
                let _ = reply.send(state.add_entry(request));
            }
            CatalogMessage::RemoveEntry { src_or_ref, reply } => {
                let _ = reply.send(state.remove_entry(&src_or_ref));
            }
            CatalogMessage::Import { source, reply } => {
                let _ = reply.send(state.import(source));
            }
            CatalogMessage::Export { base_url, reply } => {
                let _ = reply.send(export_catalog(&state.rows, &base_url));
            }
            CatalogMessage::Rescan => state.rescan(),
            CatalogMessage::ImageHashed { name, sha256 } => state.image_hashed(&name, &sha256),
            CatalogMessage::RequeueUnhashed => state.requeue_unhashed(),
            CatalogMessage::DownloadSpec { key, update, reply } => {
                let _ = reply.send(state.download_spec(&key, update));
            }
            CatalogMessage::ExpectLanding { name, reply } => {
                state.landing.insert(name);
                let _ = reply.send(());
            }
            CatalogMessage::Landed(landed) => state.landed(landed),
            CatalogMessage::LandingAbandoned { name } => {
                state.landing.remove(&name);
                state.rescan();
            }
            CatalogMessage::DeleteCache { key, reply } => {
                let _ = reply.send(state.delete_cache(&key));
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
fn load_catalog(path: &Path) -> Result<CatalogFile, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            CatalogFile::parse(&bytes, &path.display().to_string()).map_err(|e| e.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CatalogFile::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Read at most `MAX_CATALOG_BYTES` from a local path.
fn read_capped(path: &Path) -> Result<Vec<u8>, CatalogError> {
    let io = |source| CatalogError::Io {
        what: format!("cannot read catalog {}", path.display()),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_CATALOG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_CATALOG_BYTES {
        return Err(CatalogError::Invalid(format!(
            "catalog {} exceeds {MAX_CATALOG_BYTES} bytes; refusing to parse",
            path.display()
        )));
    }
    Ok(bytes)
}

impl CatalogState {
    fn list(&self, query: &str) -> Vec<Row> {
        let query = query.trim().to_lowercase();
        if query.is_empty() {
            return self.rows.clone();
        }
        self.rows
            .iter()
            .filter(|row| {
                row.names.iter().any(|n| n.to_lowercase().contains(&query))
                    || row.sha256.as_deref().is_some_and(|s| s.starts_with(&query))
                    || row
                        .sources
                        .iter()
                        .any(|s| s.location.to_lowercase().contains(&query))
            })
            .cloned()
            .collect()
    }

    /// Re-read the image root; ask for hashes of new or changed files.
    pub(super) fn rescan(&mut self) {
        let scan = match scan_image_root(&self.args.image_root) {
            Ok(scan) => scan,
            Err(e) => {
                tracing::error!(root = %self.args.image_root.display(), error = %e, "cannot scan the image root");
                return;
            }
        };
        let before: BTreeMap<&str, &ScannedFile> =
            self.scan.iter().map(|f| (f.name.as_str(), f)).collect();
        let mut to_hash = Vec::new();
        for file in &scan {
            let seen = before.get(file.name.as_str());
            let changed = seen.is_none_or(|old| {
                old.size_bytes != file.size_bytes || old.modified != file.modified
            });
            if seen.is_none() && !self.scan.is_empty() {
                self.args.events.catalog(
                    "image.appeared",
                    &file.name,
                    format!("{} appeared in the image root", file.name),
                    false,
                );
            }
            if changed
                && !matches!(file.sidecar, Sidecar::Fresh(_))
                && !self.landing.contains(&file.name)
            {
                to_hash.push(file.name.clone());
            }
        }
        let now: std::collections::BTreeSet<&str> = scan.iter().map(|f| f.name.as_str()).collect();
        for gone in before.keys().filter(|n| !now.contains(*n)) {
            self.args.events.catalog(
                "image.removed",
                gone,
                format!("{gone} left the image root"),
                false,
            );
        }
        self.scan = scan;
        self.rebuild_rows();
        for name in to_hash {
            self.args.hasher.enqueue_detached(&name);
        }
    }

    fn requeue_unhashed(&self) {
        for file in &self.scan {
            if !matches!(file.sidecar, Sidecar::Fresh(_)) && !self.landing.contains(&file.name) {
                self.args.hasher.enqueue_detached(&file.name);
            }
        }
    }

    fn image_hashed(&mut self, name: &str, sha256: &str) {
        let Some(file) = self.scan.iter_mut().find(|f| f.name == name) else {
            // Not scanned yet (it just appeared): a rescan picks it up.
            self.rescan();
            return;
        };
        if file.sidecar == Sidecar::Fresh(sha256.to_owned()) {
            return;
        }
        file.sidecar = Sidecar::Fresh(sha256.to_owned());
        self.rebuild_rows();
        self.args.events.catalog(
            "image.hashed",
            name,
            format!("{name} hashed: sha256 {}", &sha256[..sha256.len().min(12)]),
            false,
        );
    }

    pub(super) fn rebuild_rows(&mut self) {
        let entries: Vec<MergeEntry<'_>> = self
            .file
            .entries
            .iter()
            .filter_map(|entry| {
                let image_ref = entry.image_ref().ok()?;
                let kind = if entry.extra.get(ORIGIN_KEY).and_then(|v| v.as_str()) == Some("url") {
                    SourceKind::Url
                } else {
                    SourceKind::Manifest
                };
                Some(MergeEntry {
                    entry,
                    image_ref,
                    kind,
                })
            })
            .collect();
        self.rows = merge(&self.scan, &entries);
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

    /// Write `file` to catalog.toml atomically, then adopt it.
    pub(super) fn persist(&mut self, file: CatalogFile) -> Result<(), CatalogError> {
        write_atomic(&self.args.catalog_path, file.to_toml_string().as_bytes()).map_err(
            |source| CatalogError::Io {
                what: format!("cannot write {}", self.args.catalog_path.display()),
                source,
            },
        )?;
        self.file = file;
        self.rebuild_rows();
        Ok(())
    }

    pub(super) fn position_of(&self, src_or_ref: &str) -> Option<usize> {
        let wanted = src_or_ref.trim();
        let canonical = canonicalise_src(wanted).ok();
        self.file.entries.iter().position(|e| {
            e.image_ref().is_ok_and(|r| r == wanted.to_lowercase())
                || canonical
                    .as_ref()
                    .is_some_and(|c| canonicalise_src(&e.src).is_ok_and(|s| &s == c))
        })
    }

    fn add_entry(&mut self, request: AddEntry) -> Result<(CatalogEntry, String), CatalogError> {
        self.ensure_writable()?;
        let url = request.url.trim().to_owned();
        let invalid = |e: &dyn std::fmt::Display| {
            CatalogError::Invalid(format!("invalid image_url {url:?}: {e}"))
        };
        let remote = request.remote.clone().unwrap_or_default();
        let is_oras = match scheme(&url).map_err(|e| invalid(&e))? {
            Scheme::Http | Scheme::Https => false,
            Scheme::Oras if request.remote.is_some() => true,
            Scheme::Oras => {
                return Err(CatalogError::Unsupported(
                    "oras:// entries are resolved by the downloader before they are added".to_owned(),
                ));
            }
            Scheme::File => {
                return Err(CatalogError::Invalid(
                    "catalog entries carry only remote sources (oras:// / http:// / https://)"
                        .to_owned(),
                ));
            }
        };
        let image_ref = image_ref(&url).map_err(|e| invalid(&e))?;
        if let Some(given) = &request.image_ref
            && given.trim().to_lowercase() != image_ref
        {
            return Err(CatalogError::Invalid(format!(
                "ref {given} does not match image_url (expected {image_ref})"
            )));
        }
        if let Some(i) = self.position_of(&url) {
            return Err(CatalogError::AlreadyExists(format!(
                "catalog entry with src={} already exists",
                self.file.entries[i].src
            )));
        }
        let default_name = if is_oras {
            // The layer title, else the repository's last path segment.
            remote.title.clone().or_else(|| {
                let canonical = canonicalise_src(&url).ok()?;
                let parsed = bty_store::oras_ref::OrasRef::parse(&canonical).ok()?;
                parsed.repository.rsplit('/').next().map(str::to_owned)
            })
        } else {
            url_file_name(&url)
        };
        let name = match request.name.filter(|n| !n.trim().is_empty()) {
            Some(name) => name.trim().to_owned(),
            None => default_name.ok_or_else(|| {
                CatalogError::Invalid("image_url must end in a filename component".to_owned())
            })?,
        };
        if let Some(other) = self.file.entries.iter().find(|e| e.name == name) {
            return Err(CatalogError::AlreadyExists(format!(
                "an entry named {name:?} already exists with src {}",
                other.src
            )));
        }
        let sha256 = match request.sha256.map(|s| s.trim().to_lowercase()) {
            Some(s) if !is_sha256_hex(&s) => {
                return Err(CatalogError::Invalid(format!(
                    "sha256 must be a 64-char lower-case hex string, got {s:?}"
                )));
            }
            other => other,
        };
        let mut extra = toml::Table::new();
        extra.insert(ORIGIN_KEY.to_owned(), toml::Value::String("url".to_owned()));
        let format = remote
            .format
            .clone()
            .or_else(|| format_from_name(&name).map(|f| f.as_str().to_owned()));
        let entry = CatalogEntry {
            format,
            name,
            src: url,
            sha256,
            size_bytes: remote.size_bytes,
            description: None,
            extra,
        };
        let mut file = self.file.clone();
        file.entries.push(entry.clone());
        self.persist(file)?;
        self.args.events.catalog(
            "entry.added",
            &entry.src,
            format!("added {} ({})", entry.name, entry.src),
            false,
        );
        Ok((entry, image_ref))
    }

    fn remove_entry(&mut self, src_or_ref: &str) -> Result<RemovedEntry, CatalogError> {
        self.ensure_writable()?;
        let index = self.position_of(src_or_ref).ok_or_else(|| {
            CatalogError::NotFound(format!("no catalog entry with src or ref {src_or_ref:?}"))
        })?;
        let mut file = self.file.clone();
        let entry = file.entries.remove(index);
        let image_ref = entry
            .image_ref()
            .map_err(|e| CatalogError::Invalid(e.to_string()))?;
        self.persist(file)?;
        // Entry delete also removes the cached bytes (ref §11 bug 13).
        let cache_removed = match entry.cache_file_name() {
            Ok(name) => self.remove_cached(&name),
            Err(_) => false,
        };
        self.rescan();
        self.args.events.catalog(
            "entry.deleted",
            &entry.src,
            format!("removed {} ({})", entry.name, entry.src),
            false,
        );
        Ok(RemovedEntry {
            entry,
            image_ref,
            cache_removed,
        })
    }

    /// Delete a cached file and its sidecar; true if the file existed.
    pub(super) fn remove_cached(&self, name: &str) -> bool {
        let path = self.args.image_root.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                if let Err(e) = remove_sidecar(&path) {
                    tracing::warn!(name, error = %e, "cannot remove sidecar");
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::warn!(name, error = %e, "cannot remove cached file");
                false
            }
        }
    }

    fn import(&mut self, source: ImportSource) -> Result<ImportReport, CatalogError> {
        self.ensure_writable()?;
        let (bytes, label) = match source {
            ImportSource::Bytes { content, label } => (content, label),
            ImportSource::Path(path) => (read_capped(&path)?, path.display().to_string()),
        };
        let incoming = CatalogFile::parse(&bytes, &label).map_err(|e| {
            self.args
                .events
                .catalog("catalog.import.failed", &label, e.to_string(), true);
            CatalogError::Invalid(e.to_string())
        })?;
        let mut file = self.file.clone();
        let report = import_entries(&mut file, incoming, &label);
        if report.changed() {
            self.persist(file)?;
        }
        self.args.events.catalog(
            "catalog.imported",
            &label,
            format!(
                "imported {label}: {} new, {} updated, {} unchanged, {} errors",
                report.imported,
                report.updated,
                report.skipped,
                report.errors.len()
            ),
            !report.errors.is_empty(),
        );
        Ok(report)
    }
}
