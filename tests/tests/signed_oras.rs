//! cosign signatures through a real btyd, btyctl and registry (Debian's
//! docker-registry on loopback), with keys made by `openssl genpkey`: an
//! artifact pushed with `btyctl push --sign` under a `[[trust]]` rule
//! streams onto a loop device and fetches, noting its signer (P-256 and
//! Ed25519); unsigned artifacts, signatures by another key, a signature
//! copied from another artifact, a tampered payload and an oversize
//! signature manifest are refused before a byte is stored or written (and
//! a catalog import from a matching reference too).
//! Sources no rule matches pull as before.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::http::{self, Response};
use bty_e2e::loopdev::LoopDevice;
use bty_e2e::registry::Registry;
use bty_e2e::{Daemon, drop_file, noise, run, wait_for};
use bty_store::digest::sha256_bytes;
use bty_test_caps::require_loop_devices;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const MIB: usize = 1 << 20;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A key pair made by openssl: the private key file, the public one and
/// the fingerprint btyd names it by (sha256 of the SPKI DER, 16 hex).
struct Key {
    private: PathBuf,
    public: PathBuf,
    fingerprint: String,
}

fn openssl_key(dir: &Path, name: &str, algorithm: &[&str]) -> Key {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    run(Command::new("openssl")
        .arg("genpkey")
        .args(algorithm)
        .arg("-out")
        .arg(&private));
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    let der = run(Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(&public))
    .stdout;
    Key {
        private,
        public,
        fingerprint: sha256_bytes(&der)[..16].to_owned(),
    }
}

fn p256(dir: &Path, name: &str) -> Key {
    openssl_key(
        dir,
        name,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    )
}

/// A daemon whose config trusts `keys` for `oras://<registry>/signed/`.
fn daemon(registry: &Registry, keys: &[&Key], files: &[(&str, &[u8])]) -> Daemon {
    let keys: Vec<String> = keys.iter().map(|k| format!("{:?}", k.public)).collect();
    let config = format!(
        "[registries.\"{host}\"]\ninsecure = true\n\n\
         [[trust]]\nmatch = \"oras://{host}/signed/\"\nrequire = \"signed\"\nkeys = [{}]\n",
        keys.join(", "),
        host = registry.host()
    );
    let d = Daemon::start_configured(&config, |_, root| {
        for (name, bytes) in files {
            drop_file(root, name, bytes);
        }
    });
    for (_, bytes) in files {
        let sha = sha256_bytes(bytes);
        wait_for(Duration::from_secs(30), "the files to be hashed", || {
            d.images()
                .iter()
                .any(|r| r["sha256"] == sha.as_str())
                .then_some(())
        });
    }
    d
}

/// `btyctl push [--sign KEY]`: the pushed manifest digest, and stderr.
fn push(d: &Daemon, file: &str, target: &str, key: Option<&Key>) -> (String, String) {
    let mut args = vec!["--json", "push", file, target];
    if let Some(key) = key {
        args.extend(["--sign", key.private.to_str().unwrap()]);
    }
    let out = d.ctl(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "push {file}: {stderr}");
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["state"], "completed", "{job}");
    let phase = job["phase"].as_str().unwrap();
    let at = phase.find("(manifest sha256:").expect(phase) + "(manifest ".len();
    (phase[at..at + 71].to_owned(), stderr)
}

/// `btyctl --json fetch`: exit code and the job printed.
fn fetch(d: &Daemon, target: &str) -> (i32, Value) {
    let entry = d.ctl_json(&["entries", "add", target]);
    assert!(entry["ref"].is_string(), "{entry}");
    let out = d.ctl(&["--json", "fetch", target]);
    let job = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), job)
}

fn stored(d: &Daemon) -> Vec<String> {
    let mut names = d.image_root_names();
    names.retain(|n| n != ".bty-storage.json");
    names
}

