//! The catalog's side of the image root: scans (the start-up one, and the
//! watcher's, run off the mailbox and adopted in the order they were
//! started), what a scan tells (files that came, went or changed; hashes
//! to ask for), edits for files bty itself landed or deleted, and hashes
//! and uploads as they are reported.

use super::actor::CatalogState;
use super::messages::{CatalogMessage, ScanOutcome};
use crate::events::{CatalogEvent, CatalogEventKind};
use bty_store::scan::{ScannedFile, scan_image_root};
use bty_store::sidecar::Sidecar;
use std::collections::BTreeMap;

/// Scans finish in any order, and bty edits the adopted scan for files it
/// landed or deleted itself: each scan is numbered when started, and only
/// one newer than the adopted scan (or the last edit) is adopted.
#[derive(Debug, Default)]
pub(super) struct ScanOrder {
    started: u64,
    adopted: u64,
    /// A scan is running off the mailbox.
    in_background: bool,
    /// Another rescan was asked for while it ran: run one more after it.
    again: bool,
}

impl ScanOrder {
    pub(super) fn start(&mut self) -> u64 {
        self.started += 1;
        self.started
    }

    /// Whether a scan after the start-up one was adopted: only those
    /// announce what appeared.
    fn past_start_up(&self) -> bool {
        self.adopted > 1
    }

    /// The adopted scan was edited for a file bty itself landed or
    /// deleted: a scan started before may not have seen that, so it is no
    /// longer adopted when it finishes.
    fn edited(&mut self) {
        self.started += 1;
        self.adopted = self.started;
    }

    /// Whether scan `seq` is newer than what was adopted (and is adopted).
    pub(super) fn adopt(&mut self, seq: u64) -> bool {
        let newer = seq > self.adopted;
        if newer {
            self.adopted = seq;
        }
        newer
    }
}

/// Scan the image root on the blocking pool (listing and stat of every
/// file): the runtime's threads never wait on the disk.
pub(super) async fn scan_off_runtime(root: std::path::PathBuf) -> ScanOutcome {
    tokio::task::spawn_blocking(move || scan_image_root(&root)).await
}

impl CatalogState {
    /// The watcher's rescan: the scan runs off the mailbox and comes back
    /// as `Scanned`, so a slow disk or a large root never holds up a
    /// listing or a lookup. At most one runs at a time; asks that arrive
    /// meanwhile are folded into one more scan after it.
    pub(super) fn rescan_in_background(&mut self) {
        if self.scans.in_background {
            self.scans.again = true;
            return;
        }
        self.scans.in_background = true;
        let seq = self.scans.start();
        let root = self.args.image_root.clone();
        let myself = self.myself.clone();
        tokio::spawn(async move {
            let scanned = scan_off_runtime(root).await;
            // Gone only when the catalog stopped: its successor scans anew.
            let _ = myself.cast(CatalogMessage::Scanned { seq, scanned });
        });
    }

    /// A background scan finished: adopt it, unless the scan was edited
    /// since it started; then scan again, as the disk may hold more news
    /// than the edit.
    pub(super) fn scanned_in_background(&mut self, seq: u64, scanned: ScanOutcome) {
        self.scans.in_background = false;
        if self.scans.adopt(seq) {
            self.take_scan(scanned);
        } else {
            self.scans.again = true;
        }
        if std::mem::take(&mut self.scans.again) {
            self.rescan_in_background();
        }
    }

