//! Injected crashes of the downloader and the flasher in the middle of a
//! job (test-only fault hooks): the supervisor restarts each, the download
//! resumes from its persisted job and partial, and the running flash is
//! adopted by the new flasher and ends visibly — nothing stuck "running".

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::noise;
use bty_e2e::origin::Origin;
use bty_store::digest::sha256_bytes;
use btyd::actors::catalog::{AddEntry, CatalogArgs, CatalogHandle};
use btyd::actors::downloader::{DownloaderArgs, DownloaderHandle};
use btyd::actors::flasher::{
    ConfirmedTarget, FlashOrder, FlasherArgs, FlasherHandle, RunningFlashes, TargetRules,
};
use btyd::actors::hasher::{HasherArgs, HasherHandle};
use btyd::actors::supervisor::{RestartBudget, Supervisor, SupervisorArgs, SupervisorMessage};
use btyd::events::EventBus;
use btyd::jobs::JobState;
use ractor::{Actor, ActorRef};
use std::path::Path;
use std::time::{Duration, Instant};

struct Tree {
    supervisor: ActorRef<SupervisorMessage>,
    catalog: CatalogHandle,
    downloader: DownloaderHandle,
    flasher: FlasherHandle,
}

async fn start(state: &Path) -> Tree {
    let root = state.join("images");
    std::fs::create_dir_all(&root).unwrap();
    let events = EventBus::new();
    let (hasher, catalog) = (HasherHandle::default(), CatalogHandle::default());
    let (downloader, flasher) = (DownloaderHandle::default(), FlasherHandle::default());
    let http = bty_fetch::http_client(&bty_fetch::ClientOptions::default()).unwrap();
    let args = SupervisorArgs {
        hasher: HasherArgs {
            image_root: root.clone(),
            max_parallel: 1,
            events: events.clone(),
            catalog: catalog.clone(),
            me: hasher.clone(),
        },
        catalog: CatalogArgs {
            image_root: root.clone(),
            catalog_path: state.join("catalog.toml"),
            max_catalog_bytes: bty_store::catalog_file::DEFAULT_MAX_CATALOG_BYTES,
            events: events.clone(),
            hasher: hasher.clone(),
        },
        catalog_handle: catalog.clone(),
        downloader: Some(DownloaderArgs {
            image_root: root.clone(),
            jobs_dir: state.join("jobs"),
            max_parallel: 2,
            max_upload_bytes: 1 << 30,
            oci: bty_oci::OciClient::new(bty_oci::OciConfig::default(), http.clone()),
            http,
            fetch_options: bty_fetch::FetchOptions::default(),
            events: events.clone(),
            catalog: catalog.clone(),
            me: downloader.clone(),
            tasks: std::sync::Arc::default(),
            http_trust: Default::default(),
        }),
        flasher: Some(FlasherArgs {
            // The test's own dir is the one place file targets may be.
            rules: TargetRules {
                paths: bty_disks::SystemPaths::default(),
                file_targets_dir: Some(state.to_path_buf()),
            },
            events,
            me: flasher.clone(),
            running: RunningFlashes::default(),
            catalog: catalog.clone(),
            downloader: downloader.clone(),
            trusted_prefixes: std::sync::Arc::default(),
        }),
        budget: RestartBudget::default(),
    };
    let (supervisor, _) = Actor::spawn(None, Supervisor, args).await.unwrap();
    Tree {
        supervisor,
        catalog,
        downloader,
        flasher,
    }
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn restarts(tree: &Tree) -> u32 {
    ractor::call!(tree.supervisor, SupervisorMessage::Restarts).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloader_crash_mid_download_resumes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start();
    const SIZE: u64 = 48 << 20;
    let bytes = noise(SIZE as usize, 51);
    let sha = sha256_bytes(&bytes);
    origin.put("img/crash.img", bytes);
    origin.throttle(Duration::from_millis(3));
    let tree = start(dir.path()).await;
    let url = origin.url("img/crash.img");
    tree.catalog
        .add_entry(AddEntry {
            url: url.clone(),
            sha256: Some(sha.clone()),
            ..AddEntry::default()
        })
        .await
        .unwrap();
    let spec = tree.catalog.download_spec(&url, false).await.unwrap();
    let job = tree.downloader.fetch(spec).await.unwrap();
    // A third of the bytes on disk in the partial, not only received:
    // the job counts bytes before the landing writes them.
    let root = dir.path().join("images");
    wait_until("a third of the bytes in the partial", async || {
        let running = tree.downloader.jobs().get(&job.id).await.ok().flatten();
        running.is_some_and(|j| j.state.is_active()) && bty_e2e::partial_bytes(&root) > SIZE / 3
    })
    .await;
    let (kept, sent_before) = (bty_e2e::partial_bytes(&root), origin.bytes_sent());
    tree.downloader.inject_panic().unwrap();
    wait_until("the restart", async || restarts(&tree).await == 1).await;
    origin.throttle(Duration::ZERO);
    wait_until("the resumed download to land", async || {
        tree.catalog.list().await.is_ok_and(|rows| {
            rows.first()
                .is_some_and(|r| r.cached && r.sha256.is_some_and(|d| d.is_spelled_by(&sha)))
        })
    })
    .await;
    // Resumed, not restarted: after the crash the origin sent what the
    // partial lacked plus what was in flight when the crash came — the
    // landing's queue (4 × 2 MiB) and socket buffers, under 12 MiB; a fresh
    // start would send all 48 MiB again.
    let resent = origin.bytes_sent() - sent_before;
    let at_most = SIZE - kept + (12 << 20);
    assert!(
        kept > SIZE / 3 && resent <= at_most,
        "kept {kept} of {SIZE}, then {resent} bytes sent (at most {at_most} for a resume)"
    );
    // The resumed job (a new id) ended; none is left running.
    let jobs = tree.downloader.jobs().list().await.unwrap();
    assert!(jobs.iter().all(|j| !j.state.is_active()), "{jobs:#?}");
    assert!(jobs.iter().any(|j| j.state == JobState::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flasher_crash_mid_flash_adopts_the_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let tree = start(dir.path()).await;
    let image = dir.path().join("images/disk.img");
    let raw = noise(160 << 20, 52);
    std::fs::write(&image, &raw).unwrap();
    let target = dir.path().join("target.img");
    std::fs::write(&target, b"").unwrap();
    // Named as a client names it; the flasher resolves it through the
    // catalog once the rescan listed it.
    tree.catalog.rescan();
    wait_until("the scan to list the image", async || {
        tree.catalog.resolve_local("disk.img").await.is_ok()
    })
    .await;
    let job = tree
        .flasher
        .flash(FlashOrder {
            image: "disk.img".to_owned(),
            targets: vec![ConfirmedTarget {
                path: target.clone(),
                size_bytes: 0,
                serial: None,
                model: None,
                diskseq: None,
            }],
            verify: true,
            incremental: false,
        })
        .await
        .unwrap();
    tree.flasher.inject_panic().unwrap();
    wait_until("the restart", async || restarts(&tree).await == 1).await;
    wait_until("the adopted flash to end", async || {
        tree.flasher
            .jobs()
            .get(&job.id)
            .await
            .ok()
            .flatten()
            .is_some_and(|j| !j.state.is_active())
    })
    .await;
    let done = tree.flasher.jobs().get(&job.id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Completed, "{done:#?}");
    assert_eq!(done.targets[0].verified, Some(true));
    assert!(std::fs::read(&target).unwrap() == raw);
}
