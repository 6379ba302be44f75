//! `btyctl disks --watch`: the disk list, then every disk plugged in,
//! pulled or changed, from btyd's event stream, one line each.

use super::disks::{DiskView, disks_table, list, writable_text};
use crate::client::Ctx;
use crate::exit::CtlError;
use crate::output::format_bytes;
use bty_proto::v1::event::Body;
use bty_proto::v1::{Disk, SubscribeRequest};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// One line of `--watch --json`.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum WatchLine<'a> {
    Listed { disks: Vec<DiskView> },
    Added { disk: DiskView },
    Changed { disk: DiskView },
    Removed { path: &'a str },
}

/// Print the list, then follow changes until the stream ends.
pub(crate) async fn run(ctx: &Ctx) -> Result<(), CtlError> {
    // Subscribe first, then list: a disk plugged in between shows up as
    // added rather than not at all.
    let mut events = ctx
        .daemon
        .events()
        .subscribe(SubscribeRequest {})
        .await?
        .into_inner();
    let disks = list(ctx).await?;
    if ctx.out.is_json() {
        let listed = WatchLine::Listed {
            disks: disks.iter().map(DiskView::from).collect(),
        };
        line(&json(&listed)?)?;
    } else {
        line(&disks_table(&disks))?;
    }
    let mut known = by_path(disks);
    while let Some(event) = events.message().await? {
        // An event (or missed events) says "look again"; what changed is
        // what differs from this command's own last listing, so nothing
        // seen here is ever left without its removal.
        if matches!(event.body, Some(Body::Disks(_) | Body::Resync(_))) {
            let now = by_path(list(ctx).await?);
            print_changes(ctx, &known, &now)?;
            known = now;
        }
    }
    Err(CtlError::EventsEnded)
}

fn by_path(disks: Vec<Disk>) -> BTreeMap<String, Disk> {
    disks.into_iter().map(|d| (d.path.clone(), d)).collect()
}

fn print_changes(
    ctx: &Ctx,
    before: &BTreeMap<String, Disk>,
    now: &BTreeMap<String, Disk>,
) -> Result<(), CtlError> {
    for path in before.keys().filter(|p| !now.contains_key(*p)) {
        if ctx.out.is_json() {
            line(&json(&WatchLine::Removed { path })?)?;
        } else {
            line(&format!("- {path}"))?;
        }
    }
    for (path, disk) in now {
        let added = match before.get(path) {
            None => true,
            Some(old) if old != disk => false,
            Some(_) => continue,
        };
        if ctx.out.is_json() {
            let disk = DiskView::from(disk);
            let event = if added {
                WatchLine::Added { disk }
            } else {
                WatchLine::Changed { disk }
            };
            line(&json(&event)?)?;
        } else {
            let sign = if added { '+' } else { '~' };
            line(&format!("{sign} {}", describe(disk)))?;
        }
    }
    Ok(())
}

/// `/dev/sdb  14.9 GiB  SanDisk Ultra Fit  usb  writable: yes`
fn describe(disk: &Disk) -> String {
    let mut text = format!("{}  {}", disk.path, format_bytes(disk.size_bytes));
    for part in [&disk.model, &disk.transport].into_iter().flatten() {
        text.push_str("  ");
        text.push_str(part);
    }
    text.push_str("  writable: ");
    text.push_str(&writable_text(disk));
    text
}

fn json(value: &impl Serialize) -> Result<String, CtlError> {
    serde_json::to_string(value).map_err(|e| CtlError::Output(std::io::Error::other(e)))
}

/// One line on stdout, flushed at once (a pipe reader sees it now).
fn line(text: &str) -> Result<(), CtlError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(CtlError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_line_names_path_size_model_transport_and_verdict() {
        let disk = Disk {
            path: "/dev/sdb".into(),
            size_bytes: 16 << 30,
            model: Some("Ultra Fit".into()),
            transport: Some("usb".into()),
            writable: true,
            ..Disk::default()
        };
        assert_eq!(
            describe(&disk),
            "/dev/sdb  16.0 GiB  Ultra Fit  usb  writable: yes"
        );
    }

    #[test]
    fn json_lines_are_tagged_by_event() {
        let removed = json(&WatchLine::Removed { path: "/dev/sdb" }).unwrap();
        assert_eq!(removed, r#"{"event":"removed","path":"/dev/sdb"}"#);
    }
}