    /// Adopt a scan of the image root: events for files that came and
    /// went, hashes asked for new or changed files.
    pub(super) fn take_scan(&mut self, scanned: ScanOutcome) {
        let scan = match scanned {
            Ok(Ok(scan)) => scan,
            Ok(Err(e)) => {
                tracing::error!(root = %self.args.image_root.display(), error = %e, "cannot scan the image root");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "the image root scan did not finish");
                return;
            }
        };
        let before: BTreeMap<&str, &ScannedFile> =
            self.scan.iter().map(|f| (f.name.as_str(), f)).collect();
        // Every scan but the one at start-up announces what appeared (the
        // scan before being empty is no sign of start-up: a first file
        // dropped into an empty root is news to the page too), except
        // files a download is landing: they fill their entry's row.
        let announce = self.scans.past_start_up();
        let mut to_hash = Vec::new();
        for file in &scan {
            let seen = before.get(file.name.as_str());
            if seen != Some(&file) {
                self.touched.file(&file.name);
            }
            let changed = seen.is_none_or(|old| {
                old.size_bytes != file.size_bytes || old.modified != file.modified
            });
            if seen.is_none() && announce && !self.arriving.contains(&file.name) {
                self.args.events.catalog(CatalogEvent::new(
                    CatalogEventKind::ImageAppeared,
                    &file.name,
                    format!("{} appeared in the image root", file.name),
                ));
            }
            if changed
                && !matches!(file.sidecar, Sidecar::Fresh(_))
                && !self.arriving.contains(&file.name)
            {
                to_hash.push(file.name.clone());
            }
        }
        let now: std::collections::BTreeSet<&str> = scan.iter().map(|f| f.name.as_str()).collect();
        for gone in before.keys().filter(|n| !now.contains(*n)) {
            self.touched.file(gone);
            self.args.events.catalog(CatalogEvent::new(
                CatalogEventKind::ImageRemoved,
                gone,
                format!("{gone} left the image root"),
            ));
        }
        self.scan = scan;
        for name in to_hash {
            self.args.hasher.enqueue_detached(&name);
        }
    }

    /// An upload landed: list it with the sha256 its sidecar records.
    pub(super) fn uploaded(&mut self, name: &str, sha256: &str, landed: Option<ScannedFile>) {
        self.arriving.remove(name);
        if !landed
            .as_ref()
            .is_some_and(|f| f.sidecar == Sidecar::Fresh(sha256.to_owned()))
        {
            tracing::info!(name, "an uploaded file changed before it was listed");
        }
        self.land_file(name, landed);
    }

    /// A file bty itself just put in place, as `scan_one` listed it: into
    /// the scan at once, so whoever is told it landed finds it listed.
    /// (`None`: not listable as it stands; a scan settles it.)
    pub(super) fn land_file(&mut self, name: &str, landed: Option<ScannedFile>) {
        let Some(file) = landed.filter(|f| f.name == name) else {
            self.rescan_in_background();
            return;
        };
        match self.scan.binary_search_by(|f| f.name.as_str().cmp(name)) {
            Ok(i) => self.scan[i] = file,
            Err(i) => self.scan.insert(i, file),
        }
        self.scans.edited();
        self.touched.file(name);
    }

    /// A file bty itself deleted: out of the scan at once, and announced
    /// as a scan would.
    pub(super) fn forget_file(&mut self, name: &str) {
        let Ok(i) = self.scan.binary_search_by(|f| f.name.as_str().cmp(name)) else {
            return;
        };
        self.scan.remove(i);
        self.scans.edited();
        self.touched.file(name);
        self.args.events.catalog(CatalogEvent::new(
            CatalogEventKind::ImageRemoved,
            name,
            format!("{name} left the image root"),
        ));
    }

    pub(super) fn requeue_unhashed(&self) {
        for file in &self.scan {
            if !matches!(file.sidecar, Sidecar::Fresh(_)) && !self.arriving.contains(&file.name) {
                self.args.hasher.enqueue_detached(&file.name);
            }
        }
    }

    pub(super) fn image_hashed(&mut self, name: &str, sha256: &str) {
        let found = self.scan.binary_search_by(|f| f.name.as_str().cmp(name));
        let Some(file) = found.ok().and_then(|i| self.scan.get_mut(i)) else {
            // Not scanned yet (it just appeared): a rescan picks it up.
            self.rescan_in_background();
            return;
        };
        if file.sidecar == Sidecar::Fresh(sha256.to_owned()) {
            return;
        }
        file.sidecar = Sidecar::Fresh(sha256.to_owned());
        self.touched.file(name);
        self.args.events.catalog(CatalogEvent::new(
            CatalogEventKind::ImageHashed,
            name,
            format!("{name} hashed: sha256 {}", &sha256[..sha256.len().min(12)]),
        ));
    }

    /// The scanned file named `name`. The scan is sorted by name (byte
    /// order): O(log n).
    pub(super) fn scanned(&self, name: &str) -> Option<&ScannedFile> {
        let found = self.scan.binary_search_by(|f| f.name.as_str().cmp(name));
        found.ok().and_then(|i| self.scan.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_scan_newer_than_the_adopted_one_is_adopted() {
        let mut scans = ScanOrder::default();
        let background = scans.start();
        let later = scans.start();
        assert!(scans.adopt(later), "a scan started later, finished first");
        assert!(!scans.adopt(background), "an older scan finishing late");
        let next = scans.start();
        assert!(scans.adopt(next));
    }

    #[test]
    fn a_scan_started_before_an_edit_is_not_adopted() {
        let mut scans = ScanOrder::default();
        let before = scans.start();
        // bty landed or deleted a file and edited the adopted scan.
        scans.edited();
        assert!(!scans.adopt(before), "it may not know of the edit");
        let after = scans.start();
        assert!(scans.adopt(after));
    }
}
