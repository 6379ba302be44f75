//! `btyctl disks`: block devices and whether bty may write them.

use crate::client::Ctx;
use crate::exit::CtlError;
use crate::output::{Table, format_bytes, or_dash};
use bty_proto::v1::{Disk, ListDisksRequest, Partition};
use clap::Args;
use serde::Serialize;

/// What WRITABLE means (shown in `--help`).
const DISKS_HELP: &str = "\
WRITABLE is btyd's verdict: \"no\" with the first reason (mounted, swap,
holder such as LVM/RAID, read-only, the running system's disk…). --json lists
every field of every disk, all refusals included.

--watch prints the list, then one line per disk plugged in (+), pulled (-) or
changed (~: another medium, size or verdict), as btyd sees them from the
kernel's uevents, until interrupted. With --json each is one JSON object per
line: {\"event\":\"listed\",\"disks\":[…]} first, then {\"event\":\"added\"|
\"changed\",\"disk\":{…}} or {\"event\":\"removed\",\"path\":\"/dev/…\"}.";

/// `btyctl disks [--watch]`
#[derive(Debug, Args)]
#[command(after_help = DISKS_HELP)]
pub(crate) struct DisksArgs {
    /// Keep running and print disks as they are plugged in, pulled or changed.
    #[arg(long)]
    watch: bool,
}

/// List the disks btyd sees (and follow them with `--watch`).
pub(crate) async fn run(ctx: &Ctx, args: DisksArgs) -> Result<(), CtlError> {
    if args.watch {
        return super::disks_watch::run(ctx).await;
    }
    let disks = list(ctx).await?;
    let views: Vec<DiskView> = disks.iter().map(DiskView::from).collect();
    ctx.out.emit(&views, || disks_table(&disks))
}

/// The disks btyd sees, with their verdicts (also the first step of `flash`).
pub(crate) async fn list(ctx: &Ctx) -> Result<Vec<Disk>, CtlError> {
    Ok(ctx
        .daemon
        .flash()
        .list_disks(ListDisksRequest {})
        .await?
        .into_inner()
        .disks)
}

/// A disk as JSON: every field of the listing.
#[derive(Debug, Serialize)]
pub(crate) struct DiskView {
    path: String,
    name: String,
    size_bytes: u64,
    model: Option<String>,
    vendor: Option<String>,
    serial: Option<String>,
    transport: Option<String>,
    removable: bool,
    read_only: bool,
    rotational: bool,
    logical_block_size: u32,
    physical_block_size: u32,
    partitions: Vec<PartitionView>,
    mounts: Vec<String>,
    holders: Vec<String>,
    swap: bool,
    system_disk: Option<String>,
    writable: bool,
    refusals: Vec<String>,
    /// The kernel's disk sequence number (changes on every media change).
    diskseq: Option<u64>,
}

#[derive(Debug, Serialize)]
struct PartitionView {
    path: String,
    size_bytes: u64,
    mounts: Vec<String>,
}

impl From<&Partition> for PartitionView {
    fn from(partition: &Partition) -> Self {
        Self {
            path: partition.path.clone(),
            size_bytes: partition.size_bytes,
            mounts: partition.mounts.clone(),
        }
    }
}

impl From<&Disk> for DiskView {
    fn from(disk: &Disk) -> Self {
        Self {
            path: disk.path.clone(),
            name: disk.name.clone(),
            size_bytes: disk.size_bytes,
            model: disk.model.clone(),
            vendor: disk.vendor.clone(),
            serial: disk.serial.clone(),
            transport: disk.transport.clone(),
            removable: disk.removable,
            read_only: disk.read_only,
            rotational: disk.rotational,
            logical_block_size: disk.logical_block_size,
            physical_block_size: disk.physical_block_size,
            partitions: disk.partitions.iter().map(PartitionView::from).collect(),
            mounts: disk.mounts.clone(),
            holders: disk.holders.clone(),
            swap: disk.swap,
            system_disk: disk.system_disk.clone(),
            writable: disk.writable,
            diskseq: disk.diskseq,
            refusals: disk.refusals.clone(),
        }
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// `yes`, or `no (first refusal)`.
pub(crate) fn writable_text(disk: &Disk) -> String {
    match (disk.writable, disk.refusals.first()) {
        (true, _) => "yes".to_owned(),
        (false, Some(reason)) => format!("no ({reason})"),
        (false, None) => "no".to_owned(),
    }
}

pub(crate) fn disks_table(disks: &[Disk]) -> String {
    if disks.is_empty() {
        return "no disks".to_owned();
    }
    let mut table = Table::new(&[
        "PATH",
        "SIZE",
        "MODEL",
        "SERIAL",
        "TRANSPORT",
        "RM",
        "RO",
        "MOUNTS",
        "WRITABLE",
    ]);
    for disk in disks {
        let mounts = (!disk.mounts.is_empty()).then(|| disk.mounts.join(","));
        table.push(vec![
            disk.path.clone(),
            format_bytes(disk.size_bytes),
            or_dash(disk.model.clone()),
            or_dash(disk.serial.clone()),
            or_dash(disk.transport.clone()),
            yes_no(disk.removable),
            yes_no(disk.read_only),
            or_dash(mounts),
            writable_text(disk),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_shows_the_first_refusal() {
        let disk = Disk {
            writable: false,
            refusals: vec!["mounted at /".into(), "system disk".into()],
            ..Disk::default()
        };
        assert_eq!(writable_text(&disk), "no (mounted at /)");
        let ok = Disk {
            writable: true,
            ..Disk::default()
        };
        assert_eq!(writable_text(&ok), "yes");
    }
}
