//! Opening a listed image for a request: off the async threads, checked
//! against the scan's identity, refusals as statuses naming the file.

use crate::domain::LocalImage;
use bty_store::identity::{OpenImageError, VerifiedImage};
use tonic::Status;

/// Open `image` for reading (see [`LocalImage::open`]). A file that is a
/// symlink now, special, hard-linked or changed since the scan is a
/// `FAILED_PRECONDITION` ("… changed since it was listed …: rescan").
pub(crate) async fn open_listed(image: &LocalImage) -> Result<VerifiedImage, Status> {
    let image = image.clone();
    tokio::task::spawn_blocking(move || image.open())
        .await
        .map_err(|e| Status::internal(format!("opening the image failed: {e}")))?
        .map_err(open_failed)
}

pub(crate) fn open_failed(e: OpenImageError) -> Status {
    let msg = e.to_string();
    match e {
        OpenImageError::BadName { .. } => Status::invalid_argument(msg),
        OpenImageError::Changed { .. } => {
            tracing::warn!(error = %msg, "refused to read a file of the image root");
            Status::failed_precondition(msg)
        }
        OpenImageError::Io { source, .. } => Status::internal(format!("{msg}: {source}")),
    }
}
