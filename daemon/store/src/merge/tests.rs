//! Table tests for [`super::merge`]: scans and entries are built in memory;
//! refs are sha256 of the src string (the merge does not canonicalise).

use std::path::PathBuf;
use std::time::SystemTime;

use super::*;
use crate::format::ImageFormat;
use crate::names;
use crate::sidecar::Sidecar;

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SHA_C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

fn file(name: &str, size: u64, format: ImageFormat, sidecar: Sidecar) -> ScannedFile {
    ScannedFile {
        name: name.to_owned(),
        path: PathBuf::from("/root").join(name),
        size_bytes: size,
        modified: SystemTime::UNIX_EPOCH,
        identity: crate::identity::FileIdentity {
            size,
            ..Default::default()
        },
        format,
        sidecar,
        cache_ref_prefix: names::cache_ref_prefix(name).map(str::to_owned),
        signed_by: None,
    }
}

fn fresh(sha: &str) -> Sidecar {
    Sidecar::Fresh(sha.to_owned())
}

fn entry(name: &str, src: &str, sha: Option<&str>, format: Option<&str>) -> CatalogEntry {
    CatalogEntry {
        name: name.into(),
        src: src.into(),
        sha256: sha.and_then(Sha256Digest::from_hex),
        format: format.map(ImageFormat::id_as_held),
        size_bytes: Some(1000),
        description: None,
        record: Default::default(),
        extra: toml::Table::new(),
    }
}

fn mentry(e: &CatalogEntry, kind: SourceKind) -> MergeEntry<'_> {
    MergeEntry {
        entry: e,
        image_ref: Sha256Digest::of(e.src.as_bytes()),
        kind,
    }
}

/// The cache file an entry's bytes would be stored in.
fn cache_file_of(e: &CatalogEntry, size: u64, sidecar: Sidecar) -> ScannedFile {
    let name = cache_file_name(
        &Sha256Digest::of(e.src.as_bytes()).to_hex(),
        &e.name,
        e.format.as_deref(),
    );
    let format = e
        .format
        .as_deref()
        .and_then(ImageFormat::from_id)
        .unwrap_or(ImageFormat::Img);
    file(&name, size, format, sidecar)
}

fn local(path: &str) -> RowSource {
    RowSource {
        kind: SourceKind::Local,
        location: path.into(),
    }
}

fn remote(kind: SourceKind, src: &str) -> RowSource {
    RowSource {
        kind,
        location: src.into(),
    }
}

fn names(row: &Row) -> Vec<&str> {
    row.names.iter().map(|n| &**n).collect()
}

fn sha(row: &Row) -> Option<String> {
    row.sha256.map(|d| d.to_hex())
}

const NONE: Actions = Actions {
    fetch: false,
    update: false,
    cache_delete: false,
    entry_delete: false,
};
const FETCHABLE: Actions = Actions {
    fetch: true,
    update: false,
    cache_delete: false,
    entry_delete: true,
};
const CACHED: Actions = Actions {
    fetch: false,
    update: true,
    cache_delete: true,
    entry_delete: true,
};

#[test]
fn local_ref_is_the_file_src_ref() {
    // Upstream's ref of `file://debian.img.gz`.
    assert_eq!(
        local_ref("debian.img.gz").to_hex(),
        "2851310dad05bf963ec0c718ad83579b4157d4a387b4bc5f6997f2e6c837460d"
    );
}

#[test]
fn local_file_alone_has_one_local_source_and_no_actions() {
    let scan = [file("a.img.gz", 42, ImageFormat::ImgGz, fresh(SHA_A))];
    let rows = merge(&scan, &[]);
    assert_eq!(
        rows,
        [Row {
            image_ref: local_ref("a.img.gz"),
            names: Box::new(["a.img.gz".into()]),
            sha256: Sha256Digest::from_hex(SHA_A),
            format: Some("img.gz".into()),
            size_bytes: Some(42),
            sources: Box::new([local("/root/a.img.gz")]),
            cached: true,
            actions: NONE,
            file_name: Some("a.img.gz".into()),
            signed_by: None,
            merged_refs: Box::new([]),
        }]
    );
}

