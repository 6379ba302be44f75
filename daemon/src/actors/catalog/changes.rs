//! Changes that touch the disk run off the catalog's mailbox, one at a
//! time and in the order asked: writing catalog.toml (adds, removes,
//! imports, a download's validators) and deleting cached bytes.
//!
//! Each change is decided on the catalog as the change before it left it;
//! its disk work runs on the blocking pool; `DiskWorkDone` brings the
//! outcome back to be adopted and answered. Listings and lookups meanwhile
//! are answered from the catalog before the change, which nobody has been
//! told of yet, so a slow disk never holds up a reader.

use super::actor::{CatalogState, write_catalog};
use super::error::CatalogError;
use super::import::ImportReport;
use super::index::IndexedCatalog;
use super::messages::{CacheDeleted, CatalogMessage, Change, RemovedEntry};
use crate::actors::Unavailable;
use crate::events::{CatalogEvent, CatalogEventKind};
use bty_store::catalog_file::CatalogEntry;
use bty_store::sidecar::remove_with_sidecar;
use ractor::RpcReplyPort;
use std::path::Path;

/// The disk work of one change, in this order: the delete only once the
/// write (when there is one) succeeded.
#[derive(Debug, Default)]
pub(super) struct DiskWork {
    /// catalog.toml as it is to become.
    pub(super) write: Option<IndexedCatalog>,
    /// A cached file to delete, with its sidecar and signer record.
    pub(super) delete: Option<String>,
}

/// What the disk work did.
#[derive(Debug)]
pub struct DiskDone {
    /// The catalog as written, or why it was not; `None` when there was
    /// nothing to write.
    written: Option<Result<IndexedCatalog, CatalogError>>,
    /// The cached file deleted, when one was.
    deleted: Option<String>,
}

/// How a change ends once its disk work is done.
#[derive(Debug)]
pub enum Then {
    /// Announce the entry and answer with it.
    Added {
        entry: CatalogEntry,
        image_ref: String,
        reply: RpcReplyPort<Result<(CatalogEntry, String), CatalogError>>,
    },
    /// Announce the removal and answer with what went.
    Removed {
        entry: CatalogEntry,
        image_ref: String,
        reply: RpcReplyPort<Result<RemovedEntry, CatalogError>>,
    },
    /// Announce the import and answer with its report.
    Imported {
        report: ImportReport,
        reply: RpcReplyPort<Result<ImportReport, CatalogError>>,
    },
    /// Announce the delete and answer whether there was a file.
    CacheDeleted {
        name: String,
        file_name: String,
        sha256: Option<String>,
        reply: RpcReplyPort<Result<CacheDeleted, CatalogError>>,
    },
    /// Nobody waits; a failure is logged.
    ValidatorsRecorded,
}

impl DiskWork {
    fn write(catalog: IndexedCatalog) -> Self {
        Self {
            write: Some(catalog),
            delete: None,
        }
    }

    /// Run on the blocking pool.
    fn run(self, catalog_path: &Path, max_catalog_bytes: usize, image_root: &Path) -> DiskDone {
        let written = self.write.map(|catalog| {
            write_catalog(catalog_path, catalog.file(), max_catalog_bytes).map(|()| catalog)
        });
        if matches!(written, Some(Err(_))) {
            return DiskDone {
                written,
                deleted: None,
            };
        }
        let deleted = self
            .delete
            .filter(|name| delete_cached(&image_root.join(name), name));
        DiskDone { written, deleted }
    }
}

/// Delete a cached file with its sidecar and signer record; true if the
/// file existed.
fn delete_cached(path: &Path, name: &str) -> bool {
    if let Err(e) = bty_store::signed::remove_signed(path) {
        tracing::warn!(name, error = %e, "cannot remove a cached file's signer record");
    }
    remove_with_sidecar(path).unwrap_or_else(|e| {
        tracing::warn!(name, error = %e, "cannot remove cached file");
        false
    })
}

/// What a planned change goes on with, or its refusal answered at once.
fn or_refused<P, T>(
    planned: Result<P, CatalogError>,
    reply: RpcReplyPort<Result<T, CatalogError>>,
    go_on: impl FnOnce(P, RpcReplyPort<Result<T, CatalogError>>) -> Option<(DiskWork, Then)>,
) -> Option<(DiskWork, Then)> {
    match planned {
        Ok(planned) => go_on(planned, reply),
        Err(e) => {
            let _ = reply.send(Err(e));
            None
        }
    }
}

impl CatalogState {
    /// Take a change: at once when no other is under way, else after the
    /// ones asked before it.
    pub(super) fn change(&mut self, change: Change) {
        self.changes.push_back(change);
        self.next_change();
    }

    /// Start waiting changes until one has disk work to run.
    fn next_change(&mut self) {
        while !self.changing {
            let Some(change) = self.changes.pop_front() else {
                return;
            };
            if let Some((work, then)) = self.begin(change) {
                self.offload(work, then);
            }
        }
    }

