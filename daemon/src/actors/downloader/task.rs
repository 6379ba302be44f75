//! Download and push tasks: async, off the actor, one per job. They report
//! progress and their outcome to the downloader by message.

use super::error::{BadRef, DocumentError, DownloaderError, SourceError};
use super::handle::DownloaderHandle;
use super::messages::{JobFailure, JobOutcome, OrasResolved, SignaturePush};
use super::persist::{self, checkpoint_path};
use super::signed_sums::HttpTrust;
use super::source::{Checks, Source, remote_source};
use crate::actors::catalog::CatalogHandle;
use crate::domain::{DownloadSpec, Downloaded, LocalImage};
use bty_fetch::{FetchError, FetchOptions, FetchRequest, Progress, Unchanged};
use bty_oci::OciClient;
use bty_store::canon::{Scheme, scheme};
use bty_store::oras_ref::OrasRef;
use bty_store::sidecar::install_with_sidecar;
use reqwest::header::HeaderMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a task reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What every task needs.
#[derive(Debug, Clone)]
pub(crate) struct TaskContext {
    pub(crate) id: String,
    pub(crate) image_root: PathBuf,
    pub(crate) jobs_dir: PathBuf,
    pub(crate) http: reqwest::Client,
    pub(crate) oci: OciClient,
    pub(crate) fetch_options: FetchOptions,
    pub(crate) http_trust: HttpTrust,
    pub(crate) catalog: CatalogHandle,
    pub(crate) me: DownloaderHandle,
    pub(crate) cancel: CancellationToken,
}

impl TaskContext {
    /// A progress callback that reports at most every `PROGRESS_EVERY`.
    fn reporter(&self) -> impl Fn(Progress) + Send + Sync + '_ {
        let last = Mutex::new(Instant::now() - PROGRESS_EVERY);
        move |p: Progress| {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= PROGRESS_EVERY {
                *last = Instant::now();
                self.me.progress(&self.id, p.bytes_done, p.bytes_total);
            }
        }
    }
}

/// Run a download job to the end and report it.
pub(crate) async fn run_download(ctx: TaskContext, spec: DownloadSpec) {
    let outcome = download(&ctx, &spec).await;
    if !matches!(outcome, JobOutcome::Completed { .. }) {
        ctx.catalog.arrival_abandoned(&spec.cache_file_name);
    }
    ctx.me.finished(&ctx.id, outcome);
}

async fn download(ctx: &TaskContext, spec: &DownloadSpec) -> JobOutcome {
    let source = match source_for(ctx, spec).await {
        Ok(Some(source)) => source,
        Ok(None) => {
            return JobOutcome::Completed {
                sha256: spec.cached_sha256.clone(),
                bytes: 0,
                note: "up to date: upstream unchanged, nothing downloaded".to_owned(),
            };
        }
        Err(e) => return JobOutcome::Failed(e.into()),
    };
    if let Err(e) = ctx.catalog.expect_arrival(&spec.cache_file_name).await {
        return JobOutcome::Failed(e.into());
    }
    // Land beside the old file under names nobody can guess (hidden from
    // the scan), swap only once verified. The partial's name was recorded
    // with the job, so a restart resumes the same file.
    let partial_name = match spec.partial_name.clone() {
        Some(name) => name,
        None => match persist::new_partial_name(&spec.cache_file_name) {
            Ok(name) => name,
            Err(e) => return JobOutcome::Failed(JobFailure::PartialName(e)),
        },
    };
    let dest = ctx.image_root.join(&spec.cache_file_name);
    let staged = ctx.image_root.join(persist::landed_name(&partial_name));
    let request = FetchRequest {
        url: source.url.clone(),
        headers: source.headers.clone(),
        partial: ctx.image_root.join(&partial_name),
        dest: staged.clone(),
        checkpoint: Some(checkpoint_path(&ctx.jobs_dir, &spec.image_ref)),
        expected_sha256: source.expected_sha256.clone(),
        expected_size: source.expected_size,
    };
    let reporter = ctx.reporter();
    let mut request = request;
    let mut refreshes = 0;
    let fetched = loop {
        match bty_fetch::fetch(
            &ctx.http,
            &request,
            &ctx.fetch_options,
            &reporter,
            &ctx.cancel,
        )
        .await
        {
            Ok(fetched) => break fetched,
            Err(FetchError::Cancelled) => return JobOutcome::Cancelled,
            // A registry token expired during a long pull: get a fresh one
            // and resume from the partial (bounded, so a real 401 fails).
            Err(e) if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) && refreshes < 3 => {
                let Some(reference) = source.oras.as_ref() else {
                    return JobOutcome::Failed(e.into());
                };
                refreshes += 1;
                match ctx.oci.blob_request(reference, &source.digest).await {
                    Ok((url, headers)) => {
                        request.url = url;
                        request.headers = headers;
                    }
                    Err(e) => return JobOutcome::Failed(JobFailure::Token(e)),
                }
            }
            Err(e) => {
                bty_fetch::discard(&request).await;
                return JobOutcome::Failed(e.into());
            }
        }
    };
    if let Err(source) = install_with_sidecar(&staged, &dest, &fetched.sha256) {
        return JobOutcome::Failed(JobFailure::Install {
            name: spec.cache_file_name.clone(),
            source,
        });
    }
    // Who signed what landed, for the listing; an unsigned update drops an
    // older record (the scan also ignores one naming other content).
    let recorded = match &source.signed_by {
        Some(signer) => bty_store::signed::write_signed(&dest, &fetched.sha256, signer),
        None => bty_store::signed::remove_signed(&dest),
    };
    if let Err(e) = recorded {
        tracing::warn!(file = %dest.display(), error = %e, "cannot record the signer of a download");
    }
    ctx.catalog.downloaded(Downloaded {
        image_ref: spec.image_ref.clone(),
        cache_file_name: spec.cache_file_name.clone(),
        sha256: fetched.sha256.clone(),
        etag: fetched.etag.clone(),
        last_modified: fetched.last_modified.clone(),
        landed: landed_as_listed(&ctx.image_root, &spec.cache_file_name),
    });
    let mut notes = Vec::new();
    if let Some(signer) = &source.signed_by {
        notes.push(format!("signed by {signer}"));
    }
    if fetched.resumed_from > 0 {
        notes.push(format!("resumed at byte {}", fetched.resumed_from));
    }
    let note = notes.join("; ");
    JobOutcome::Completed {
        sha256: Some(fetched.sha256),
        bytes: fetched.size,
        note,
    }
}

