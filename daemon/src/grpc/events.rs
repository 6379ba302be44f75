//! `bty.v1.EventService`: the live event stream and the event log.

use super::audit;
use super::convert;
use super::jobs::JobApi;
use crate::actors::catalog::CatalogHandle;
use crate::events::{Actor, EventBus, EventFilter};
use bty_proto::v1::{self, event_service_server::EventService};
use std::pin::Pin;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// The service.
#[derive(Debug, Clone)]
pub struct EventApi {
    pub(crate) events: EventBus,
    pub(crate) jobs: JobApi,
    pub(crate) catalog: CatalogHandle,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<v1::Event, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventApi {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        _request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let mut events = self.events.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let message = match events.recv().await {
                    Ok(event) => convert::event(&event),
                    // A slow watcher is told how much it missed, never
                    // dropped silently.
                    Err(RecvError::Lagged(missed)) => convert::resync(missed),
                    Err(RecvError::Closed) => return,
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_events(
        &self,
        request: Request<v1::ListEventsRequest>,
    ) -> Result<Response<v1::ListEventsResponse>, Status> {
        let r = request.into_inner();
        let limit = match r.limit {
            0 => 50,
            n => n.min(500) as usize,
        };
        let filter = EventFilter {
            before_id: r.before_id,
            kinds: r.kinds,
            subject: r.subject,
            source: r.source,
            since_ms: r.since_ms,
            until_ms: r.until_ms,
            actor: match v1::EventActor::try_from(r.actor) {
                Ok(v1::EventActor::System) => Some(Actor::System),
                Ok(v1::EventActor::Operator) => Some(Actor::Operator),
                Ok(v1::EventActor::Unspecified) => None,
                Err(_) => return Err(Status::invalid_argument("unknown actor")),
            },
            failed_only: r.failed_only,
            unacknowledged_only: r.unacknowledged_only,
        };
        let (events, more) = self.events.timeline().query(&filter, limit);
        Ok(Response::new(v1::ListEventsResponse {
            events: events.iter().map(|e| convert::logged_event(e)).collect(),
            more,
        }))
    }

    async fn acknowledge_events(
        &self,
        request: Request<v1::AcknowledgeEventsRequest>,
    ) -> Result<Response<v1::AcknowledgeEventsResponse>, Status> {
        let ids = &request.get_ref().ids;
        if ids.len() > 500 {
            return Err(Status::invalid_argument(
                "at most 500 events are acknowledged at once",
            ));
        }
        // Logged (not entered as an event: the mark is on the events).
        audit::log(&request, "AcknowledgeEvents", &format!("{ids:?}"));
        let acknowledged = self.events.timeline().acknowledge(ids);
        Ok(Response::new(v1::AcknowledgeEventsResponse {
            acknowledged,
        }))
    }

    async fn metrics(
        &self,
        _request: Request<v1::MetricsRequest>,
    ) -> Result<Response<v1::MetricsResponse>, Status> {
        let active: Vec<_> = self
            .jobs
            .all(None)
            .await?
            .into_iter()
            .filter(|j| j.state.is_active())
            .collect();
        let rows = self.catalog.list().await?;
        let cached = rows.iter().filter(|r| r.cached).count();
        Ok(Response::new(v1::MetricsResponse {
            prometheus_text: self.events.metrics().render(&active, rows.len(), cached),
        }))
    }
}
