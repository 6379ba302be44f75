//! A shared, replaceable `ActorRef`: the supervisor writes it at each
//! (re)start, handles read it per request.

use ractor::ActorRef;
use std::sync::{Arc, RwLock};

/// Where a handle finds the current incarnation of its actor.
pub struct ActorSlot<M>(Arc<RwLock<Option<ActorRef<M>>>>);

impl<M> Clone for ActorSlot<M> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<M> std::fmt::Debug for ActorSlot<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActorSlot")
    }
}

impl<M> Default for ActorSlot<M> {
    fn default() -> Self {
        Self(Arc::new(RwLock::new(None)))
    }
}

impl<M> ActorSlot<M> {
    /// The current actor, if one is running.
    pub fn get(&self) -> Option<ActorRef<M>> {
        // A poisoned lock still holds a valid Option; keep serving it.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Install a (re)started actor.
    pub fn set(&self, actor: ActorRef<M>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(actor);
    }

    /// Forget the actor (it stopped for good).
    pub fn clear(&self) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
