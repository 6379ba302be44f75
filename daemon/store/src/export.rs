//! The `catalog.toml` a receiver can fetch (`GET /catalog.toml`):
//! synthesized from the merged listing, not the stored file. Written with
//! [`CatalogFile::to_toml_string`], so every name is escaped properly and the
//! output always parses with [`CatalogFile::parse`].

use std::collections::HashSet;
use std::sync::Arc;

use crate::canon::{self, Scheme};
use crate::catalog_file::{CatalogEntry, CatalogFile};
use crate::merge::{Row, SourceKind};

/// Render the rows as a catalog whose `src`s a receiver can fetch.
///
/// - rows without a sha256 are skipped (nothing to pin);
/// - a cached row points at this server:
///   `<base_url>/images/<sha256>/<percent-encoded first name>`;
/// - an uncached row keeps the location of its first `url`/`manifest`
///   source; rows with neither are skipped;
/// - `file://` is never emitted.
///
/// Rows that would make the catalog invalid (empty name, malformed src, a
/// name or canonical src already emitted) are skipped; the first row wins,
/// so listing order decides.
pub fn export_catalog(rows: &[Row], base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let mut names = HashSet::new();
    let mut srcs = HashSet::new();
    let mut entries = Vec::new();
    for row in rows {
        let Some(entry) = entry_for(row, base) else {
            continue;
        };
        let Ok(canonical) = canon::canonicalise_src(&entry.src) else {
            continue;
        };
        if names.contains(&entry.name) || srcs.contains(&canonical) {
            continue;
        }
        names.insert(entry.name.clone());
        srcs.insert(canonical);
        entries.push(entry);
    }
    CatalogFile {
        entries,
        extra: toml::Table::new(),
    }
    .to_toml_string()
}

/// The entry for one row, or `None` when the row has nothing to export.
fn entry_for(row: &Row, base: &str) -> Option<CatalogEntry> {
    let digest = row.sha256?;
    let sha256 = digest.to_hex();
    // Names a catalog may not carry (control characters) are skipped, so
    // the export always parses.
    let name = row
        .names
        .first()
        .filter(|n| !n.trim().is_empty() && !n.chars().any(char::is_control))?;
    let src = if row.cached {
        Arc::from(format!("{base}/images/{sha256}/{}", percent_encode(name)))
    } else {
        row.sources
            .iter()
            .find(|s| matches!(s.kind, SourceKind::Url | SourceKind::Manifest))
            .map(|s| Arc::clone(&s.location))?
    };
    // Defensive: a local path must never leave the machine.
    if !canon::scheme(&src).is_ok_and(Scheme::is_remote) {
        return None;
    }
    Some(CatalogEntry {
        name: Arc::clone(name),
        src,
        sha256: Some(digest),
        format: row.format.clone().filter(|f| !f.is_empty()),
        size_bytes: row.size_bytes,
        description: None,
        record: Default::default(),
        extra: toml::Table::new(),
    })
}

