//! The daemon's actors: a supervisor and its children, each owning one
//! concern and talking only by messages. Handles are cheap clones that read
//! the current `ActorRef` from a [`slot::ActorSlot`], so they keep working
//! after the supervisor restarts a child.

pub mod call;
pub mod catalog;
pub mod downloader;
pub mod flasher;
pub mod hasher;
pub mod job_query;
pub mod slot;
pub mod supervisor;
pub mod unavailable;

pub use unavailable::Unavailable;
