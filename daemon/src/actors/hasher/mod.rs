//! The hasher: sha256 jobs for files in the image root whose hash is unknown
//! or stale, at most `max_parallel` at once, each writing a `<file>.sha256`
//! sidecar atomically and telling the catalog.

mod actor;
mod error;
mod handle;
mod messages;
mod task;

pub use actor::{HasherActor, HasherArgs};
pub use error::{HashFailure, HasherError};
pub use handle::HasherHandle;
pub use messages::{HashOutcome, HasherMessage};
