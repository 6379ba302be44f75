//! A member of the `bty` group plays the attacker against a real btyd: the
//! image root is theirs to plant names in. A listed image swapped for a
//! symlink to a root-only file is never served, hashed or flashed; a
//! symlink planted where btyd writes (a download's partial, an upload's
//! temp) is never written through; a qcow2 naming a host file is refused.
//! Every test reads the victim back byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::loopdev::LoopDevice;
use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, noise, run, wait_for};
use bty_proto::channel::Target;
use bty_proto::v1::catalog_service_client::CatalogServiceClient;
use bty_proto::v1::{ReadImageRequest, image_chunk::Part};
use bty_store::digest::sha256_bytes;
use bty_test_caps::can_use_loop_devices;
use serde_json::Value;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What no response, device or file may ever contain.
const MARK: &[u8] = b"ROOT-ONLY-SECRET:";

/// A root-only file outside the image root: the file an attacker wants.
fn plant_secret(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut secret = MARK.repeat(4096);
    secret.extend(noise(1 << 20, 99));
    let path = dir.join("secret");
    std::fs::write(&path, &secret).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, secret)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Replace `root/name` by a symlink to `target` in one rename, as an
/// attacker with write access to the directory can.
fn swap_for_symlink(root: &Path, name: &str, target: &Path) {
    let tmp = root.join(".swap-link");
    symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, root.join(name)).unwrap();
}

fn require_root() {
    assert!(
        can_use_loop_devices(),
        "these tests flash loop devices and play other users: run them as root (scripts/test does)"
    );
}

/// Keeps btyd's directory watcher busy (a write every 40 ms, inside its
/// 200 ms debounce), so it does not rescan: the listing keeps the file as
/// it was while the attacker's requests run. An attacker can do the same.
struct KeepWatcherBusy {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeepWatcherBusy {
    fn start(root: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let path = root.join(".busy");
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::write(&path, b"x");
                    std::thread::sleep(Duration::from_millis(40));
                }
                let _ = std::fs::remove_file(&path);
            }
        });
        // Let the watcher enter its debounce before anything changes.
        std::thread::sleep(Duration::from_millis(300));
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for KeepWatcherBusy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `ReadImage(key)` over btyd's socket: the bytes received and the status
/// that ended the stream (`None` when it ended cleanly).
fn read_image(d: &Daemon, key: &str) -> (Vec<u8>, Option<tonic::Status>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = Target::Unix(d.socket.clone()).connect().await.unwrap();
        let mut client = CatalogServiceClient::new(channel);
        let request = ReadImageRequest {
            key: key.to_owned(),
            offset: 0,
            length: 0,
        };
        let mut stream = match client.read_image(request).await {
            Ok(r) => r.into_inner(),
            Err(status) => return (Vec::new(), Some(status)),
        };
        let mut data = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(chunk)) => {
                    if let Some(Part::Data(bytes)) = chunk.part {
                        data.extend_from_slice(&bytes);
                    }
                }
                Ok(None) => return (data, None),
                Err(status) => return (data, Some(status)),
            }
        }
    })
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
        .unwrap_or_else(|| panic!("no row {name}: {rows:#?}"))
}

#[test]
fn a_symlink_swapped_in_for_a_listed_image_is_never_served_or_flashed() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let (secret_path, secret) = plant_secret(work.path());
    let image = noise(2 << 20, 41);
    let d = Daemon::start_with(|_, root| std::fs::write(root.join("x.img"), &image).unwrap());
    let sha = wait_for(Duration::from_secs(30), "x.img to be hashed", || {
        row(&d.images(), "x.img")["sha256"]
            .as_str()
            .map(str::to_owned)
    });
    // The honest read works.
    let (bytes, status) = read_image(&d, &sha);
    assert!(status.is_none() && bytes == image, "{status:?}");
    let target = LoopDevice::create(&work.path().join("disk"), 8 << 20, 0xD5, false);
    let disk_before = std::fs::read(&target.file).unwrap();

    let busy = KeepWatcherBusy::start(&d.image_root);
    swap_for_symlink(&d.image_root, "x.img", &secret_path);

    // gRPC ReadImage (what GET /images/{key} streams).
    let (bytes, status) = read_image(&d, &sha);
    assert!(
        !contains(&bytes, MARK),
        "ReadImage served the root-only file"
    );
    let status = status.expect("ReadImage must fail");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(
        status
            .message()
            .contains("x.img changed since it was listed (it is a symbolic link now): rescan"),
        "{status:?}"
    );
    // The web route over the same call (open on this branch; with web
    // authentication merged, this request needs the access token).
    let web = d.get(&format!("/images/{sha}/x.img"));
    assert_ne!(web.status, 200, "{}", web.text());
    assert!(
        !contains(&web.body, MARK),
        "the web route served the root-only file"
    );
    // Flash by the same key.
    let (code, job, stderr) = d.flash(&[&sha, target.dev()]);
    assert_ne!(code, 0, "{job} {stderr}");
    assert!(stderr.contains("changed since it was listed"), "{stderr}");
    drop(busy);

    let disk_after = std::fs::read(&target.file).unwrap();
    assert!(disk_after == disk_before, "the target disk changed");
    assert!(!contains(&disk_after, MARK));
    assert!(std::fs::read(&secret_path).unwrap() == secret);
}

