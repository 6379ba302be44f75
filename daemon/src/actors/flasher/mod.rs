//! The flasher: lists disks, checks that a target is safe, and runs flash
//! jobs (file or network stream → decode → aligned writes → fsync → read-back verify; qcow2
//! through `qemu-img`). It resolves images itself — a listed file through
//! the catalog, a stream or a download through the downloader — and never
//! edits the store.

mod actor;
mod error;
mod flag;
mod handle;
mod jobs;
mod messages;
mod mode;
mod pending;
mod resolve;
mod running;
mod safety;
mod task;

pub use actor::{FlasherActor, FlasherArgs, Prepared};
pub use error::{FlasherError, ImageError, Refused};
pub use handle::FlasherHandle;
pub use messages::{ConfirmedTarget, FlashJobRequest, FlashOrder, FlasherMessage, ImageInput};
pub use mode::{FlashMode, flash_mode};
pub use pending::PendingDownload;
pub use running::RunningFlashes;
pub use safety::TargetRules;