fn registry_get(registry: &Registry, path: &str) -> Response {
    let accept = [("Accept", OCI_MANIFEST)];
    let resp = http::request(registry.addr, "GET", path, &accept, b"");
    assert_eq!(resp.status, 200, "GET {path}: {}", resp.text());
    resp
}

fn put_manifest(registry: &Registry, repo: &str, tag: &str, body: &[u8]) {
    let path = format!("/v2/{repo}/manifests/{tag}");
    let resp = http::request(
        registry.addr,
        "PUT",
        &path,
        &[("Content-Type", OCI_MANIFEST)],
        body,
    );
    assert_eq!(resp.status, 201, "PUT {path}: {}", resp.text());
}

/// Upload `bytes` as a blob of `repo` (monolithic upload).
fn put_blob(registry: &Registry, repo: &str, bytes: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256_bytes(bytes));
    let start = http::request(
        registry.addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(start.status, 202, "{}", start.text());
    let location = start.header("location").unwrap();
    // The registry answers with an absolute URL; keep its path and query.
    let path = location
        .find("/v2/")
        .map(|i| &location[i..])
        .unwrap()
        .to_owned();
    let sep = if path.contains('?') { '&' } else { '?' };
    let resp = http::request(
        registry.addr,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    digest
}

fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

#[test]
fn signed_artifacts_stream_onto_a_disk_and_fetch_noting_their_signer() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let lab = p256(work.path(), "lab");
    let ed = openssl_key(work.path(), "ed", &["-algorithm", "ed25519"]);
    let image = noise(4 * MIB, 61);
    let other = noise(MIB, 62);
    let registry = Registry::start();
    let d = daemon(
        &registry,
        &[&lab, &ed],
        &[("disk.img", &image), ("ed.img", &other)],
    );
    let artifact = format!("oras://{}/signed/disk:v1", registry.host());

    let (digest, stderr) = push(&d, "disk.img", &artifact, Some(&lab));

    // cosign's layout: the signature manifest sits under sha256-<hex>.sig
    // with one simple-signing layer whose payload names the digest.
    assert!(
        stderr.contains(&format!("signed {digest} with key {}", lab.fingerprint)),
        "{stderr}"
    );
    let sig = registry_get(
        &registry,
        &format!("/v2/signed/disk/manifests/{}", sig_tag(&digest)),
    )
    .json();
    let layer = &sig["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(layer["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    let payload = registry_get(
        &registry,
        &format!(
            "/v2/signed/disk/blobs/{}",
            layer["digest"].as_str().unwrap()
        ),
    )
    .json();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest
    );
    assert_eq!(
        payload["critical"]["type"],
        "cosign container image signature"
    );
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        format!("{}/signed/disk", registry.host())
    );

    // Streamed onto a disk (the local copy is gone, so only the registry
    // can serve it), then fetched into the store with its signer noted.
    std::fs::remove_file(d.image_root.join("disk.img")).unwrap();
    let dev = LoopDevice::create(&work.path().join("disk"), 32 << 20, 0xAA, false);
    let (code, job, stderr) = d.flash(&[&artifact, dev.dev()]);
    assert_eq!(code, 0, "{stderr}\n{job}");
    assert_eq!(job["targets"][0]["state"], "done", "{job}");
    assert_eq!(
        std::fs::read(&dev.file).unwrap()[..image.len()],
        image[..],
        "the disk holds the image"
    );
    let (code, job) = fetch(&d, &artifact);
    assert_eq!(code, 0, "{job}");
    assert_eq!(job["sha256"], sha256_bytes(&image).as_str(), "{job}");
    let phase = job["phase"].as_str().unwrap();
    assert!(
        phase.contains(&format!("signed by {}", lab.fingerprint)),
        "{job}"
    );
    // The listing says who signed the cached bytes.
    let row = d
        .images()
        .into_iter()
        .find(|r| r["sha256"] == sha256_bytes(&image).as_str() && r["cached"] == true)
        .unwrap();
    assert_eq!(row["signed_by"], lab.fingerprint.as_str(), "{row}");

    // An Ed25519 key signs and verifies the same way.
    let ed_artifact = format!("oras://{}/signed/ed:v1", registry.host());
    push(&d, "ed.img", &ed_artifact, Some(&ed));
    let (code, job) = fetch(&d, &ed_artifact);
    assert_eq!(code, 0, "{job}");
    let phase = job["phase"].as_str().unwrap();
    assert!(
        phase.contains(&format!("signed by {}", ed.fingerprint)),
        "{job}"
    );
}

