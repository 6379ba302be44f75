//! Resolving an `oras://` reference: fetch and verify the manifest, pick
//! the platform from an image index, pick the disk-image layer; and the
//! cheap "which manifest does this tag point at now" query.

use bty_store::digest::sha256_bytes;
use bty_store::format::format_from_name;
use bty_store::oras_ref::{OrasRef, Reference};
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use tracing::debug;

use crate::Platform;
use crate::client::{OciClient, Scope};
use crate::error::OciError;
use crate::layer::{Descriptor, Layer, choose_layer};
use crate::transport::{METADATA_CAP, Req, http_error, read_capped};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The short-lived OCI artifact manifest (its `blobs` are its layers).
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// The header registries use to name a manifest's digest.
const CONTENT_DIGEST: &str = "docker-content-digest";

/// What an `oras://` reference resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Digest of the manifest (or index) the reference names: for a tag,
    /// what it points at now — compare with [`OciClient::manifest_digest`];
    /// `oras://host/repo@<this>` resolves to the same layer.
    pub manifest_digest: String,
    /// When the reference named an index, the platform manifest picked.
    pub platform_manifest: Option<String>,
    /// The disk-image layer.
    pub layer: Layer,
    /// Image format id from the layer title (`img.zst`, `qcow2`…).
    pub format: Option<String>,
}

/// The fields of manifests and indexes we read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    schema_version: Option<u32>,
    media_type: Option<String>,
    layers: Option<Vec<Descriptor>>,
    blobs: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
}

/// A manifest's bytes, digest (verified) and parsed form.
struct Fetched {
    digest: String,
    doc: ManifestDoc,
}

impl OciClient {
    /// Resolve a reference to its manifest digest and disk-image layer.
    pub async fn resolve(&self, r: &OrasRef) -> Result<Resolved, OciError> {
        let top = self.fetch_manifest(r, r.locator()).await?;
        let (layers, platform_manifest) = match top.doc.manifests {
            Some(entries) => {
                let wanted = &self.config().platform;
                let entry = choose_platform(&entries, wanted).map_err(|available| {
                    OciError::NoMatchingPlatform {
                        reference: r.to_string(),
                        wanted: wanted.to_string(),
                        available,
                    }
                })?;
                debug!(reference = %r, digest = %entry.digest, "picked platform manifest");
                let child = self.fetch_manifest(r, &entry.digest).await?;
                if child.doc.manifests.is_some() {
                    return Err(OciError::BadManifest {
                        reference: r.to_string(),
                        reason: format!("index entry {} is itself an index", entry.digest),
                    });
                }
                (image_layers(r, child.doc)?, Some(child.digest))
            }
            None => (image_layers(r, top.doc)?, None),
        };
        let layer = choose_layer(&layers).map_err(|refused| OciError::NoImageLayer {
            reference: r.to_string(),
            refused,
        })?;
        let format = layer
            .title
            .as_deref()
            .and_then(format_from_name)
            .map(|f| f.as_str().to_owned());
        Ok(Resolved {
            manifest_digest: top.digest,
            platform_manifest,
            layer,
            format,
        })
    }

    /// The digest of the manifest `r` names, without downloading layers:
    /// a HEAD (its `Docker-Content-Digest`), else a GET hashed locally.
    pub async fn manifest_digest(&self, r: &OrasRef) -> Result<String, OciError> {
        let scope = Scope::pull(&r.host, &r.repository);
        let mut req = Req::new(Method::HEAD, self.manifest_url(r, r.locator())?);
        req.headers = accept_headers();
        let resp = self.send(&scope, &req).await?;
        let from_header = resp
            .headers()
            .get(CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .filter(|d| is_sha256_digest(d))
            .map(str::to_owned);
        match (resp.status().is_success(), from_header) {
            (true, Some(digest)) => {
                if let Reference::Digest(pinned) = &r.reference
                    && *pinned != digest
                {
                    return Err(mismatch(r, pinned, &digest));
                }
                Ok(digest)
            }
            // HEAD unsupported, or no digest header: hash the body.
            _ => Ok(self.fetch_manifest(r, r.locator()).await?.digest),
        }
    }

    pub(crate) fn manifest_url(
        &self,
        r: &OrasRef,
        locator: &str,
    ) -> Result<reqwest::Url, OciError> {
        self.registry_url(
            &r.host,
            &format!("/v2/{}/manifests/{locator}", r.repository),
        )
    }

    /// GET a manifest by tag or digest, capped and digest-checked.
    async fn fetch_manifest(&self, r: &OrasRef, locator: &str) -> Result<Fetched, OciError> {
        let scope = Scope::pull(&r.host, &r.repository);
        let url = self.manifest_url(r, locator)?;
        let mut req = Req::new(Method::GET, url.clone());
        req.headers = accept_headers();
        let resp = self.send(&scope, &req).await?;
        if !resp.status().is_success() {
            return Err(http_error(&Method::GET, &url, resp).await);
        }
        let claimed = resp
            .headers()
            .get(CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_capped(&Method::GET, &url, resp, METADATA_CAP).await?;
        let digest = verify_manifest(r, locator, claimed.as_deref(), &bytes)?;
        let doc: ManifestDoc =
            serde_json::from_slice(&bytes).map_err(|e| OciError::BadManifest {
                reference: r.to_string(),
                reason: format!("manifest {digest} is not a JSON manifest: {e}"),
            })?;
        if doc.schema_version == Some(1) {
            return Err(OciError::BadManifest {
                reference: r.to_string(),
                reason: "Docker schema 1 manifests are not supported".to_owned(),
            });
        }
        debug!(reference = %r, %digest, content_type, media_type = doc.media_type,
               "fetched manifest");
        Ok(Fetched { digest, doc })
    }
}

/// The digest of manifest bytes, checked against the digest we asked for
/// (a digest locator) and the one the registry claims.
fn verify_manifest(
    r: &OrasRef,
    locator: &str,
    claimed: Option<&str>,
    bytes: &Bytes,
) -> Result<String, OciError> {
    let actual = format!("sha256:{}", sha256_bytes(bytes));
    if is_sha256_digest(locator) && locator != actual {
        return Err(mismatch(r, locator, &actual));
    }
    if let Some(claimed) = claimed.filter(|c| is_sha256_digest(c))
        && claimed != actual
    {
        return Err(OciError::DigestMismatch {
            what: format!("manifest of {r} (Docker-Content-Digest)"),
            expected: claimed.to_owned(),
            actual,
        });
    }
    Ok(actual)
}

fn mismatch(r: &OrasRef, expected: &str, actual: &str) -> OciError {
    OciError::DigestMismatch {
        what: format!("manifest of {r}"),
        expected: expected.to_owned(),
        actual: actual.to_owned(),
    }
}

/// `sha256:` followed by 64 lowercase hex digits.
pub(crate) fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(bty_store::digest::is_sha256_hex)
}

fn accept_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let accept = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_LIST,
        OCI_ARTIFACT_MANIFEST,
    ]
    .join(", ");
    if let Ok(v) = HeaderValue::try_from(accept) {
        headers.insert(ACCEPT, v);
    }
    headers
}