    /// Decide a change on the catalog as it stands; the disk work it needs
    /// and how it ends, or `None` when it ended here (refused, or nothing
    /// to write).
    fn begin(&mut self, change: Change) -> Option<(DiskWork, Then)> {
        match change {
            Change::Add { request, reply } => {
                or_refused(self.plan_add(request), reply, |planned, reply| {
                    let (catalog, entry, image_ref) = planned;
                    let then = Then::Added {
                        entry,
                        image_ref,
                        reply,
                    };
                    Some((DiskWork::write(catalog), then))
                })
            }
            Change::Remove { src_or_ref, reply } => {
                or_refused(self.plan_remove(&src_or_ref), reply, |planned, reply| {
                    let (work, entry, image_ref) = planned;
                    let then = Then::Removed {
                        entry,
                        image_ref,
                        reply,
                    };
                    Some((work, then))
                })
            }
            Change::Import { import, reply } => or_refused(
                self.plan_import(import),
                reply,
                |planned, reply| match planned {
                    (Some(catalog), report) => {
                        Some((DiskWork::write(catalog), Then::Imported { report, reply }))
                    }
                    (None, report) => {
                        self.announce_import(&report);
                        let _ = reply.send(Ok(report));
                        None
                    }
                },
            ),
            Change::DeleteCache { key, reply } => {
                or_refused(self.plan_delete_cache(&key), reply, |planned, reply| {
                    let (file_name, name, sha256) = planned;
                    let work = DiskWork {
                        write: None,
                        delete: Some(file_name.clone()),
                    };
                    let then = Then::CacheDeleted {
                        name,
                        file_name,
                        sha256,
                        reply,
                    };
                    Some((work, then))
                })
            }
            Change::Validators(done) => self
                .plan_validators(&done)
                .map(|catalog| (DiskWork::write(catalog), Then::ValidatorsRecorded)),
        }
    }

    /// Run `work` on the blocking pool; its outcome comes back as
    /// `DiskWorkDone`, and no other change starts before.
    fn offload(&mut self, work: DiskWork, then: Then) {
        self.changing = true;
        let catalog_path = self.args.catalog_path.clone();
        let max = self.args.max_catalog_bytes;
        let root = self.args.image_root.clone();
        let myself = self.myself.clone();
        let writes = work.write.is_some();
        tokio::spawn(async move {
            let ran =
                tokio::task::spawn_blocking(move || work.run(&catalog_path, max, &root)).await;
            let done = ran.unwrap_or_else(|source| DiskDone {
                written: writes.then(|| {
                    Err(Unavailable::Task {
                        what: "catalog writer",
                        source,
                    }
                    .into())
                }),
                deleted: None,
            });
            // Gone only when the catalog stopped: the callers then hear
            // that it is unavailable, and its successor loads what was
            // written.
            let _ = myself.cast(CatalogMessage::DiskWorkDone { done, then });
        });
    }

    /// A change's disk work is done: adopt what it wrote and deleted,
    /// answer, and start the next change.
    pub(super) fn disk_work_done(&mut self, done: DiskDone, then: Then) {
        self.changing = false;
        let written = match done.written {
            Some(Ok(catalog)) => {
                self.adopt(catalog);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Ok(()),
        };
        let deleted = done.deleted.is_some();
        if let Some(name) = &done.deleted {
            self.forget_file(name);
        }
        self.finish(then, written, deleted);
        self.next_change();
    }

    fn finish(&mut self, then: Then, written: Result<(), CatalogError>, deleted: bool) {
        match then {
            Then::Added {
                entry,
                image_ref,
                reply,
            } => {
                let answer = written.map(|()| {
                    self.announce_entry(CatalogEventKind::EntryAdded, "added", &entry);
                    (entry, image_ref)
                });
                let _ = reply.send(answer);
            }
            Then::Removed {
                entry,
                image_ref,
                reply,
            } => {
                let answer = written.map(|()| {
                    self.announce_entry(CatalogEventKind::EntryDeleted, "removed", &entry);
                    RemovedEntry {
                        entry,
                        image_ref,
                        cache_removed: deleted,
                    }
                });
                let _ = reply.send(answer);
            }
            Then::Imported { report, reply } => {
                let answer = written.map(|()| {
                    self.announce_import(&report);
                    report
                });
                let _ = reply.send(answer);
            }
            Then::CacheDeleted {
                name,
                file_name,
                sha256,
                reply,
            } => {
                if deleted {
                    self.args.events.catalog(CatalogEvent::new(
                        CatalogEventKind::CacheDeleted,
                        &name,
                        format!("deleted the local copy of {name}"),
                    ));
                }
                let _ = reply.send(Ok(CacheDeleted {
                    deleted,
                    reason: if deleted {
                        String::new()
                    } else {
                        "not cached".to_owned()
                    },
                    sha256,
                    file_name,
                }));
            }
            Then::ValidatorsRecorded => {
                if let Err(e) = written {
                    tracing::warn!(error = %bty_store::chain::Chain(&e), "cannot record download validators");
                }
            }
        }
    }

    /// `entry.added` / `entry.deleted`: "<done> <name> (<src>)".
    fn announce_entry(&self, kind: CatalogEventKind, done: &str, entry: &CatalogEntry) {
        self.args.events.catalog(CatalogEvent::new(
            kind,
            &entry.src,
            format!("{done} {} ({})", entry.name, entry.src),
        ));
    }
}
