//! The event log through bty-web: the `/ui/events` timeline with its
//! filters and Acknowledge, upstream's `GET /events` and
//! `POST /events/{id}/ack`, and the live activity card fragment.

mod support;

use support::*;

#[tokio::test]
async fn the_timeline_lists_filters_and_acknowledges() {
    let harness = Harness::start(sample_daemon()).await;
    let page = harness.get("/ui/events").await;
    assert_eq!(page.status, 200);
    let html = page.body;
    assert_eq!(html.matches("<h1").count(), 1);
    assert!(html.contains(r#"id="event-2""#) && html.contains(r#"id="event-1""#));
    assert!(
        html.find(r#"id="event-2""#) < html.find(r#"id="event-1""#),
        "newest first"
    );
    assert!(html.contains(r#"class="bty-outcome-failed""#));
    assert!(html.contains(r#"<span class="bty-badge bty-badge-danger">hash.failed</span>"#));
    assert!(html.contains(r#"<span class="bty-badge bty-badge-success">catalog.imported</span>"#));
    assert!(html.contains(r#"href="/ui/events" class="active""#));

    let failed = harness.get("/ui/events?failed=1&kinds=hash.").await.body;
    assert!(failed.contains(r#"id="event-1""#));
    assert!(!failed.contains(r#"id="event-2""#), "filtered out");
    assert!(
        failed.contains(r#"action="/ui/events/1/ack?kinds=hash.&#38;failed=1""#),
        "{}",
        &failed[failed.find("action=\"/ui/events/1").unwrap_or(0)..][..80]
    );

    let ack = harness
        .send(api_request("POST", "/ui/events/1/ack?kinds=hash.&failed=1"))
        .await;
    assert_eq!(ack.status, 303);
    assert_eq!(
        ack.header("location"),
        "/ui/events?kinds=hash.&failed=1#event-1"
    );
    assert!(
        harness
            .daemon()
            .events
            .iter()
            .any(|e| e.id == 1 && e.acknowledged)
    );
    let open = harness.get("/ui/events?open=1").await.body;
    assert!(!open.contains(r#"id="event-1""#), "acknowledged drops out");
    let all = harness.get("/ui/events").await.body;
    assert!(all.contains("bty-acknowledged"));

    let missing = harness.send(api_request("POST", "/ui/events/99/ack")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("no event 99"), "{}", missing.body);
}

#[tokio::test]
async fn upstream_events_routes_keep_their_shape() {
    let harness = Harness::start(sample_daemon()).await;
    let reply = harness.get("/events?subject_kind=image&limit=10").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{body}");
    let event = &events[0];
    for (field, kind) in [
        ("id", "number"),
        ("ts", "string"),
        ("kind", "string"),
        ("subject_kind", "string"),
        ("subject_id", "string"),
        ("actor", "string"),
        ("summary", "string"),
        ("details", "object"),
        ("acknowledged", "boolean"),
    ] {
        let value = &event[field];
        let found = match value {
            serde_json::Value::Number(_) => "number",
            serde_json::Value::String(_) => "string",
            serde_json::Value::Object(_) => "object",
            serde_json::Value::Bool(_) => "boolean",
            _ => "other",
        };
        assert_eq!(found, kind, "{field} in {event}");
    }
    assert!(event["source_ip"].is_null());
    assert_eq!(event["kind"], "hash.failed");
    assert_eq!(event["subject_kind"], "image");
    assert_eq!(event["ts"], "2026-11-25T19:03:20Z");

    let ack = harness.send(api_request("POST", "/events/1/ack")).await;
    assert_eq!(ack.status, 200);
    assert_eq!(
        ack.json(),
        serde_json::json!({"id": 1, "acknowledged": true})
    );
    assert_eq!(
        harness
            .send(api_request("POST", "/events/7/ack"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn each_page_has_a_live_activity_card_linking_the_timeline() {
    let harness = Harness::start(sample_daemon()).await;
    let images = harness.get("/ui/images").await.body;
    assert!(images.contains(r#"data-fragment="/ui/activity/images" data-activity"#));
    assert!(images.contains("Full timeline"));
    let card = harness.get("/ui/activity/hashing").await;
    assert_eq!(card.status, 200);
    assert!(
        card.body
            .trim_start()
            .starts_with(r#"<section class="bty-card" id="activity""#)
    );
    assert!(card.body.contains("hash.failed"));
    assert!(
        !card.body.contains("catalog.imported"),
        "hashing kinds only"
    );
    assert!(
        card.body
            .contains(r#"href="/ui/events?kinds=hash.%2Cimage.hash""#),
        "{}",
        card.body
    );
    assert_eq!(harness.get("/ui/activity/nope").await.status, 404);
}
