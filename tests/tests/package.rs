//! The Debian package on this machine: `scripts/package` builds it (a
//! release build), its contents are listed, `dpkg -i` installs it and the
//! installed binaries run, a newer revision upgrades it keeping the admin's
//! config and the state dir, and remove/purge take it away again — leaving
//! the machine as it was (a guard purges and deletes the group even when an
//! assertion fails half-way).
//!
//! It changes the system (dpkg database, /usr/bin, /etc, /var/lib), so it
//! refuses to run where bty is already installed or its paths exist.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::run;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STATE: &str = "/var/lib/bty";
const CONFIG: &str = "/etc/bty/btyd.toml";
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/btyd.service";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `scripts/package` with a Debian revision; the .deb's path.
fn build_package(revision: &str) -> PathBuf {
    let out = run(Command::new(workspace().join("scripts/package"))
        .env("BTY_DEB_REVISION", revision)
        .current_dir(workspace()));
    let path = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let path = workspace().join(path);
    assert!(path.is_file(), "{} not built", path.display());
    path
}

/// The package's status word(s) in dpkg's database, `None` if unknown.
fn dpkg_status() -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}|${Version}", "bty"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        .filter(|s| !s.starts_with("unknown ok not-installed"))
}

fn group_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["group", name])
        .output()
        .unwrap()
        .status
        .success()
}

fn group_id(name: &str) -> u32 {
    let out = run(Command::new("getent").args(["group", name]));
    let line = String::from_utf8(out.stdout).unwrap();
    line.split(':').nth(2).unwrap().trim().parse().unwrap()
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn dpkg(args: &[&str]) -> String {
    let out = Command::new("dpkg").args(args).output().unwrap();
    let all = text(&out);
    assert!(out.status.success(), "dpkg {args:?} failed:\n{all}");
    all
}

/// Puts the machine back even when the test fails part-way.
struct Restore {
    group_existed: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "bty"]).output();
        let _ = std::fs::remove_dir_all(STATE);
        if !self.group_existed {
            let _ = Command::new("groupdel").arg("bty").output();
        }
    }
}

