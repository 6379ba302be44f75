//! The catalog's handle: one async method per request, no logic.

use super::error::CatalogError;
use super::import::ImportReport;
use super::messages::{
    AddEntry, CacheDeleted, CatalogMessage, Change, ListedEntry, ParsedImport, RemovedEntry,
};
use crate::actors::call::ask;
use crate::actors::{Unavailable, slot::ActorSlot};
use crate::domain::{DownloadSpec, Downloaded, LocalImage};
use bty_store::catalog_file::{CatalogEntry, ParsedCatalog};
use bty_store::merge::Row;
use bty_store::scan::ScannedFile;
use ractor::{ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::time::Duration;

/// Every request but an import: answered from the catalog's state, but its
/// mailbox is serial and rewrites catalog.toml (up to the catalog limit) in
/// its handler, so a request may wait behind one such write.
const REQUEST: Duration = Duration::from_secs(30);

/// An import merges up to a whole limit's worth of entries (64 MiB by
/// default) and rewrites catalog.toml: tens of seconds on a slow machine.
const IMPORT: Duration = Duration::from_secs(120);

/// Cheap to clone; follows the catalog across restarts.
#[derive(Debug, Clone, Default)]
pub struct CatalogHandle {
    slot: ActorSlot<CatalogMessage>,
}

impl CatalogHandle {
    /// A handle reading `slot`.
    pub fn new(slot: ActorSlot<CatalogMessage>) -> Self {
        Self { slot }
    }

    /// The slot the supervisor fills.
    pub(crate) fn slot(&self) -> &ActorSlot<CatalogMessage> {
        &self.slot
    }

    fn actor(&self) -> Result<ActorRef<CatalogMessage>, CatalogError> {
        self.slot
            .get()
            .ok_or(CatalogError::Unavailable(Unavailable::NotRunning {
                actor: "catalog",
            }))
    }

    /// Ask the catalog, waiting at most `after`.
    async fn ask<R: Send + 'static>(
        &self,
        after: Duration,
        build: impl FnOnce(RpcReplyPort<R>) -> CatalogMessage,
    ) -> Result<R, CatalogError> {
        Ok(ask(&self.slot, "catalog", after, build).await?)
    }

    fn cast(&self, msg: CatalogMessage) {
        match self.actor() {
            Ok(actor) => {
                if actor.cast(msg).is_err() {
                    tracing::warn!("catalog stopped; notification dropped");
                }
            }
            Err(_) => tracing::warn!("catalog not running; notification dropped"),
        }
    }

    /// The merged rows.
    pub async fn list(&self) -> Result<Arc<Vec<Row>>, CatalogError> {
        self.ask(REQUEST, |reply| CatalogMessage::List { reply })
            .await
    }

    /// The remote entries, in catalog.toml's order.
    pub async fn list_entries(&self) -> Result<Vec<ListedEntry>, CatalogError> {
        self.ask(REQUEST, |reply| CatalogMessage::ListEntries { reply })
            .await
    }

    /// Add a remote entry; returns it with its ref.
    pub async fn add_entry(
        &self,
        request: AddEntry,
    ) -> Result<(CatalogEntry, String), CatalogError> {
        self.ask(REQUEST, |reply| {
            CatalogMessage::Change(Change::Add { request, reply })
        })
        .await?
    }

    /// Remove a remote entry.
    pub async fn remove_entry(&self, src_or_ref: &str) -> Result<RemovedEntry, CatalogError> {
        let src_or_ref = src_or_ref.to_owned();
        self.ask(REQUEST, |reply| {
            CatalogMessage::Change(Change::Remove { src_or_ref, reply })
        })
        .await?
    }

    /// Import catalog.toml `content` of at most `max_bytes`. It is parsed
    /// on the blocking pool here, in the caller's task, so the catalog only
    /// merges entries.
    pub async fn import(
        &self,
        content: Vec<u8>,
        label: String,
        max_bytes: usize,
    ) -> Result<ImportReport, CatalogError> {
        let parse_label = label.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            ParsedCatalog::parse(&content, &parse_label, max_bytes)
        })
        .await
        .map_err(|source| Unavailable::Task {
            what: "catalog parser",
            source,
        })?;
        let import = ParsedImport { parsed, label };
        self.ask(IMPORT, |reply| {
            CatalogMessage::Change(Change::Import { import, reply })
        })
        .await?
    }

    /// The exportable catalog.toml.
    pub async fn export(&self, base_url: &str) -> Result<String, CatalogError> {
        let base_url = base_url.to_owned();
        self.ask(REQUEST, |reply| CatalogMessage::Export { base_url, reply })
            .await
    }

    /// The image root changed.
    pub fn rescan(&self) {
        self.cast(CatalogMessage::Rescan);
    }

    /// A sidecar was written.
    pub fn image_hashed(&self, name: &str, sha256: &str) {
        self.cast(CatalogMessage::ImageHashed {
            name: name.to_owned(),
            sha256: sha256.to_owned(),
        });
    }

    /// Re-queue every unhashed file.
    pub fn requeue_unhashed(&self) {
        self.cast(CatalogMessage::RequeueUnhashed);
    }

    /// What to download for an entry.
    pub async fn download_spec(
        &self,
        key: &str,
        update: bool,
    ) -> Result<DownloadSpec, CatalogError> {
        let key = key.to_owned();
        self.ask(REQUEST, |reply| CatalogMessage::DownloadSpec {
            key,
            update,
            reply,
        })
        .await?
    }

    /// Announce a download of `name` (suppresses auto-hashing of it).
    pub async fn expect_arrival(&self, name: &str) -> Result<(), CatalogError> {
        let name = name.to_owned();
        self.ask(REQUEST, |reply| CatalogMessage::ExpectArrival {
            name,
            reply,
        })
        .await
    }

    /// A download landed.
    pub fn downloaded(&self, done: Downloaded) {
        self.cast(CatalogMessage::Downloaded(done));
    }

    /// An upload stored `name` (bytes and sidecar in place); `landed` is
    /// the file as a scan lists it.
    pub fn uploaded(&self, name: &str, sha256: &str, landed: Option<ScannedFile>) {
        self.cast(CatalogMessage::Uploaded {
            name: name.to_owned(),
            sha256: sha256.to_owned(),
            landed,
        });
    }

    /// A download or upload ended without landing.
    pub fn arrival_abandoned(&self, name: &str) {
        self.cast(CatalogMessage::ArrivalAbandoned {
            name: name.to_owned(),
        });
    }

    /// Remove an entry's cached bytes.
    pub async fn delete_cache(&self, key: &str) -> Result<CacheDeleted, CatalogError> {
        let key = key.to_owned();
        self.ask(REQUEST, |reply| {
            CatalogMessage::Change(Change::DeleteCache { key, reply })
        })
        .await?
    }

    /// Resolve an image to a file in the image root.
    pub async fn resolve_local(&self, key: &str) -> Result<LocalImage, CatalogError> {
        let key = key.to_owned();
        self.ask(REQUEST, |reply| CatalogMessage::ResolveLocal { key, reply })
            .await?
    }

    /// Test-only: make the catalog panic.
    #[cfg(feature = "fault-injection")]
    pub fn inject_panic(&self) {
        self.cast(CatalogMessage::InjectPanic);
    }
}
