//! `bty.v1.JobService`: jobs of every worker, routed by the id's kind prefix.

use super::audit::audit;
use super::convert;
use crate::actors::downloader::DownloaderHandle;
use crate::actors::flasher::FlasherHandle;
use crate::actors::hasher::HasherHandle;
use crate::events::{EventBody, EventBus};
use crate::jobs::{JobKind, JobSnapshot, newest_first};
use bty_proto::v1::{self, job_service_server::JobService};
use std::pin::Pin;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// The service.
#[derive(Debug, Clone)]
pub struct JobApi {
    pub(crate) hasher: HasherHandle,
    pub(crate) downloader: DownloaderHandle,
    pub(crate) flasher: FlasherHandle,
    pub(crate) events: EventBus,
}

impl JobApi {
    pub(crate) async fn all(&self, kind: Option<JobKind>) -> Result<Vec<JobSnapshot>, Status> {
        let mut jobs = Vec::new();
        if kind.is_none_or(|k| k == JobKind::Hash) {
            jobs.extend(self.hasher.jobs().list().await?);
        }
        if kind.is_none_or(|k| matches!(k, JobKind::Download | JobKind::Push | JobKind::Upload)) {
            jobs.extend(
                self.downloader
                    .jobs()
                    .list()
                    .await?
                    .into_iter()
                    .filter(|j| kind.is_none_or(|k| k == j.kind)),
            );
        }
        if kind.is_none_or(|k| k == JobKind::Flash) {
            jobs.extend(self.flasher.jobs().list().await?);
        }
        newest_first(&mut jobs);
        Ok(jobs)
    }

    async fn find(&self, id: &str) -> Result<JobSnapshot, Status> {
        let found = match JobKind::of_id(id) {
            Some(JobKind::Hash) => self.hasher.jobs().get(id).await?,
            Some(JobKind::Download | JobKind::Push | JobKind::Upload) => {
                self.downloader.jobs().get(id).await?
            }
            Some(JobKind::Flash) => self.flasher.jobs().get(id).await?,
            None => None,
        };
        found.ok_or_else(|| Status::not_found(format!("no job with id {id:?}")))
    }
}

type JobStream = Pin<Box<dyn Stream<Item = Result<v1::Job, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for JobApi {
    async fn list_jobs(
        &self,
        request: Request<v1::ListJobsRequest>,
    ) -> Result<Response<v1::ListJobsResponse>, Status> {
        let r = request.into_inner();
        let jobs = self.all(convert::job_kind_filter(r.kind)).await?;
        Ok(Response::new(v1::ListJobsResponse {
            jobs: jobs
                .into_iter()
                .filter(|j| !r.active_only || j.state.is_active())
                .map(convert::job)
                .collect(),
        }))
    }

    async fn get_job(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        Ok(Response::new(convert::job(
            self.find(&request.into_inner().id).await?,
        )))
    }

    async fn cancel_job(
        &self,
        request: Request<v1::CancelJobRequest>,
    ) -> Result<Response<v1::Job>, Status> {
        audit(&self.events, &request, "CancelJob", &request.get_ref().id);
        let id = request.into_inner().id;
        let job = match JobKind::of_id(&id) {
            Some(JobKind::Hash) => self.hasher.jobs().cancel(&id).await?,
            Some(JobKind::Download | JobKind::Push | JobKind::Upload) => {
                self.downloader.jobs().cancel(&id).await?
            }
            Some(JobKind::Flash) => self.flasher.jobs().cancel(&id).await?,
            None => return Err(Status::not_found(format!("no job with id {id:?}"))),
        };
        Ok(Response::new(convert::job(job)))
    }

    type WatchJobStream = JobStream;

    async fn watch_job(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let id = request.into_inner().id;
        // Subscribe before reading the snapshot so no change falls between.
        let mut events = self.events.subscribe();
        let first = self.find(&id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let api = self.clone();
        tokio::spawn(async move {
            let mut done = !first.state.is_active();
            if tx.send(Ok(convert::job(first))).await.is_err() {
                return;
            }
            while !done {
                let job = match events.recv().await {
                    Ok(event) => match &event.body {
                        EventBody::Job(job) if job.id == id => job.clone(),
                        _ => continue,
                    },
                    // Fell behind: re-read the job instead of guessing.
                    Err(RecvError::Lagged(_)) => match api.find(&id).await {
                        Ok(job) => job,
                        Err(status) => {
                            let _ = tx.send(Err(status)).await;
                            return;
                        }
                    },
                    Err(RecvError::Closed) => return,
                };
                done = !job.state.is_active();
                if tx.send(Ok(convert::job(job))).await.is_err() {
                    return; // the client went away
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
