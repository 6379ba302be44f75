//! Where a remote image's bytes come from: the URL and headers to GET
//! (for `oras://`, the registry's blob URL with a token) and what the bytes
//! must be. Shared by downloads and streams.

use super::error::{BadRef, SourceError};
use super::signed_sums::{HttpTrust, check_pinned};
use bty_oci::OciClient;
use bty_store::canon::{Scheme, canonicalise_src, scheme};
use bty_store::oras_ref::OrasRef;
use reqwest::header::HeaderMap;

/// Where the bytes come from and what they must hash to.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) url: String,
    pub(crate) headers: HeaderMap,
    pub(crate) expected_sha256: Option<String>,
    pub(crate) expected_size: Option<u64>,
    /// For registry pulls: the reference and blob digest (token refresh).
    pub(crate) oras: Option<OrasRef>,
    pub(crate) digest: String,
    /// The registry layer's title, when it has one.
    pub(crate) title: Option<String>,
    /// Fingerprint of the key whose signature a `[[trust]]` rule required
    /// and verified.
    pub(crate) signed_by: Option<String>,
}

/// What the checks before a transfer need: the clients and the rules.
#[derive(Debug, Clone)]
pub(crate) struct Checks {
    pub(crate) http: reqwest::Client,
    pub(crate) oci: OciClient,
    pub(crate) http_trust: HttpTrust,
}

/// Resolve `src` (http(s) URL or `oras://` reference) to a request; a
/// registry layer must match `pinned` when one is given, and a source a
/// `[[trust]]` rule matches must carry a signature by one of its keys (a
/// cosign signature for a reference; for an http(s) URL, a signed
/// `sha_url` that lists exactly `pinned`).
pub(crate) async fn remote_source(
    checks: &Checks,
    src: &str,
    pinned: Option<&str>,
    sha_url: Option<&str>,
) -> Result<Source, SourceError> {
    let oci = &checks.oci;
    match scheme(src).map_err(BadRef::from)? {
        Scheme::Http | Scheme::Https => Ok(Source {
            signed_by: check_pinned(&checks.http, &checks.http_trust, src, sha_url, pinned).await?,
            url: src.to_owned(),
            headers: HeaderMap::new(),
            expected_sha256: pinned.map(str::to_owned),
            // A catalog's size_bytes is informational; the server's
            // Content-Length is what the transfer checks.
            expected_size: None,
            oras: None,
            digest: String::new(),
            title: None,
        }),
        Scheme::Oras => {
            let canonical = canonicalise_src(src).map_err(BadRef::from)?;
            let reference = OrasRef::parse(&canonical).map_err(BadRef::from)?;
            let resolved = oci
                .resolve(&reference)
                .await
                .map_err(SourceError::Registry)?;
            // The signature is checked for the very manifest whose layer
            // is downloaded (fetched once, digest-verified), so a tag
            // moved in between cannot swap in unsigned content.
            let signed_by = oci
                .check_trust(&reference, &resolved.manifest_digest)
                .await
                .map_err(SourceError::Untrusted)?;
            let digest = resolved.layer.digest.clone();
            let hex = digest.strip_prefix("sha256:").unwrap_or(&digest).to_owned();
            if let Some(pinned) = pinned
                && pinned != hex
            {
                return Err(SourceError::DigestMismatch {
                    hex,
                    pinned: pinned.to_owned(),
                });
            }
            let (url, headers) = oci
                .blob_request(&reference, &digest)
                .await
                .map_err(SourceError::BlobRequest)?;
            Ok(Source {
                url,
                headers,
                expected_sha256: Some(hex),
                expected_size: Some(resolved.layer.size),
                oras: Some(reference),
                digest,
                title: resolved.layer.title,
                signed_by,
            })
        }
        Scheme::File => Err(SourceError::Local),
    }
}
