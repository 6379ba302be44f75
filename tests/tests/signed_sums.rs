//! `[[trust]]` rules over http(s) sources, through a real btyd, a real HTTP
//! origin and keys and signatures made by the real `gpg`: an entry under
//! the rule is pinned only from a `sha_url` whose detached signature
//! (`.gpg`, `.sign` or `.asc`) verifies with the rule's keyrings, checked
//! at add time and again before every transfer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::loopdev::LoopDevice;
use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, noise, wait_for};
use bty_store::digest::sha256_bytes;
use bty_test_caps::require_loop_devices;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A throwaway gpg home with one signing key.
struct Gpg {
    home: tempfile::TempDir,
    fingerprint: String,
}

impl Gpg {
    fn new(uid: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        gpg(
            home.path(),
            &["--quick-gen-key", uid, "ed25519", "sign", "never"],
        );
        let listing =
            String::from_utf8(gpg(home.path(), &["--with-colons", "--list-keys"])).unwrap();
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_owned();
        Self { home, fingerprint }
    }

    /// The public keyring (`gpg --export`), written to `dir/<name>`.
    fn export_to(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, gpg(self.home.path(), &["--export"])).unwrap();
        path
    }

    /// A detached signature over `data`, binary or armoured.
    fn sign(&self, data: &[u8], armor: bool) -> Vec<u8> {
        let input = self.home.path().join("input");
        let output = self.home.path().join("input.sig");
        std::fs::write(&input, data).unwrap();
        let _ = std::fs::remove_file(&output);
        let mut args = vec!["--detach-sign", "--output", output.to_str().unwrap()];
        if armor {
            args.insert(0, "--armor");
        }
        args.push(input.to_str().unwrap());
        gpg(self.home.path(), &args);
        std::fs::read(&output).unwrap()
    }
}

fn gpg(home: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("gpg")
        .args(["--batch", "--quiet", "--pinentry-mode", "loopback"])
        .args(["--passphrase", ""])
        .arg("--homedir")
        .arg(home)
        .args(args)
        .output()
        .expect("gpg runs");
    assert!(out.status.success(), "gpg {args:?}: {out:?}");
    out.stdout
}

/// A daemon trusting `keyring` for everything under `<origin>/signed/`.
fn daemon(origin: &Origin, keyring: &Path, prepare: impl FnOnce(&Path, &Path)) -> Daemon {
    let config = format!(
        "[[trust]]\nmatch = {:?}\nrequire = \"signed\"\nkeyrings = [{keyring:?}]\n",
        origin.url("/signed/")
    );
    Daemon::start_configured(&config, prepare)
}

/// `btyctl entries add URL [--sha-url S] [--sha256 D]`: the entry, or the
/// error printed.
fn add(
    d: &Daemon,
    url: &str,
    sha_url: Option<&str>,
    sha256: Option<&str>,
) -> Result<Value, String> {
    let mut args = vec!["--json", "entries", "add", url];
    if let Some(s) = sha_url {
        args.extend(["--sha-url", s]);
    }
    if let Some(s) = sha256 {
        args.extend(["--sha256", s]);
    }
    let out = d.ctl(&args);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `btyctl --json fetch KEY`: exit code and the job printed.
fn fetch(d: &Daemon, key: &str) -> (i32, Value) {
    let out = d.ctl(&["--json", "fetch", key]);
    let job = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stderr).into_owned()));
    (out.status.code().unwrap_or(-1), job)
}

fn entries(d: &Daemon) -> usize {
    let reply = d.get("/catalog/entries");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json().as_array().unwrap().len()
}

/// Image files in the image root (sidecars and bty's own files aside).
fn stored(d: &Daemon) -> Vec<String> {
    let mut names = d.image_root_names();
    names
        .retain(|n| n != ".bty-storage.json" && !n.ends_with(".sha256") && !n.ends_with(".signed"));
    names
}

