//! `GET /events/workers`: btyd's event stream (`EventService.Subscribe`) as
//! server-sent events for the pages: `job` (progress and state of any job),
//! `catalog` (the listing changed), `disks` (disks plugged in, pulled or
//! changed) and `resync` (events were missed: re-read
//! everything). It opens with one `job` event per active job so the navbar
//! badges start right, sends keep-alive comments, and ends when the browser
//! goes away, the daemon's stream ends, or the server shuts down.

use crate::api::JobJson;
use crate::error::WebError;
use crate::state::AppState;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use bty_proto::v1::event::Body;
use bty_proto::v1::{Event, Job, ListJobsRequest, SubscribeRequest};
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;

/// Proxies and browsers drop idle connections; a comment this often keeps
/// the stream open and lets the page notice a dead server.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Events buffered per browser before the daemon stream waits for it.
const BUFFER: usize = 64;

/// Wakes every open stream at shutdown: graceful shutdown waits for open
/// connections, and an event stream never ends on its own.
static SHUTDOWN: Notify = Notify::const_new();

/// End every open event stream (called once the server stops accepting).
pub(crate) fn end_all_streams() {
    SHUTDOWN.notify_waiters();
}

#[derive(Debug, Serialize)]
struct CatalogJson<'a> {
    kind: &'a str,
    subject: &'a str,
    summary: &'a str,
    failed: bool,
}

#[derive(Debug, Serialize)]
struct DisksJson<'a> {
    added: &'a [String],
    removed: &'a [String],
    changed: &'a [String],
}

#[derive(Debug, Serialize)]
struct ResyncJson {
    missed: u64,
}

fn job_event(job: Job) -> Option<SseEvent> {
    SseEvent::default()
        .event("job")
        .json_data(JobJson::from(job))
        .ok()
}

/// The SSE form of a daemon event (`None` for an empty one).
fn to_sse(event: Event) -> Option<SseEvent> {
    match event.body? {
        Body::Job(job) => job_event(job),
        Body::Catalog(change) => SseEvent::default()
            .event("catalog")
            .json_data(CatalogJson {
                kind: change.kind().label(),
                subject: &change.subject,
                summary: &change.summary,
                failed: change.failed,
            })
            .ok(),
        Body::Disks(disks) => SseEvent::default()
            .event("disks")
            .json_data(DisksJson {
                added: &disks.added,
                removed: &disks.removed,
                changed: &disks.changed,
            })
            .ok(),
        Body::Resync(resync) => SseEvent::default()
            .event("resync")
            .json_data(ResyncJson {
                missed: resync.missed,
            })
            .ok(),
    }
}

pub(crate) async fn workers(
    State(state): State<AppState>,
) -> Result<impl axum::response::IntoResponse, WebError> {
    // Subscribe first, then list: a job that changes in between shows up
    // twice rather than not at all.
    let subscription = state
        .events()
        .subscribe(SubscribeRequest {})
        .await?
        .into_inner();
    let active = state
        .jobs()
        .list_jobs(ListJobsRequest {
            active_only: true,
            kind: 0,
        })
        .await
        .map(|r| r.into_inner().jobs)
        .unwrap_or_else(|status| {
            tracing::debug!(code = ?status.code(), "no job snapshot for a new event stream");
            Vec::new()
        });
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(forward(subscription, active, tx));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Copy the daemon's events to one browser until one side goes away.
async fn forward(
    mut subscription: tonic::Streaming<Event>,
    active: Vec<Job>,
    tx: mpsc::Sender<Result<SseEvent, Infallible>>,
) {
    let shutdown = SHUTDOWN.notified();
    tokio::pin!(shutdown);
    for job in active {
        if let Some(event) = job_event(job)
            && tx.send(Ok(event)).await.is_err()
        {
            return;
        }
    }
    loop {
        let next = tokio::select! {
            () = &mut shutdown => return,
            () = tx.closed() => return,
            next = subscription.message() => next,
        };
        let event = match next {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(code = ?status.code(), "event stream from btyd ended");
                return;
            }
        };
        if let Some(event) = to_sse(event)
            && tx.send(Ok(event)).await.is_err()
        {
            return;
        }
    }
}
