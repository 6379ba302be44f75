//! Watches the image root (inotify) so files dropped in at run time appear
//! and get hashed without a restart. Bursts are coalesced into one rescan,
//! and a slow periodic rescan covers anything inotify missed (overflow).

use crate::actors::catalog::CatalogHandle;
use inotify::{Inotify, WatchMask};
use std::path::Path;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// Quiet time that ends a burst of events.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// Safety net rescan period.
const PERIODIC: Duration = Duration::from_secs(30);

/// Start watching `root`; the task asks the catalog to rescan on changes.
pub fn spawn_watcher(root: &Path, catalog: CatalogHandle) -> std::io::Result<JoinHandle<()>> {
    let inotify = Inotify::init()?;
    inotify.watches().add(
        root,
        WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE
            | WatchMask::CREATE
            | WatchMask::ATTRIB,
    )?;
    let mut stream = inotify.into_event_stream([0u8; 4096])?;
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIODIC);
        tick.tick().await;
        loop {
            tokio::select! {
                event = stream.next() => {
                    match event {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => tracing::warn!(error = %e, "inotify error; rescanning"),
                        None => {
                            tracing::error!("inotify stream ended; relying on periodic rescans");
                            loop {
                                tick.tick().await;
                                catalog.rescan();
                            }
                        }
                    }
                    // Coalesce the burst (a copy is create + writes + close).
                    while let Ok(Some(_)) = tokio::time::timeout(DEBOUNCE, stream.next()).await {}
                    catalog.rescan();
                }
                _ = tick.tick() => catalog.rescan(),
            }
        }
    }))
}
