//! `bty.v1.EventService`: the live event stream and recent history.

use super::convert;
use super::jobs::JobApi;
use crate::actors::catalog::CatalogHandle;
use crate::events::EventBus;
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

    async fn recent_events(
        &self,
        request: Request<v1::RecentEventsRequest>,
    ) -> Result<Response<v1::RecentEventsResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => 50,
            n => n.min(500) as usize,
        };
        Ok(Response::new(v1::RecentEventsResponse {
            events: self
                .events
                .recent(limit)
                .iter()
                .map(|e| convert::event(e))
                .collect(),
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
