//! Merging an imported catalog into the stored one: new entries are added,
//! entries with the same canonical src get their metadata updated, and
//! entries that cannot be taken are reported one by one.

use super::entries::added_now;
use super::index::IndexedCatalog;
use bty_store::catalog_file::{CatalogEntry, EntryRecord, ParsedCatalog};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Where the catalog came from.
    pub source: String,
    /// New entries.
    pub imported: u32,
    /// Existing entries (same src) whose metadata changed.
    pub updated: u32,
    /// Existing entries already identical.
    pub skipped: u32,
    /// `(entry name, why)` for entries not taken.
    pub errors: Vec<(String, String)>,
}

impl ImportReport {
    /// Whether the stored catalog changed.
    pub fn changed(&self) -> bool {
        self.imported + self.updated > 0
    }
}

/// Merge `incoming` into `stored`. `incoming` has been parsed and validated
/// already, with every entry's ref: each is looked up in the index, none
/// canonicalised again.
pub(super) fn import_entries(
    stored: &mut IndexedCatalog,
    incoming: ParsedCatalog,
    source: &str,
) -> ImportReport {
    let mut report = ImportReport {
        source: source.to_owned(),
        ..ImportReport::default()
    };
    for (entry, image_ref) in incoming.file.entries.into_iter().zip(incoming.refs) {
        let key = IndexedCatalog::key_of_ref(image_ref);
        let same_src = stored.position_of_key(key);
        let name_owner = stored.position_of_name(&entry.name);
        if let Some(owner) = name_owner.filter(|o| Some(*o) != same_src) {
            let why = format!(
                "an entry named {:?} already exists with src {}",
                entry.name,
                stored.entry(owner).src
            );
            report.errors.push((entry.name.to_string(), why));
            continue;
        }
        match same_src {
            Some(i) => {
                let merged = updated_entry(stored.entry(i), entry);
                if &merged == stored.entry(i) {
                    report.skipped += 1;
                } else {
                    stored.replace(i, merged);
                    report.updated += 1;
                }
            }
            None => {
                let mut entry = entry;
                // The record is this catalog's own: not the file's, but
                // for the checksum file the file says its pin came from.
                entry.record = EntryRecord {
                    added_at: Some(added_now().into()),
                    sha_url: entry.record.sha_url.take(),
                    ..EntryRecord::default()
                };
                stored.push(entry, key);
                report.imported += 1;
            }
        }
    }
    report
}

