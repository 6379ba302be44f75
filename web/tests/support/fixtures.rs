//! Fixed data for the fake daemon: rows that cover every gate, jobs,
//! events and a store description.

use super::Daemon;
use bty_proto::v1::*;

pub const SHA_LOCAL: &str = "81d5e7200000000000000000000000000000000000000000000000000000aaaa";
pub const SHA_REMOTE: &str = "b4423fdb0000000000000000000000000000000000000000000000000000bbbb";

pub fn source(kind: SourceKind, location: &str) -> Source {
    Source {
        kind: kind.into(),
        location: location.to_owned(),
    }
}

pub fn actions(
    fetch: bool,
    update: bool,
    cache_delete: bool,
    entry_delete: bool,
) -> Option<Actions> {
    Some(Actions {
        fetch,
        update,
        cache_delete,
        entry_delete,
    })
}

/// Four rows covering the gates: a hashed local file, a cached remote
/// entry, an uncached oras entry with a hostile name, an unhashed local file.
pub fn sample_images() -> Vec<Image> {
    vec![
        Image {
            id: SHA_LOCAL.to_owned(),
            names: vec!["lab-bench.img".to_owned()],
            sha256: Some(SHA_LOCAL.to_owned()),
            format: Some("img".to_owned()),
            size_bytes: Some(4096),
            sources: vec![source(
                SourceKind::Local,
                "/var/lib/bty/images/lab-bench.img",
            )],
            cached: true,
            actions: actions(false, false, false, false),
            r#ref: "1".repeat(64),
            hashing: false,
            flash: FlashMode::Local as i32,
            signed_by: None,
        },
        Image {
            id: SHA_REMOTE.to_owned(),
            names: vec![
                "debian (x86_64) custom.img.zst".to_owned(),
                "alias.img.zst".to_owned(),
            ],
            sha256: Some(SHA_REMOTE.to_owned()),
            format: Some("img.zst".to_owned()),
            size_bytes: Some(3 * 1024 * 1024),
            sources: vec![source(
                SourceKind::Url,
                "https://example.com/debian.img.zst",
            )],
            cached: true,
            actions: actions(false, true, true, true),
            r#ref: "2".repeat(64),
            hashing: false,
            flash: FlashMode::Local as i32,
            signed_by: None,
        },
        Image {
            id: "3".repeat(64),
            names: vec!["nosi <script>alert(1)</script>".to_owned()],
            sha256: None,
            format: Some("img.gz".to_owned()),
            size_bytes: None,
            sources: vec![source(
                SourceKind::Manifest,
                "oras://ghcr.io/safl/nosi/debian:latest",
            )],
            cached: false,
            actions: actions(true, false, false, true),
            r#ref: "3".repeat(64),
            hashing: false,
            flash: FlashMode::Streamed as i32,
            signed_by: None,
        },
        Image {
            id: "4".repeat(64),
            names: vec!["new.img".to_owned()],
            sha256: None,
            format: None,
            size_bytes: Some(10),
            sources: vec![source(SourceKind::Local, "/var/lib/bty/images/new.img")],
            cached: true,
            actions: actions(false, false, false, false),
            r#ref: "4".repeat(64),
            hashing: true,
            flash: FlashMode::Local as i32,
            signed_by: None,
        },
    ]
}

pub fn hash_job(id: &str, subject: &str, state: JobState, done: u64, total: Option<u64>) -> Job {
    Job {
        id: id.to_owned(),
        kind: JobKind::Hash as i32,
        subject: subject.to_owned(),
        state: state as i32,
        bytes_done: done,
        bytes_total: total,
        created_at_ms: 1_795_633_457_000,
        ..Job::default()
    }
}

pub fn sample_store() -> StoreInfo {
    StoreInfo {
        image_root: "/var/lib/bty/images".to_owned(),
        catalog_path: "/var/lib/bty/catalog.toml".to_owned(),
        release_catalog_url: "https://github.com/safl/bty/releases/latest/download/catalog.toml"
            .to_owned(),
        daemon_version: "0.1.0".to_owned(),
        download_max_parallel: 2,
        hash_max_parallel: 1,
        max_catalog_bytes: 64 << 20,
    }
}

pub fn sample_daemon() -> Daemon {
    Daemon {
        images: sample_images(),
        store: sample_store(),
        jobs: vec![
            hash_job("h1", "new.img", JobState::Running, 25, Some(100)),
            hash_job("h2", "old.img", JobState::Completed, 100, Some(100)),
        ],
        events: vec![
            LoggedEvent {
                id: 2,
                at_ms: 1_795_633_457_000,
                kind: "catalog.imported".to_owned(),
                subject: "<upload>".to_owned(),
                summary: "imported 2 entries from catalog.toml".to_owned(),
                outcome: EventOutcome::Ok as i32,
                actor: EventActor::System as i32,
                ..LoggedEvent::default()
            },
            LoggedEvent {
                id: 1,
                at_ms: 1_795_633_400_000,
                kind: "hash.failed".to_owned(),
                subject: "broken.img".to_owned(),
                summary: "hash of broken.img failed: read error".to_owned(),
                outcome: EventOutcome::Failed as i32,
                actor: EventActor::System as i32,
                ..LoggedEvent::default()
            },
        ],
        export_toml: "version = 1\n".to_owned(),
        files: vec![(
            SHA_LOCAL.to_owned(),
            ImageStat {
                file_name: "lab-bench.img".to_owned(),
                size_bytes: 4096,
                sha256: Some(SHA_LOCAL.to_owned()),
                format: Some("img".to_owned()),
                modified_ms: 784_111_777_000,
            },
            lab_bench_bytes(),
        )],
        metrics: "# TYPE bty_images gauge\nbty_images 4\n".to_owned(),
        ..Daemon::default()
    }
}

/// The 4096 bytes of `lab-bench.img`: byte i is i mod 251, so any slice
/// is recognisable.
pub fn lab_bench_bytes() -> Vec<u8> {
    (0..4096u32).map(|i| (i % 251) as u8).collect()
}

pub fn disk(path: &str, writable: bool, refusals: &[&str]) -> Disk {
    Disk {
        path: path.to_owned(),
        name: path.trim_start_matches("/dev/").to_owned(),
        size_bytes: 32 * 1024 * 1024 * 1024,
        model: Some("Ultra Fit".to_owned()),
        vendor: Some("SanDisk".to_owned()),
        serial: Some("4C530001".to_owned()),
        transport: Some("usb".to_owned()),
        removable: true,
        writable,
        refusals: refusals.iter().map(|r| (*r).to_owned()).collect(),
        ..Disk::default()
    }
}