#[test]
fn unhashed_or_stale_local_file_is_keyed_by_its_file_ref() {
    for sidecar in [
        Sidecar::Missing,
        Sidecar::Invalid,
        Sidecar::Stale(SHA_A.to_owned()),
    ] {
        let rows = merge(&[file("a.img", 7, ImageFormat::Img, sidecar.clone())], &[]);
        assert_eq!(rows.len(), 1, "{sidecar:?}");
        let row = &rows[0];
        assert_eq!(row.sha256, None, "{sidecar:?}");
        assert_eq!(row.id(), local_ref("a.img"));
        assert_eq!(row.image_ref, local_ref("a.img"));
        assert_eq!(row.actions, NONE);
    }
}

#[test]
fn pinned_remote_entry_uncached_can_be_fetched_and_deleted() {
    let e = entry(
        "Debian",
        "https://x.test/d.img.xz",
        Some(SHA_B),
        Some("img.xz"),
    );
    let rows = merge(&[], &[mentry(&e, SourceKind::Url)]);
    assert_eq!(
        rows,
        [Row {
            image_ref: Sha256Digest::of(e.src.as_bytes()),
            names: Box::new(["Debian".into()]),
            sha256: Sha256Digest::from_hex(SHA_B),
            format: Some("img.xz".into()),
            size_bytes: Some(1000),
            sources: Box::new([remote(SourceKind::Url, "https://x.test/d.img.xz")]),
            cached: false,
            actions: FETCHABLE,
            file_name: None,
            signed_by: None,
            merged_refs: Box::new([]),
        }]
    );
}

#[test]
fn cached_remote_entry_can_be_updated_and_cache_deleted() {
    let e = entry(
        "Debian",
        "https://x.test/d.img.xz",
        Some(SHA_B),
        Some("img.xz"),
    );
    let cache = cache_file_of(&e, 555, Sidecar::Missing);
    let rows = merge(
        std::slice::from_ref(&cache),
        &[mentry(&e, SourceKind::Manifest)],
    );
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert!(row.cached);
    assert_eq!(row.actions, CACHED);
    assert_eq!(row.size_bytes, Some(555));
    assert_eq!(*row.sources, [remote(SourceKind::Manifest, &e.src)]);
    assert_eq!(row.file_name.as_deref(), Some(cache.name.as_str()));
    assert_eq!(names(row), ["Debian"]);
}

#[test]
fn local_and_remote_with_same_sha_collapse() {
    let e = entry(
        "Debian 12",
        "oras://r.test/a/b:1",
        Some(SHA_A),
        Some("img.gz"),
    );
    let scan = [file("debian.img.gz", 42, ImageFormat::ImgGz, fresh(SHA_A))];
    let rows = merge(&scan, &[mentry(&e, SourceKind::Manifest)]);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_eq!(row.id().to_hex(), SHA_A);
    assert_eq!(names(row), ["debian.img.gz", "Debian 12"]);
    assert_eq!(
        *row.sources,
        [
            local("/root/debian.img.gz"),
            remote(SourceKind::Manifest, "oras://r.test/a/b:1")
        ]
    );
    assert!(row.cached);
    assert_eq!(row.actions, CACHED);
    assert_eq!(row.image_ref, Sha256Digest::of(e.src.as_bytes()));
    assert_eq!(row.file_name.as_deref(), Some("debian.img.gz"));
    assert_eq!(row.size_bytes, Some(42));
}