#[test]
fn a_queued_hash_of_a_file_swapped_for_a_symlink_reads_nothing_of_it() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let (secret_path, secret) = plant_secret(work.path());
    let secret_sha = sha256_bytes(&secret);
    let d = Daemon::start_with(|_, root| {
        // Hashed first (names sort), long enough to swap x.img meanwhile.
        let big = std::fs::File::create(root.join("big.img")).unwrap();
        big.set_len(1 << 30).unwrap();
        // Over the hasher's 4 MiB quick lane: it waits behind big.img.
        std::fs::write(root.join("x.img"), noise(8 << 20, 42)).unwrap();
    });
    let job_of = |subject: &str| {
        d.ctl_json(&["jobs", "list", "--kind", "hash"])
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["subject"] == subject)
            .cloned()
    };
    wait_for(
        Duration::from_secs(30),
        "big.img hashing, x.img queued",
        || {
            let big = job_of("big.img")?;
            let x = job_of("x.img")?;
            (big["state"] == "running" && x["state"] == "queued").then_some(())
        },
    );
    swap_for_symlink(&d.image_root, "x.img", &secret_path);
    let x = wait_for(
        Duration::from_secs(120),
        "the x.img hash job to end",
        || job_of("x.img").filter(|j| j["state"] != "queued" && j["state"] != "running"),
    );
    assert_eq!(x["state"], "failed", "{x}");
    assert!(
        x["error"].as_str().unwrap().contains("symbolic link"),
        "{x}"
    );
    // No sidecar and no listing carries the secret's digest.
    for entry in std::fs::read_dir(&d.image_root).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::symlink_metadata(&path).unwrap().is_file() {
            let text = std::fs::read(&path).unwrap();
            assert!(
                !contains(&text, secret_sha.as_bytes()),
                "{}",
                path.display()
            );
        }
    }
    assert!(
        d.images()
            .iter()
            .all(|r| r["sha256"] != secret_sha.as_str()),
        "the secret's digest was listed"
    );
}

#[test]
fn links_planted_at_partial_and_upload_temp_names_are_never_written_through() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let victim = work.path().join("victim");
    let victim_bytes = b"a file the attacker wants overwritten\n".repeat(1000);
    std::fs::write(&victim, &victim_bytes).unwrap();
    let origin = Origin::start();
    let bytes = noise(3 << 20, 43);
    let sha = sha256_bytes(&bytes);
    origin.put("plant.img", bytes.clone());
    let d = Daemon::start();
    let entry = d.ctl_json(&["entries", "add", &origin.url("plant.img"), "--sha256", &sha]);
    let cache = format!(
        "catalog-{}-plant-img.img",
        &entry["ref"].as_str().unwrap()[..12]
    );
    // The download's partial name of older releases, and the first upload
    // temp names (".<name>.tmp-<pid>-<counter>"), all pointing at the victim.
    symlink(&victim, d.image_root.join(format!("{cache}.partial"))).unwrap();
    let pid = d.pid().unwrap();
    for n in 0..8 {
        symlink(&victim, d.image_root.join(format!(".up.img.tmp-{pid}-{n}"))).unwrap();
    }
    let job = d.ctl_json(&["fetch", "plant.img"]);
    assert_eq!(job["state"], "completed", "{job}");
    assert!(std::fs::read(d.image_root.join(&cache)).unwrap() == bytes);

    let upload = work.path().join("up.img");
    let up_bytes = noise(2 << 20, 44);
    std::fs::write(&upload, &up_bytes).unwrap();
    let up = d.ctl_json(&["upload", upload.to_str().unwrap(), "--name", "up.img"]);
    assert_eq!(up["sha256"], sha256_bytes(&up_bytes).as_str(), "{up}");
    assert!(std::fs::read(d.image_root.join("up.img")).unwrap() == up_bytes);
    assert!(
        std::fs::read(&victim).unwrap() == victim_bytes,
        "the victim changed"
    );
}

