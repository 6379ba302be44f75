//! Disks that come and go: kernel uevents (netlink, no udev daemon) wake a
//! thread that lists the disks again and publishes what changed, so the
//! flash page and `btyctl disks --watch` follow a stick being plugged in or
//! pulled without a reload.
//!
//! A uevent only says "look again"; what is listed comes from sysfs, as
//! for `ListDisks`. Lost messages (`ENOBUFS`) also just mean "look again".

use crate::events::{DiskChanges, EventBus};
use bty_disks::{Disk, SystemPaths, UeventSocket, list_disks};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long `next` waits before the thread checks whether to stop.
const POLL: Duration = Duration::from_millis(250);
/// Quiet time that ends a burst (a disk and its partitions arrive as
/// several uevents): listed once after it.
const SETTLE: Duration = Duration::from_millis(150);

/// The running watcher; stops (within [`POLL`]) when dropped.
#[derive(Debug)]
pub struct DiskWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for DiskWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Start watching; `None` (logged) where the kernel's uevent socket cannot
/// be opened: disks are then current at each listing only.
pub fn spawn(paths: SystemPaths, events: EventBus) -> Option<DiskWatcher> {
    let socket = match UeventSocket::open(POLL) {
        Ok(socket) => socket,
        Err(e) => {
            tracing::warn!(error = %e, "no kernel uevents: disks plugged in later show at the next listing only");
            return None;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new()
        .name("bty-hotplug".into())
        .spawn({
            let stop = stop.clone();
            move || watch(&socket, &paths, &events, &stop)
        });
    match thread {
        Ok(thread) => Some(DiskWatcher {
            stop,
            thread: Some(thread),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the disk watcher thread");
            None
        }
    }
}

fn watch(socket: &UeventSocket, paths: &SystemPaths, events: &EventBus, stop: &AtomicBool) {
    let mut known = listed(paths).unwrap_or_default();
    let mut due: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        match socket.next() {
            Ok(Some(uevent)) => {
                tracing::debug!(name = uevent.name, action = ?uevent.action, "block uevent");
                due = Some(Instant::now() + SETTLE);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "uevents lost; listing disks again");
                due = Some(Instant::now() + SETTLE);
            }
        }
        if due.is_some_and(|at| Instant::now() >= at) {
            due = None;
            let Some(now) = listed(paths) else { continue };
            let changes = DiskChanges::between(&known, &now);
            if !changes.is_empty() {
                tracing::info!(added = ?changes.added, removed = ?changes.removed, changed = ?changes.changed, "disks changed");
            }
            // Published even when nothing differs from this thread's last
            // look: a disk that came and went within one burst may have been
            // seen by a client listing in between, which must look again.
            events.disks(changes);
            known = now;
        }
    }
}

/// The disks by path, each as what identifies it and decides its verdict.
fn listed(paths: &SystemPaths) -> Option<BTreeMap<String, Disk>> {
    match list_disks(paths) {
        Ok(disks) => Some(
            disks
                .into_iter()
                .map(|d| (d.path.display().to_string(), d))
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list disks after a uevent");
            None
        }
    }
}