/// Resolve where to fetch from; `None` when an update finds upstream unchanged.
async fn source_for(ctx: &TaskContext, spec: &DownloadSpec) -> Result<Option<Source>, SourceError> {
    let is_http = matches!(
        scheme(&spec.src).map_err(BadRef::from)?,
        Scheme::Http | Scheme::Https
    );
    let checks = Checks {
        http: ctx.http.clone(),
        oci: ctx.oci.clone(),
        http_trust: ctx.http_trust.clone(),
    };
    // Resolved (and trust-checked) before an update's probe, so "upstream
    // unchanged" is never said of a source a rule now refuses.
    let source = remote_source(
        &checks,
        &spec.src,
        spec.pinned_sha256.as_deref(),
        spec.sha_url.as_deref(),
    )
    .await?;
    if is_http && spec.update && (spec.etag.is_some() || spec.last_modified.is_some()) {
        let meta = bty_fetch::probe(&ctx.http, &spec.src, &HeaderMap::new())
            .await
            .map_err(SourceError::Probe)?;
        if bty_fetch::unchanged(spec.etag.as_deref(), spec.last_modified.as_deref(), &meta)
            == Unchanged::Yes
        {
            return Ok(None);
        }
    }
    // A registry names its content: the same layer digest is no change.
    if spec.update && source.oras.is_some() && spec.cached_sha256 == source.expected_sha256 {
        return Ok(None);
    }
    Ok(Some(source))
}

/// Resolve an oras reference for add-time metadata: a malformed reference
/// is the caller's mistake, a registry failure is remote.
pub(crate) async fn resolve_oras(
    oci: &OciClient,
    reference: &str,
) -> Result<OrasResolved, DownloaderError> {
    let invalid = DownloaderError::BadImageUrl;
    let canonical = bty_store::canon::canonicalise_src(reference).map_err(|e| invalid(e.into()))?;
    let parsed = OrasRef::parse(&canonical).map_err(|e| invalid(e.into()))?;
    let resolved = oci
        .resolve(&parsed)
        .await
        .map_err(DownloaderError::ResolveOras)?;
    let digest = resolved.layer.digest;
    Ok(OrasResolved {
        sha256: digest.strip_prefix("sha256:").unwrap_or(&digest).to_owned(),
        title: resolved.layer.title,
        size_bytes: resolved.layer.size,
        format: resolved.format,
    })
}

