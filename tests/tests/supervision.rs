//! Supervision: a panicking actor is restarted with the same arguments, its
//! handle keeps working, the hash queue continues, and a crash loop trips the
//! restart budget. Uses the test-only fault hooks (feature `fault-injection`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_dio::sha256::sha256_reader;
use bty_store::sidecar::{Sidecar, read_sidecar};
use btyd::actors::catalog::{CatalogArgs, CatalogHandle};
use btyd::actors::hasher::{HasherArgs, HasherHandle};
use btyd::actors::supervisor::{RestartBudget, Supervisor, SupervisorArgs, SupervisorMessage};
use btyd::events::EventBus;
use ractor::{Actor, ActorRef};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

const FILE: u64 = 768 << 20;
const FILES: [&str; 4] = ["a.img", "b.img", "c.img", "d.img"];

struct Tree {
    supervisor: ActorRef<SupervisorMessage>,
    done: tokio::task::JoinHandle<()>,
    hasher: HasherHandle,
    catalog: CatalogHandle,
}

async fn start(root: &Path, budget: RestartBudget) -> Tree {
    let events = EventBus::new();
    let hasher = HasherHandle::default();
    let catalog = CatalogHandle::default();
    let args = SupervisorArgs {
        hasher: HasherArgs {
            image_root: root.to_owned(),
            max_parallel: 1,
            events: events.clone(),
            catalog: catalog.clone(),
            me: hasher.clone(),
        },
        catalog: CatalogArgs {
            image_root: root.to_owned(),
            catalog_path: root.parent().unwrap().join("catalog.toml"),
            max_catalog_bytes: bty_store::catalog_file::DEFAULT_MAX_CATALOG_BYTES,
            events,
            hasher: hasher.clone(),
        },
        catalog_handle: catalog.clone(),
        downloader: None,
        flasher: None,
        budget,
    };
    let (supervisor, done) = Actor::spawn(None, Supervisor, args).await.unwrap();
    Tree {
        supervisor,
        done,
        hasher,
        catalog,
    }
}

fn sparse_files(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    for name in FILES {
        std::fs::File::create(root.join(name))
            .unwrap()
            .set_len(FILE)
            .unwrap();
    }
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hasher_panic_is_restarted_and_the_queue_continues() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    sparse_files(&root);
    let tree = start(&root, RestartBudget::default()).await;

    // Panic while a job runs and others wait in the queue.
    wait_until("a hash job to run", async || {
        tree.hasher.jobs().list().await.is_ok_and(|jobs| {
            jobs.iter()
                .any(|j| j.state == btyd::jobs::JobState::Running)
        })
    })
    .await;
    tree.hasher.inject_panic().unwrap();
    wait_until("the supervisor to restart the hasher", async || {
        ractor::call!(tree.supervisor, SupervisorMessage::Restarts).unwrap() == 1
    })
    .await;

    // The same handle reaches the new hasher, and every file gets hashed.
    wait_until("all files hashed", async || {
        FILES
            .iter()
            .all(|n| matches!(read_sidecar(&root.join(n)), Sidecar::Fresh(_)))
    })
    .await;
    let expected = sha256_reader(std::io::repeat(0).take(FILE), &mut |_| {}, &|| false).unwrap();
    for name in FILES {
        assert_eq!(
            read_sidecar(&root.join(name)),
            Sidecar::Fresh(expected.clone()),
            "{name}"
        );
    }
    wait_until("the catalog to list every hash", async || {
        let rows = tree.catalog.list().await.unwrap();
        rows.len() == 1 && rows[0].names.len() == FILES.len()
    })
    .await;
    assert!(tree.hasher.jobs().list().await.is_ok());
    ractor::call!(tree.supervisor, SupervisorMessage::Shutdown).unwrap();
    tree.done.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_panic_is_restarted_and_reloads_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("x.img"), b"bytes").unwrap();
    let tree = start(&root, RestartBudget::default()).await;
    wait_until("x.img hashed", async || {
        tree.catalog
            .list()
            .await
            .is_ok_and(|r| r.len() == 1 && r[0].sha256.is_some())
    })
    .await;
    tree.catalog.inject_panic();
    wait_until("the catalog restarted", async || {
        ractor::call!(tree.supervisor, SupervisorMessage::Restarts).unwrap() == 1
    })
    .await;
    let rows = tree.catalog.list().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].sha256.is_some());
    ractor::call!(tree.supervisor, SupervisorMessage::Shutdown).unwrap();
    tree.done.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_trips_the_restart_budget() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    let tree = start(&root, RestartBudget::new(2, Duration::from_secs(60))).await;
    for restarts in 1..=2 {
        tree.hasher.inject_panic().unwrap();
        wait_until("a restart", async || {
            ractor::call!(tree.supervisor, SupervisorMessage::Restarts).unwrap() == restarts
        })
        .await;
    }
    tree.hasher.inject_panic().unwrap();
    // The third crash within the window stops the supervisor for good.
    tokio::time::timeout(Duration::from_secs(10), tree.done)
        .await
        .expect("supervisor stops when the budget is exhausted")
        .unwrap();
}