#[test]
fn two_entries_with_same_sha_collapse() {
    let e1 = entry("One", "https://a.test/x.img", Some(SHA_C), Some("img"));
    let e2 = entry("Two", "https://b.test/x.img", Some(SHA_C), None);
    let rows = merge(
        &[],
        &[
            mentry(&e1, SourceKind::Url),
            mentry(&e2, SourceKind::Manifest),
        ],
    );
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_eq!(names(row), ["One", "Two"]);
    assert_eq!(
        *row.sources,
        [
            remote(SourceKind::Url, "https://a.test/x.img"),
            remote(SourceKind::Manifest, "https://b.test/x.img")
        ]
    );
    assert_eq!(row.image_ref, Sha256Digest::of(e1.src.as_bytes()));
    assert_eq!(row.format.as_deref(), Some("img"));
    assert_eq!(row.actions, FETCHABLE);
}

#[test]
fn cache_hit_of_one_entry_marks_the_collapsed_row_cached() {
    let e1 = entry("One", "https://a.test/x.img", Some(SHA_C), Some("img"));
    let e2 = entry("Two", "https://b.test/x.img", Some(SHA_C), Some("img"));
    let cache = cache_file_of(&e2, 9, Sidecar::Missing);
    let rows = merge(
        std::slice::from_ref(&cache),
        &[
            mentry(&e1, SourceKind::Manifest),
            mentry(&e2, SourceKind::Manifest),
        ],
    );
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(rows[0].cached);
    assert_eq!(rows[0].actions, CACHED);
    assert_eq!(rows[0].file_name.as_deref(), Some(cache.name.as_str()));
    // First known size: e1's catalog size, not the cache file's.
    assert_eq!(rows[0].size_bytes, Some(1000));
}

#[test]
fn unpinned_entries_dedupe_by_ref() {
    let e1 = entry("Rolling", "oras://r.test/a/b:latest", None, Some("img.gz"));
    let e2 = entry(
        "Rolling again",
        "oras://r.test/a/b:latest",
        None,
        Some("img.gz"),
    );
    let rows = merge(
        &[],
        &[
            mentry(&e1, SourceKind::Manifest),
            mentry(&e2, SourceKind::Manifest),
        ],
    );
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(names(&rows[0]), ["Rolling", "Rolling again"]);
    assert_eq!(rows[0].sources.len(), 1);
    assert_eq!(rows[0].id(), Sha256Digest::of(e1.src.as_bytes()));
    assert_eq!(rows[0].sha256, None);
}

#[test]
fn unpinned_cached_entry_takes_sha_from_fresh_cache_sidecar() {
    let e = entry("Rolling", "oras://r.test/a/b:latest", None, Some("img.gz"));
    for (sidecar, want) in [
        (fresh(SHA_B), Some(SHA_B)),
        (Sidecar::Stale(SHA_B.to_owned()), None),
        (Sidecar::Invalid, None),
        (Sidecar::Missing, None),
    ] {
        let scan = [cache_file_of(&e, 5, sidecar.clone())];
        let rows = merge(&scan, &[mentry(&e, SourceKind::Manifest)]);
        assert_eq!(rows.len(), 1, "{sidecar:?}");
        assert_eq!(sha(&rows[0]).as_deref(), want, "{sidecar:?}");
        assert!(rows[0].cached);
        let id = want.map_or_else(
            || Sha256Digest::of(e.src.as_bytes()).to_hex(),
            str::to_owned,
        );
        assert_eq!(rows[0].id().to_hex(), id);
    }
}

#[test]
fn pinned_sha_wins_over_cache_sidecar() {
    let e = entry("Pinned", "https://a.test/p.img", Some(SHA_A), Some("img"));
    let scan = [cache_file_of(&e, 5, fresh(SHA_B))];
    let rows = merge(&scan, &[mentry(&e, SourceKind::Url)]);
    assert_eq!(rows.len(), 1);
    assert_eq!(sha(&rows[0]).as_deref(), Some(SHA_A));
}

