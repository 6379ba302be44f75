//! Command-line conventions of the real binaries: `--version` names the git
//! revision, `btyctl completions` scripts work in a real bash, and the man
//! pages come from the clap definitions (hidden packaging commands stay out
//! of both). None of it needs a running btyd.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::{bin, run};
use std::path::Path;
use std::process::Command;

/// `git rev-parse --short HEAD` of this checkout (the tests run from one;
/// CI clones the repository).
fn head_revision() -> String {
    let out = run(Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR")));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn version_names_the_package_version_and_git_revision() {
    let rev = head_revision();
    assert!(
        rev.len() >= 4 && rev.bytes().all(|b| b.is_ascii_hexdigit()),
        "{rev}"
    );
    for name in ["btyd", "btyctl", "bty-web"] {
        let out = run(Command::new(bin(name)).arg("--version"));
        assert_eq!(
            stdout(&out),
            format!("{name} {} ({rev})\n", env!("CARGO_PKG_VERSION")),
            "{name} --version"
        );
    }
}

#[test]
fn bash_completion_completes_commands_and_shells() {
    let dir = tempfile::tempdir().unwrap();
    // An unreachable socket: completions must not need the daemon.
    let out = run(Command::new(bin("btyctl")).args([
        "--socket",
        "/nonexistent/btyd.sock",
        "completions",
        "bash",
    ]));
    let script = dir.path().join("btyctl.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // What bash offers for a partial word, as readline would ask.
    let complete = |words: &[&str]| -> Vec<String> {
        let line = words.join(" ");
        let probe = format!(
            "source {script}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; \
             COMP_POINT={point}; _btyctl btyctl '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script = script.display(),
            words = words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            cword = words.len() - 1,
            point = line.len(),
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let out = run(Command::new("bash").args(["--norc", "-c", &probe]));
        stdout(&out).lines().map(str::to_owned).collect()
    };
    assert_eq!(complete(&["btyctl", "ent"]), ["entries"]);
    assert_eq!(complete(&["btyctl", "entries", "r"]), ["rm"]);
    let shells = complete(&["btyctl", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|s| s == shell), "{shells:?}");
    }
    // The hidden packaging command is not offered.
    let all = complete(&["btyctl", ""]);
    assert!(all.iter().any(|c| c == "flash"), "{all:?}");
    assert!(!all.iter().any(|c| c == "man-pages"), "{all:?}");
}

#[test]
fn zsh_and_fish_completions_load_in_their_shells() {
    let dir = tempfile::tempdir().unwrap();
    let script = |shell: &str| {
        let out = run(Command::new(bin("btyctl")).args(["completions", shell]));
        let text = stdout(&out);
        assert!(
            !text.contains("man-pages"),
            "{shell}: hidden command offered"
        );
        let path = dir.path().join(format!("btyctl.{shell}"));
        std::fs::write(&path, text).unwrap();
        path
    };
    // zsh: a completion function file that parses and defines _btyctl.
    let zsh = script("zsh");
    assert!(
        std::fs::read_to_string(&zsh)
            .unwrap()
            .starts_with("#compdef btyctl\n")
    );
    run(Command::new("zsh").arg("-n").arg(&zsh));
    let probe = format!(
        "autoload -Uz compinit && compinit -u -D; source {}; whence -w _btyctl",
        zsh.display()
    );
    let out = run(Command::new("zsh").args(["-f", "-c", &probe]));
    assert_eq!(stdout(&out).trim(), "_btyctl: function");
    // fish: what `complete -C` (fish's own completion query) offers.
    let fish = script("fish");
    let complete = |line: &str| -> Vec<String> {
        let probe = format!("source {}; complete -C '{line}'", fish.display());
        let out = run(Command::new("fish").args(["--no-config", "-c", &probe]));
        stdout(&out)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(complete("btyctl ent"), ["entries"]);
    let mut entries = complete("btyctl entries ");
    entries.sort();
    assert_eq!(entries, ["add", "help", "rm"]);
    assert!(complete("btyctl --so").iter().any(|o| o == "--socket"));
    let bad = Command::new(bin("btyctl"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "unknown shell is a usage error");
}

/// The `.TH` line and option names of a generated page.
fn assert_man_page(path: &Path, title: &str, options: &[&str]) {
    let page = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} not written: {e}", path.display()));
    assert!(
        page.lines()
            .any(|l| l.starts_with(&format!(".TH {title} 1 "))),
        "{}: no .TH {title} 1 line",
        path.display()
    );
    for option in options {
        // roff escapes '-' as '\-'.
        let escaped = option.replace('-', "\\-");
        assert!(
            page.contains(&escaped),
            "{}: {option} missing",
            path.display()
        );
    }
    assert!(
        !page.contains("man\\-pages"),
        "{}: hidden command listed",
        path.display()
    );
}

#[test]
fn man_pages_are_generated_from_the_command_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    run(Command::new(bin("btyctl")).arg("man-pages").arg(&out));
    assert_man_page(
        &out.join("btyctl.1"),
        "btyctl",
        &["--socket", "--endpoint", "completions"],
    );
    assert_man_page(&out.join("btyctl-flash.1"), "btyctl-flash", &["--yes"]);
    assert!(out.join("btyctl-entries-add.1").exists());
    assert!(!out.join("btyctl-man-pages.1").exists());
    run(Command::new(bin("btyd")).arg("man-pages").arg(&out));
    assert_man_page(
        &out.join("btyd.1"),
        "btyd",
        &["--config", "--check-config", "hash-password"],
    );
    assert!(!out.join("btyd-man-pages.1").exists());
    // Each page renders with the system's man (man-db, which scripts/test
    // installs); groff reports roff errors on stderr.
    for (page, text) in [
        ("btyd.1", "--check-config"),
        ("btyctl.1", "--endpoint"),
        ("btyctl-flash.1", "--yes"),
    ] {
        let shown = Command::new("man")
            .arg("-l")
            .arg(out.join(page))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("GROFF_NO_SGR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&shown.stderr);
        assert!(
            shown.status.success() && stderr.is_empty(),
            "man -l {page}: {stderr}"
        );
        let rendered = String::from_utf8_lossy(&shown.stdout).replace('\u{2010}', "-");
        assert!(
            rendered.contains(text),
            "man -l {page} lacks {text}:\n{rendered}"
        );
    }
}
