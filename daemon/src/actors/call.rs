//! Every request to an actor waits a bounded time, so a wedged handler
//! ends a client's call with [`Unavailable::Timeout`] instead of hanging it.
//!
//! Two shapes: [`ask`] waits for an answer the actor gives from its state;
//! [`ask_running`] is for work that ends after network or client I/O (a
//! document fetch, an upload): the actor answers at once with the task it
//! started, bounded like any request, and the caller then awaits that task,
//! which its own I/O timeouts bound (a slow but moving upload never fails).

use super::Unavailable;
use super::slot::ActorSlot;
use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, MessagingErr, RactorErr, RpcReplyPort};
use std::time::Duration;

/// Requests answered from an actor's state (job queries, enqueues, a job
/// accepted): a healthy mailbox answers in microseconds, so 10 s only ever
/// expires on a wedged actor.
pub const QUICK: Duration = Duration::from_secs(10);

/// Work an actor started in a task of its own; the caller awaits its end.
pub type Running<T, E> = tokio::task::JoinHandle<Result<T, E>>;

/// A [`Running`] that has already ended (a request refused up front).
pub fn ended<T: Send + 'static, E: Send + 'static>(result: Result<T, E>) -> Running<T, E> {
    tokio::spawn(std::future::ready(result))
}

/// Send the message `build` makes to `actor` (named `name` in errors) and
/// wait at most `after` for its reply.
pub async fn ask_ref<M: Message, R: Send + 'static>(
    actor: &ActorRef<M>,
    name: &'static str,
    after: Duration,
    build: impl FnOnce(RpcReplyPort<R>) -> M,
) -> Result<R, Unavailable> {
    match actor.call(build, Some(after)).await {
        Ok(CallResult::Success(reply)) => Ok(reply),
        Ok(CallResult::Timeout) => Err(Unavailable::Timeout { actor: name, after }),
        // The reply port was dropped unanswered: the actor stopped or
        // panicked while handling the request.
        Ok(CallResult::SenderError) => Err(Unavailable::call::<()>(
            name,
            RactorErr::Messaging(MessagingErr::ChannelClosed),
        )),
        Err(e) => Err(Unavailable::call(name, RactorErr::from(e))),
    }
}

/// [`ask_ref`] to the actor currently in `slot`.
pub async fn ask<M: Message, R: Send + 'static>(
    slot: &ActorSlot<M>,
    name: &'static str,
    after: Duration,
    build: impl FnOnce(RpcReplyPort<R>) -> M,
) -> Result<R, Unavailable> {
    let actor = slot.get().ok_or(Unavailable::NotRunning { actor: name })?;
    ask_ref(&actor, name, after, build).await
}

/// Ask the actor in `slot` to start work (answered within [`QUICK`]), then
/// wait for that work's end; `what` names it if its task dies.
pub async fn ask_running<M: Message, T, E>(
    slot: &ActorSlot<M>,
    name: &'static str,
    what: &'static str,
    build: impl FnOnce(RpcReplyPort<Running<T, E>>) -> M,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<Unavailable>,
{
    let task = ask(slot, name, QUICK, build).await?;
    task.await
        .map_err(|source| Unavailable::Task { what, source })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::{Actor, ActorProcessingErr};

    /// Keeps every reply port it gets and never answers: a wedged handler.
    struct Silent;

    /// The reply ports are kept (so no caller sees a dropped port), never read.
    #[derive(Debug)]
    #[allow(dead_code)]
    enum SilentMsg {
        Ask(RpcReplyPort<u32>),
        Start(RpcReplyPort<Running<u32, Unavailable>>),
    }

    impl Actor for Silent {
        type Msg = SilentMsg;
        type State = Vec<SilentMsg>;
        type Arguments = ();

        async fn pre_start(
            &self,
            _myself: ActorRef<SilentMsg>,
            (): (),
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(Vec::new())
        }

        async fn handle(
            &self,
            _myself: ActorRef<SilentMsg>,
            message: SilentMsg,
            kept: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            kept.push(message);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_handler_that_never_replies_ends_in_a_timeout_naming_actor_and_wait() {
        let (actor, done) = Actor::spawn(None, Silent, ()).await.unwrap();
        let slot = ActorSlot::default();
        slot.set(actor.clone());
        let after = Duration::from_millis(100);
        let started = std::time::Instant::now();
        let err = ask(&slot, "silent", after, SilentMsg::Ask)
            .await
            .unwrap_err();
        let waited = started.elapsed();
        assert!(
            matches!(err, Unavailable::Timeout { actor: "silent", after: a } if a == after),
            "{err:?}"
        );
        assert!(waited >= after, "gave up after {waited:?}");
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
        assert_eq!(err.to_string(), "silent actor did not answer within 100ms");
        actor.stop(None);
        done.await.unwrap();
    }

    #[tokio::test]
    async fn accepted_work_is_awaited_to_its_end() {
        /// Starts a task that answers 7 after a while longer than any
        /// request bound used here.
        struct Worker;
        impl Actor for Worker {
            type Msg = SilentMsg;
            type State = ();
            type Arguments = ();
            async fn pre_start(
                &self,
                _myself: ActorRef<SilentMsg>,
                (): (),
            ) -> Result<(), ActorProcessingErr> {
                Ok(())
            }
            async fn handle(
                &self,
                _myself: ActorRef<SilentMsg>,
                message: SilentMsg,
                (): &mut (),
            ) -> Result<(), ActorProcessingErr> {
                if let SilentMsg::Start(reply) = message {
                    let _ = reply.send(tokio::spawn(async {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok(7)
                    }));
                }
                Ok(())
            }
        }
        let (actor, done) = Actor::spawn(None, Worker, ()).await.unwrap();
        let slot = ActorSlot::default();
        slot.set(actor.clone());
        let answer: Result<u32, Unavailable> =
            ask_running(&slot, "worker", "work", SilentMsg::Start).await;
        assert_eq!(answer.unwrap(), 7);
        actor.stop(None);
        done.await.unwrap();
    }

    #[tokio::test]
    async fn an_empty_slot_is_not_running() {
        let slot = ActorSlot::<SilentMsg>::default();
        let err = ask(&slot, "silent", QUICK, SilentMsg::Ask)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "silent actor is not running");
    }
}