/// The stored entry with the imported metadata; the stored src spelling and
/// keys the import does not carry are kept.
fn updated_entry(stored: &CatalogEntry, incoming: CatalogEntry) -> CatalogEntry {
    let mut extra = stored.extra.clone();
    extra.extend(incoming.extra);
    // The checksum file goes with the pin it explains.
    let sha_url = if incoming.sha256 == stored.sha256 {
        incoming
            .record
            .sha_url
            .or_else(|| stored.record.sha_url.clone())
    } else {
        incoming.record.sha_url
    };
    CatalogEntry {
        name: incoming.name,
        src: stored.src.clone(),
        sha256: incoming.sha256,
        format: incoming.format.or_else(|| stored.format.clone()),
        size_bytes: incoming.size_bytes.or(stored.size_bytes),
        description: incoming.description.or_else(|| stored.description.clone()),
        // When and how this catalog added the entry is its own record.
        record: EntryRecord {
            sha_url,
            ..stored.record.clone()
        },
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bty_store::catalog_file::CatalogFile;
    use bty_store::digest::Sha256Digest;

    fn entry(name: &str, src: &str) -> CatalogEntry {
        CatalogEntry {
            format: Some("img.gz".into()),
            ..CatalogEntry::new(name, src)
        }
    }

    fn file(entries: Vec<CatalogEntry>) -> CatalogFile {
        CatalogFile {
            entries,
            extra: toml::Table::new(),
        }
    }

    /// A catalog as the parser hands it over: with each entry's ref.
    fn parsed(entries: Vec<CatalogEntry>) -> ParsedCatalog {
        let refs = entries
            .iter()
            .map(|e| Sha256Digest::from_hex(&e.image_ref().unwrap()).unwrap())
            .collect();
        ParsedCatalog {
            file: file(entries),
            refs,
        }
    }

    fn stored(entries: Vec<CatalogEntry>) -> IndexedCatalog {
        IndexedCatalog::new(file(entries))
    }

    #[test]
    fn adds_updates_skips_and_reports() {
        let mut stored = stored(vec![
            entry("a", "https://example.com/a.img.gz"),
            entry("b", "https://example.com/b.img.gz"),
        ]);
        let mut changed_b = entry("b", "https://EXAMPLE.com:443/b.img.gz");
        changed_b.description = Some("new".into());
        let incoming = parsed(vec![
            entry("a", "https://example.com/a.img.gz"),
            changed_b,
            entry("c", "https://example.com/c.img.gz"),
            entry("a", "https://example.com/other.img.gz"),
        ]);
        let report = import_entries(&mut stored, incoming, "test");
        assert_eq!((report.imported, report.updated, report.skipped), (1, 1, 1));
        assert_eq!(report.errors.len(), 1);
        assert!(
            report.errors[0].1.contains("already exists"),
            "{:?}",
            report.errors
        );
        assert_eq!(stored.file().entries.len(), 3);
        // The stored spelling of src is kept on update.
        assert_eq!(&*stored.entry(1).src, "https://example.com/b.img.gz");
        assert_eq!(stored.entry(1).description.as_deref(), Some("new"));
    }

    #[test]
    fn reimport_is_idempotent() {
        let mut stored = stored(vec![]);
        let incoming = parsed(vec![entry("a", "https://example.com/a.img.gz")]);
        assert_eq!(
            import_entries(&mut stored, incoming.clone(), "x").imported,
            1
        );
        let again = import_entries(&mut stored, incoming, "x");
        assert_eq!((again.imported, again.updated, again.skipped), (0, 0, 1));
        assert!(!again.changed());
    }

    #[test]
    fn keeps_unknown_keys_of_stored_entries() {
        let mut s = entry("a", "https://example.com/a.img.gz");
        s.extra
            .insert("team".into(), toml::Value::String("infra".into()));
        s.record.origin = Some("url".into());
        let mut stored = stored(vec![s]);
        let mut incoming = entry("a", "https://example.com/a.img.gz");
        incoming.size_bytes = Some(5);
        import_entries(&mut stored, parsed(vec![incoming]), "x");
        assert!(stored.entry(0).extra.contains_key("team"));
        assert_eq!(stored.entry(0).record.origin.as_deref(), Some("url"));
        assert_eq!(stored.entry(0).size_bytes, Some(5));
    }

    #[test]
    fn a_checksum_file_goes_with_the_pin_it_explains() {
        let sums = "https://example.com/SHA256SUMS";
        let mut pinned = entry("a", "https://example.com/a.img.gz");
        pinned.sha256 = Some(bty_store::digest::Sha256Digest([0xaa; 32]));
        pinned.record.sha_url = Some(sums.into());
        let mut stored = stored(vec![pinned.clone()]);
        // A new entry keeps the file's sha_url; a re-import of the same
        // pin without one keeps the stored one.
        let mut other = entry("b", "https://example.com/b.img.gz");
        other.record.sha_url = Some("https://example.com/b.sums".into());
        let mut same_pin = pinned.clone();
        same_pin.record.sha_url = None;
        import_entries(&mut stored, parsed(vec![same_pin, other]), "x");
        assert_eq!(stored.entry(0).record.sha_url.as_deref(), Some(sums));
        assert_eq!(
            stored.entry(1).record.sha_url.as_deref(),
            Some("https://example.com/b.sums")
        );
        // A new pin from elsewhere: the old checksum file no longer says
        // where it came from.
        let mut repinned = pinned;
        repinned.sha256 = Some(bty_store::digest::Sha256Digest([0xbb; 32]));
        repinned.record.sha_url = None;
        import_entries(&mut stored, parsed(vec![repinned]), "x");
        assert_eq!(stored.entry(0).record.sha_url, None);
    }
}
