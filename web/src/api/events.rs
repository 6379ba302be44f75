//! `GET /events` and `POST /events/{id}/ack`: btyd's event log in
//! upstream's JSON shape (`{events: [{id, ts, kind, subject_kind,
//! subject_id, actor, source_ip, summary, details, acknowledged}]}`, newest
//! first) and upstream's acknowledge reply.

use super::QueryArgs;
use crate::error::WebError;
use crate::fmt;
use crate::pages::acknowledge_one;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use bty_proto::v1::{EventActor, EventOutcome, ListEventsRequest, LoggedEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};

/// Upstream's subject kinds, as the kind prefixes of bty's log.
const SUBJECT_KINDS: [(&str, &[&str]); 5] = [
    ("image", &["image.", "hash.", "upload."]),
    (
        "catalog",
        &["entry.", "catalog.", "cache.", "download.", "push."],
    ),
    ("flash", &["flash."]),
    ("disk", &["disks."]),
    ("request", &["request."]),
];

/// Upstream's filters (`subject_id` matches as a substring here).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EventsQuery {
    kind: Option<String>,
    subject_kind: Option<String>,
    subject_id: Option<String>,
    actor: Option<String>,
    source_ip: Option<String>,
    failed: Option<bool>,
    before_id: Option<u64>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(crate) struct EventJson {
    id: u64,
    ts: String,
    kind: String,
    subject_kind: &'static str,
    subject_id: String,
    actor: &'static str,
    source_ip: Option<String>,
    summary: String,
    details: Value,
    acknowledged: bool,
}

fn subject_kind(kind: &str) -> &'static str {
    SUBJECT_KINDS
        .iter()
        .find(|(_, prefixes)| prefixes.iter().any(|p| kind.starts_with(p)))
        .map_or("other", |(name, _)| name)
}

/// The address of whoever asked: the browser bty-web acted for, else
/// the TCP peer (none on the Unix socket).
fn source_ip(event: &LoggedEvent) -> Option<String> {
    let claimed = event
        .on_behalf_of
        .strip_prefix("web ")
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    claimed
        .or_else(|| event.peer.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical().to_string())
}

impl From<LoggedEvent> for EventJson {
    fn from(event: LoggedEvent) -> Self {
        let failed = event.outcome() == EventOutcome::Failed;
        Self {
            id: event.id,
            ts: fmt::rfc3339(event.at_ms),
            subject_kind: subject_kind(&event.kind),
            actor: event.actor().label(),
            source_ip: source_ip(&event),
            details: json!({
                "outcome": event.outcome().label(),
                "failed": failed,
                "peer": event.peer,
                "on_behalf_of": event.on_behalf_of,
            }),
            kind: event.kind,
            subject_id: event.subject,
            summary: event.summary,
            acknowledged: event.acknowledged,
        }
    }
}

/// `GET /events`.
pub(crate) async fn list(
    State(state): State<AppState>,
    QueryArgs(query): QueryArgs<EventsQuery>,
) -> Result<Json<Value>, WebError> {
    let kinds = match (&query.kind, &query.subject_kind) {
        (Some(kind), _) if !kind.is_empty() => vec![kind.clone()],
        (_, Some(subject)) => SUBJECT_KINDS
            .iter()
            .find(|(name, _)| name == subject)
            .map_or_else(
                // An unknown subject kind matches nothing, as upstream.
                || vec![format!("{subject}\u{0}")],
                |(_, prefixes)| prefixes.iter().map(|p| (*p).to_owned()).collect(),
            ),
        _ => Vec::new(),
    };
    let request = ListEventsRequest {
        limit: query.limit.unwrap_or(50).clamp(1, 500),
        before_id: query.before_id.unwrap_or(0),
        kinds,
        subject: query.subject_id.unwrap_or_default(),
        source: query.source_ip.unwrap_or_default(),
        actor: match query.actor.as_deref() {
            Some("operator") => EventActor::Operator,
            Some("system") => EventActor::System,
            _ => EventActor::Unspecified,
        }
        .into(),
        failed_only: query.failed.unwrap_or(false),
        ..ListEventsRequest::default()
    };
    let events: Vec<EventJson> = state
        .events()
        .list_events(request)
        .await?
        .into_inner()
        .events
        .into_iter()
        .map(EventJson::from)
        .collect();
    Ok(Json(json!({ "events": events })))
}

/// `POST /events/{id}/ack`: `{id, acknowledged: true}`, 404 for an id the
/// log does not hold.
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, WebError> {
    acknowledge_one(&state, id).await?;
    Ok(Json(json!({ "id": id, "acknowledged": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_subject_kinds_follow_upstream() {
        let mut event = LoggedEvent {
            kind: "hash.failed".into(),
            on_behalf_of: "web ::ffff:192.0.2.7".into(),
            peer: "uid=0 gid=0 pid=9".into(),
            ..LoggedEvent::default()
        };
        assert_eq!(source_ip(&event).as_deref(), Some("192.0.2.7"));
        event.on_behalf_of.clear();
        assert_eq!(source_ip(&event), None);
        event.peer = "10.0.0.5:41000".into();
        assert_eq!(source_ip(&event).as_deref(), Some("10.0.0.5"));
        assert_eq!(subject_kind(&event.kind), "image");
        assert_eq!(subject_kind("download.completed"), "catalog");
        assert_eq!(subject_kind("weird"), "other");
    }
}
