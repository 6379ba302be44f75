//! Trust boundary: what a gRPC client (any member of the `bty` group) may
//! name. Each test plays the attacker against a real btyd: a request that
//! makes the root daemon write a host file, read an image by path, open a
//! path for an import, or write a device other than the one confirmed.
//! The targets are loop devices and files the test made itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::loopdev::{LoopDevice, hold_loop_setup};
use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, drop_file, noise, run, sha256sum};
use bty_proto::channel::Target;
use bty_proto::v1::flash_service_client::FlashServiceClient;
use bty_proto::v1::job_service_client::JobServiceClient;
use bty_proto::v1::{self, GetJobRequest, ListDisksRequest};
use bty_store::digest::sha256_bytes;
use bty_test_caps::require_loop_devices;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const MIB: usize = 1 << 20;

/// `FlashRequest` as clients before the fix sent it: field 4 was
/// `allow_file`, which made any regular file a target.
#[derive(Clone, PartialEq, prost::Message)]
struct LegacyFlashRequest {
    #[prost(string, tag = "1")]
    image: String,
    #[prost(message, repeated, tag = "2")]
    targets: Vec<v1::FlashTarget>,
    #[prost(bool, tag = "3")]
    no_verify: bool,
    #[prost(bool, tag = "4")]
    allow_file: bool,
}

/// `ImportCatalogRequest` as it was: field 2 was a path the daemon opened.
#[derive(Clone, PartialEq, prost::Message)]
struct LegacyImportRequest {
    #[prost(string, optional, tag = "2")]
    path: Option<String>,
    #[prost(string, tag = "3")]
    label: String,
}

