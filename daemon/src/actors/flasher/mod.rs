//! The flasher: lists disks, checks that a target is safe, and runs flash
//! jobs (file or network stream → decode → aligned writes → fsync → read-back verify; qcow2
//! through `qemu-img`). It asks the catalog to resolve images and never
//! edits the store.

mod actor;
mod error;
mod handle;
mod messages;
mod pending;
mod running;
mod safety;
mod task;

pub use actor::{FlasherActor, FlasherArgs, Prepared};
pub use error::FlasherError;
pub use handle::FlasherHandle;
pub use messages::{ConfirmedTarget, FlashJobRequest, FlasherMessage, ImageInput};
pub use pending::PendingDownload;
pub use running::RunningFlashes;
pub use safety::TargetRules;
