//! The catalog's entry operations: add one by URL, remove one (with its
//! cached bytes), and import a whole catalog file.

use super::actor::CatalogState;
use super::changes::DiskWork;
use super::error::CatalogError;
use super::import::{ImportReport, import_entries};
use super::index::IndexedCatalog;
use super::messages::{AddEntry, ListedEntry, ParsedImport};
use crate::events::{CatalogEvent, CatalogEventKind};
use bty_store::canon::{Scheme, canonicalise_src, image_ref, scheme, url_file_name};
use bty_store::catalog_file::{CatalogEntry, EntryRecord};
use bty_store::digest::{Sha256Digest, is_sha256_hex};
use bty_store::format::{ImageFormat, format_from_name};
use std::borrow::Cow;

/// The `origin` of entries added by URL (shown as source kind `url`).
/// Upstream ignores unknown keys, so the file stays compatible.
pub(super) const ORIGIN_URL: &str = "url";

/// The current time as `added_at` stores it: when this catalog added an
/// entry (RFC 3339 UTC), for upstream's `added_at` column. Set on add and
/// on import of a new entry, never taken from an imported file.
pub(crate) fn added_now() -> String {
    bty_store::marker::rfc3339_utc(std::time::SystemTime::now())
}

/// A stored `added_at` when it is a plausible timestamp: catalog.toml is
/// the operator's file, and a hand-edited value is not repeated to clients
/// as it stands.
fn added_at(entry: &CatalogEntry) -> Option<String> {
    let text = entry.record.added_at.as_deref()?;
    let plausible = (10..=40).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-:.TZ+".contains(&b));
    plausible.then(|| text.to_owned())
}

impl CatalogState {
    /// The remote entries in file order, each with its ref, the sha256 of
    /// its cached bytes (from the merged rows) and when it was added.
    pub(super) fn list_entries(&mut self) -> Vec<ListedEntry> {
        let rows = self.rows();
        // One pass over the rows, one lookup per entry: linear in both.
        let cached: std::collections::HashMap<&str, Sha256Digest> = rows
            .iter()
            .filter(|row| row.cached)
            .filter_map(|row| Some((row.file_name.as_deref()?, row.sha256?)))
            .collect();
        self.catalog
            .with_refs()
            .filter_map(|(entry, image_ref)| {
                // Entries in the file parsed and canonicalised when loaded.
                let image_ref = image_ref?;
                let cached_sha256 = entry
                    .cache_file_name()
                    .ok()
                    .and_then(|file| cached.get(file.as_str()).map(Sha256Digest::to_hex));
                Some(ListedEntry {
                    added_at: added_at(entry),
                    entry: entry.clone(),
                    image_ref: image_ref.to_hex(),
                    cached_sha256,
                })
            })
            .collect()
    }

    /// The catalog with the entry `request` asks for, that entry and its
    /// ref; or why it cannot be added.
    pub(super) fn plan_add(
        &self,
        request: AddEntry,
    ) -> Result<(IndexedCatalog, CatalogEntry, String), CatalogError> {
        self.ensure_writable()?;
        let url = request.url.trim().to_owned();
        let remote = request.remote.clone().unwrap_or_default();
        let is_oras = match scheme(&url).map_err(CatalogError::BadUrl)? {
            Scheme::Http | Scheme::Https => false,
            Scheme::Oras if request.remote.is_some() => true,
            Scheme::Oras => {
                return Err(CatalogError::OrasUnresolved);
            }
            Scheme::File => {
                return Err(CatalogError::LocalSource);
            }
        };
        let image_ref = image_ref(&url).map_err(CatalogError::BadUrl)?;
        if let Some(given) = &request.image_ref
            && given.trim().to_lowercase() != image_ref
        {
            return Err(CatalogError::RefMismatch {
                given: given.clone(),
                expected: image_ref,
            });
        }
        let key = IndexedCatalog::key_of(&url).map_err(CatalogError::BadUrl)?;
        if let Some(i) = self.catalog.position_of_key(key) {
            return Err(CatalogError::AlreadyExists {
                src: self.catalog.entry(i).src.to_string(),
            });
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
            None => default_name.ok_or(CatalogError::NoFileName)?,
        };
        if let Some(other) = self.catalog.position_of_name(&name) {
            return Err(CatalogError::NameTaken {
                src: self.catalog.entry(other).src.to_string(),
                name,
            });
        }
        let sha256 = match request.sha256.map(|s| s.trim().to_lowercase()) {
            Some(s) if !is_sha256_hex(&s) => {
                return Err(CatalogError::BadSha256 { got: s });
            }
            other => other.as_deref().and_then(Sha256Digest::from_hex),
        };
        let format = remote
            .format
            .clone()
            .map(ImageFormat::id_as_held)
            .or_else(|| format_from_name(&name).map(|f| Cow::Borrowed(f.as_str())));
        let entry = CatalogEntry {
            format,
            name: name.into(),
            src: url.into(),
            sha256,
            size_bytes: remote.size_bytes,
            description: None,
            record: EntryRecord {
                origin: Some(ORIGIN_URL.into()),
                added_at: Some(added_now().into()),
                // An oras entry is never pinned from a checksum file.
                sha_url: request.sha_url.filter(|_| !is_oras).map(Into::into),
                ..EntryRecord::default()
            },
            extra: toml::Table::new(),
        };
        let mut catalog = self.catalog.clone();
        catalog.push(entry.clone(), key);
        Ok((catalog, entry, image_ref))
    }

    /// The disk work of removing the entry `src_or_ref` names (its cached
    /// bytes go too: upstream left them behind, an orphan the listing no
    /// longer showed), the entry and its ref.
    pub(super) fn plan_remove(
        &self,
        src_or_ref: &str,
    ) -> Result<(DiskWork, CatalogEntry, String), CatalogError> {
        self.ensure_writable()?;
        let index = self
            .catalog
            .position_of(src_or_ref)
            .ok_or_else(|| CatalogError::NoEntry {
                key: src_or_ref.to_owned(),
            })?;
        let mut catalog = self.catalog.clone();
        let entry = catalog.remove(index);
        let image_ref = entry.image_ref()?;
        let work = DiskWork {
            write: Some(catalog),
            delete: entry.cache_file_name().ok(),
        };
        Ok((work, entry, image_ref))
    }

    /// The catalog with `import` merged in (`None` when nothing changed)
    /// and the import's report; or why the import is refused.
    pub(super) fn plan_import(
        &self,
        import: ParsedImport,
    ) -> Result<(Option<IndexedCatalog>, ImportReport), CatalogError> {
        self.ensure_writable()?;
        let ParsedImport { parsed, label } = import;
        let incoming = parsed.map_err(|e| {
            self.args.events.catalog(CatalogEvent::new(
                CatalogEventKind::CatalogImportFailed,
                &label,
                e.to_string(),
            ));
            CatalogError::Parse(e)
        })?;
        let mut catalog = self.catalog.clone();
        let report = import_entries(&mut catalog, incoming, &label);
        Ok((report.changed().then_some(catalog), report))
    }

    /// Announce an import that was stored (or changed nothing).
    pub(super) fn announce_import(&self, report: &ImportReport) {
        let label = &report.source;
        self.args.events.catalog(
            CatalogEvent::new(
                CatalogEventKind::CatalogImported,
                label,
                format!(
                    "imported {label}: {} new, {} updated, {} unchanged, {} errors",
                    report.imported,
                    report.updated,
                    report.skipped,
                    report.errors.len()
                ),
            )
            .failed_if(!report.errors.is_empty()),
        );
    }
}