#[test]
fn a_resumed_partial_swapped_for_a_link_is_not_written_through() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let victim = work.path().join("victim");
    let victim_bytes = noise(1 << 20, 45);
    std::fs::write(&victim, &victim_bytes).unwrap();
    let origin = Origin::start();
    let bytes = noise(48 << 20, 46);
    let sha = sha256_bytes(&bytes);
    origin.put("resume.img", bytes.clone());
    origin.throttle(Duration::from_millis(4));
    let mut d = Daemon::start();
    d.ctl_json(&[
        "entries",
        "add",
        &origin.url("resume.img"),
        "--sha256",
        &sha,
    ]);
    let job = d.ctl_json(&["fetch", "resume.img", "--detach"]);
    let id = job["id"].as_str().unwrap().to_owned();
    wait_for(Duration::from_secs(60), "some bytes on disk", || {
        d.ctl_json(&["jobs", "list"])
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str() && j["bytes_done"].as_u64() > Some(4 << 20))
            .then_some(())
    });
    d.kill9();
    // Without the sticky bit a group member can rename btyd's partial away
    // and put a link in its place (the name is in the directory listing).
    let partial = std::fs::read_dir(&d.image_root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".partial"))
        .expect("a partial survives kill -9");
    std::fs::remove_file(d.image_root.join(&partial)).unwrap();
    symlink(&victim, d.image_root.join(&partial)).unwrap();
    origin.throttle(Duration::ZERO);
    d.restart();
    wait_for(Duration::from_secs(120), "the download to land", || {
        d.images()
            .iter()
            .any(|r| r["sha256"] == sha.as_str() && r["cached"] == true)
            .then_some(())
    });
    assert!(
        std::fs::read(&victim).unwrap() == victim_bytes,
        "the victim changed"
    );
}

/// Make a qcow2 in `root` with qemu-img `create` arguments.
fn qcow2(root: &Path, name: &str, args: &[&str]) {
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .args(args)
        .arg(root.join(name))
        .arg((4u64 << 20).to_string()));
}

#[test]
fn qcow2_naming_a_host_file_is_refused_and_the_disk_is_untouched() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let secret_path = work.path().join("secret");
    let s = secret_path.to_str().unwrap().to_owned();
    let json = format!(r#"json:{{"driver":"file","filename":"{s}"}}"#);
    let data_file = format!("data_file={s},data_file_raw=on");
    let d = Daemon::start_with(|_, root| {
        qcow2(root, "backed.qcow2", &["-F", "raw", "-u", "-b", &s]);
        qcow2(root, "json.qcow2", &["-F", "raw", "-u", "-b", &json]);
        qcow2(root, "data.qcow2", &["-o", &data_file]);
    });
    // Written after the data-file image (creating it empties the file).
    plant_secret(work.path());
    wait_for(
        Duration::from_secs(30),
        "the qcow2 files to be listed",
        || (d.images().len() == 3).then_some(()),
    );
    let target = LoopDevice::create(&work.path().join("disk"), 8 << 20, 0x3C, false);
    let before = std::fs::read(&target.file).unwrap();
    for (name, why) in [
        ("backed.qcow2", "it has a backing file"),
        ("json.qcow2", "json:"),
        ("data.qcow2", "external data file"),
    ] {
        let (code, job, stderr) = d.flash(&[name, target.dev()]);
        assert_ne!(code, 0, "{name}: {job}");
        assert!(
            stderr.contains("refusing this qcow2 image") && stderr.contains(why),
            "{name}: {stderr}"
        );
        let after = std::fs::read(&target.file).unwrap();
        assert!(after == before, "{name} changed the disk");
    }
}
