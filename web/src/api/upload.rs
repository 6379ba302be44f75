//! `PUT /images/{name}`: the request body streamed chunk by chunk into
//! `UploadImage`, never held whole in memory. The daemon validates the name,
//! enforces the size cap (413) and hashes inline.

mod coalesce;

use crate::error::{BadRequest, WebError};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use bty_proto::v1::upload_image_chunk::Part;
use bty_proto::v1::{UploadHeader, UploadImageChunk, UploadImageResponse};
use coalesce::Coalescer;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

/// Chunks in flight between the HTTP body and the gRPC stream: enough to
/// keep both busy, small enough to bound memory.
const IN_FLIGHT: usize = 4;

/// The answer of an upload.
#[derive(Debug, Serialize)]
pub(crate) struct Uploaded {
    name: String,
    size_bytes: u64,
    sha256: String,
    /// The upload's job; absent when btyd ran it without one.
    #[serde(skip_serializing_if = "String::is_empty")]
    job_id: String,
}

impl From<UploadImageResponse> for Uploaded {
    fn from(r: UploadImageResponse) -> Self {
        Self {
            name: r.name,
            size_bytes: r.size_bytes,
            sha256: r.sha256,
            job_id: r.job_id,
        }
    }
}

/// The checks upstream made before touching the disk (the daemon applies
/// the full rules, e.g. reserved names).
fn check_name(name: &str) -> Result<(), WebError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(BadRequest::UploadName {
            name: name.to_owned(),
        }
        .into());
    }
    Ok(())
}

fn chunk(part: Part) -> UploadImageChunk {
    UploadImageChunk { part: Some(part) }
}

/// How feeding the body into the stream ended.
enum Pumped {
    /// The body ended: the stream may end and the daemon commit.
    Complete,
    /// The daemon stopped reading: its answer says why.
    DaemonStopped,
    /// The client's body broke off.
    ClientGone,
}

/// Feed the body into the stream as data messages (see `coalesce`).
async fn pump(body: Body, tx: &mpsc::Sender<UploadImageChunk>) -> Pumped {
    let mut data = body.into_data_stream();
    let mut messages = Coalescer::default();
    while let Some(next) = data.next().await {
        let frame = match next {
            Ok(frame) => frame,
            Err(error) => {
                tracing::info!(%error, "upload body broke off");
                return Pumped::ClientGone;
            }
        };
        for message in messages.push(frame) {
            if tx.send(chunk(Part::Data(message))).await.is_err() {
                return Pumped::DaemonStopped;
            }
        }
    }
    if let Some(rest) = messages.finish()
        && tx.send(chunk(Part::Data(rest))).await.is_err()
    {
        return Pumped::DaemonStopped;
    }
    Pumped::Complete
}

pub(crate) async fn put_image(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Uploaded>, WebError> {
    check_name(&name)?;
    let size_bytes = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let header = UploadHeader {
        name: name.clone(),
        size_bytes,
    };
    // The channel is empty, so this cannot block.
    tx.send(chunk(Part::Header(header)))
        .await
        .map_err(|_| BadRequest::UploadNotStarted)?;
    let mut client = state.catalog();
    let rpc = client.upload_image(ReceiverStream::new(rx));
    tokio::pin!(rpc);
    let pumped = {
        let pump = pump(body, &tx);
        tokio::pin!(pump);
        tokio::select! {
            result = &mut rpc => return finish(&name, result),
            pumped = &mut pump => pumped,
        }
    };
    if let Pumped::ClientGone = pumped {
        // Anything but data makes the daemon abort and remove the partial;
        // ending the stream cleanly would instead commit a short file when
        // no size was declared.
        let _ = tx.send(UploadImageChunk { part: None }).await;
        drop(tx);
        let _ = rpc.await;
        return Err(BadRequest::UploadInterrupted {
            name: name.to_owned(),
        }
        .into());
    }
    // End of stream: the daemon checks the size and swaps the file in.
    drop(tx);
    finish(&name, rpc.await)
}

fn finish(
    name: &str,
    result: Result<tonic::Response<UploadImageResponse>, tonic::Status>,
) -> Result<Json<Uploaded>, WebError> {
    let uploaded = match result {
        // This call has no deadline: a cancel can only come from btyd,
        // when the upload's job was cancelled.
        Err(status) if status.code() == tonic::Code::Cancelled => {
            return Err(WebError::UploadCancelled {
                name: name.to_owned(),
            });
        }
        other => other?.into_inner(),
    };
    tracing::info!(
        name,
        size = uploaded.size_bytes,
        sha256 = uploaded.sha256,
        "image uploaded"
    );
    Ok(Json(uploaded.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_upload_is_a_conflict_that_says_so() {
        let error = finish(
            "a.img",
            Err(tonic::Status::cancelled("cancelled by operator")),
        )
        .unwrap_err();
        assert_eq!(error.status(), axum::http::StatusCode::CONFLICT);
        assert!(error.to_string().contains("a.img") && error.to_string().contains("cancelled"));
        let other = finish("a.img", Err(tonic::Status::internal("boom"))).unwrap_err();
        assert_eq!(
            other.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn refuses_paths_and_dots() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("disk.img").is_ok());
    }
}
