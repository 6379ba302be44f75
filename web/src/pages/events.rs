//! `/ui/events`: btyd's event log as a timeline, filtered by kind, subject,
//! source, time, actor and outcome, paged by id, with an Acknowledge
//! button on each event not yet acknowledged.

use super::Chrome;
use crate::auth::Viewer;
use crate::error::{NotFound, PageError, WebError};
use crate::fmt::{self, percent_encode};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use bty_proto::v1::{AcknowledgeEventsRequest, EventActor, ListEventsRequest, LoggedEvent};
use serde::Deserialize;

use crate::state::AppState;

/// Events per page of the timeline.
const PAGE: u32 = 50;

/// One row of a timeline or an activity card.
pub(crate) struct EventRow {
    pub(crate) id: u64,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub(crate) when: String,
    /// The full RFC 3339 time, for the tooltip.
    pub(crate) when_full: String,
    pub(crate) kind: String,
    pub(crate) subject: String,
    pub(crate) summary: String,
    /// `ok`, `failed`, `cancelled` or `info`: the row's colour.
    pub(crate) outcome: &'static str,
    /// `operator` or `system`.
    pub(crate) actor: &'static str,
    /// Who asked, as btyd saw the caller and as the caller said.
    pub(crate) source: String,
    pub(crate) acknowledged: bool,
}

impl EventRow {
    /// The badge class for the row's outcome.
    pub(crate) fn badge(&self) -> &'static str {
        match self.outcome {
            "ok" => "bty-badge-success",
            "failed" => "bty-badge-danger",
            "cancelled" => "bty-badge-warning",
            _ => "bty-badge-secondary",
        }
    }
}

impl From<LoggedEvent> for EventRow {
    fn from(event: LoggedEvent) -> Self {
        let source = match (event.peer.is_empty(), event.on_behalf_of.is_empty()) {
            (true, true) => String::new(),
            (false, true) => event.peer.clone(),
            (true, false) => event.on_behalf_of.clone(),
            (false, false) => format!("{} via {}", event.on_behalf_of, event.peer),
        };
        Self {
            id: event.id,
            when: fmt::timestamp(event.at_ms),
            when_full: fmt::rfc3339(event.at_ms),
            outcome: event.outcome().label(),
            actor: event.actor().label(),
            kind: event.kind,
            subject: event.subject,
            summary: event.summary,
            source,
            acknowledged: event.acknowledged,
        }
    }
}

/// The timeline's filters, as the form sends them (all text, so a
/// mistyped value filters nothing rather than failing the page).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventsQuery {
    /// Comma-separated kind prefixes.
    #[serde(default)]
    kinds: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    source: String,
    /// `1h`, `24h`, `7d` or empty (any time).
    #[serde(default)]
    since: String,
    /// `operator`, `system` or empty.
    #[serde(default)]
    actor: String,
    /// `1`: failures only.
    #[serde(default)]
    failed: String,
    /// `1`: not yet acknowledged only.
    #[serde(default)]
    open: String,
    /// Older than this id (the next page).
    #[serde(default)]
    before: String,
}

/// The `since` choices the form offers.
const SINCE: [(&str, &str, i64); 3] = [
    ("1h", "Last hour", 3_600_000),
    ("24h", "Last 24 hours", 86_400_000),
    ("7d", "Last 7 days", 7 * 86_400_000),
];

impl EventsQuery {
    fn kinds(&self) -> Vec<String> {
        self.kinds
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn request(&self, now_ms: i64) -> ListEventsRequest {
        ListEventsRequest {
            limit: PAGE,
            before_id: self.before.trim().parse().unwrap_or(0),
            kinds: self.kinds(),
            subject: self.subject.trim().to_owned(),
            source: self.source.trim().to_owned(),
            since_ms: SINCE
                .iter()
                .find(|(key, _, _)| *key == self.since)
                .map_or(0, |(_, _, span)| now_ms - span),
            until_ms: 0,
            actor: match self.actor.as_str() {
                "operator" => EventActor::Operator,
                "system" => EventActor::System,
                _ => EventActor::Unspecified,
            }
            .into(),
            failed_only: self.failed == "1",
            unacknowledged_only: self.open == "1",
        }
    }

    /// The filters as a query string (without `before`), re-encoded from
    /// what was parsed: links and redirects never echo raw input.
    fn query_string(&self) -> String {
        [
            ("kinds", &self.kinds),
            ("subject", &self.subject),
            ("source", &self.source),
            ("since", &self.since),
            ("actor", &self.actor),
            ("failed", &self.failed),
            ("open", &self.open),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// One `since` choice of the form.
pub(crate) struct SinceOption {
    key: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "events.html")]
pub(crate) struct EventsPage {
    chrome: Chrome,
    query: EventsQuery,
    since: Vec<SinceOption>,
    rows: Vec<EventRow>,
    /// The filters as a query string, for the ack forms and "Newest".
    filters: String,
    /// The next (older) page, when there is one.
    older: Option<String>,
}

/// `GET /ui/events`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<EventsQuery>,
) -> Result<EventsPage, PageError> {
    let response = state
        .events()
        .list_events(query.request(now_ms()))
        .await?
        .into_inner();
    let rows: Vec<EventRow> = response.events.into_iter().map(EventRow::from).collect();
    let filters = query.query_string();
    let older = match rows.last() {
        Some(last) if response.more => Some(match filters.as_str() {
            "" => format!("/ui/events?before={}", last.id),
            f => format!("/ui/events?{f}&before={}", last.id),
        }),
        _ => None,
    };
    Ok(EventsPage {
        chrome: Chrome::new("events", viewer),
        since: SINCE
            .iter()
            .map(|(key, label, _)| SinceOption {
                key,
                label,
                selected: query.since == *key,
            })
            .collect(),
        query,
        rows,
        filters,
        older,
    })
}

/// `POST /ui/events/{id}/ack`: back to the timeline with the same filters.
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    Query(query): Query<EventsQuery>,
) -> Result<Redirect, PageError> {
    acknowledge_one(&state, id).await?;
    let filters = query.query_string();
    Ok(Redirect::to(&match filters.as_str() {
        "" => format!("/ui/events#event-{id}"),
        f => format!("/ui/events?{f}#event-{id}"),
    }))
}

/// Acknowledge one event; not found when the log no longer holds it.
pub(crate) async fn acknowledge_one(state: &AppState, id: u64) -> Result<(), WebError> {
    let done = state
        .events()
        .acknowledge_events(AcknowledgeEventsRequest { ids: vec![id] })
        .await?
        .into_inner()
        .acknowledged;
    if done.contains(&id) {
        Ok(())
    } else {
        Err(NotFound::Event { id }.into())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_a_request_and_a_clean_query_string() {
        let query = EventsQuery {
            kinds: "download., flash.".into(),
            subject: " debian ".into(),
            since: "1h".into(),
            actor: "operator".into(),
            failed: "1".into(),
            before: "40".into(),
            source: "a&b\r\n".into(),
            ..EventsQuery::default()
        };
        let request = query.request(10_000_000);
        assert_eq!(request.kinds, ["download.", "flash."]);
        assert_eq!(request.subject, "debian");
        assert_eq!(request.since_ms, 10_000_000 - 3_600_000);
        assert_eq!(request.before_id, 40);
        assert_eq!(request.actor(), EventActor::Operator);
        assert!(request.failed_only && !request.unacknowledged_only);
        let qs = query.query_string();
        assert!(!qs.contains('\r') && !qs.contains("before"), "{qs}");
        assert!(qs.contains("source=a%26b"), "{qs}");
        assert_eq!(EventsQuery::default().request(5).since_ms, 0);
    }
}
