//! The job queries every job-running actor answers (downloader, hasher,
//! flasher): one message shape, one way to answer it, one client helper
//! with a timeout. Each actor embeds [`JobQuery`] as a variant of its own
//! message and implements [`JobBook`] for its state.

use super::Unavailable;
use super::call::{QUICK, ask};
use super::slot::ActorSlot;
use crate::jobs::JobSnapshot;
use ractor::{Message, RpcReplyPort};

/// Cancel, list or look at jobs.
#[derive(Debug)]
pub enum JobQuery<E> {
    /// Cancel a job.
    Cancel {
        /// Job id.
        id: String,
        /// The job after the request.
        reply: RpcReplyPort<Result<JobSnapshot, E>>,
    },
    /// All known jobs, newest first.
    List {
        /// The jobs.
        reply: RpcReplyPort<Vec<JobSnapshot>>,
    },
    /// One job.
    Get {
        /// Job id.
        id: String,
        /// The job, if known.
        reply: RpcReplyPort<Option<JobSnapshot>>,
    },
}

/// What an actor's state offers to answer job queries.
pub trait JobBook<E> {
    /// Cancel a job (a running one is told to stop).
    fn cancel(&mut self, id: &str) -> Result<JobSnapshot, E>;
    /// All known jobs, newest first.
    fn list(&self) -> Vec<JobSnapshot>;
    /// One job.
    fn get(&self, id: &str) -> Option<JobSnapshot>;
}

impl<E> JobQuery<E> {
    /// Answer from `book` (a dropped reply port means the caller gave up).
    pub fn answer(self, book: &mut impl JobBook<E>) {
        match self {
            Self::Cancel { id, reply } => {
                let _ = reply.send(book.cancel(&id));
            }
            Self::List { reply } => {
                let _ = reply.send(book.list());
            }
            Self::Get { id, reply } => {
                let _ = reply.send(book.get(&id));
            }
        }
    }
}

/// A handle's view of its actor's jobs.
pub struct Jobs<'a, M, E> {
    /// Where the actor is.
    pub slot: &'a ActorSlot<M>,
    /// Its name, for errors.
    pub name: &'static str,
    /// Puts a query into the actor's message.
    pub wrap: fn(JobQuery<E>) -> M,
    /// The actor's error for "not there or not answering".
    pub unavailable: fn(Unavailable) -> E,
}

impl<M: Message, E: Send + 'static> Jobs<'_, M, E> {
    async fn ask<R: Send + 'static>(
        &self,
        query: impl FnOnce(RpcReplyPort<R>) -> JobQuery<E>,
    ) -> Result<R, E> {
        let wrap = self.wrap;
        ask(self.slot, self.name, QUICK, |reply| wrap(query(reply)))
            .await
            .map_err(self.unavailable)
    }

    /// Cancel a job.
    pub async fn cancel(&self, id: &str) -> Result<JobSnapshot, E> {
        let id = id.to_owned();
        self.ask(|reply| JobQuery::Cancel { id, reply }).await?
    }

    /// All known jobs, newest first.
    pub async fn list(&self) -> Result<Vec<JobSnapshot>, E> {
        self.ask(|reply| JobQuery::List { reply }).await
    }

    /// One job.
    pub async fn get(&self, id: &str) -> Result<Option<JobSnapshot>, E> {
        let id = id.to_owned();
        self.ask(|reply| JobQuery::Get { id, reply }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobKind, JobState};

    /// An actor message carrying job queries (never sent here: the slot
    /// is empty).
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Msg(JobQuery<String>);

    struct Book(Vec<JobSnapshot>);

    impl JobBook<String> for Book {
        fn cancel(&mut self, id: &str) -> Result<JobSnapshot, String> {
            let job = self
                .0
                .iter_mut()
                .find(|j| j.id == id)
                .ok_or_else(|| format!("no job {id}"))?;
            job.finish(JobState::Cancelled, None);
            Ok(job.clone())
        }
        fn list(&self) -> Vec<JobSnapshot> {
            self.0.clone()
        }
        fn get(&self, id: &str) -> Option<JobSnapshot> {
            self.0.iter().find(|j| j.id == id).cloned()
        }
    }

    #[tokio::test]
    async fn queries_are_answered_from_the_book() {
        let job = JobSnapshot::queued(JobKind::Hash, "a.img", None);
        let mut book = Book(vec![job.clone()]);
        let (tx, rx) = tokio::sync::oneshot::channel();
        JobQuery::Cancel {
            id: job.id.clone(),
            reply: tx.into(),
        }
        .answer(&mut book);
        assert_eq!(rx.await.unwrap().unwrap().state, JobState::Cancelled);
        let (tx, rx) = tokio::sync::oneshot::channel();
        JobQuery::<String>::Get {
            id: "missing".to_owned(),
            reply: tx.into(),
        }
        .answer(&mut book);
        assert_eq!(rx.await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_missing_actor_is_reported_by_name() {
        let slot = ActorSlot::<Msg>::default();
        let jobs = Jobs {
            slot: &slot,
            name: "hasher",
            wrap: Msg,
            unavailable: |why| why.to_string(),
        };
        assert_eq!(
            jobs.list().await.unwrap_err(),
            "hasher actor is not running"
        );
    }
}