/// Publish a client-made signature: the payload must be a cosign payload
/// for exactly the digest named (the signature itself is the signer's
/// business: pulls verify it against their `[[trust]]` keys).
pub(crate) async fn push_signature(
    oci: &OciClient,
    push: SignaturePush,
) -> Result<String, DownloaderError> {
    use super::error::BadSignaturePush as Bad;
    let invalid = DownloaderError::BadSignaturePush;
    let canonical = bty_store::canon::canonicalise_src(&push.target).map_err(|source| {
        invalid(Bad::Target {
            target: push.target.clone(),
            source,
        })
    })?;
    let parsed = OrasRef::parse(&canonical).map_err(|source| {
        invalid(Bad::Reference {
            target: push.target.clone(),
            source,
        })
    })?;
    let max_payload = bty_cosign::layout::MAX_SIGNATURE_BYTES;
    if push.payload.len() > max_payload {
        return Err(invalid(Bad::PayloadTooLarge { max: max_payload }));
    }
    const MAX_SIGNATURE: usize = 512;
    if push.signature.is_empty() || push.signature.len() > MAX_SIGNATURE {
        return Err(invalid(Bad::SignatureSize { max: MAX_SIGNATURE }));
    }
    bty_cosign::payload::check_payload(&push.payload, &push.manifest_digest)
        .map_err(|e| invalid(e.into()))?;
    oci.push_signature(
        &parsed,
        &push.manifest_digest,
        &push.payload,
        &push.signature,
    )
    .await
    .map_err(DownloaderError::PushSignature)
}

/// Fetch a small document (a catalog) from http(s) or an oras artifact. A
/// malformed URL is the caller's mistake; a failed fetch is remote.
pub(crate) async fn fetch_document(
    http: &reqwest::Client,
    oci: &OciClient,
    url: &str,
    cap: usize,
) -> Result<Vec<u8>, DownloaderError> {
    let invalid = DownloaderError::BadCatalogUrl;
    // Canonicalising refuses userinfo: credentials in a catalog URL would be
    // sent to that host as Basic auth.
    let canonical = bty_store::canon::canonicalise_src(url).map_err(|e| invalid(e.into()))?;
    let remote = |e: DocumentError| DownloaderError::FetchDocument {
        url: canonical.clone(),
        source: e,
    };
    match scheme(&canonical).map_err(|e| invalid(e.into()))? {
        Scheme::Http | Scheme::Https => {
            bty_fetch::fetch_bytes(http, &canonical, &HeaderMap::new(), cap)
                .await
                .map_err(|e| remote(e.into()))
        }
        Scheme::Oras => {
            let parsed = OrasRef::parse(&canonical).map_err(|e| invalid(e.into()))?;
            let resolved = oci.resolve(&parsed).await.map_err(|e| remote(e.into()))?;
            oci.check_trust(&parsed, &resolved.manifest_digest)
                .await
                .map_err(|e| remote(e.into()))?;
            oci.fetch_blob(&parsed, &resolved.layer.digest, cap)
                .await
                .map_err(|e| remote(e.into()))
        }
        Scheme::File => Err(DownloaderError::FileCatalogUrl),
    }
}

/// Run a push job to the end and report it.
pub(crate) async fn run_push(ctx: TaskContext, image: LocalImage, target: String) {
    let outcome = push(&ctx, &image, &target).await;
    ctx.me.finished(&ctx.id, outcome);
}

async fn push(ctx: &TaskContext, image: &LocalImage, target: &str) -> JobOutcome {
    let parsed = match bty_store::canon::canonicalise_src(target)
        .map_err(BadRef::from)
        .and_then(|c| OrasRef::parse(&c).map_err(BadRef::from))
    {
        Ok(r) => r,
        Err(source) => {
            return JobOutcome::Failed(JobFailure::PushTarget {
                target: target.to_owned(),
                source,
            });
        }
    };
    // The bytes pushed come from the descriptor checked against the scan:
    // a name swapped for a link to a host file is refused, not uploaded.
    let opened = {
        let image = image.clone();
        tokio::task::spawn_blocking(move || image.open()).await
    };
    let opened = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => return JobOutcome::Failed(e.into()),
        Err(source) => {
            return JobOutcome::Failed(JobFailure::OpenTask {
                name: image.file_name.clone(),
                source,
            });
        }
    };
    let title = image.file_name.clone();
    let media_type = "application/vnd.bty.image.layer.v1";
    let path = opened.path().to_owned();
    let push = ctx
        .oci
        .push_file(&parsed, opened.into_file(), &path, &title, media_type);
    tokio::select! {
        () = ctx.cancel.cancelled() => JobOutcome::Cancelled,
        result = push => match result {
            Ok(pushed) => JobOutcome::Completed {
                sha256: Some(pushed.layer_digest.trim_start_matches("sha256:").to_owned()),
                bytes: pushed.size,
                note: format!("pushed {parsed} (manifest {})", pushed.manifest_digest),
            },
            Err(e) => JobOutcome::Failed(JobFailure::Push(e)),
        },
    }
}

/// `name` in the image root as a scan lists it, right after bty put it
/// there: what the catalog lists at once (`None` makes it scan).
pub(super) fn landed_as_listed(
    image_root: &std::path::Path,
    name: &str,
) -> Option<bty_store::scan::ScannedFile> {
    bty_store::scan::scan_one(image_root, name).unwrap_or_else(|e| {
        tracing::warn!(name, error = %e, "cannot look at a file that just landed; the catalog scans for it");
        None
    })
}