/// A refused fetch: the job failed naming the rule, digest, keys and why,
/// and the image root is exactly as it was.
fn assert_refused(d: &Daemon, target: &str, digest: &str, keys: &[&Key], reason: &str) {
    let before = stored(d);
    let (code, job) = fetch(d, target);
    assert_eq!(code, 7, "{job}");
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    for want in [
        "[[trust]]",
        &format!("oras://{}/signed/", target.split('/').nth(2).unwrap()),
        digest,
        reason,
    ] {
        assert!(error.contains(want), "wanted {want:?} in: {error}");
    }
    for key in keys {
        assert!(error.contains(&key.fingerprint), "{error}");
    }
    assert_eq!(stored(d), before, "the image root changed");
    assert_eq!(d.partial_bytes(), 0);
}

#[test]
fn unsigned_foreign_copied_tampered_and_oversize_signatures_are_refused() {
    require_loop_devices();
    let work = tempfile::tempdir().unwrap();
    let (lab, stranger) = (p256(work.path(), "lab"), p256(work.path(), "stranger"));
    let files: Vec<(String, Vec<u8>)> = (0..7)
        .map(|i| (format!("f{i}.img"), noise(MIB, 101 + 2 * i)))
        .collect();
    let file_refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let registry = Registry::start();
    let d = daemon(&registry, &[&lab], &file_refs);
    let host = registry.host();
    let at = |repo: &str| format!("oras://{host}/{repo}");

    // No signature at all: refused for fetch and for a streamed flash.
    let (unsigned, _) = push(&d, "f0.img", &at("signed/plain:v1"), None);
    assert_refused(
        &d,
        &at("signed/plain:v1"),
        &unsigned,
        &[&lab],
        &format!(
            "no signature (the registry has no tag {})",
            sig_tag(&unsigned)
        ),
    );
    let dev = LoopDevice::create(&work.path().join("disk"), 8 << 20, 0xAA, false);
    let (code, job, stderr) = d.flash(&[&at("signed/plain:v1"), dev.dev()]);
    assert_ne!(code, 0, "{job}");
    assert!(stderr.contains("no valid signature"), "{stderr}");
    assert!(
        std::fs::read(&dev.file).unwrap()[..MIB]
            .iter()
            .all(|&b| b == 0xAA),
        "the disk was written"
    );

    // A catalog imported from a matching reference is held to the rule.
    let out = d.ctl(&["catalog", "import", &at("signed/plain:v1")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no valid signature") && stderr.contains(&unsigned),
        "{stderr}"
    );

    // Signed, but by a key the rule does not list.
    let (foreign, _) = push(&d, "f1.img", &at("signed/foreign:v1"), Some(&stranger));
    assert_refused(
        &d,
        &at("signed/foreign:v1"),
        &foreign,
        &[&lab],
        "verifies with none of the allowed keys",
    );

    // A valid signature of artifact A copied under B's .sig tag: the
    // payload names A's digest, not B's.
    let (a, _) = push(&d, "f2.img", &at("signed/swap:a"), Some(&lab));
    let (b, _) = push(&d, "f3.img", &at("signed/swap:b"), None);
    let a_sig = registry_get(
        &registry,
        &format!("/v2/signed/swap/manifests/{}", sig_tag(&a)),
    );
    put_manifest(&registry, "signed/swap", &sig_tag(&b), &a_sig.body);
    assert_refused(
        &d,
        &at("signed/swap:b"),
        &b,
        &[&lab],
        &format!("payload signs manifest {a}, not {b}"),
    );

    // A payload changed after signing (still naming the right digest):
    // the signature no longer verifies. Also refused for a flash.
    let (t, _) = push(&d, "f4.img", &at("signed/tamper:v1"), Some(&lab));
    let tag = sig_tag(&t);
    let mut manifest =
        registry_get(&registry, &format!("/v2/signed/tamper/manifests/{tag}")).json();
    let layer = &mut manifest["layers"][0];
    let mut payload = registry_get(
        &registry,
        &format!(
            "/v2/signed/tamper/blobs/{}",
            layer["digest"].as_str().unwrap()
        ),
    )
    .body;
    payload.push(b' ');
    layer["digest"] = put_blob(&registry, "signed/tamper", &payload).into();
    layer["size"] = payload.len().into();
    put_manifest(
        &registry,
        "signed/tamper",
        &tag,
        manifest.to_string().as_bytes(),
    );
    assert_refused(
        &d,
        &at("signed/tamper:v1"),
        &t,
        &[&lab],
        "verifies with none of the allowed keys",
    );
    let (code, job, stderr) = d.flash(&[&at("signed/tamper:v1"), dev.dev()]);
    assert_ne!(code, 0, "{job}");
    assert!(stderr.contains("verifies with none"), "{stderr}");
    assert!(
        std::fs::read(&dev.file).unwrap()[..MIB]
            .iter()
            .all(|&b| b == 0xAA),
        "the disk was written"
    );

    // A signature manifest over the 64 KiB cap is refused unread.
    let (big, _) = push(&d, "f5.img", &at("signed/big:v1"), None);
    let huge = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put_blob(&registry, "signed/big", b"{}"), "size": 2},
        "layers": [],
        "annotations": {"padding": "x".repeat(70 << 10)},
    });
    put_manifest(
        &registry,
        "signed/big",
        &sig_tag(&big),
        huge.to_string().as_bytes(),
    );
    assert_refused(
        &d,
        &at("signed/big:v1"),
        &big,
        &[&lab],
        "larger than the 65536-byte cap",
    );

    // No rule matches outside signed/: unsigned pulls work as before.
    push(&d, "f6.img", &at("open/plain:v1"), None);
    let (code, job) = fetch(&d, &at("open/plain:v1"));
    assert_eq!(code, 0, "{job}");
    assert_eq!(job["state"], "completed", "{job}");
}

