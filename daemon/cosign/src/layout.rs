//! cosign's registry layout: the `sha256-<hex>.sig` tag, the signature
//! manifest whose layers are payloads with the signature in an
//! annotation, and the config blob cosign writes beside them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;

use crate::error::SignatureError;
use crate::key::hex;

/// Media type of a signature layer (the payload blob).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker v2 schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Cap on a signature manifest and on a payload blob.
pub const MAX_SIGNATURE_BYTES: usize = 64 << 10;
/// At most this many signature layers are considered.
pub const MAX_SIGNATURE_LAYERS: usize = 16;
/// Cap on one decoded signature (DER ECDSA is ~72 bytes, Ed25519 64).
pub const MAX_SIGNATURE_LEN: usize = 512;

/// The tag holding the signatures of manifest `digest` (`sha256:<hex>`).
pub fn signature_tag(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| format!("sha256-{hex}.sig"))
}

/// One signature layer: where its payload is and the signature bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The payload blob's digest.
    pub payload_digest: String,
    /// The payload's declared size.
    pub payload_size: u64,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    layers: Option<Vec<Layer>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layer {
    media_type: String,
    digest: String,
    size: u64,
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// The signature layers of a signature manifest: simple-signing layers
/// with a signature annotation. Anything else about the manifest being
/// wrong is `Malformed`.
pub fn parse_signature_manifest(bytes: &[u8]) -> Result<Vec<SignatureLayer>, SignatureError> {
    let bad = |why: String| SignatureError::Malformed(why);
    if bytes.len() > MAX_SIGNATURE_BYTES {
        return Err(bad(format!(
            "signature manifest is larger than {MAX_SIGNATURE_BYTES} bytes"
        )));
    }
    let m: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("signature manifest is not a JSON manifest: {e}")))?;
    if m.schema_version != Some(2) {
        return Err(bad("signature manifest is not schemaVersion 2".to_owned()));
    }
    if let Some(mt) = m.media_type.as_deref()
        && mt != OCI_MANIFEST
        && mt != DOCKER_MANIFEST
    {
        return Err(bad(format!("signature manifest has media type {mt}")));
    }
    let layers = m.layers.unwrap_or_default();
    if layers.len() > MAX_SIGNATURE_LAYERS {
        return Err(bad(format!(
            "{} signature layers, more than the {MAX_SIGNATURE_LAYERS} allowed",
            layers.len()
        )));
    }
    let mut out = Vec::new();
    for layer in layers
        .into_iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
    {
        let Some(sig) = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        else {
            continue;
        };
        if layer.size > MAX_SIGNATURE_BYTES as u64 {
            return Err(bad(format!(
                "payload {} declares {} bytes, more than {MAX_SIGNATURE_BYTES}",
                layer.digest, layer.size
            )));
        }
        if sig.len() > MAX_SIGNATURE_LEN * 2 {
            return Err(bad("signature annotation is too long".to_owned()));
        }
        let signature = STANDARD
            .decode(sig)
            .map_err(|e| bad(format!("signature annotation is not base64: {e}")))?;
        out.push(SignatureLayer {
            payload_digest: layer.digest,
            payload_size: layer.size,
            signature,
        });
    }
    if out.is_empty() {
        return Err(bad(
            "no simple-signing layer with a signature annotation".to_owned()
        ));
    }
    Ok(out)
}

/// The config blob cosign writes for a signature manifest with one
/// payload whose sha256 is `payload_digest`.
pub fn signature_config(payload_digest: &str) -> Vec<u8> {
    json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{ "created": "0001-01-01T00:00:00Z" }],
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": [payload_digest] },
        "config": {},
    })
    .to_string()
    .into_bytes()
}

/// The signature manifest for one payload and its signature.
pub fn signature_manifest(config: &[u8], payload: &[u8], signature: &[u8]) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "size": config.len(),
            "digest": sha256_digest(config),
        },
        "layers": [{
            "mediaType": SIMPLE_SIGNING,
            "size": payload.len(),
            "digest": sha256_digest(payload),
            "annotations": { SIGNATURE_ANNOTATION: STANDARD.encode(signature) },
        }],
    })
    .to_string()
    .into_bytes()
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_only_sha256_digests() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            signature_tag(&d).unwrap(),
            format!("sha256-{}.sig", "ab".repeat(32))
        );
        for bad in ["sha256:AB", "sha512:ab", "", "sha256:../x"] {
            assert_eq!(signature_tag(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_the_manifest_it_writes() {
        let payload = b"{}";
        let config = signature_config(&sha256_digest(payload));
        let m = signature_manifest(&config, payload, &[1, 2, 3]);
        let layers = parse_signature_manifest(&m).unwrap();
        assert_eq!(
            layers,
            [SignatureLayer {
                payload_digest: sha256_digest(payload),
                payload_size: 2,
                signature: vec![1, 2, 3],
            }]
        );
    }

    #[test]
    fn refuses_malformed_and_oversize_manifests() {
        let layer = |mt: &str, size: u64, sig: &str| {
            json!({"mediaType": mt, "digest": "sha256:00", "size": size,
                   "annotations": {SIGNATURE_ANNOTATION: sig}})
        };
        let doc = |layers: Vec<serde_json::Value>| {
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": layers})
                .to_string()
                .into_bytes()
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "not a JSON manifest"),
            (b"{\"schemaVersion\":1}".to_vec(), "schemaVersion 2"),
            (doc(vec![]), "no simple-signing layer"),
            (
                doc(vec![layer("application/octet-stream", 2, "AA==")]),
                "no simple-signing layer",
            ),
            (doc(vec![layer(SIMPLE_SIGNING, 2, "!!")]), "not base64"),
            (
                doc(vec![layer(SIMPLE_SIGNING, 1 << 20, "AA==")]),
                "more than 65536",
            ),
            (
                doc(vec![layer(SIMPLE_SIGNING, 2, &"A".repeat(4096))]),
                "too long",
            ),
            (
                doc(vec![layer(SIMPLE_SIGNING, 2, "AA=="); 17]),
                "more than the 16",
            ),
            (vec![b' '; MAX_SIGNATURE_BYTES + 1], "larger than 65536"),
        ];
        for (bytes, want) in cases {
            match parse_signature_manifest(&bytes) {
                Err(SignatureError::Malformed(why)) => assert!(why.contains(want), "{why}"),
                other => panic!("{want}: {other:?}"),
            }
        }
        let wrong_type =
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"});
        assert!(parse_signature_manifest(wrong_type.to_string().as_bytes()).is_err());
    }
}