#[test]
fn debian_package_installs_upgrades_and_purges() {
    assert_eq!(
        dpkg_status(),
        None,
        "bty is installed on this machine; the package test would replace it"
    );
    for path in [STATE, "/etc/bty", "/usr/bin/btyd", "/usr/bin/btyctl"] {
        assert!(
            !Path::new(path).exists(),
            "{path} exists; the package test would remove it"
        );
    }
    let _restore = Restore {
        group_existed: group_exists("bty"),
    };
    let rev = {
        let out = run(Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(workspace()));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let version = env!("CARGO_PKG_VERSION");
    let first = build_package("1");
    assert!(
        first.ends_with(format!(
            "target/debian/bty_{version}-1_{}.deb",
            String::from_utf8(run(Command::new("dpkg").arg("--print-architecture")).stdout)
                .unwrap()
                .trim()
        )),
        "{}",
        first.display()
    );

    // Contents: every file the issue names, with its mode and owner.
    let listing = dpkg(&["-c", first.to_str().unwrap()]);
    println!("dpkg-deb -c {}:\n{listing}", first.display());
    let entry = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" .{path}")))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"))
            .to_owned()
    };
    for path in ["/usr/bin/btyd", "/usr/bin/btyctl", "/usr/bin/bty-web"] {
        assert!(
            entry(path).starts_with("-rwxr-xr-x root/root"),
            "{}",
            entry(path)
        );
    }
    for path in [
        "/usr/lib/systemd/system/btyd.service",
        "/usr/lib/sysusers.d/bty.conf",
        "/usr/lib/tmpfiles.d/bty.conf",
        "/usr/share/man/man1/btyd.1.gz",
        "/usr/share/man/man1/btyctl.1.gz",
        "/usr/share/man/man1/btyctl-flash.1.gz",
        "/usr/share/bash-completion/completions/btyctl",
        "/usr/share/zsh/vendor-completions/_btyctl",
        "/usr/share/fish/vendor_completions.d/btyctl.fish",
        "/usr/share/doc/bty/copyright",
    ] {
        assert!(
            entry(path).starts_with("-rw-r--r-- root/root"),
            "{}",
            entry(path)
        );
    }
    assert!(
        entry(CONFIG).starts_with("-rw-r----- root/root"),
        "{}",
        entry(CONFIG)
    );
    let conffiles =
        run(Command::new("dpkg-deb").args(["-I", first.to_str().unwrap(), "conffiles"]));
    assert_eq!(
        String::from_utf8_lossy(&conffiles.stdout),
        format!("{CONFIG}\n")
    );
    let depends = run(Command::new("dpkg-deb").args(["-f", first.to_str().unwrap(), "Depends"]));
    assert!(
        String::from_utf8_lossy(&depends.stdout).starts_with("libc6 (>= "),
        "{}",
        String::from_utf8_lossy(&depends.stdout)
    );

    // Install. systemd is not PID 1 in CI's container: the maintainer
    // scripts must still succeed (and enable the unit for the next boot).
    let installed = dpkg(&["-i", first.to_str().unwrap()]);
    assert_eq!(
        dpkg_status().as_deref(),
        Some(format!("install ok installed|{version}-1").as_str()),
        "{installed}"
    );
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/btyd.service").unwrap();
    assert!(unit.contains("\nExecStart=/usr/bin/btyd --config /etc/bty/btyd.toml\n"));
    // (deb-systemd-helper may link through /lib on merged-/usr systems.)
    assert_eq!(
        std::fs::canonicalize(WANTS).expect("deb-systemd-helper did not enable btyd.service"),
        std::fs::canonicalize("/usr/lib/systemd/system/btyd.service").unwrap(),
    );
    // sysusers made the group, tmpfiles the state dirs, postinst the
    // config's group.
    let gid = group_id("bty");
    assert_eq!(mode(STATE), 0o750);
    assert_eq!(mode("/var/lib/bty/images"), 0o3770);
    assert_eq!(std::fs::metadata(STATE).unwrap().gid(), gid);
    assert_eq!(mode(CONFIG), 0o640);
    assert_eq!(std::fs::metadata(CONFIG).unwrap().gid(), gid);
    assert_eq!(
        std::fs::read(CONFIG).unwrap(),
        std::fs::read(workspace().join("deploy/btyd.toml")).unwrap()
    );

    // The installed binaries run.
    let check = run(Command::new("/usr/bin/btyd").arg("--check-config"));
    let resolved = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        resolved.contains("state_dir: \"/var/lib/bty\""),
        "{resolved}"
    );
    for name in ["btyd", "btyctl", "bty-web"] {
        let out = run(Command::new(format!("/usr/bin/{name}")).arg("--version"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{name} {version} ({rev})\n")
        );
    }
    let page = run(Command::new("man").args(["-w", "btyctl"]));
    assert_eq!(
        String::from_utf8_lossy(&page.stdout).trim(),
        "/usr/share/man/man1/btyctl.1.gz"
    );

    // Upgrade to a newer revision: the edited conffile and the state stay.
    let edited = std::fs::read_to_string(CONFIG)
        .unwrap()
        .replace("max_parallel = 2", "max_parallel = 3");
    assert_ne!(edited, std::fs::read_to_string(CONFIG).unwrap());
    std::fs::write(CONFIG, &edited).unwrap();
    std::fs::write("/var/lib/bty/images/keep.img", b"operator's image").unwrap();
    std::fs::write("/var/lib/bty/catalog.toml", "version = 1\n").unwrap();
    let second = build_package("2");
    let upgraded = dpkg(&["-i", second.to_str().unwrap()]);
    assert_eq!(
        dpkg_status().as_deref(),
        Some(format!("install ok installed|{version}-2").as_str()),
        "{upgraded}"
    );
    assert_eq!(std::fs::read_to_string(CONFIG).unwrap(), edited);
    for leftover in [".dpkg-new", ".dpkg-dist", ".dpkg-old"] {
        assert!(!Path::new(&format!("{CONFIG}{leftover}")).exists());
    }
    assert_eq!(
        std::fs::read("/var/lib/bty/images/keep.img").unwrap(),
        b"operator's image"
    );
    assert!(Path::new("/var/lib/bty/catalog.toml").exists());
    let check = run(Command::new("/usr/bin/btyd").arg("--check-config"));
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("max_parallel: 3"),
        "the kept config is not the one read: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Remove: binaries go, config and state stay.
    dpkg(&["-r", "bty"]);
    assert!(!Path::new("/usr/bin/btyd").exists());
    assert_eq!(std::fs::read_to_string(CONFIG).unwrap(), edited);
    assert!(Path::new("/var/lib/bty/images/keep.img").exists());
    assert!(
        dpkg_status()
            .unwrap()
            .starts_with("deinstall ok config-files")
    );

    // Purge: config, unit state and btyd's own state go; the operator's
    // image stays, and an empty image store would go too.
    let purged = dpkg(&["-P", "bty"]);
    assert_eq!(dpkg_status(), None);
    assert!(!Path::new("/etc/bty").exists(), "{purged}");
    assert!(
        std::fs::symlink_metadata(WANTS).is_err(),
        "unit still enabled"
    );
    assert!(!Path::new("/var/lib/bty/catalog.toml").exists());
    assert!(Path::new("/var/lib/bty/images/keep.img").exists());
    assert!(purged.contains("kept /var/lib/bty/images"), "{purged}");
    assert!(
        !Path::new("/var/lib/systemd/deb-systemd-helper-enabled/btyd.service.dsh-also").exists()
    );
}
