//! Publishing a file as an ORAS artifact, the way `oras push` writes one:
//! the file as a single streamed blob, the empty config blob, and an OCI
//! image manifest with `artifactType` and a title annotation, under a tag.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use bty_dio::DigestError;
use bty_dio::sha256::sha256_reader;
use bty_store::digest::sha256_bytes;
use bty_store::oras_ref::{OrasRef, Reference};
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info};

use crate::client::{OciClient, Scope};
use crate::error::OciError;
use crate::layer::TITLE_ANNOTATION;
use crate::manifest::{OCI_MANIFEST, is_sha256_digest};
use crate::transport::{Req, http_error};

/// Media type of the empty JSON config blob.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Digest of `{}`, the empty config blob.
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The artifact type `oras push` sets when none is given.
pub const DEFAULT_ARTIFACT_TYPE: &str = "application/vnd.unknown.artifact.v1";
/// Read size while streaming a file to the registry.
const UPLOAD_CHUNK: usize = 1 << 20;
const OCTET_STREAM: &str = "application/octet-stream";

/// What [`OciClient::push`] published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Digest of the manifest now under the tag.
    pub manifest_digest: String,
    /// Digest of the file's blob.
    pub layer_digest: String,
    /// Size of the file in bytes.
    pub size: u64,
}

impl OciClient {
    /// Push the file at `file` as the single layer of an artifact tagged
    /// `target` ([`push_file`](Self::push_file) on the opened file).
    pub async fn push(
        &self,
        target: &OrasRef,
        file: &Path,
        title: &str,
        media_type: &str,
    ) -> Result<Pushed, OciError> {
        let opened = File::open(file).map_err(|e| io_error(file, e))?;
        self.push_file(target, opened, file, title, media_type)
            .await
    }

