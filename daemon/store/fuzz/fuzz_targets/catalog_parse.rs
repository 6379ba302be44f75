//! `CatalogFile::parse` on arbitrary bytes: never panics, and what it accepts
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
