//! The event log on a real btyd: operators' requests logged with the
//! caller the transport saw and whom bty-web acted for, job outcomes
//! beside them, acknowledgements, and all of it still there after a
//! restart. The attacker's side: a browser or a gRPC client naming a source
//! of its choice never hides who really called, and a symlink planted as
//! the log stops btyd before it writes through it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::origin::Origin;
use bty_e2e::{Daemon, bin};
use bty_proto::auth::ON_BEHALF_OF;
use bty_proto::channel::Target;
use bty_proto::v1::AddEntryRequest;
use bty_proto::v1::catalog_service_client::CatalogServiceClient;
use serde_json::Value;
use std::process::Command;

fn events(d: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["events", "list", "--limit", "500"];
    all.extend_from_slice(args);
    d.ctl_json(&all).as_array().unwrap().clone()
}

fn find<'a>(events: &'a [Value], kind: &str, subject_has: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == kind && e["subject"].as_str().unwrap().contains(subject_has))
        .unwrap_or_else(|| panic!("no {kind} event about {subject_has}: {events:#?}"))
}

/// AddEntry over the socket with a claimed source, as any gRPC client
/// with access could send it.
fn add_claiming(d: &Daemon, url: &str, claim: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = Target::Unix(d.socket.clone()).connect().await.unwrap();
        let mut client = CatalogServiceClient::new(channel);
        let mut request = tonic::Request::new(AddEntryRequest {
            url: url.to_owned(),
            ..AddEntryRequest::default()
        });
        request
            .metadata_mut()
            .insert(ON_BEHALF_OF, claim.parse().unwrap());
        client.add_entry(request).await.unwrap();
    });
}

#[test]
fn requests_and_outcomes_are_logged_with_their_source_and_survive_a_restart() {
    let origin = Origin::start();
    let mut d = Daemon::start();
    let missing = origin.url("/missing.img");

    // btyctl on the socket, then a failing fetch.
    d.ctl_json(&["entries", "add", &missing]);
    let (code, _) = d.fetch("missing.img");
    assert_ne!(code, Some(0), "a 404 source fetched");
    // bty-web for a browser that claims to be somewhere else.
    let web = origin.url("/web.img");
    let reply = d.request(
        "POST",
        "/catalog/entries",
        &[
            ("Content-Type", "application/json"),
            ("X-Bty-On-Behalf-Of", "web 203.0.113.9"),
        ],
        format!(r#"{{"image_url":"{web}"}}"#).as_bytes(),
    );
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    // A gRPC client naming a source of its choice.
    let claimed = origin.url("/claimed.img");
    add_claiming(&d, &claimed, "web 198.51.100.1");

    let log = events(&d, &[]);
    let by_ctl = find(&log, "request.AddEntry", "/missing.img");
    assert!(
        by_ctl["peer"].as_str().unwrap().starts_with("uid=0 "),
        "{by_ctl}"
    );
    assert_eq!(by_ctl["on_behalf_of"], "");
    assert_eq!(by_ctl["actor"], "operator");
    let by_web = find(&log, "request.AddEntry", "/web.img");
    assert_eq!(
        by_web["on_behalf_of"], "web 127.0.0.1",
        "the browser's header is not forwarded"
    );
    assert!(
        by_web["peer"].as_str().unwrap().starts_with("uid="),
        "{by_web}"
    );
    let by_claim = find(&log, "request.AddEntry", "/claimed.img");
    assert_eq!(by_claim["on_behalf_of"], "web 198.51.100.1");
    assert!(
        by_claim["peer"].as_str().unwrap().starts_with("uid=0 "),
        "a claim never replaces the transport's peer: {by_claim}"
    );
    let failed = find(&log, "download.failed", "missing.img").clone();
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["actor"], "system");
    assert!(find(&log, "entry.added", "/missing.img")["outcome"] == "ok");
    let ids: Vec<u64> = log.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    // Filters and acknowledge.
    let only_failed = events(&d, &["--failed", "--unacknowledged"]);
    assert!(only_failed.iter().all(|e| e["outcome"] == "failed"));
    assert!(only_failed.iter().any(|e| e["id"] == failed["id"]));
    let id = failed["id"].as_u64().unwrap().to_string();
    d.ctl_json(&["events", "ack", &id]);
    assert!(
        !events(&d, &["--failed", "--unacknowledged"])
            .iter()
            .any(|e| e["id"] == failed["id"])
    );
    let from_web = events(&d, &["--source", "127.0.0.1"]);
    assert_eq!(from_web.len(), 1, "{from_web:#?}");
    let unknown = d.ctl(&["events", "ack", "999999"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no event 999999"));

    // The timeline page shows the same, with the claim beside the peer.
    let page = d.get("/ui/events?kinds=request.").text();
    assert!(page.contains("web 198.51.100.1 via uid=0"), "{page}");
    let newest = log[0]["id"].as_u64().unwrap();

    // A restart keeps the log, its ids and its acknowledgements.
    d.restart();
    let after = events(&d, &[]);
    for event in &log {
        let kept = after
            .iter()
            .find(|e| e["id"] == event["id"])
            .unwrap_or_else(|| panic!("{event} lost in the restart"));
        assert_eq!(kept["kind"], event["kind"]);
        assert_eq!(kept["summary"], event["summary"]);
    }
    let kept = after.iter().find(|e| e["id"] == failed["id"]).unwrap();
    assert_eq!(kept["acknowledged"], true);
    d.ctl_json(&["entries", "rm", &missing]);
    let newer = find(&events(&d, &[]), "request.RemoveEntry", "/missing.img")["id"]
        .as_u64()
        .unwrap();
    assert!(
        newer > newest,
        "ids go on after a restart: {newer} <= {newest}"
    );
}

#[test]
fn a_symlink_planted_as_the_event_log_stops_btyd_before_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let host_file = dir.path().join("host-file");
    std::fs::write(&host_file, b"root:x:0:0\n").unwrap();
    std::os::unix::fs::symlink(&host_file, state.join("events.jsonl")).unwrap();
    let out = Command::new(bin("btyd"))
        .arg("--state-dir")
        .arg(&state)
        .args(["--web-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "btyd started through a planted log");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("events.jsonl"), "{stderr}");
    assert_eq!(std::fs::read(&host_file).unwrap(), b"root:x:0:0\n");
}