/// An image manifest's layers (or an artifact manifest's blobs).
fn image_layers(r: &OrasRef, doc: ManifestDoc) -> Result<Vec<Descriptor>, OciError> {
    doc.layers
        .or(doc.blobs)
        .ok_or_else(|| OciError::BadManifest {
            reference: r.to_string(),
            reason: "neither layers nor manifests".to_owned(),
        })
}

/// `os/arch[/variant]` of an index entry.
fn describe_platform(d: &Descriptor) -> String {
    match &d.platform {
        Some(p) => {
            let mut s = format!("{}/{}", p.os, p.architecture);
            if let Some(v) = &p.variant {
                s.push('/');
                s.push_str(v);
            }
            s
        }
        None => "unspecified".to_owned(),
    }
}

/// The index entry for `wanted`, or every entry's platform. A wanted
/// variant must match exactly; without one, any variant of the
/// architecture does (the first in index order).
pub fn choose_platform<'a>(
    entries: &'a [Descriptor],
    wanted: &Platform,
) -> Result<&'a Descriptor, Vec<String>> {
    entries
        .iter()
        .find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == wanted.os
                    && p.architecture == wanted.architecture
                    && (wanted.variant.is_none() || p.variant == wanted.variant)
            })
        })
        .ok_or_else(|| entries.iter().map(describe_platform).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::DescriptorPlatform;

    fn entry(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            size: 100,
            annotations: None,
            platform: Some(DescriptorPlatform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(str::to_owned),
            }),
        }
    }

    fn platform(arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(str::to_owned),
        }
    }

    #[test]
    fn chooses_platform_entries() {
        let mut no_platform = entry("linux", "amd64", None, 9);
        no_platform.platform = None;
        let entries = vec![
            entry("unknown", "unknown", None, 1),
            no_platform,
            entry("linux", "arm", Some("v6"), 2),
            entry("linux", "arm", Some("v7"), 3),
            entry("linux", "amd64", None, 4),
            entry("linux", "arm64", Some("v8"), 5),
            entry("windows", "amd64", None, 6),
        ];
        // (wanted, index of the expected entry)
        let cases = [
            (platform("amd64", None), Some(4)),
            (platform("arm64", None), Some(5)),
            (platform("arm64", Some("v8")), Some(5)),
            (platform("arm", Some("v7")), Some(3)),
            (platform("arm", None), Some(2)),
            (platform("arm", Some("v5")), None),
            (platform("riscv64", None), None),
        ];
        for (wanted, want) in cases {
            match (choose_platform(&entries, &wanted), want) {
                (Ok(got), Some(i)) => assert_eq!(got, &entries[i], "{wanted}"),
                (Err(available), None) => assert_eq!(
                    available,
                    [
                        "unknown/unknown",
                        "unspecified",
                        "linux/arm/v6",
                        "linux/arm/v7",
                        "linux/amd64",
                        "linux/arm64/v8",
                        "windows/amd64"
                    ],
                    "{wanted}"
                ),
                (got, want) => panic!("{wanted}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn verifies_manifest_digests() {
        let r = OrasRef::parse("oras://r.example/a/b:t").unwrap();
        let bytes = Bytes::from_static(b"{}");
        let good = format!("sha256:{}", sha256_bytes(b"{}"));
        let other = format!("sha256:{}", "0".repeat(64));
        assert_eq!(verify_manifest(&r, "t", None, &bytes).unwrap(), good);
        assert_eq!(
            verify_manifest(&r, &good, Some(&good), &bytes).unwrap(),
            good
        );
        // A non-sha256 claim cannot be checked and is ignored.
        assert_eq!(
            verify_manifest(&r, "t", Some("sha512:ab"), &bytes).unwrap(),
            good
        );
        for (locator, claimed) in [(other.as_str(), None), ("t", Some(other.as_str()))] {
            match verify_manifest(&r, locator, claimed, &bytes) {
                Err(OciError::DigestMismatch {
                    expected, actual, ..
                }) => {
                    assert_eq!((expected, actual), (other.clone(), good.clone()));
                }
                got => panic!("{locator} {claimed:?}: {got:?}"),
            }
        }
    }
}