#[test]
fn orphan_cache_file_is_shown_as_local() {
    let e = entry("Gone", "https://a.test/g.img.gz", None, Some("img.gz"));
    let orphan = cache_file_of(&e, 5, fresh(SHA_A));
    // A cache file whose entry's format changed is not that entry's cache.
    let other = entry("Other", "https://a.test/o.img", None, Some("img.gz"));
    let stale_format = cache_file_of(
        &entry("Other", &other.src, None, Some("img")),
        6,
        Sidecar::Missing,
    );
    let scan = [orphan.clone(), stale_format.clone()];
    let rows = merge(&scan, &[mentry(&other, SourceKind::Manifest)]);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let orphan_row = rows
        .iter()
        .find(|r| names(r) == [orphan.name.as_str()])
        .expect("orphan row");
    assert_eq!(
        *orphan_row.sources,
        [local(&format!("/root/{}", orphan.name))]
    );
    assert_eq!(orphan_row.actions, NONE);
    assert_eq!(sha(orphan_row).as_deref(), Some(SHA_A));
    let entry_row = rows
        .iter()
        .find(|r| names(r) == ["Other"])
        .expect("entry row");
    assert!(!entry_row.cached);
    assert_eq!(entry_row.actions, FETCHABLE);
    assert!(
        rows.iter()
            .any(|r| names(r) == [stale_format.name.as_str()])
    );
}

#[test]
fn hashed_rows_first_then_unhashed_each_by_first_name() {
    let scan = [
        file("b.img", 1, ImageFormat::Img, fresh(SHA_B)),
        file("Z.img", 1, ImageFormat::Img, Sidecar::Missing),
        file("c.img", 1, ImageFormat::Img, Sidecar::Missing),
        file("a.img", 1, ImageFormat::Img, fresh(SHA_A)),
    ];
    let e1 = entry("B-remote", "https://a.test/1.img", None, None);
    let e2 = entry("Ä", "https://a.test/2.img", Some(SHA_C), None);
    let rows = merge(
        &scan,
        &[mentry(&e1, SourceKind::Url), mentry(&e2, SourceKind::Url)],
    );
    let order: Vec<&str> = rows.iter().map(|r| r.first_name()).collect();
    // Byte order: uppercase before lowercase, non-ASCII last.
    assert_eq!(order, ["a.img", "b.img", "Ä", "B-remote", "Z.img", "c.img"]);
}

#[test]
fn same_content_local_files_share_a_row_keyed_by_the_first() {
    let scan = [
        file("a.img", 1, ImageFormat::Img, fresh(SHA_A)),
        file("copy.img", 1, ImageFormat::Img, fresh(SHA_A)),
    ];
    let rows = merge(&scan, &[]);
    assert_eq!(rows.len(), 1);
    assert_eq!(names(&rows[0]), ["a.img", "copy.img"]);
    assert_eq!(
        *rows[0].sources,
        [local("/root/a.img"), local("/root/copy.img")]
    );
    assert_eq!(rows[0].image_ref, local_ref("a.img"));
    assert_eq!(rows[0].file_name.as_deref(), Some("a.img"));
    assert_eq!(rows[0].actions, NONE);
}

#[test]
fn unhashed_duplicate_learns_sha_from_pinned_twin() {
    let e1 = entry("Loose", "https://a.test/x.img", None, None);
    let e2 = entry("Pinned", "https://a.test/x.img", Some(SHA_A), None);
    let rows = merge(
        &[],
        &[mentry(&e1, SourceKind::Url), mentry(&e2, SourceKind::Url)],
    );
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(sha(&rows[0]).as_deref(), Some(SHA_A));
    assert_eq!(rows[0].id().to_hex(), SHA_A);
    assert_eq!(names(&rows[0]), ["Loose", "Pinned"]);
}