async fn unary<Req, Resp>(
    channel: Channel,
    path: &'static str,
    request: Req,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(
        tonic::Request::new(request),
        path,
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

async fn channel(daemon: &Daemon) -> Channel {
    Target::Unix(daemon.socket.clone())
        .connect()
        .await
        .expect("btyd's socket answers")
}

/// A file the attacker wants overwritten (stands in for `/etc/…`).
fn victim(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("some.conf");
    let bytes = b"root-owned configuration\n".repeat(1000);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn file_target(path: &Path, size: u64) -> v1::FlashTarget {
    v1::FlashTarget {
        path: path.display().to_string(),
        confirmed_size_bytes: size,
        ..v1::FlashTarget::default()
    }
}

/// The confirmation btyctl would send for `dev`, from the daemon's listing.
async fn confirm(channel: Channel, dev: &str) -> v1::FlashTarget {
    let disks = FlashServiceClient::new(channel)
        .list_disks(ListDisksRequest {})
        .await
        .unwrap()
        .into_inner()
        .disks;
    let disk = disks
        .iter()
        .find(|d| d.path == dev)
        .unwrap_or_else(|| panic!("{dev} is not listed: {disks:#?}"));
    assert!(disk.writable, "{dev} is refused: {:?}", disk.refusals);
    v1::FlashTarget {
        path: disk.path.clone(),
        confirmed_size_bytes: disk.size_bytes,
        confirmed_serial: disk.serial.clone(),
        confirmed_model: disk.model.clone(),
        confirmed_diskseq: disk.diskseq,
    }
}

/// The old `allow_file` flag, sent as old clients sent it: the daemon
/// must not make the host file a target (it used to overwrite it and
/// report "done, verified").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flag_cannot_make_a_host_file_a_target() {
    let elsewhere = tempfile::tempdir().unwrap();
    let (victim, before) = victim(elsewhere.path());
    let daemon = Daemon::start_with(|_, images| {
        drop_file(images, "small.img", &noise(64 * 1024, 1));
    });
    let reply: Result<v1::Job, _> = unary(
        channel(&daemon).await,
        "/bty.v1.FlashService/Flash",
        LegacyFlashRequest {
            image: "small.img".to_owned(),
            targets: vec![file_target(&victim, before.len() as u64)],
            no_verify: false,
            allow_file: true,
        },
    )
    .await;
    let status = reply.expect_err("the host file was accepted as a target");
    assert!(
        status.message().contains("file_targets_dir"),
        "{}",
        status.message()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        before,
        "the host file changed"
    );
}

/// btyctl has no `--allow-file` any more; naming a host file is refused
/// by btyd with the reason, and the file is untouched.
#[test]
fn btyctl_cannot_flash_a_host_file() {
    let elsewhere = tempfile::tempdir().unwrap();
    let (victim, before) = victim(elsewhere.path());
    let daemon = Daemon::start_with(|_, images| {
        drop_file(images, "small.img", &noise(64 * 1024, 2));
    });
    let victim_arg = victim.to_str().unwrap();
    let (code, _, stderr) = daemon.flash(&["small.img", victim_arg]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("file_targets_dir"), "{stderr}");
    let (code, _, stderr) = daemon.flash(&["small.img", victim_arg, "--allow-file"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        before,
        "the host file changed"
    );
}

/// With `[flash] file_targets_dir` set, a file directly inside it is a
/// target; a symlink planted there, a file outside it, and a subdirectory
/// are refused and nothing they point at changes.
#[test]
fn file_targets_exist_only_inside_the_configured_dir() {
    let outside = tempfile::tempdir().unwrap();
    let (victim, before) = victim(outside.path());
    let targets = tempfile::tempdir().unwrap();
    let dir = targets.path().canonicalize().unwrap();
    let image = noise(3 * MIB, 3);
    let config = format!(
        "[flash]\nfile_targets_dir = {:?}\n",
        dir.display().to_string()
    );
    let daemon = Daemon::start_configured(&config, |_, images| {
        drop_file(images, "disk.img", &image);
    });
    let out = dir.join("out.img");
    std::fs::write(&out, b"").unwrap();
    let (code, job, stderr) = daemon.flash(&["disk.img", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}\n{job:#}");
    assert_eq!(job["targets"][0]["verified"], true, "{job:#}");
    assert_eq!(std::fs::read(&out).unwrap(), image);

    let link = dir.join("planted.img");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let nested = sub.join("nested.img");
    std::fs::write(&nested, b"nested").unwrap();
    for target in [&link, &victim, &nested] {
        let (code, _, stderr) = daemon.flash(&["disk.img", target.to_str().unwrap()]);
        assert_ne!(code, 0, "{} was written: {stderr}", target.display());
        assert!(stderr.contains("file_targets_dir"), "{stderr}");
    }
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        before,
        "the host file changed"
    );
    assert_eq!(std::fs::read(&nested).unwrap(), b"nested");
}

/// `Flash{image: "/path"}` used to open any file as root and copy it onto
/// the disk: a host secret could be written to a stick the attacker then
/// takes away. Images are named, never given by path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_is_never_read_by_path() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"host secret ".repeat(10_000)).unwrap();
    let lo = LoopDevice::create(&dir.path().join("stick"), 8 * MIB as u64, 0xAB, false);
    let before = sha256sum(&lo.file);
    let daemon = Daemon::start();
    let target = confirm(channel(&daemon).await, lo.dev()).await;
    for image in [
        secret.display().to_string(),
        "../../../etc/passwd".to_owned(),
    ] {
        let reply = FlashServiceClient::new(channel(&daemon).await)
            .flash(v1::FlashRequest {
                image: image.clone(),
                targets: vec![target.clone()],
                no_verify: true,
                incremental: false,
            })
            .await;
        let status = reply.expect_err("a path was accepted as an image");
        assert!(
            matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::NotFound
            ),
            "{image}: {status:?}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sha256sum(&lo.file), before, "the stick was written");
}

/// `ImportCatalog{path}` made the catalog actor open any path: a FIFO
/// blocked its mailbox and every RPC hung until the watchdog killed btyd.
/// Now there is no path to name; the legacy field is answered at once and
/// the daemon keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_import_never_opens_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("catalog.fifo");
    run(Command::new("mkfifo").arg(&fifo));
    let daemon = Daemon::start();
    let started = Instant::now();
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        unary::<_, v1::ImportReport>(
            channel(&daemon).await,
            "/bty.v1.CatalogService/ImportCatalog",
            LegacyImportRequest {
                path: Some(fifo.display().to_string()),
                label: "fifo".to_owned(),
            },
        ),
    )
    .await
    .expect("the import of a FIFO path hung the daemon");
    let status = reply.expect_err("a path import was accepted");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Every other call still answers, and nothing was imported.
    assert!(daemon.images().is_empty());
    // The caller's own FIFO (process substitution) is read by btyctl, with
    // the caller's rights, and only its bytes reach the daemon.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::fs::write(
                &fifo,
                "version = 1\n[[images]]\nname = \"piped\"\nsrc = \"https://example.com/piped.img\"\n",
            )
        })
    };
    let out = daemon.ctl(&["catalog", "import", fifo.to_str().unwrap()]);
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let images = daemon.images();
    let names: Vec<&serde_json::Value> = images.iter().map(|i| &i["names"]).collect();
    assert_eq!(
        names,
        [&serde_json::json!(["piped"])],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Detach `first` and attach an 8 MiB file of 0x22 bytes on the same node,
/// as another stick of the same model would appear; the new device and the
/// sha256 of its bytes.
fn swap_in_same_size_device(first: LoopDevice, dir: &Path) -> (LoopDevice, String) {
    let dev = first.path.clone();
    // No other test may take the node between the detach and the attach.
    let setup = hold_loop_setup();
    drop(first);
    let second_file = dir.join("second");
    std::fs::write(&second_file, vec![0x22; 8 * MIB]).unwrap();
    let before = sha256sum(&second_file);
    run(Command::new("losetup").arg(&dev).arg(&second_file));
    drop(setup);
    let second = LoopDevice {
        path: dev,
        file: second_file,
    };
    (second, before)
}

/// The same-size swap: between the operator's listing and the flash, the
/// loop device is detached and another file of the very same size is
/// attached on the same node (as another stick of the same model would
/// be). Size, serial and model all match; the disk sequence number the
/// listing showed does not, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_size_device_swapped_after_listing_is_refused() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let first = LoopDevice::create(&dir.path().join("first"), 8 * MIB as u64, 0x11, false);
    let daemon = Daemon::start_with(|_, images| {
        drop_file(images, "disk.img", &noise(2 * MIB, 4));
    });
    let confirmed = confirm(channel(&daemon).await, first.dev()).await;
    assert!(
        confirmed.confirmed_diskseq.is_some(),
        "this kernel has no diskseq"
    );
    let (second, before) = swap_in_same_size_device(first, dir.path());
    let reply = FlashServiceClient::new(channel(&daemon).await)
        .flash(v1::FlashRequest {
            image: "disk.img".to_owned(),
            targets: vec![confirmed],
            no_verify: true,
            incremental: false,
        })
        .await;
    let status = reply.expect_err("the swapped device was accepted");
    assert!(
        status.message().contains("disk sequence number"),
        "{}",
        status.message()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sha256sum(&second.file),
        before,
        "the swapped-in device was written"
    );
}

