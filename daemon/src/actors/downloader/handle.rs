//! The downloader's handle: one async method per request, no logic.

use super::error::DownloaderError;
use super::messages::{
    DownloaderMessage, JobOutcome, OpenStreamRequest, OrasResolved, SignaturePush, UploadRequest,
    Uploaded,
};
use super::stream::RemoteStream;
use crate::actors::call::{QUICK, Running, ask, ask_running};
use crate::actors::job_query::Jobs;
use crate::actors::{Unavailable, slot::ActorSlot};
use crate::domain::{DownloadSpec, LocalImage};
use crate::jobs::JobSnapshot;
use ractor::{ActorRef, RpcReplyPort};

/// Cheap to clone; follows the downloader across restarts.
#[derive(Debug, Clone, Default)]
pub struct DownloaderHandle {
    slot: ActorSlot<DownloaderMessage>,
}

impl DownloaderHandle {
    /// The slot the supervisor fills.
    pub(crate) fn slot(&self) -> &ActorSlot<DownloaderMessage> {
        &self.slot
    }

    fn actor(&self) -> Result<ActorRef<DownloaderMessage>, DownloaderError> {
        self.slot
            .get()
            .ok_or(DownloaderError::Unavailable(Unavailable::NotRunning {
                actor: "downloader",
            }))
    }

    /// Ask for something answered at once (a job queued).
    async fn ask<R: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<R>) -> DownloaderMessage,
    ) -> Result<R, DownloaderError> {
        Ok(ask(&self.slot, "downloader", QUICK, build).await?)
    }

    /// Ask for work that ends after network or client I/O: accepted at
    /// once, then awaited to its end (which its own I/O timeouts bound).
    async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        build: impl FnOnce(RpcReplyPort<Running<T, DownloaderError>>) -> DownloaderMessage,
    ) -> Result<T, DownloaderError> {
        ask_running(&self.slot, "downloader", what, build).await
    }

    fn cast(&self, msg: DownloaderMessage) {
        if let Ok(actor) = self.actor() {
            let _ = actor.cast(msg);
        }
    }

    /// Queue a download (or get the active one for the same entry).
    pub async fn fetch(&self, spec: DownloadSpec) -> Result<JobSnapshot, DownloaderError> {
        self.ask(|reply| DownloaderMessage::Fetch { spec, reply })
            .await?
    }

    /// Push a listed file to a registry.
    pub async fn push(
        &self,
        image: LocalImage,
        target: &str,
    ) -> Result<JobSnapshot, DownloaderError> {
        let target = target.to_owned();
        self.ask(|reply| DownloaderMessage::Push {
            image,
            target,
            reply,
        })
        .await?
    }

    /// Publish a client-made cosign signature; returns the `.sig` tag.
    pub async fn push_signature(&self, push: SignaturePush) -> Result<String, DownloaderError> {
        self.run("signature push", |reply| DownloaderMessage::PushSignature {
            push,
            reply,
        })
        .await
    }

    /// Resolve an `oras://` reference.
    pub async fn resolve_oras(&self, reference: &str) -> Result<OrasResolved, DownloaderError> {
        let reference = reference.to_owned();
        self.run("oras resolution", |reply| DownloaderMessage::ResolveOras {
            reference,
            reply,
        })
        .await
    }

    /// Open a remote image as a stream; resolves once its first bytes
    /// arrived.
    pub async fn open_stream(
        &self,
        src: &str,
        pinned_sha256: Option<String>,
        sha_url: Option<String>,
        name: Option<String>,
    ) -> Result<RemoteStream, DownloaderError> {
        self.open_stream_from(src, pinned_sha256, sha_url, name, 0)
            .await
    }

    /// Like [`Self::open_stream`], from byte `from` on (a ranged read: no
    /// digest covers it, so none is checked when `from` is not 0).
    pub async fn open_stream_from(
        &self,
        src: &str,
        pinned_sha256: Option<String>,
        sha_url: Option<String>,
        name: Option<String>,
        from: u64,
    ) -> Result<RemoteStream, DownloaderError> {
        let request = OpenStreamRequest {
            src: src.to_owned(),
            pinned_sha256,
            sha_url,
            name,
            from,
        };
        self.run("stream opening", |reply| DownloaderMessage::OpenStream {
            request,
            reply,
        })
        .await
    }

    /// The add-time `[[trust]]` check of an http(s) source: what its signed
    /// `sha_url` lists for it and who signed, or `None` when no rule
    /// covers it.
    pub async fn check_signed_sums(
        &self,
        src: &str,
        sha_url: Option<&str>,
    ) -> Result<Option<super::signed_sums::SignedDigest>, DownloaderError> {
        let (src, sha_url) = (src.to_owned(), sha_url.map(str::to_owned));
        self.run("signed checksum check", |reply| {
            DownloaderMessage::CheckSignedSums {
                src,
                sha_url,
                reply,
            }
        })
        .await
    }

    /// Fetch a small document, capped.
    pub async fn fetch_document(&self, url: &str, cap: usize) -> Result<Vec<u8>, DownloaderError> {
        let url = url.to_owned();
        self.run("document fetch", |reply| DownloaderMessage::FetchDocument {
            url,
            cap,
            reply,
        })
        .await
    }

    /// Store an upload; resolves once every byte is in place.
    pub async fn upload(&self, request: UploadRequest) -> Result<Uploaded, DownloaderError> {
        self.run("upload", |reply| DownloaderMessage::Upload {
            request,
            reply,
        })
        .await
    }

    /// Cancel, list or look at its jobs (`handle.jobs().cancel(id)`).
    pub fn jobs(&self) -> Jobs<'_, DownloaderMessage, DownloaderError> {
        Jobs {
            slot: &self.slot,
            name: "downloader",
            wrap: DownloaderMessage::Jobs,
            unavailable: DownloaderError::Unavailable,
        }
    }

    /// A fetch's job file was written, or why not.
    pub(crate) fn recorded(&self, image_ref: String, recorded: std::io::Result<DownloadSpec>) {
        self.cast(DownloaderMessage::Recorded {
            image_ref,
            recorded,
        });
    }

    /// Task report: progress.
    pub(crate) fn progress(&self, id: &str, bytes_done: u64, bytes_total: Option<u64>) {
        self.cast(DownloaderMessage::Progress {
            id: id.to_owned(),
            bytes_done,
            bytes_total,
        });
    }

    /// Task report: the end.
    pub(crate) fn finished(&self, id: &str, outcome: JobOutcome) {
        self.cast(DownloaderMessage::Finished {
            id: id.to_owned(),
            outcome,
        });
    }

    /// Test-only: make the downloader panic.
    #[cfg(feature = "fault-injection")]
    pub fn inject_panic(&self) -> Result<(), DownloaderError> {
        self.actor()?
            .cast(DownloaderMessage::InjectPanic)
            .map_err(|e| Unavailable::send("downloader", e).into())
    }
}
