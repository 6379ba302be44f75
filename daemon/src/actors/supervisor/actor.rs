//! The supervisor actor.

use super::budget::RestartBudget;
use crate::actors::catalog::{CatalogActor, CatalogArgs, CatalogHandle};
use crate::actors::downloader::{DownloaderActor, DownloaderArgs};
use crate::actors::flasher::{FlasherActor, FlasherArgs};
use crate::actors::hasher::{HasherActor, HasherArgs};
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use std::time::Instant;

/// What the supervisor needs to (re)start its children.
#[derive(Debug, Clone)]
pub struct SupervisorArgs {
    /// Hasher arguments (its handle is `hasher.me`).
    pub hasher: HasherArgs,
    /// Catalog arguments.
    pub catalog: CatalogArgs,
    /// The catalog's handle, whose slot the supervisor fills.
    pub catalog_handle: CatalogHandle,
    /// Downloader arguments (its handle is `downloader.me`); `None` runs
    /// without one (tests of the catalog and hasher alone).
    pub downloader: Option<DownloaderArgs>,
    /// Flasher arguments (its handle is `flasher.me`); `None` runs without.
    pub flasher: Option<FlasherArgs>,
    /// Restart budget.
    pub budget: RestartBudget,
}

/// Requests to the supervisor.
#[derive(Debug)]
pub enum SupervisorMessage {
    /// How many child restarts happened so far.
    Restarts(RpcReplyPort<u32>),
    /// Stop children in reverse order, then stop.
    Shutdown(RpcReplyPort<()>),
}

/// The behaviour.
#[derive(Debug, Default)]
pub struct Supervisor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    Hasher,
    Catalog,
    Downloader,
    Flasher,
}

/// The supervisor's state.
#[derive(Debug)]
pub struct SupervisorState {
    args: SupervisorArgs,
    children: Vec<(ActorId, Child, ActorCell)>,
    restarts: u32,
    stopping: bool,
}

impl Actor for Supervisor {
    type Msg = SupervisorMessage;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState {
            args,
            children: Vec::new(),
            restarts: 0,
            stopping: false,
        };
        // The hasher first: the catalog asks it for hashes as it starts.
        state.spawn(Child::Hasher, &myself).await?;
        state.spawn(Child::Catalog, &myself).await?;
        if state.args.downloader.is_some() {
            state.spawn(Child::Downloader, &myself).await?;
        }
        if state.args.flasher.is_some() {
            state.spawn(Child::Flasher, &myself).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: SupervisorMessage,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMessage::Restarts(reply) => {
                let _ = reply.send(state.restarts);
            }
            SupervisorMessage::Shutdown(reply) => {
                state.stopping = true;
                for (_, child, cell) in state.children.iter().rev() {
                    tracing::debug!(?child, "stopping");
                    if let Err(e) = cell.stop_and_wait(None, None).await {
                        tracing::warn!(?child, error = %e, "child did not stop cleanly");
                    }
                }
                state.args.hasher.me.slot().clear();
                state.args.catalog_handle.slot().clear();
                if let Some(downloader) = &state.args.downloader {
                    downloader.me.slot().clear();
                }
                if let Some(flasher) = &state.args.flasher {
                    flasher.me.slot().clear();
                }
                myself.stop(None);
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".to_owned()))
            }
            _ => return Ok(()),
        };
        if state.stopping {
            return Ok(());
        }
        let id = cell.get_id();
        let Some(child) = state
            .children
            .iter()
            .find(|(cid, ..)| *cid == id)
            .map(|c| c.1)
        else {
            return Ok(());
        };
        state.children.retain(|(cid, ..)| *cid != id);
        tracing::error!(?child, %reason, "actor failed; restarting");
        if !state.args.budget.allow(Instant::now()) {
            tracing::error!("restart budget exhausted; stopping the daemon so systemd restarts it");
            myself.stop(Some("restart budget exhausted".to_owned()));
            return Ok(());
        }
        state.restarts += 1;
        state.spawn(child, &myself).await?;
        if child == Child::Hasher {
            // The new hasher starts with an empty queue: refill it.
            state.args.catalog_handle.requeue_unhashed();
        }
        Ok(())
    }
}

impl SupervisorState {
    async fn spawn(
        &mut self,
        child: Child,
        myself: &ActorRef<SupervisorMessage>,
    ) -> Result<(), ActorProcessingErr> {
        let cell = match child {
            Child::Hasher => {
                let (actor, _) = Actor::spawn_linked(
                    None,
                    HasherActor,
                    self.args.hasher.clone(),
                    myself.get_cell(),
                )
                .await?;
                self.args.hasher.me.slot().set(actor.clone());
                actor.get_cell()
            }
            Child::Catalog => {
                let (actor, _) = Actor::spawn_linked(
                    None,
                    CatalogActor,
                    self.args.catalog.clone(),
                    myself.get_cell(),
                )
                .await?;
                self.args.catalog_handle.slot().set(actor.clone());
                actor.get_cell()
            }
            Child::Downloader => {
                let Some(args) = self.args.downloader.clone() else {
                    return Ok(());
                };
                let (actor, _) =
                    Actor::spawn_linked(None, DownloaderActor, args.clone(), myself.get_cell())
                        .await?;
                args.me.slot().set(actor.clone());
                actor.get_cell()
            }
            Child::Flasher => {
                let Some(args) = self.args.flasher.clone() else {
                    return Ok(());
                };
                let (actor, _) =
                    Actor::spawn_linked(None, FlasherActor, args.clone(), myself.get_cell())
                        .await?;
                args.me.slot().set(actor.clone());
                actor.get_cell()
            }
        };
        self.children.push((cell.get_id(), child, cell));
        Ok(())
    }
}