/// "Busy" is decided by device number: while one flash writes a loop
/// device, a second request naming the same device through a symlink is
/// refused (it used to pass, since only path strings were compared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_being_written_is_busy_under_any_path() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let lo = LoopDevice::create(&dir.path().join("stick"), 64 * MIB as u64, 0, false);
    let origin = Origin::start();
    origin.put("slow.img", noise(48 * MIB, 5));
    origin.throttle(Duration::from_millis(20));
    let daemon = Daemon::start();
    let target = confirm(channel(&daemon).await, lo.dev()).await;
    let mut flash = FlashServiceClient::new(channel(&daemon).await);
    let first = flash
        .flash(v1::FlashRequest {
            image: origin.url("slow.img"),
            targets: vec![target.clone()],
            no_verify: true,
            incremental: false,
        })
        .await
        .expect("the first flash starts")
        .into_inner();
    let alias = dir.path().join("alias");
    std::os::unix::fs::symlink(&lo.path, &alias).unwrap();
    let second = flash
        .flash(v1::FlashRequest {
            image: origin.url("slow.img"),
            targets: vec![v1::FlashTarget {
                path: alias.display().to_string(),
                ..target
            }],
            no_verify: true,
            incremental: false,
        })
        .await;
    let status = second.expect_err("a second flash of the same device started");
    assert!(
        status.message().contains("another flash job is writing it"),
        "{}",
        status.message()
    );
    let out = daemon.ctl(&["jobs", "cancel", &first.id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the operator confirmed is what gets written, or nothing is: a
/// request without a confirmation, or with a size, serial or model the
/// device does not have, is refused and the device keeps its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_not_matching_the_confirmed_disk_is_refused() {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let lo = LoopDevice::create(&dir.path().join("disk"), 8 * MIB as u64, 0x33, false);
    let daemon = Daemon::start_with(|_, images| {
        drop_file(images, "disk.img", &noise(2 * MIB, 9));
    });
    let confirmed = confirm(channel(&daemon).await, lo.dev()).await;
    let before = sha256sum(&lo.file);
    let cases = [
        (
            v1::FlashTarget {
                confirmed_size_bytes: 0,
                ..confirmed.clone()
            },
            "not confirmed",
        ),
        (
            v1::FlashTarget {
                confirmed_size_bytes: confirmed.confirmed_size_bytes + 512,
                ..confirmed.clone()
            },
            "bytes were confirmed",
        ),
        (
            v1::FlashTarget {
                confirmed_serial: Some("SERIAL-OF-ANOTHER-DISK".to_owned()),
                ..confirmed.clone()
            },
            "serial",
        ),
        (
            v1::FlashTarget {
                confirmed_model: Some("Another Model".to_owned()),
                ..confirmed.clone()
            },
            "model",
        ),
    ];
    for (target, why) in cases {
        let status = FlashServiceClient::new(channel(&daemon).await)
            .flash(v1::FlashRequest {
                image: "disk.img".to_owned(),
                targets: vec![target],
                no_verify: true,
                incremental: false,
            })
            .await
            .expect_err(why);
        assert_eq!(
            status.code(),
            tonic::Code::FailedPrecondition,
            "{why}: {status:?}"
        );
        assert!(
            status.message().contains(why),
            "{why}: {}",
            status.message()
        );
    }
    assert_eq!(
        sha256sum(&lo.file),
        before,
        "a refused flash wrote the disk"
    );
}

async fn get_job(jobs: &mut JobServiceClient<Channel>, id: &str) -> v1::Job {
    jobs.get_job(GetJobRequest { id: id.to_owned() })
        .await
        .unwrap()
        .into_inner()
}

/// The swap after the request: a qcow2 entry must be downloaded before it
/// is flashed, so between the accepted request (checked against the
/// confirmation) and the first write there is a window as long as the
/// download. The origin holds the body; meanwhile the loop device is
/// detached and a same-size file attached on the same node. The re-check
/// before writing must refuse the new device, and not a byte of it changes.
///
/// `send_diskseq`: the confirmation carries the listed disk sequence
/// number (btyctl's), or not (a client that never sends it). Without it
/// the request-time rules cannot tell the devices apart; only the re-check
/// comparing the device found before the download with the one found after
/// it can.
async fn swap_while_downloading(send_diskseq: bool, refusal: &str) {
    require_loop_devices();
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("vm.raw");
    std::fs::write(&raw_path, noise(2 * MIB, 21)).unwrap();
    let qcow2_path = dir.path().join("vm.qcow2");
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw_path)
        .arg(&qcow2_path));
    let qcow2 = std::fs::read(&qcow2_path).unwrap();
    let origin = Origin::start();
    origin.put("vm.qcow2", qcow2.clone());
    origin.hold();
    let daemon = Daemon::start();
    daemon.ctl_json(&[
        "entries",
        "add",
        &origin.url("vm.qcow2"),
        "--sha256",
        &sha256_bytes(&qcow2),
    ]);
    let first = LoopDevice::create(&dir.path().join("first"), 8 * MIB as u64, 0x11, false);
    let mut confirmed = confirm(channel(&daemon).await, first.dev()).await;
    assert!(
        confirmed.confirmed_diskseq.is_some(),
        "this kernel has no diskseq"
    );
    if !send_diskseq {
        confirmed.confirmed_diskseq = None;
    }

    let job = FlashServiceClient::new(channel(&daemon).await)
        .flash(v1::FlashRequest {
            image: "vm.qcow2".to_owned(),
            targets: vec![confirmed],
            no_verify: true,
            incremental: false,
        })
        .await
        .expect("the request for the confirmed device is accepted")
        .into_inner();
    let mut jobs = JobServiceClient::new(channel(&daemon).await);
    // The flash waits for its download, whose body the origin holds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = get_job(&mut jobs, &job.id).await;
        if now.phase() == v1::JobPhase::Downloading && origin.body_requests() > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the flash never waited on its download: {now:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (second, before) = swap_in_same_size_device(first, dir.path());
    origin.release();

    let deadline = Instant::now() + Duration::from_secs(60);
    let ended = loop {
        let now = get_job(&mut jobs, &job.id).await;
        if now.finished_at_ms.is_some() {
            break now;
        }
        assert!(Instant::now() < deadline, "the flash never ended: {now:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The refusal came after the download, i.e. from the re-check.
    assert_eq!(
        origin.bytes_sent(),
        qcow2.len() as u64,
        "the image was not downloaded"
    );
    let target = &ended.targets[0];
    assert_eq!(target.state(), v1::TargetState::Refused, "{ended:#?}");
    let error = target.error.as_deref().unwrap_or_default();
    assert!(error.contains(refusal), "{ended:#?}");
    assert_eq!(ended.state(), v1::JobState::Failed, "{ended:#?}");
    assert_eq!(target.bytes_written, 0, "{ended:#?}");
    assert_eq!(
        sha256sum(&second.file),
        before,
        "the swapped-in device was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_swapped_while_its_image_downloads_is_refused_before_writing() {
    swap_while_downloading(true, "disk sequence number").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_swapped_while_downloading_is_refused_without_a_confirmed_diskseq() {
    swap_while_downloading(false, "the device changed since the flash was requested").await;
}