#[test]
fn a_row_that_many_entries_collapse_into_lists_each_once_in_order() {
    // 40 entries pinned to one sha256, each src twice: past the lists that
    // are kept unique as they grow.
    let entries: Vec<CatalogEntry> = (0..80)
        .map(|i| {
            let n = i % 40;
            entry(
                &format!("e{n}"),
                &format!("https://a.test/{n}.img"),
                Some(SHA_A),
                None,
            )
        })
        .collect();
    let merged: Vec<MergeEntry<'_>> = entries
        .iter()
        .map(|e| mentry(e, SourceKind::Manifest))
        .collect();
    let rows = merge(&[], &merged);
    assert_eq!(rows.len(), 1);
    let expected: Vec<String> = (0..40).map(|n| format!("e{n}")).collect();
    assert_eq!(names(&rows[0]), expected);
    assert_eq!(rows[0].sources.len(), 40);
    assert_eq!(rows[0].merged_refs.len(), 39, "every other ref, once");
    assert!(!rows[0].merged_refs.contains(&rows[0].image_ref));
}

/// A small deterministic generator (xorshift64*): the same changes on every
/// run, no dependency.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 33) as usize % n.max(1)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// The world a listing is merged from, changed one step at a time with
/// what each step touched recorded as the catalog actor records it.
struct World {
    files: std::collections::BTreeMap<String, ScannedFile>,
    entries: Vec<(CatalogEntry, SourceKind)>,
    touched: Touched,
}

const SHAS: [&str; 3] = [SHA_A, SHA_B, SHA_C];
const PLAIN_NAMES: [&str; 5] = ["a.img", "b.img.gz", "c.img.xz", "d.qcow2", "e.img"];

impl World {
    fn sidecar(dice: &mut Dice) -> Sidecar {
        match dice.below(5) {
            0 => Sidecar::Missing,
            1 => Sidecar::Stale(SHAS[dice.below(3)].to_owned()),
            2 => Sidecar::Invalid,
            _ => fresh(SHAS[dice.below(3)]),
        }
    }

    fn put_file(&mut self, f: ScannedFile) {
        self.touched.file(&f.name);
        self.files.insert(f.name.clone(), f);
    }

    fn step(&mut self, dice: &mut Dice) {
        match dice.below(9) {
            // A plain file lands or changes.
            0 => {
                let name = PLAIN_NAMES[dice.below(PLAIN_NAMES.len())];
                let sidecar = Self::sidecar(dice);
                self.put_file(file(
                    name,
                    10 + dice.below(3) as u64,
                    ImageFormat::Img,
                    sidecar,
                ));
            }
            // A file leaves.
            1 => {
                let names: Vec<String> = self.files.keys().cloned().collect();
                if !names.is_empty() {
                    let name = &names[dice.below(names.len())];
                    self.files.remove(name);
                    self.touched.file(name);
                }
            }
            // A file is hashed.
            2 => {
                let names: Vec<String> = self.files.keys().cloned().collect();
                if !names.is_empty() {
                    let name = names[dice.below(names.len())].clone();
                    let sha = SHAS[dice.below(3)];
                    if let Some(f) = self.files.get_mut(&name) {
                        f.sidecar = fresh(sha);
                    }
                    self.touched.file(&name);
                }
            }
            // An entry is added (its src may be a local file's `file://`
            // ref, or another entry's src).
            3 | 4 => {
                let n = dice.below(8);
                let src = if dice.chance(20) {
                    format!("file://{}", PLAIN_NAMES[dice.below(PLAIN_NAMES.len())])
                } else {
                    format!("https://x.test/{n}.img")
                };
                let pin = dice.chance(40).then(|| SHAS[dice.below(3)]);
                let format = [None, Some("img.gz"), Some("qcow2")][dice.below(3)];
                let e = entry(&format!("entry-{}", dice.below(10)), &src, pin, format);
                let kind = if dice.chance(50) {
                    SourceKind::Url
                } else {
                    SourceKind::Manifest
                };
                self.touched.entry(Sha256Digest::of(src.as_bytes()));
                self.entries.push((e, kind));
            }
            // An entry is removed.
            5 => {
                if !self.entries.is_empty() {
                    let (e, _) = self.entries.remove(dice.below(self.entries.len()));
                    self.touched.entry(Sha256Digest::of(e.src.as_bytes()));
                }
            }
            // An entry is updated in place (an import): name, pin, format.
            6 => {
                if !self.entries.is_empty() {
                    let i = dice.below(self.entries.len());
                    let old = &self.entries[i].0;
                    let pin = dice.chance(40).then(|| SHAS[dice.below(3)]);
                    let format = [None, Some("img.gz")][dice.below(2)];
                    let e = entry(&format!("entry-{}", dice.below(10)), &old.src, pin, format);
                    self.touched.entry(Sha256Digest::of(e.src.as_bytes()));
                    self.entries[i].0 = e;
                }
            }
            // An entry's bytes land in the cache, or leave it.
            7 => {
                if !self.entries.is_empty() {
                    let (e, _) = &self.entries[dice.below(self.entries.len())];
                    let f = cache_file_of(e, 1000, Self::sidecar(dice));
                    if dice.chance(30) && self.files.contains_key(&f.name) {
                        self.files.remove(&f.name);
                        self.touched.file(&f.name);
                    } else {
                        self.put_file(f);
                    }
                }
            }
            // An orphaned cache-named file (no entry owns its ref).
            _ => {
                let orphan = entry(
                    "orphan",
                    &format!("https://gone.test/{}", dice.below(3)),
                    None,
                    None,
                );
                let sidecar = Self::sidecar(dice);
                self.put_file(cache_file_of(&orphan, 5, sidecar));
            }
        }
    }