#[test]
fn a_bad_trust_key_stops_btyd_at_start_up_naming_the_file() {
    let work = tempfile::tempdir().unwrap();
    let good = p256(work.path(), "lab");
    // A private key where a public one belongs, and a file that is not PEM.
    let cases = [
        (good.private.clone(), "not a PEM PUBLIC KEY block"),
        (work.path().join("junk.pub"), "not a PEM PUBLIC KEY block"),
        (work.path().join("missing.pub"), "No such file"),
    ];
    std::fs::write(work.path().join("junk.pub"), "hello").unwrap();
    for (key, why) in cases {
        let config = work.path().join("btyd.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = {:?}\n[[trust]]\nmatch = \"oras://r.lab/\"\nrequire = \"signed\"\nkeys = [{:?}, {:?}]\n",
                work.path().join("state"),
                good.public,
                key
            ),
        )
        .unwrap();
        let out = Command::new(bty_e2e::bin("btyd"))
            .arg("--config")
            .arg(&config)
            .arg("--check-config")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key:?} was accepted");
        assert!(stderr.contains(&key.display().to_string()), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
    }
    // The good key alone resolves, listed by its fingerprint.
    let config = work.path().join("ok.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[[trust]]\nmatch = \"oras://r.lab/\"\nrequire = \"signed\"\nkeys = [{:?}]\n",
            work.path().join("state"),
            good.public
        ),
    )
    .unwrap();
    let out = run(Command::new(bty_e2e::bin("btyd"))
        .arg("--config")
        .arg(&config)
        .arg("--check-config"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&good.fingerprint), "{stdout}");
}
