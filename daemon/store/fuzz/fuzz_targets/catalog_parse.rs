//! `CatalogFile::parse` on arbitrary bytes: never panics; what it accepts
//! holds exactly the `[[images]]` tables a plain TOML reading finds, in
//! order, with their names, srcs and descriptions as written; and it
//! serializes to a catalog that parses again to the same text (the daemon
//! rewrites catalog.toml from parsed data, so a non-fixpoint would corrupt
//! an operator's file on the next rewrite).
#![no_main]

use bty_store::catalog_file::CatalogFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = CatalogFile::parse(data, "fuzz") else {
        return;
    };
    // The same bytes read as plain TOML: every entry bty kept is the table
    // the file holds at its place, nothing dropped, added or reordered.
    let raw: toml::Table = std::str::from_utf8(data)
        .ok()
        .and_then(|text| text.parse().ok())
        .expect("an accepted catalog is valid UTF-8 TOML");
    let tables: Vec<&toml::Table> = match raw.get("images") {
        Some(toml::Value::Array(items)) => items.iter().filter_map(|v| v.as_table()).collect(),
        _ => Vec::new(),
    };
    assert_eq!(tables.len(), parsed.entries.len(), "entries dropped or added");
    for (entry, table) in parsed.entries.iter().zip(&tables) {
        let field = |key: &str| table.get(key).and_then(|v| v.as_str());
        assert_eq!(field("name"), Some(&*entry.name), "name changed");
        assert_eq!(field("src"), Some(&*entry.src), "src changed");
        assert_eq!(field("description"), entry.description.as_deref());
    }
    let text = parsed.to_toml_string();
    let reparsed = match CatalogFile::parse(text.as_bytes(), "fuzz-rewrite") {
        Ok(reparsed) => reparsed,
        Err(e) => panic!("accepted catalog does not re-parse after a rewrite: {e}\n{text}"),
    };
    // Compared as text: `nan` in an unknown key is not equal to itself.
    assert_eq!(reparsed.to_toml_string(), text, "rewrite is not a fixpoint");
    assert_eq!(reparsed.entries.len(), parsed.entries.len());
    for entry in &parsed.entries {
        // Every accepted entry has a ref and a cache file name.
        let name = entry
            .cache_file_name()
            .unwrap_or_else(|e| panic!("accepted entry {:?} has no ref: {e}", entry.name));
        assert!(
            !name.contains(['/', '\\', '\0']),
            "cache file name {name:?} is not a bare name"
        );
    }
});