    fn scan(&self) -> Vec<ScannedFile> {
        self.files.values().cloned().collect()
    }
}

#[test]
fn incremental_updates_give_exactly_the_whole_merge() {
    let mut updated_in_place = 0;
    for seed in 1..=300u64 {
        let mut dice = Dice(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut world = World {
            files: Default::default(),
            entries: Vec::new(),
            touched: Touched::none(),
        };
        let mut rows: Vec<Row> = Vec::new();
        for step in 0..60 {
            // Bursts: several changes before the listing is read again.
            for _ in 0..=dice.below(3) {
                world.step(&mut dice);
            }
            let scan = world.scan();
            let entries: Vec<MergeEntry<'_>> = world
                .entries
                .iter()
                .map(|(e, kind)| mentry(e, *kind))
                .collect();
            let touched = world.touched.take();
            if !remerge(&mut rows, &scan, &entries, &touched) {
                updated_in_place += 1;
            }
            let whole = merge(&scan, &entries);
            assert_eq!(
                rows, whole,
                "seed {seed}, step {step}: the update for {touched:?} differs from a whole merge"
            );
        }
    }
    assert!(
        updated_in_place > 10_000,
        "only {updated_in_place} updates were incremental"
    );
}

#[test]
fn a_change_reaches_only_its_own_rows() {
    // 1 000 unrelated files; one is hashed: the other rows are untouched
    // (their names, moved into the new vector, are the same allocations).
    let scan: Vec<ScannedFile> = (0..1000)
        .map(|i| {
            file(
                &format!("f{i:04}.img"),
                1,
                ImageFormat::Img,
                Sidecar::Missing,
            )
        })
        .collect();
    let mut rows = merge(&scan, &[]);
    let before: Vec<*const str> = rows.iter().map(|r| Arc::as_ptr(&r.names[0])).collect();
    let mut scan = scan;
    scan[500].sidecar = fresh(SHA_A);
    let mut touched = Touched::none();
    touched.file("f0500.img");
    assert!(!remerge(&mut rows, &scan, &[], &touched), "merged whole");
    assert_eq!(rows, merge(&scan, &[]));
    let after: std::collections::HashSet<*const str> =
        rows.iter().map(|r| Arc::as_ptr(&r.names[0])).collect();
    let kept = before.iter().filter(|p| after.contains(p)).count();
    assert_eq!(kept, 999, "only the hashed file's row is rebuilt");
}

#[test]
fn too_many_changes_are_not_tracked_one_by_one() {
    let mut touched = Touched::none();
    for i in 0..=(1 << 16) {
        touched.file(&format!("f{i}"));
    }
    assert_eq!(touched, Touched::everything());
    assert!(!touched.is_empty());
}