    /// Push the open `file` (named `name` in messages only: it is never
    /// reopened) as the single layer of an artifact tagged `target`,
    /// annotated with `title` and typed `media_type`. Blobs the registry
    /// already has are not uploaded again.
    pub async fn push_file(
        &self,
        target: &OrasRef,
        opened: File,
        file: &Path,
        title: &str,
        media_type: &str,
    ) -> Result<Pushed, OciError> {
        let Reference::Tag(_) = &target.reference else {
            return Err(OciError::BadManifest {
                reference: target.to_string(),
                reason: "push needs a tag reference, not a digest".to_owned(),
            });
        };
        let path = file.to_owned();
        let (opened, layer_digest, size) =
            tokio::task::spawn_blocking(move || hash_file(opened, &path))
                .await
                .map_err(|e| io_error(file, io::Error::other(e)))??;
        info!(target = %target, file = %file.display(), %layer_digest, size, "pushing");
        let scope = Scope::push(&target.host, &target.repository);
        self.upload_bytes(target, &scope, EMPTY_DIGEST, Bytes::from_static(b"{}"))
            .await?;
        self.upload_file(target, &scope, opened, &layer_digest, size)
            .await?;

        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": DEFAULT_ARTIFACT_TYPE,
            "config": {
                "mediaType": EMPTY_MEDIA_TYPE,
                "digest": EMPTY_DIGEST,
                "size": 2,
                "data": "e30=",
            },
            "layers": [{
                "mediaType": media_type,
                "digest": layer_digest,
                "size": size,
                "annotations": { TITLE_ANNOTATION: title },
            }],
        });
        let manifest_digest = self
            .put_manifest(target, &scope, Bytes::from(manifest.to_string()))
            .await?;
        info!(target = %target, %manifest_digest, "pushed");
        Ok(Pushed {
            manifest_digest,
            layer_digest,
            size,
        })
    }

    /// PUT an OCI image manifest under `target`'s tag; returns its digest,
    /// checked against the one the registry names.
    pub(crate) async fn put_manifest(
        &self,
        target: &OrasRef,
        scope: &Scope,
        body: Bytes,
    ) -> Result<String, OciError> {
        let manifest_digest = format!("sha256:{}", sha256_bytes(&body));
        let url = self.manifest_url(target, target.locator())?;
        let mut req = Req::new(Method::PUT, url.clone());
        req.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(OCI_MANIFEST));
        req.body = Some(body);
        let resp = self.send(scope, &req).await?;
        if !resp.status().is_success() {
            return Err(http_error(&Method::PUT, &url, resp).await);
        }
        let claimed = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| is_sha256_digest(d));
        if let Some(claimed) = claimed
            && claimed != manifest_digest
        {
            return Err(OciError::DigestMismatch {
                what: format!("manifest pushed to {target}"),
                expected: manifest_digest,
                actual: claimed.to_owned(),
            });
        }
        Ok(manifest_digest)
    }

    /// Upload a small in-memory blob unless the registry has it.
    pub(crate) async fn upload_bytes(
        &self,
        r: &OrasRef,
        scope: &Scope,
        digest: &str,
        bytes: Bytes,
    ) -> Result<(), OciError> {
        if self.blob_exists(r, scope, digest).await? {
            return Ok(());
        }
        let url = self.start_upload(r, scope, digest).await?;
        let mut req = Req::new(Method::PUT, url.clone());
        req.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        req.body = Some(bytes);
        let resp = self.send(scope, &req).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(http_error(&Method::PUT, &url, resp).await);
        }
        Ok(())
    }

    /// Upload a file as one monolithic PUT whose body is streamed from
    /// disk (never held in memory), unless the registry has the blob.
    async fn upload_file(
        &self,
        r: &OrasRef,
        scope: &Scope,
        opened: File,
        digest: &str,
        size: u64,
    ) -> Result<(), OciError> {
        if self.blob_exists(r, scope, digest).await? {
            debug!(%digest, "registry already has the blob");
            return Ok(());
        }
        let url = self.start_upload(r, scope, digest).await?;
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || stream_file(opened, size, &tx));
        let mut rb = self
            .http
            .put(url.clone())
            .header(CONTENT_TYPE, OCTET_STREAM)
            // An explicit length keeps the upload out of chunked encoding,
            // which some registries refuse for monolithic PUTs.
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(ReceiverStream::new(rx)));
        if let Some(auth) = self.authorization(scope).await? {
            rb = rb.header(AUTHORIZATION, auth);
        }
        let resp = rb.send().await.map_err(|source| OciError::Transport {
            method: "PUT".to_owned(),
            url: url.to_string(),
            source,
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(http_error(&Method::PUT, &url, resp).await);
        }
        Ok(())
    }

    async fn blob_exists(
        &self,
        r: &OrasRef,
        scope: &Scope,
        digest: &str,
    ) -> Result<bool, OciError> {
        let url = self.blob_url(r, digest)?;
        let resp = self
            .send(scope, &Req::new(Method::HEAD, url.clone()))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(http_error(&Method::HEAD, &url, resp).await),
        }
    }

    /// Open an upload session; returns the URL to PUT `digest` to.
    async fn start_upload(
        &self,
        r: &OrasRef,
        scope: &Scope,
        digest: &str,
    ) -> Result<Url, OciError> {
        let url = self.registry_url(&r.host, &format!("/v2/{}/blobs/uploads/", r.repository))?;
        let mut req = Req::new(Method::POST, url.clone());
        req.body = Some(Bytes::new());
        let resp = self.send(scope, &req).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(http_error(&Method::POST, &url, resp).await);
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::BadManifest {
                reference: r.to_string(),
                reason: format!("POST {url} answered 202 without a usable Location"),
            })?;
        // Location may be relative to the request, and may carry a query
        // (upload state) that the digest is added to.
        let mut upload = url.join(location).map_err(|e| OciError::BadManifest {
            reference: r.to_string(),
            reason: format!("upload Location {location:?} is not a URL: {e}"),
        })?;
        self.check_scheme(&upload)?;
        upload.query_pairs_mut().append_pair("digest", digest);
        Ok(upload)
    }
}

/// `sha256:<hex>` and size of an open file, and the file rewound for the
/// upload.
fn hash_file(mut file: File, path: &Path) -> Result<(File, String, u64), OciError> {
    let mut size = 0;
    let hex = sha256_reader(&mut file, &mut |done| size = done, &|| false).map_err(|e| {
        let source = match e {
            DigestError::Read(source) | DigestError::Open { source, .. } => source,
            other => io::Error::other(other.to_string()),
        };
        io_error(path, source)
    })?;
    file.seek(io::SeekFrom::Start(0))
        .map_err(|e| io_error(path, e))?;
    Ok((file, format!("sha256:{hex}"), size))
}

/// Feed the upload body; stops when the request is gone. A file that
/// changed size since it was hashed ends the body with an error rather
/// than uploading bytes that do not match the digest.
fn stream_file(mut file: File, size: u64, tx: &mpsc::Sender<io::Result<Bytes>>) {
    let mut sent: u64 = 0;
    loop {
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        if n == 0 {
            if sent != size {
                let _ = tx.blocking_send(Err(io::Error::other(format!(
                    "file shrank while uploading: {sent} of {size} bytes"
                ))));
            }
            return;
        }
        sent += n as u64;
        if sent > size {
            let _ = tx.blocking_send(Err(io::Error::other("file grew while uploading")));
            return;
        }
        buf.truncate(n);
        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
            return;
        }
    }
}

fn io_error(path: &Path, source: io::Error) -> OciError {
    OciError::Io {
        path: PathBuf::from(path),
        source,
    }
}
