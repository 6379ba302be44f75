//! `btyctl images list` against the fake daemon: JSON rows and the table.

mod support;

use support::fake::HASHED_SHA;
use support::{FakeDaemon, keys, sorted};

#[tokio::test]
async fn lists_rows_as_a_json_array_of_the_spec_shape() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["--json", "images", "list"]).await;
    run.assert_code(0);
    let rows = run.json();
    let rows = rows.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 2);
    let row_keys = sorted(&[
        "id",
        "names",
        "sha256",
        "format",
        "size_bytes",
        "sources",
        "cached",
        "actions",
    ]);
    for row in rows {
        assert_eq!(keys(row), row_keys);
        assert_eq!(
            keys(&row["actions"]),
            sorted(&["fetch", "update", "cache_delete", "entry_delete"])
        );
        for source in row["sources"].as_array().expect("sources array") {
            assert_eq!(keys(source), sorted(&["kind", "location"]));
        }
    }
    assert_eq!(rows[0]["id"], HASHED_SHA);
    assert_eq!(rows[0]["sha256"], HASHED_SHA);
    assert_eq!(rows[0]["size_bytes"], 1024 * 1024 * 1024);
    assert_eq!(rows[0]["sources"][0]["kind"], "local");
    assert!(rows[1]["sha256"].is_null());
    assert!(rows[1]["size_bytes"].is_null());
    assert_eq!(
        rows[1]["names"],
        serde_json::json!(["alpine.iso", "alpine-latest.iso"])
    );
    assert_eq!(rows[1]["actions"]["fetch"], true);
    assert_eq!(rows[1]["actions"]["update"], false);
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
}

#[tokio::test]
async fn prints_a_readable_table() {
    let daemon = FakeDaemon::start().await;
    let run = daemon.btyctl(&["images", "list"]).await;
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].starts_with("NAME"), "{}", lines[0]);
    for header in ["FORMAT", "SIZE", "SHA256", "SOURCE", "CACHED", "ACTIONS"] {
        assert!(lines[0].contains(header), "missing {header}: {}", lines[0]);
    }
    assert!(lines[1].starts_with("debian.img"));
    assert!(lines[1].contains("1.0 GiB"));
    assert!(lines[1].contains(&HASHED_SHA[..12]));
    assert!(!lines[1].contains(HASHED_SHA), "full sha in the table");
    assert!(lines[2].contains("alpine.iso, alpine-latest.iso"));
    assert!(lines[2].contains("unhashed"));
    assert!(lines[2].contains("fetch,entry-delete"));
}

#[tokio::test]
async fn sends_the_query_and_reports_no_match() {
    let daemon = FakeDaemon::start().await;
    let run = daemon
        .btyctl(&["images", "list", "--query", "nothing-matches"])
        .await;
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), "no images");
    let json = daemon
        .btyctl(&["images", "list", "--query", "nothing-matches", "--json"])
        .await;
    assert_eq!(json.json(), serde_json::json!([]));
    let queries = daemon.recorded.queries.lock().expect("lock").clone();
    assert_eq!(queries, ["nothing-matches", "nothing-matches"]);
}
