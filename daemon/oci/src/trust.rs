//! Signature policy for pulls: `[[trust]]` rules (a source prefix and the
//! keys allowed to sign under it), fetching cosign signatures from the
//! registry and checking them against the manifest being pulled; and
//! publishing a signature made elsewhere (`btyctl push --sign`).

use bty_cosign::layout::{
    self, MAX_SIGNATURE_BYTES, signature_config, signature_manifest, signature_tag,
};
use bty_cosign::{PublicKey, SignatureError};
use bty_store::oras_ref::{OrasRef, Reference};
use bytes::Bytes;
use reqwest::header::ACCEPT;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use tracing::{info, warn};

use crate::client::{OciClient, Scope};
use crate::error::{OciError, Untrusted};
use crate::transport::{Req, http_error, read_capped};

/// One `[[trust]]` rule: sources starting with `prefix` need a signature
/// by one of `keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRule {
    /// A prefix of the canonical `oras://` source.
    pub prefix: String,
    /// The keys allowed to sign.
    pub keys: Vec<PublicKey>,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The registry has no `sha256-<hex>.sig` tag for the manifest.
    NoSignature(String),
    /// The registry or the signature documents failed us.
    Fetch(String),
    /// Every signature layer was refused; one reason per layer.
    Layers(Vec<SignatureError>),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSignature(tag) => write!(f, "no signature (the registry has no tag {tag})"),
            Self::Fetch(why) => f.write_str(why),
            Self::Layers(errors) => {
                let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
                f.write_str(&reasons.join("; "))
            }
        }
    }
}

impl OciClient {
    /// The first `[[trust]]` rule whose prefix starts `r`'s canonical form.
    pub fn trust_rule(&self, r: &OrasRef) -> Option<&TrustRule> {
        let canonical = r.to_string();
        self.config()
            .trust
            .iter()
            .find(|rule| canonical.starts_with(&rule.prefix))
    }

    /// Enforce the trust policy for pulling `manifest_digest` (the digest
    /// whose layers will be downloaded) of `r`: `Ok(None)` when no rule
    /// matches, `Ok(Some(fingerprint))` of the signer when one does and a
    /// signature verifies, else [`OciError::Untrusted`].
    pub async fn check_trust(
        &self,
        r: &OrasRef,
        manifest_digest: &str,
    ) -> Result<Option<String>, OciError> {
        let Some(rule) = self.trust_rule(r) else {
            return Ok(None);
        };
        match self.verify_signature(r, manifest_digest, &rule.keys).await {
            Ok(signer) => {
                info!(reference = %r, %manifest_digest, signer, "signature verified");
                Ok(Some(signer))
            }
            Err(refusal) => {
                let keys: Vec<String> = rule.keys.iter().map(PublicKey::fingerprint).collect();
                warn!(reference = %r, %manifest_digest, rule = rule.prefix, %refusal,
                      "refused: no valid signature");
                Err(OciError::Untrusted(Box::new(Untrusted {
                    reference: r.to_string(),
                    rule: rule.prefix.clone(),
                    digest: manifest_digest.to_owned(),
                    keys: keys.join(", "),
                    reason: refusal.to_string(),
                })))
            }
        }
    }

    /// Fetch the signatures of `digest` and return the fingerprint of the
    /// first key that verifies one for exactly this digest.
    async fn verify_signature(
        &self,
        r: &OrasRef,
        digest: &str,
        keys: &[PublicKey],
    ) -> Result<String, Refusal> {
        let tag = signature_tag(digest).ok_or_else(|| {
            Refusal::Fetch(format!("manifest digest {digest} is not sha256:<hex>"))
        })?;
        let sig_ref = OrasRef {
            reference: Reference::Tag(tag.clone()),
            ..r.clone()
        };
        let manifest = self
            .fetch_signature_manifest(&sig_ref)
            .await
            .map_err(|e| Refusal::Fetch(format!("signature manifest {tag}: {e}")))?
            .ok_or(Refusal::NoSignature(tag))?;
        let layers =
            layout::parse_signature_manifest(&manifest).map_err(|e| Refusal::Layers(vec![e]))?;
        let mut errors = Vec::new();
        for layer in layers {
            let payload = match self
                .fetch_blob(r, &layer.payload_digest, MAX_SIGNATURE_BYTES)
                .await
            {
                Ok(payload) => payload,
                Err(e) => {
                    errors.push(SignatureError::Malformed(format!(
                        "payload {}: {e}",
                        layer.payload_digest
                    )));
                    continue;
                }
            };
            match bty_cosign::verify_layer(&payload, &layer.signature, keys, digest) {
                Ok(signer) => return Ok(signer),
                Err(e) => errors.push(e),
            }
        }
        Err(Refusal::Layers(errors))
    }

    /// The signature manifest's bytes, `None` when the tag does not exist.
    async fn fetch_signature_manifest(&self, r: &OrasRef) -> Result<Option<Bytes>, OciError> {
        let scope = Scope::pull(&r.host, &r.repository);
        let url = self.manifest_url(r, r.locator())?;
        let mut req = Req::new(Method::GET, url.clone());
        req.headers.insert(
            ACCEPT,
            HeaderValue::from_static(
                "application/vnd.oci.image.manifest.v1+json, \
                 application/vnd.docker.distribution.manifest.v2+json",
            ),
        );
        let resp = self.send(&scope, &req).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(http_error(&Method::GET, &url, resp).await);
        }
        read_capped(&Method::GET, &url, resp, MAX_SIGNATURE_BYTES)
            .await
            .map(Some)
    }

    /// Publish `signature` over `payload` as the cosign signature of
    /// `manifest_digest` in `target`'s repository (tag
    /// `sha256-<hex>.sig`, replacing any signatures already there).
    /// Returns the tag.
    pub async fn push_signature(
        &self,
        target: &OrasRef,
        manifest_digest: &str,
        payload: &[u8],
        signature: &[u8],
    ) -> Result<String, OciError> {
        let bad = |reason: String| OciError::BadManifest {
            reference: target.to_string(),
            reason,
        };
        let tag = signature_tag(manifest_digest)
            .ok_or_else(|| bad(format!("{manifest_digest:?} is not sha256:<hex>")))?;
        if payload.len() > MAX_SIGNATURE_BYTES {
            return Err(bad(format!(
                "signature payload is larger than {MAX_SIGNATURE_BYTES} bytes"
            )));
        }
        let payload_digest = layout::sha256_digest(payload);
        let config = signature_config(&payload_digest);
        let manifest = signature_manifest(&config, payload, signature);
        let scope = Scope::push(&target.host, &target.repository);
        self.upload_bytes(
            target,
            &scope,
            &payload_digest,
            Bytes::copy_from_slice(payload),
        )
        .await?;
        self.upload_bytes(
            target,
            &scope,
            &layout::sha256_digest(&config),
            Bytes::from(config),
        )
        .await?;
        let sig_ref = OrasRef {
            reference: Reference::Tag(tag.clone()),
            ..target.clone()
        };
        self.put_manifest(&sig_ref, &scope, Bytes::from(manifest))
            .await?;
        info!(target = %target, %manifest_digest, tag, "pushed signature");
        Ok(tag)
    }
}