/// Percent-encode every byte except ASCII alphanumerics and `-._~`
/// (RFC 3986 unreserved), so any name is one safe path segment.
fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256Digest;
    use crate::merge::{Actions, RowSource};

    const BASE: &str = "http://bty.lan:8080/";

    fn sha(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn digest(c: char) -> Sha256Digest {
        Sha256Digest::from_hex(&sha(c)).expect("hex")
    }

    fn row(
        name: &str,
        sha256: Option<String>,
        cached: bool,
        sources: &[(SourceKind, &str)],
    ) -> Row {
        Row {
            image_ref: digest('e'),
            names: Box::new([name.into()]),
            sha256: sha256.as_deref().and_then(Sha256Digest::from_hex),
            format: Some("img.gz".into()),
            size_bytes: Some(42),
            sources: sources
                .iter()
                .map(|(kind, location)| RowSource {
                    kind: *kind,
                    location: (*location).into(),
                })
                .collect(),
            cached,
            actions: Actions::default(),
            file_name: None,
            signed_by: None,
            merged_refs: Box::new([]),
        }
    }

    fn parse(text: &str) -> CatalogFile {
        CatalogFile::parse(text.as_bytes(), "export")
            .unwrap_or_else(|e| panic!("export does not parse: {e}\n{text}"))
    }

    #[test]
    fn percent_encode_table() {
        for (input, want) in [
            ("debian.img.gz", "debian.img.gz"),
            ("a b", "a%20b"),
            ("x/y?z#w", "x%2Fy%3Fz%23w"),
            ("(x86_64, rolling)", "%28x86_64%2C%20rolling%29"),
            ("ü~", "%C3%BC~"),
            ("\"\\\n", "%22%5C%0A"),
        ] {
            assert_eq!(percent_encode(input), want, "{input}");
        }
    }

    #[test]
    fn row_rules() {
        use SourceKind::{Local, Manifest, Url};
        let rows = vec![
            // cached: served from this host
            row(
                "cached one.img.gz",
                Some(sha('a')),
                true,
                &[(Local, "/img/x"), (Manifest, "https://up/x")],
            ),
            // uncached: first url/manifest source
            row(
                "remote",
                Some(sha('b')),
                false,
                &[
                    (Local, "/img/y"),
                    (Url, "https://up/y"),
                    (Manifest, "https://up/z"),
                ],
            ),
            // skipped: no sha256
            row("unhashed", None, true, &[(Local, "/img/u")]),
            // skipped: uncached and only local
            row("local only", Some(sha('c')), false, &[(Local, "/img/l")]),
            // skipped: file:// src
            row("file src", Some(sha('d')), false, &[(Url, "file://x.img")]),
            // skipped: duplicate name
            row(
                "remote",
                Some(sha('e')),
                false,
                &[(Url, "https://up/other")],
            ),
            // skipped: duplicate canonical src
            row(
                "same src",
                Some(sha('f')),
                false,
                &[(Url, "HTTPS://UP:443/y")],
            ),
        ];
        let cat = parse(&export_catalog(&rows, BASE));
        let hex: Vec<Option<String>> = cat
            .entries
            .iter()
            .map(|e| e.sha256.map(|d| d.to_hex()))
            .collect();
        let got: Vec<(&str, &str, Option<&str>)> = cat
            .entries
            .iter()
            .zip(&hex)
            .map(|(e, sha)| (&*e.name, &*e.src, sha.as_deref()))
            .collect();
        let cached_src = format!(
            "http://bty.lan:8080/images/{}/cached%20one.img.gz",
            sha('a')
        );
        assert_eq!(
            got,
            vec![
                (
                    "cached one.img.gz",
                    cached_src.as_str(),
                    Some(sha('a').as_str())
                ),
                ("remote", "https://up/y", Some(sha('b').as_str())),
            ]
        );
        assert!(cat.entries.iter().all(|e| e.size_bytes == Some(42)));
        assert!(
            cat.entries
                .iter()
                .all(|e| e.format.as_deref() == Some("img.gz"))
        );
    }

    #[test]
    fn optional_fields_are_omitted() {
        let mut r = row("plain", Some(sha('a')), true, &[]);
        r.format = None;
        r.size_bytes = None;
        let text = export_catalog(&[r], "http://h");
        assert!(text.starts_with("version = 1\n"), "{text}");
        assert!(
            !text.contains("format")
                && !text.contains("size_bytes")
                && !text.contains("description")
        );
        assert_eq!(parse(&text).entries[0].format, None);
    }

    #[test]
    fn hostile_names_parse_back() {
        let names = [
            "quote \" name",
            "with spaces (x86_64, rolling)",
            "ünïcødé 日本",
            "new\nline",
            "back\\slash",
            "tab\tand\u{7f}",
        ];
        let rows: Vec<Row> = names
            .iter()
            .enumerate()
            .map(|(i, n)| row(n, Some(format!("{i:064x}")), true, &[]))
            .collect();
        let cat = parse(&export_catalog(&rows, BASE));
        let got: Vec<&str> = cat.entries.iter().map(|e| &*e.name).collect();
        // Names with control characters are not exported: catalogs refuse them.
        let want: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !n.chars().any(char::is_control))
            .collect();
        assert_eq!(got, want);
        for e in &cat.entries {
            assert!(canon::url_file_name(&e.src).is_some_and(|f| !f.contains(['/', ' ', '"'])));
        }
    }

    #[test]
    fn empty_listing_is_a_valid_catalog() {
        let text = export_catalog(&[], BASE);
        assert_eq!(text, "version = 1\n");
        assert!(parse(&text).entries.is_empty());
    }
}
