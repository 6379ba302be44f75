// Puts the git revision of the checkout into `BTY_GIT_REV` for `--version`
// (and `GET /version`). Shared by btyd, btyctl and bty-web: their build
// scripts `include!` this file.
//
// Order: `git rev-parse --short HEAD` when the workspace is the top of a
// git checkout; else `BTY_GIT_REV` from the build environment (a source
// tarball built by a packager who knows the revision); else `unknown`.
// A workspace unpacked inside some other repository does not take that
// repository's revision.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("../daemon/build.rs").display()
    );
    println!("cargo:rerun-if-env-changed=BTY_GIT_REV");
    let rev = match git_revision(&manifest_dir) {
        Some((rev, watched)) => {
            // A new commit or checkout changes one of these; nothing else
            // makes the revision change.
            for path in watched {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            rev
        }
        None => std::env::var("BTY_GIT_REV")
            .ok()
            .map(|rev| rev.trim().to_owned())
            .filter(|rev| is_revision(rev))
            .unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=BTY_GIT_REV={rev}");
}

/// The short revision and the git files that record it, or `None` when the
/// workspace (the manifest dir's parent) is not the top of a git checkout.
fn git_revision(manifest_dir: &Path) -> Option<(String, Vec<PathBuf>)> {
    let workspace = manifest_dir.parent()?.canonicalize().ok()?;
    let top = git(manifest_dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != workspace {
        return None;
    }
    let rev = git(manifest_dir, &["rev-parse", "--short", "HEAD"])?;
    if !is_revision(&rev) {
        return None;
    }
    let mut watched = Vec::new();
    let mut git_path = |name: &str| {
        if let Some(path) = git(manifest_dir, &["rev-parse", "--git-path", name]) {
            let path = manifest_dir.join(path);
            // A missing file would make cargo rerun this script every build.
            if path.exists() {
                watched.push(path);
            }
        }
    };
    git_path("HEAD");
    git_path("packed-refs");
    if let Some(branch) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        git_path(&branch);
    }
    Some((rev, watched))
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Hex digits only (4 to 40): nothing else reaches the version string.
fn is_revision(rev: &str) -> bool {
    (4..=40).contains(&rev.len()) && rev.bytes().all(|b| b.is_ascii_hexdigit())
}
