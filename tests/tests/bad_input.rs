//! Hostile and malformed input through the real CLI and web adapter: each
//! gets a clear error naming what was wrong, and catalog.toml is untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::{Daemon, http};

/// A stored catalog with keys bty does not know; they must survive.
const STORED: &str = r#"version = 1
site = "lab-3"

[[images]]
name = "remote"
src = "https://example.invalid/remote.img.gz"
format = "img.gz"
rack = "b7"
"#;

/// The catalog size limit of these daemons: 1 MiB (the default is 64 MiB).
const LIMIT: &str = "1048576";

fn daemon() -> Daemon {
    Daemon::start_configured(
        &format!("[catalog]\nmax_catalog_bytes = {LIMIT}\n"),
        |state, _| std::fs::write(state.join("catalog.toml"), STORED).unwrap(),
    )
}

fn catalog_bytes(d: &Daemon) -> Vec<u8> {
    std::fs::read(d.state_dir.join("catalog.toml")).unwrap()
}

/// Run btyctl; return (exit code, stderr).
fn ctl(d: &Daemon, args: &[&str]) -> (i32, String) {
    let out = d.ctl(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_catalogs_are_refused_whole_and_change_nothing() {
    let d = daemon();
    let before = catalog_bytes(&d);
    let cases: &[(&str, &str)] = &[
        ("not toml at all [[[", "not valid TOML"),
        ("version = 2\n", "version"),
        ("version = 1.0\n", "version"),
        ("images = []\n", "version"),
        ("version = 1\nimages = 3\n", "images"),
        (
            "version = 1\n[[images]]\nsrc = \"https://a/b.img\"\n",
            "name",
        ),
        ("version = 1\n[[images]]\nname = \"x\"\n", "src"),
        (
            "version = 1\n[[images]]\nname = \"x\"\nsrc = \"file:///etc/passwd\"\n",
            "remote",
        ),
        (
            "version = 1\n[[images]]\nname = \"x\"\nsrc = \"ftp://a/b.img\"\n",
            "scheme",
        ),
        (
            "version = 1\n[[images]]\nname = \"x\"\nsrc = \"https://u:pw@a/b.img\"\n",
            "userinfo",
        ),
        (
            "version = 1\n[[images]]\nname = \"x\"\nsrc = \"https://a/b.img\"\nsha256 = \"abc\"\n",
            "sha256",
        ),
        (
            "version = 1\n[[images]]\nname = \"x\"\nsrc = \"https://a/b.img\"\nsize_bytes = \"big\"\n",
            "size_bytes",
        ),
        (
            "version = 1\n[[images]]\nname = \"x\"\nsrc = \"https://a/b.img\"\nref = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
            "ref",
        ),
        (
            "version = 1\n[[images]]\nname = \"x\"\nsrc = \"https://a/b.img\"\n[[images]]\nname = \"x\"\nsrc = \"https://a/c.img\"\n",
            "duplicate",
        ),
        (
            "version = 1\n[[images]]\nname = \"x\"\nsrc = \"https://a/b.img\"\n[[images]]\nname = \"y\"\nsrc = \"https://A:443/b.img\"\n",
            "duplicate",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (text, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let (code, stderr) = ctl(&d, &["catalog", "import", path.to_str().unwrap()]);
        assert_eq!(code, 5, "case {i} ({needle}): {stderr}");
        assert!(stderr.contains("catalog"), "case {i}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "case {i}: want {needle:?} in {stderr}"
        );
        assert_eq!(catalog_bytes(&d), before, "case {i} changed catalog.toml");
    }
    // Oversized and non-UTF-8 input.
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, "# pad\n".repeat(800_000)).unwrap();
    let (code, stderr) = ctl(&d, &["catalog", "import", huge.to_str().unwrap()]);
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains(&format!("over the {LIMIT}-byte limit (max_catalog_bytes)")),
        "{stderr}"
    );
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    assert_eq!(
        ctl(&d, &["catalog", "import", binary.to_str().unwrap()]).0,
        5
    );
    assert_eq!(catalog_bytes(&d), before);
}

#[test]
fn unknown_keys_survive_a_rewrite() {
    let d = daemon();
    let added = d.ctl_json(&["entries", "add", "https://example.invalid/new.img.zst"]);
    assert_eq!(added["name"], "new.img.zst");
    assert_eq!(added["format"], "img.zst");
    let text = String::from_utf8(catalog_bytes(&d)).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    assert_eq!(doc["site"].as_str(), Some("lab-3"), "{text}");
    let first = &doc["images"].as_array().unwrap()[0];
    assert_eq!(first["rack"].as_str(), Some("b7"), "{text}");
    assert_eq!(doc["images"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_entries_and_names_get_clear_errors() {
    let d = daemon();
    let before = catalog_bytes(&d);
    for (args, code, needle) in [
        (
            vec!["entries", "add", "https://user:pw@example.invalid/a.img"],
            5,
            "userinfo",
        ),
        (
            vec!["entries", "add", "ftp://example.invalid/a.img"],
            5,
            "scheme",
        ),
        (
            vec!["entries", "add", "https://example.invalid/"],
            5,
            "filename",
        ),
        (
            vec![
                "entries",
                "add",
                "https://EXAMPLE.invalid:443/remote.img.gz",
            ],
            4,
            "already exists",
        ),
        (
            vec![
                "entries",
                "add",
                "https://example.invalid/a.img",
                "--sha256",
                "xyz",
            ],
            5,
            "sha256",
        ),
        (
            vec!["entries", "rm", "https://example.invalid/nope.img"],
            3,
            "no catalog entry",
        ),
        (vec!["hash", "../etc/passwd"], 5, "bare file name"),
        (vec!["hash", "a/b.img"], 5, "bare file name"),
        (vec!["hash", ".bty-storage.json"], 5, "invalid name"),
        (vec!["hash", "x.img.sha256"], 5, "reserved"),
        (vec!["hash", "missing.img"], 3, "no image file"),
        (vec!["jobs", "cancel", "hash-nope"], 3, "no hash job"),
    ] {
        let (got, stderr) = ctl(&d, &args);
        assert_eq!(got, code, "{args:?}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(needle),
            "{args:?}: want {needle:?} in {stderr}"
        );
    }
    assert_eq!(catalog_bytes(&d), before);
}

#[test]
fn web_catalog_upload_rejects_bad_files_without_touching_the_catalog() {
    let d = daemon();
    let before = catalog_bytes(&d);
    for (file_name, body, needle) in [
        ("catalog.toml", b"version = 7\n".to_vec(), "version"),
        ("catalog.exe", b"version = 1\n".to_vec(), "extension"),
        ("catalog.toml", Vec::new(), "empty"),
        (
            "catalog.toml",
            vec![b'#'; 2 << 20],
            "max_catalog_bytes%20%281048576%20bytes%29",
        ),
    ] {
        let boundary = "bty-test-boundary";
        let mut form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        form.extend_from_slice(&body);
        form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let session = d.login();
        let mut headers = session.headers();
        headers.push(("Content-Type", content_type.as_str()));
        let response = http::request(d.web, "POST", "/ui/catalog/upload", &headers, &form);
        assert_eq!(response.status, 303, "{file_name}: {}", response.text());
        let location = response.header("location").unwrap_or_default().to_owned();
        assert!(location.starts_with("/ui/images?error="), "{location}");
        assert!(
            location.to_lowercase().contains(needle),
            "want {needle:?} in {location}"
        );
        assert_eq!(catalog_bytes(&d), before);
    }
    // The error banner renders the message escaped.
    let page = d.get("/ui/images?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("<script>alert(1)</script>"));
    let text = page.text();
    assert!(
        text.contains("&lt;script&gt;") || text.contains("&#60;script&#62;"),
        "{text}"
    );
}
