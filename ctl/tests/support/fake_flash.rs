//! The fake flash service: three disks (the system disk and two sticks)
//! and flash jobs chosen by the image name.

use super::fake::Fake;
use super::fake_jobs::{FLASH_JOB, PARTIAL_FLASH_JOB, queued};
use bty_proto::v1::flash_service_server::FlashService;
use bty_proto::v1::{Disk, FlashRequest, Job, ListDisksRequest, ListDisksResponse, Partition};
use tonic::{Request, Response, Status};

/// The stick every flash test writes.
pub(crate) const STICK: &str = "/dev/sdb";
/// Its size, model and serial as listed.
pub(crate) const STICK_SIZE: u64 = 32_017_047_552;
pub(crate) const STICK_MODEL: &str = "Ultra Fit";
pub(crate) const STICK_SERIAL: &str = "4C530001230712115243";
/// A second stick (the one that fails in the partial flash).
pub(crate) const SECOND_STICK: &str = "/dev/sdc";
/// The image whose flash job fails on its second target.
pub(crate) const PARTIAL_IMAGE: &str = "partial.img";

/// The listing: the system disk first, then two sticks.
pub(crate) fn disks() -> Vec<Disk> {
    vec![
        Disk {
            path: "/dev/nvme0n1".into(),
            name: "nvme0n1".into(),
            size_bytes: 512_110_190_592,
            model: Some("Samsung SSD 980".into()),
            serial: Some("S64DNX0R".into()),
            transport: Some("nvme".into()),
            logical_block_size: 512,
            physical_block_size: 512,
            partitions: vec![Partition {
                path: "/dev/nvme0n1p2".into(),
                size_bytes: 511_000_000_000,
                mounts: vec!["/".into()],
            }],
            mounts: vec!["/".into(), "/boot".into()],
            system_disk: Some("/ is mounted from it".into()),
            writable: false,
            refusals: vec!["mounted at /".into(), "holds the running system".into()],
            ..Disk::default()
        },
        stick(STICK, "sdb", STICK_SERIAL),
        stick(SECOND_STICK, "sdc", "AA00000000013456"),
    ]
}

fn stick(path: &str, name: &str, serial: &str) -> Disk {
    Disk {
        path: path.into(),
        name: name.into(),
        size_bytes: STICK_SIZE,
        model: Some(STICK_MODEL.into()),
        vendor: Some("SanDisk".into()),
        serial: Some(serial.into()),
        transport: Some("usb".into()),
        removable: true,
        logical_block_size: 512,
        physical_block_size: 512,
        writable: true,
        ..Disk::default()
    }
}

#[tonic::async_trait]
impl FlashService for Fake {
    async fn list_disks(
        &self,
        _request: Request<ListDisksRequest>,
    ) -> Result<Response<ListDisksResponse>, Status> {
        *self.recorded.disk_listings.lock().expect("lock") += 1;
        Ok(Response::new(ListDisksResponse { disks: disks() }))
    }

    async fn flash(&self, request: Request<FlashRequest>) -> Result<Response<Job>, Status> {
        let request = request.into_inner();
        self.recorded
            .flashes
            .lock()
            .expect("lock")
            .push(request.clone());
        let id = if request.image == PARTIAL_IMAGE {
            PARTIAL_FLASH_JOB
        } else {
            FLASH_JOB
        };
        queued(id).map(Response::new)
    }
}