#[test]
fn a_signed_checksum_file_pins_the_entry_and_every_fetch_checks_it_again() {
    let origin = Origin::start();
    let lab = Gpg::new("bty test <t@example.org>");
    let other = Gpg::new("someone else <o@example.org>");
    let keys = tempfile::tempdir().unwrap();
    let keyring = lab.export_to(keys.path(), "lab.gpg");

    let image = noise(600_000, 41);
    let sha = sha256_bytes(&image);
    let sums = format!("{}  other.iso\n{sha}  os.img\n", "c".repeat(64)).into_bytes();
    origin.put("/signed/os.img", image.clone());
    origin.put("/signed/SHA256SUMS", sums.clone());
    origin.put("/signed/SHA256SUMS.gpg", lab.sign(&sums, false));
    let d = daemon(&origin, &keyring, |_, _| {});

    let sums_url = origin.url("/signed/SHA256SUMS");
    let entry = add(&d, &origin.url("/signed/os.img"), Some(&sums_url), None).unwrap();
    assert_eq!(entry["sha256"], sha.as_str(), "{entry}");
    assert_eq!(origin.requests_for("/signed/os.img"), 0);
    let (code, job) = fetch(&d, "os.img");
    assert_eq!(code, 0, "{job}");
    assert_eq!(job["sha256"], sha.as_str(), "{job}");
    let phase = job["phase"].as_str().unwrap();
    assert!(
        phase.contains(&format!("signed by {}", lab.fingerprint)),
        "{job}"
    );
    assert_eq!(stored(&d).len(), 1);
    // The listing says who signed the cached bytes, after a restart too.
    let signer_of = |d: &Daemon| {
        d.images()
            .into_iter()
            .find(|r| r["sha256"] == sha.as_str())
            .map(|r| r["signed_by"].clone())
    };
    assert_eq!(signer_of(&d), Some(Value::from(lab.fingerprint.as_str())));
    let mut d = d;
    d.restart();
    assert_eq!(signer_of(&d), Some(Value::from(lab.fingerprint.as_str())));

    // Only an armoured .asc next to the sums file: found and verified.
    let two = noise(4096, 42);
    let two_sums = format!("{}  two.img\n", sha256_bytes(&two)).into_bytes();
    origin.put("/signed/b/two.img", two.clone());
    origin.put("/signed/b/SHA256SUMS", two_sums.clone());
    origin.put("/signed/b/SHA256SUMS.asc", lab.sign(&two_sums, true));
    let entry = add(
        &d,
        &origin.url("/signed/b/two.img"),
        Some(&origin.url("/signed/b/SHA256SUMS")),
        None,
    )
    .unwrap();
    assert_eq!(entry["sha256"], sha256_bytes(&two).as_str());
    assert_eq!(origin.requests_for("/signed/b/SHA256SUMS.gpg"), 1);
    assert_eq!(origin.requests_for("/signed/b/SHA256SUMS.sign"), 1);

    // Signed anew by a key the rule does not know: the next update of the
    // cached entry is refused before any image byte moves.
    origin.put("/signed/SHA256SUMS.gpg", other.sign(&sums, false));
    let before = origin.requests_for("/signed/os.img");
    let out = d.ctl(&["--json", "update", "os.img"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("unknown key") && text.contains(&other.fingerprint),
        "{text}"
    );
    assert_eq!(origin.requests_for("/signed/os.img"), before);
    // A stream of it (GET of an entry with no local copy) is refused too.
    let r = entry["ref"].as_str().unwrap().to_owned();
    origin.put("/signed/b/SHA256SUMS.asc", other.sign(&two_sums, true));
    let got = d.get(&format!("/images/{r}/two.img"));
    assert_ne!(got.status, 200, "{}", got.text());
    assert_eq!(origin.requests_for("/signed/b/two.img"), 0);
}

/// A refusal case: directory, sums served, `(suffix, signature)` files,
/// what the refusal must say.
type Case = (
    &'static str,
    Vec<u8>,
    Vec<(&'static str, Vec<u8>)>,
    Vec<String>,
);

#[test]
fn unverifiable_checksum_files_are_refused_at_add_time_with_the_reason() {
    let origin = Origin::start();
    let lab = Gpg::new("bty test <t@example.org>");
    let other = Gpg::new("someone else <o@example.org>");
    let keys = tempfile::tempdir().unwrap();
    let keyring = lab.export_to(keys.path(), "lab.gpg");
    let image = noise(10_000, 43);
    let sha = sha256_bytes(&image);
    let sums = format!("{sha}  os.img\n").into_bytes();
    let d = daemon(&origin, &keyring, |_, _| {});
    let rule = format!("[[trust]] match = {:?}", origin.url("/signed/"));

    // (directory, sums served, signature files, what the refusal says).
    let mut changed = sums.clone();
    changed.extend_from_slice(format!("{}  extra.img\n", "e".repeat(64)).as_bytes());
    let cases: Vec<Case> = vec![
        (
            "bad",
            changed,
            vec![(".gpg", lab.sign(&sums, false))],
            vec!["bad signature".into(), lab.fingerprint.clone()],
        ),
        (
            "unknown",
            sums.clone(),
            vec![(".sign", other.sign(&sums, false))],
            vec![
                "unknown key".into(),
                other.fingerprint.clone(),
                lab.fingerprint.clone(),
            ],
        ),
        (
            "unnamed",
            format!("{sha}  alpha.img\n{sha}  beta.img\n").into_bytes(),
            vec![(
                ".asc",
                lab.sign(
                    format!("{sha}  alpha.img\n{sha}  beta.img\n").as_bytes(),
                    true,
                ),
            )],
            vec!["\"os.img\" is not listed".into()],
        ),
        (
            "unsigned",
            sums.clone(),
            vec![],
            vec![
                "no signature found".into(),
                ".gpg, .sign, .asc".into(),
                lab.fingerprint.clone(),
            ],
        ),
    ];
    for (dir, body, sigs, wants) in cases {
        let sums_path = format!("/signed/{dir}/SHA256SUMS");
        origin.put(&format!("/signed/{dir}/os.img"), image.clone());
        origin.put(&sums_path, body);
        for (suffix, sig) in sigs {
            origin.put(&format!("{sums_path}{suffix}"), sig);
        }
        let sums_url = origin.url(&sums_path);
        let err = add(
            &d,
            &origin.url(&format!("/signed/{dir}/os.img")),
            Some(&sums_url),
            None,
        )
        .unwrap_err();
        assert!(err.contains(&rule), "{dir}: {err}");
        assert!(err.contains(&sums_url), "{dir}: {err}");
        for want in wants {
            assert!(err.contains(&want), "{dir}: wanted {want:?} in {err}");
        }
        assert_eq!(origin.requests_for(&format!("/signed/{dir}/os.img")), 0);
    }
    // Under the rule, a pin without a signed sha_url is refused too.
    let err = add(&d, &origin.url("/signed/bad/os.img"), None, Some(&sha)).unwrap_err();
    assert!(err.contains(&rule) && err.contains("sha_url"), "{err}");
    assert_eq!(entries(&d), 0);
    assert!(stored(&d).is_empty());
}

#[test]
fn a_signed_digest_other_than_the_image_fails_the_download_and_stores_nothing() {
    let origin = Origin::start();
    let lab = Gpg::new("bty test <t@example.org>");
    let keys = tempfile::tempdir().unwrap();
    let keyring = lab.export_to(keys.path(), "lab.gpg");
    let image = noise(300_000, 44);
    let listed = "0".repeat(63) + "1";
    let sums = format!("{listed}  os.img\n").into_bytes();
    origin.put("/signed/os.img", image.clone());
    origin.put("/signed/SHA256SUMS", sums.clone());
    origin.put("/signed/SHA256SUMS.gpg", lab.sign(&sums, false));
    let d = daemon(&origin, &keyring, |_, _| {});
    let entry = add(
        &d,
        &origin.url("/signed/os.img"),
        Some(&origin.url("/signed/SHA256SUMS")),
        None,
    )
    .unwrap();
    assert_eq!(entry["sha256"], listed.as_str());
    let (code, job) = fetch(&d, "os.img");
    assert_ne!(code, 0, "{job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&listed) && error.contains(&sha256_bytes(&image)),
        "{job}"
    );
    assert!(stored(&d).is_empty());
}

#[test]
fn an_entry_pinned_before_the_rule_is_refused_until_it_verifies_and_others_are_untouched() {
    let origin = Origin::start();
    let lab = Gpg::new("bty test <t@example.org>");
    let keys = tempfile::tempdir().unwrap();
    let keyring = lab.export_to(keys.path(), "lab.gpg");
    let image = noise(200_000, 45);
    let sha = sha256_bytes(&image);
    origin.put("/signed/os.img", image.clone());
    origin.put("/plain/free.img", image.clone());

    // Pinned by hand, with no sha_url, by a daemon with no rule.
    let before = Daemon::start();
    add(&before, &origin.url("/signed/os.img"), None, Some(&sha)).unwrap();
    let catalog = std::fs::read(before.state_dir.join("catalog.toml")).unwrap();
    drop(before);

    let d = daemon(&origin, &keyring, |state, _| {
        std::fs::write(state.join("catalog.toml"), &catalog).unwrap();
    });
    let (code, job) = fetch(&d, "os.img");
    assert_ne!(code, 0, "{job}");
    assert!(job.to_string().contains("sha_url"), "{job}");
    assert_eq!(origin.requests_for("/signed/os.img"), 0);
    assert!(stored(&d).is_empty());

    // A source no rule covers behaves as before: no sha_url needed.
    add(&d, &origin.url("/plain/free.img"), None, None).unwrap();
    let (code, job) = fetch(&d, "free.img");
    assert_eq!(code, 0, "{job}");
    assert!(
        !job["phase"]
            .as_str()
            .unwrap_or_default()
            .contains("signed by"),
        "{job}"
    );
    assert_eq!(stored(&d).len(), 1);
    let row = d
        .images()
        .into_iter()
        .find(|r| r["sha256"] == sha.as_str())
        .unwrap();
    assert!(row.get("signed_by").is_none(), "{row}");
}

#[test]
fn a_copy_stored_before_the_rule_is_not_flashed_under_it() {
    require_loop_devices();
    let origin = Origin::start();
    let lab = Gpg::new("bty test <t@example.org>");
    let keys = tempfile::tempdir().unwrap();
    let keyring = lab.export_to(keys.path(), "lab.gpg");
    let image = noise(1 << 20, 46);
    let sha = sha256_bytes(&image);
    origin.put("/signed/old.img", image.clone());

    // Pinned by hand and fetched by a daemon with no rule.
    let before = Daemon::start();
    add(&before, &origin.url("/signed/old.img"), None, Some(&sha)).unwrap();
    let (code, job) = fetch(&before, "old.img");
    assert_eq!(code, 0, "{job}");
    let catalog = std::fs::read(before.state_dir.join("catalog.toml")).unwrap();
    let stored: Vec<(String, Vec<u8>)> = before
        .image_root_names()
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .map(|n| {
            let bytes = std::fs::read(before.image_root.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    drop(before);
    assert!(
        stored.iter().any(|(n, _)| n.ends_with(".sha256")),
        "{stored:?}"
    );

    // The same state under a rule covering that source.
    let d = daemon(&origin, &keyring, |state, root| {
        std::fs::write(state.join("catalog.toml"), &catalog).unwrap();
        // The image before its sidecar, so the sidecar stays fresh.
        let mut files = stored.clone();
        files.sort_by_key(|(n, _)| n.ends_with(".sha256"));
        for (name, bytes) in files {
            std::fs::write(root.join(name), bytes).unwrap();
        }
    });
    wait_for(Duration::from_secs(30), "the stored copy listed", || {
        d.images()
            .into_iter()
            .find(|r| r["sha256"] == sha.as_str() && r["cached"] == true)
    });
    let work = tempfile::tempdir().unwrap();
    let disk = LoopDevice::create(&work.path().join("disk"), 4 << 20, 0x77, false);
    let (code, _, stderr) = d.flash(&["old.img", disk.dev()]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("never checked") && stderr.contains("/signed/"),
        "{stderr}"
    );
    assert!(
        std::fs::read(&disk.file)
            .unwrap()
            .iter()
            .all(|&b| b == 0x77),
        "the disk was written"
    );
}
