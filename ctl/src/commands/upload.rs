//! `btyctl upload`: stream a local file into btyd's image root.

use crate::client::Ctx;
use crate::exit::CtlError;
use crate::progress::TransferProgress;
use bty_proto::v1::upload_image_chunk::Part;
use bty_proto::v1::{UploadHeader, UploadImageChunk, UploadImageResponse};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// Bytes per data message.
const CHUNK: usize = 1024 * 1024;
/// Chunks read ahead of the network: enough to keep the pipe full, small
/// enough that a multi-GiB image never sits in memory.
const READ_AHEAD: usize = 4;

/// What NAME may be (shown in `--help`).
const UPLOAD_HELP: &str = "\
The image lands in btyd's image root under NAME (default: the file's name),
a bare file name: no '/', '\\', NUL, '.' or '..', and none of bty's own names
(.bty-storage.json, *.sha256, catalog-…). btyd hashes it while receiving and
replaces an existing file of that name only once all bytes arrived.";

/// `btyctl upload FILE [--name NAME]`
#[derive(Debug, Args)]
#[command(after_help = UPLOAD_HELP)]
pub(crate) struct UploadArgs {
    /// The local file to send.
    file: PathBuf,
    /// Name in the image root (default: FILE's file name).
    #[arg(long)]
    name: Option<String>,
}

/// Stream the file and print what btyd stored.
pub(crate) async fn run(ctx: &Ctx, args: UploadArgs) -> Result<(), CtlError> {
    let read_error = |source| CtlError::ReadFile {
        path: args.file.clone(),
        source,
    };
    let name = match args.name {
        Some(name) => name,
        None => default_name(&args.file)?,
    };
    let file = tokio::fs::File::open(&args.file)
        .await
        .map_err(read_error)?;
    let metadata = file.metadata().await.map_err(read_error)?;
    if !metadata.is_file() {
        return Err(read_error(std::io::Error::other("not a regular file")));
    }
    let size = metadata.len();
    let progress = TransferProgress::new(ctx.out.is_json(), size, format!("upload {name}"));
    let header = UploadHeader {
        name,
        size_bytes: Some(size),
    };
    let outcome = send(ctx, file, header, &progress).await;
    progress.finish();
    let response = outcome.map_err(|err| match err {
        SendError::Read(source) => read_error(source),
        SendError::Call(status) => CtlError::Status(status),
    })?;
    ctx.out.emit(&UploadedView::from(&response), || {
        let job = if response.job_id.is_empty() {
            String::new()
        } else {
            format!(", job {}", response.job_id)
        };
        format!(
            "uploaded {} ({} bytes, sha256 {}{job})",
            response.name, response.size_bytes, response.sha256
        )
    })
}

/// The file name of `path`, which btyd validates further.
fn default_name(path: &Path) -> Result<String, CtlError> {
    path.file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .ok_or_else(|| CtlError::NoName(path.to_owned()))
}

/// Why sending stopped.
enum SendError {
    Read(std::io::Error),
    Call(tonic::Status),
}

/// Run the `UploadImage` call fed by a reader task, counting data bytes on
/// `progress` as the call takes them.
async fn send(
    ctx: &Ctx,
    file: tokio::fs::File,
    header: UploadHeader,
    progress: &TransferProgress,
) -> Result<UploadImageResponse, SendError> {
    let (chunks, receiver) = mpsc::channel(READ_AHEAD);
    let (failed, read_failure) = oneshot::channel();
    // Detached on purpose: after a read error it must outlive the call
    // (see `read_chunks`); otherwise it ends at EOF or when the call does.
    drop(tokio::spawn(read_chunks(file, header, chunks, failed)));
    let counter = progress.counter();
    let stream = ReceiverStream::new(receiver).map(move |chunk: UploadImageChunk| {
        if let Some(Part::Data(data)) = &chunk.part {
            counter.inc(data.len() as u64);
        }
        chunk
    });
    let mut client = ctx.daemon.catalog();
    tokio::select! {
        response = client.upload_image(stream) => {
            response.map(tonic::Response::into_inner).map_err(SendError::Call)
        }
        Ok(err) = read_failure => Err(SendError::Read(err)),
    }
}

/// Send the header, then the file in [`CHUNK`]-sized data messages.
///
/// A read error must not end the stream: a closed stream means "that was
/// all", and btyd would store a truncated image. So on error the task
/// reports it and keeps `chunks` open for good; the caller drops the call,
/// btyctl exits, and btyd sees the connection break mid-upload.
async fn read_chunks(
    mut file: tokio::fs::File,
    header: UploadHeader,
    chunks: mpsc::Sender<UploadImageChunk>,
    failed: oneshot::Sender<std::io::Error>,
) {
    if let Err(err) = pump(&mut file, header, &chunks).await {
        let _ = failed.send(err);
        std::future::pending::<()>().await;
    }
}

/// Send the header and every chunk; `Ok` at EOF or once the call is gone
/// (btyd answered or failed: nothing more to read for).
async fn pump(
    file: &mut tokio::fs::File,
    header: UploadHeader,
    chunks: &mpsc::Sender<UploadImageChunk>,
) -> std::io::Result<()> {
    let header = UploadImageChunk {
        part: Some(Part::Header(header)),
    };
    if chunks.send(header).await.is_err() {
        return Ok(());
    }
    loop {
        let data = read_chunk(file).await?;
        if data.is_empty() {
            return Ok(());
        }
        let chunk = UploadImageChunk {
            part: Some(Part::Data(data.into())),
        };
        if chunks.send(chunk).await.is_err() {
            return Ok(());
        }
    }
}

/// Up to [`CHUNK`] bytes; fewer only at the end of the file, empty at EOF.
async fn read_chunk(file: &mut tokio::fs::File) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(CHUNK);
    // `take` + `read_to_end` fills the chunk across short reads.
    (&mut *file)
        .take(CHUNK as u64)
        .read_to_end(&mut data)
        .await?;
    Ok(data)
}

/// What `upload --json` prints.
#[derive(Debug, Serialize)]
struct UploadedView {
    name: String,
    size_bytes: u64,
    sha256: String,
    /// The upload's job (`btyctl jobs list --kind upload`); absent when an
    /// older btyd ran the upload without one.
    #[serde(skip_serializing_if = "String::is_empty")]
    job_id: String,
}

impl From<&UploadImageResponse> for UploadedView {
    fn from(response: &UploadImageResponse) -> Self {
        Self {
            name: response.name.clone(),
            size_bytes: response.size_bytes,
            sha256: response.sha256.clone(),
            job_id: response.job_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_is_the_file_name() {
        assert_eq!(
            default_name(Path::new("/tmp/x/debian.img")).expect("name"),
            "debian.img"
        );
        assert!(default_name(Path::new("/")).is_err());
    }

    #[tokio::test]
    async fn chunks_are_full_but_the_last() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("img");
        std::fs::write(&path, vec![7u8; CHUNK * 2 + 10]).expect("write");
        let mut file = tokio::fs::File::open(&path).await.expect("open");
        let mut sizes = Vec::new();
        loop {
            let data = read_chunk(&mut file).await.expect("read");
            if data.is_empty() {
                break;
            }
            sizes.push(data.len());
        }
        assert_eq!(sizes, [CHUNK, CHUNK, 10]);
    }
}
