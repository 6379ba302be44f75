//! `btyctl catalog import|export|fetch-latest` against the fake daemon.

mod support;

use bty_proto::v1::import_catalog_request::Source;
use support::{FakeDaemon, keys, sorted};

const CATALOG: &str = "version = 1\n\n[[images]]\nname = \"a.img\"\nsrc = \"https://x/a.img\"\n";

#[tokio::test]
async fn import_of_a_local_file_sends_its_content_and_name() {
    let daemon = FakeDaemon::start().await;
    let path = daemon.dir().join("my-catalog.toml");
    std::fs::write(&path, CATALOG).expect("write catalog");
    let run = daemon
        .btyctl(&["catalog", "import", path.to_str().expect("utf-8")])
        .await;
    run.assert_code(0);
    let imports = daemon.recorded.imports.lock().expect("lock").clone();
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0].label, "my-catalog.toml");
    assert_eq!(
        imports[0].source,
        Some(Source::Content(CATALOG.as_bytes().to_vec()))
    );
    assert!(
        run.stdout
            .starts_with("my-catalog.toml: 2 imported, 1 updated, 0 skipped, 1 errors")
    );
    assert!(run.stdout.contains("broken: missing src"));
}

#[tokio::test]
async fn import_of_urls_and_oras_refs_lets_the_daemon_fetch() {
    let daemon = FakeDaemon::start().await;
    for url in [
        "https://example.invalid/catalog.toml",
        "oras://registry.invalid/acme/catalog:v1",
    ] {
        daemon
            .btyctl(&["catalog", "import", url])
            .await
            .assert_code(0);
    }
    let imports = daemon.recorded.imports.lock().expect("lock").clone();
    let sources: Vec<_> = imports.into_iter().map(|r| r.source).collect();
    assert_eq!(
        sources,
        [
            Some(Source::Url("https://example.invalid/catalog.toml".into())),
            Some(Source::Url(
                "oras://registry.invalid/acme/catalog:v1".into()
            )),
        ]
    );
}

#[tokio::test]
async fn import_report_as_json() {
    let daemon = FakeDaemon::start().await;
    let path = daemon.dir().join("c.toml");
    std::fs::write(&path, CATALOG).expect("write catalog");
    let run = daemon
        .btyctl(&["catalog", "import", "--json", path.to_str().expect("utf-8")])
        .await;
    run.assert_code(0);
    let report = run.json();
    assert_eq!(
        keys(&report),
        sorted(&["source", "imported", "updated", "skipped", "errors"])
    );
    assert_eq!(report["imported"], 2);
    assert_eq!(
        report["errors"],
        serde_json::json!([{"name": "broken", "error": "missing src"}])
    );
}

#[tokio::test]
async fn unparsable_catalog_exits_5_with_the_daemon_message() {
    let daemon = FakeDaemon::start().await;
    let path = daemon.dir().join("bad.toml");
    std::fs::write(&path, "not toml [").expect("write catalog");
    let run = daemon
        .btyctl(&["--json", "catalog", "import", path.to_str().expect("utf-8")])
        .await;
    run.assert_code(5);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    assert_eq!(
        run.stderr.trim(),
        "btyctl: catalog does not parse: missing version"
    );
}

#[tokio::test]
async fn missing_local_file_exits_3_without_calling_the_daemon() {
    let daemon = FakeDaemon::start().await;
    let path = daemon.dir().join("absent.toml");
    let run = daemon
        .btyctl(&["catalog", "import", path.to_str().expect("utf-8")])
        .await;
    run.assert_code(3);
    assert!(
        run.stderr.starts_with("btyctl: cannot read "),
        "{}",
        run.stderr
    );
    assert!(daemon.recorded.imports.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn export_prints_the_toml_with_the_base_url() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["catalog", "export"]).await;
    run.assert_code(0);
    assert!(run.stdout.starts_with("version = 1\n"));
    assert!(
        run.stdout
            .contains("src = \"http://localhost:8080/images/debian.img\"")
    );
    let json = daemon
        .btyctl(&[
            "catalog",
            "export",
            "--base-url",
            "http://bty.example:8080",
            "--json",
        ])
        .await;
    let toml = json.json()["toml"]
        .as_str()
        .expect("toml string")
        .to_owned();
    assert!(toml.contains("http://bty.example:8080/images/debian.img"));
}

#[tokio::test]
async fn fetch_latest_prints_the_report() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["catalog", "fetch-latest", "--json"]).await;
    run.assert_code(0);
    assert_eq!(
        run.json()["source"],
        "https://example.invalid/release/catalog.toml"
    );
}
