//! `btyctl events`: read btyd's event log (newest first, filtered) and
//! acknowledge events.

use crate::client::Ctx;
use crate::exit::CtlError;
use crate::output::{Table, format_duration};
use bty_proto::v1::{AcknowledgeEventsRequest, EventActor, ListEventsRequest, LoggedEvent};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `btyctl events …`
#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// List logged events, newest first: job outcomes, catalog and disk
    /// changes, and operators' requests with where they came from.
    List {
        /// Only kinds starting with this (`download.`, `flash.failed`,
        /// `request.`); repeatable.
        #[arg(long = "kind", value_name = "PREFIX")]
        kinds: Vec<String>,
        /// Only subjects containing this (case-insensitive).
        #[arg(long)]
        subject: Option<String>,
        /// Only requests whose source contains this (`uid=1000`, an address).
        #[arg(long)]
        source: Option<String>,
        /// Only events this recent: `90s`, `30m`, `24h`, `7d`.
        #[arg(long, value_parser = parse_age)]
        since: Option<Duration>,
        /// Only events of this actor.
        #[arg(long, value_enum)]
        actor: Option<ActorArg>,
        /// Only failures.
        #[arg(long)]
        failed: bool,
        /// Only events not yet acknowledged.
        #[arg(long)]
        unacknowledged: bool,
        /// Only events older than this id (the next page).
        #[arg(long, value_name = "ID")]
        before: Option<u64>,
        /// At most this many (1..500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
    /// Mark events as seen.
    Ack {
        /// Event ids (from `events list`).
        #[arg(required = true)]
        ids: Vec<u64>,
    },
}

/// Who made an event happen.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ActorArg {
    /// Requests through the API.
    Operator,
    /// btyd on its own.
    System,
}

/// `90s`, `30m`, `24h` or `7d`.
fn parse_age(text: &str) -> Result<Duration, String> {
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a number and a unit (s, m, h, d)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

/// Run an `events` subcommand.
pub(crate) async fn run(ctx: &Ctx, command: EventsCommand) -> Result<(), CtlError> {
    match command {
        EventsCommand::List {
            kinds,
            subject,
            source,
            since,
            actor,
            failed,
            unacknowledged,
            before,
            limit,
        } => {
            let now = now_ms();
            let request = ListEventsRequest {
                limit,
                before_id: before.unwrap_or(0),
                kinds,
                subject: subject.unwrap_or_default(),
                source: source.unwrap_or_default(),
                since_ms: since.map_or(0, |age| {
                    now - i64::try_from(age.as_millis()).unwrap_or(i64::MAX)
                }),
                until_ms: 0,
                actor: match actor {
                    None => EventActor::Unspecified,
                    Some(ActorArg::Operator) => EventActor::Operator,
                    Some(ActorArg::System) => EventActor::System,
                }
                .into(),
                failed_only: failed,
                unacknowledged_only: unacknowledged,
            };
            let response = ctx.daemon.events().list_events(request).await?.into_inner();
            let views: Vec<EventView> = response.events.iter().map(EventView::from).collect();
            ctx.out
                .emit(&views, || events_text(&response.events, now, response.more))
        }
        EventsCommand::Ack { ids } => {
            let done = ctx
                .daemon
                .events()
                .acknowledge_events(AcknowledgeEventsRequest { ids: ids.clone() })
                .await?
                .into_inner()
                .acknowledged;
            let missing: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| !done.contains(id))
                .collect();
            if !missing.is_empty() {
                return Err(tonic::Status::not_found(format!(
                    "no event {} in the event log{}",
                    join(&missing),
                    if done.is_empty() {
                        String::new()
                    } else {
                        format!(" (acknowledged {})", join(&done))
                    }
                ))
                .into());
            }
            ctx.out.emit(
                &AckView {
                    acknowledged: done.clone(),
                },
                || format!("acknowledged {}", join(&done)),
            )
        }
    }
}

fn join(ids: &[u64]) -> String {
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What `events list --json` prints per event.
#[derive(Debug, Serialize)]
struct EventView {
    id: u64,
    at_ms: i64,
    kind: String,
    subject: String,
    summary: String,
    outcome: &'static str,
    actor: &'static str,
    peer: String,
    on_behalf_of: String,
    acknowledged: bool,
}

impl From<&LoggedEvent> for EventView {
    fn from(e: &LoggedEvent) -> Self {
        Self {
            id: e.id,
            at_ms: e.at_ms,
            kind: e.kind.clone(),
            subject: e.subject.clone(),
            summary: e.summary.clone(),
            outcome: e.outcome().label(),
            actor: e.actor().label(),
            peer: e.peer.clone(),
            on_behalf_of: e.on_behalf_of.clone(),
            acknowledged: e.acknowledged,
        }
    }
}

/// What `events ack --json` prints.
#[derive(Debug, Serialize)]
struct AckView {
    acknowledged: Vec<u64>,
}

fn events_text(events: &[LoggedEvent], now_ms: i64, more: bool) -> String {
    if events.is_empty() {
        return "no events".to_owned();
    }
    let mut table = Table::new(&["ID", "AGE", "KIND", "OUTCOME", "SUMMARY", "SEEN"]);
    for e in events {
        let age = u64::try_from((now_ms - e.at_ms) / 1000).unwrap_or(0);
        table.push(vec![
            e.id.to_string(),
            format!("{} ago", format_duration(age)),
            e.kind.clone(),
            e.outcome().label().to_owned(),
            e.summary.clone(),
            if e.acknowledged { "yes" } else { "-" }.to_owned(),
        ]);
    }
    let mut text = table.render();
    if let (true, Some(last)) = (more, events.last()) {
        text.push_str(&format!("\nmore: --before {}", last.id));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_a_unit() {
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_age("7").is_err() && parse_age("xh").is_err() && parse_age("").is_err());
    }

    #[test]
    fn the_table_says_how_to_page_on() {
        let event = LoggedEvent {
            id: 41,
            at_ms: 1_000,
            kind: "download.failed".into(),
            summary: "download of a.img failed: HTTP 404".into(),
            outcome: bty_proto::v1::EventOutcome::Failed.into(),
            ..LoggedEvent::default()
        };
        let text = events_text(&[event], 61_000, true);
        assert!(
            text.contains("41  1:00 ago  download.failed  failed"),
            "{text}"
        );
        assert!(text.ends_with("more: --before 41"), "{text}");
    }
}
