//! What a large catalog costs in memory once loaded and merged: the parsed
//! entries and the merged rows of 100 000 remote entries, counted by a
//! global allocator that rounds each block as glibc's malloc does. btyd
//! keeps exactly these two (plus small indexes) for as long as it runs, so
//! a field added to either shows up here per row, long before it shows up
//! as RSS in `scripts/bench-scale`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use bty_store::canon::image_ref;
use bty_store::catalog_file::CatalogFile;
use bty_store::digest::Sha256Digest;
use bty_store::merge::{MergeEntry, SourceKind, merge};

/// Live bytes as the C allocator would hold them.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

/// A malloc chunk: the request plus an 8-byte header, rounded up to 16
/// bytes, at least 32.
fn chunk(size: usize) -> isize {
    isize::try_from(((size + 8 + 15) & !15).max(32)).unwrap_or(isize::MAX)
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(chunk(layout.size()), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(chunk(layout.size()), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(chunk(new_size) - chunk(layout.size()), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ENTRIES: usize = 100_000;

/// The catalog `scripts/bench-scale` imports: pinned nightly builds.
fn nightly_catalog(n: usize) -> String {
    let mut text = String::from("version = 1\n");
    for i in 0..n {
        text.push_str(&format!(
            "\n[[images]]\nname = \"nightly-{i:06}.img.zst\"\n\
             src = \"https://builds.example/nightly/{i:06}/disk.img.zst\"\n\
             sha256 = \"{i:064x}\"\nsize_bytes = {}\n",
            1u64 << 30
        ));
    }
    text
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[test]
fn a_loaded_and_merged_catalog_costs_bounded_bytes_per_entry() {
    let text = nightly_catalog(ENTRIES);
    let before = live();
    let file = CatalogFile::parse(text.as_bytes(), "catalog.toml").expect("parses");
    let entries_bytes = live() - before;

    let refs: Vec<Sha256Digest> = file
        .entries
        .iter()
        .map(|e| Sha256Digest::from_hex(&image_ref(&e.src).expect("canonical")).expect("hex"))
        .collect();
    let merging: Vec<MergeEntry<'_>> = file
        .entries
        .iter()
        .zip(&refs)
        .map(|(entry, image_ref)| MergeEntry {
            entry,
            image_ref: *image_ref,
            kind: SourceKind::Manifest,
        })
        .collect();
    let before_rows = live();
    let rows = merge(&[], &merging);
    let rows_bytes = live() - before_rows;
    assert_eq!(rows.len(), ENTRIES);

    let per_entry = entries_bytes / ENTRIES as isize;
    let per_row = rows_bytes / ENTRIES as isize;
    eprintln!("per entry: {per_entry} bytes; per merged row: {per_row} bytes");
    // Budgets with some room: what 100 000 entries may cost (entries +
    // rows ≈ 100 000 × (entry + row) bytes), so that btyd stays within its
    // 120 MiB at that size with the rest of the daemon beside them.
    assert!(per_entry <= 400, "an entry costs {per_entry} bytes");
    assert!(per_row <= 300, "a merged row costs {per_row} bytes");
}
