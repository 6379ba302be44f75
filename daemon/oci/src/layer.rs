//! Which layer of an OCI manifest is the disk image: refuse known non-image
//! media types and sidecar titles (a signature or an SBOM must never be
//! written to a disk), prefer a title with a disk-image extension, else the
//! largest layer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The annotation holding a layer's file name (set by `oras push`).
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// Media types that are never a disk image: exact matches.
const REFUSED_MEDIA_TYPES: &[&str] = &[
    "application/vnd.dev.cosign.simplesigning.v1+json",
    "application/vnd.oci.empty.v1+json",
    "application/vnd.oci.image.config.v1+json",
];

/// Media-type prefixes that are never a disk image: signatures,
/// attestations, SBOMs, Helm charts.
const REFUSED_MEDIA_PREFIXES: &[&str] = &[
    "application/vnd.dev.sigstore.bundle",
    "application/vnd.in-toto",
    "application/spdx",
    "application/vnd.cyclonedx",
    "application/vnd.syft",
    "application/vnd.cncf.helm.",
];

/// Title suffixes of sidecar files pushed next to images.
const REFUSED_TITLE_SUFFIXES: &[&str] = &[
    ".sig", ".asc", ".pem", ".cert", ".sbom", ".att", ".json", ".sha256", ".sha512",
];

/// An OCI content descriptor as found in manifests and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// `algorithm:hex` digest of the content.
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Annotations (the title among them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform of a manifest listed in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
}

impl Descriptor {
    /// The `org.opencontainers.image.title` annotation.
    pub fn title(&self) -> Option<&str> {
        self.annotations
            .as_ref()
            .and_then(|a| a.get(TITLE_ANNOTATION))
            .map(String::as_str)
    }
}

/// The platform object of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    /// `linux`, `windows`, `unknown`…
    #[serde(default)]
    pub os: String,
    /// `amd64`, `arm64`…
    #[serde(default)]
    pub architecture: String,
    /// `v7`, `v8`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// The layer chosen as the disk image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Declared size in bytes.
    pub size: u64,
    /// Declared media type.
    pub media_type: String,
    /// The title annotation, when set.
    pub title: Option<String>,
}

/// Why a layer is not a disk image, or `None` if it may be one.
pub fn refusal(layer: &Descriptor) -> Option<&'static str> {
    let media_type = layer.media_type.to_ascii_lowercase();
    if REFUSED_MEDIA_TYPES.contains(&media_type.as_str())
        || REFUSED_MEDIA_PREFIXES
            .iter()
            .any(|p| media_type.starts_with(p))
    {
        return Some("non-image media type");
    }
    if let Some(title) = layer.title() {
        let title = title.to_ascii_lowercase();
        if REFUSED_TITLE_SUFFIXES.iter().any(|s| title.ends_with(s)) {
            return Some("sidecar file title");
        }
    }
    // The downloader verifies sha256 only; anything else cannot be checked.
    if !layer.digest.starts_with("sha256:") {
        return Some("digest is not sha256");
    }
    None
}

/// Pick the disk-image layer, or return every layer as refused
/// (`(media type, title)`) when none qualifies.
pub fn choose_layer(layers: &[Descriptor]) -> Result<Layer, Vec<(String, Option<String>)>> {
    let candidates: Vec<&Descriptor> = layers.iter().filter(|l| refusal(l).is_none()).collect();
    let has_image_title = |l: &&Descriptor| {
        l.title()
            .and_then(bty_store::format::format_from_name)
            .is_some()
    };
    let titled: Vec<&Descriptor> = candidates.iter().copied().filter(has_image_title).collect();
    let pool = if titled.is_empty() {
        &candidates
    } else {
        &titled
    };
    match largest(pool) {
        Some(l) => Ok(Layer {
            digest: l.digest.clone(),
            size: l.size,
            media_type: l.media_type.clone(),
            title: l.title().map(str::to_owned),
        }),
        None => Err(layers
            .iter()
            .map(|l| (l.media_type.clone(), l.title().map(str::to_owned)))
            .collect()),
    }
}

/// The largest descriptor; the first one wins a tie (manifest order).
fn largest<'a>(pool: &[&'a Descriptor]) -> Option<&'a Descriptor> {
    pool.iter()
        .copied()
        .fold(None, |best: Option<&Descriptor>, l| match best {
            Some(b) if b.size >= l.size => Some(b),
            _ => Some(l),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(media_type: &str, title: Option<&str>, size: u64, n: u8) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            size,
            annotations: title.map(|t| [(TITLE_ANNOTATION.to_owned(), t.to_owned())].into()),
            platform: None,
        }
    }

    const OCTET: &str = "application/octet-stream";
    const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

    #[test]
    fn chooses_the_disk_image_layer() {
        // (layers, index of the expected pick)
        let cases: Vec<(&str, Vec<Descriptor>, usize)> = vec![
            (
                "single layer",
                vec![layer(OCTET, Some("disk.img.zst"), 10, 1)],
                0,
            ),
            (
                "image title beats a larger untitled layer",
                vec![
                    layer(OCTET, None, 1000, 1),
                    layer(OCTET, Some("disk.qcow2"), 10, 2),
                ],
                1,
            ),
            (
                "largest of several image titles",
                vec![
                    layer(OCTET, Some("small.img"), 10, 1),
                    layer(OCTET, Some("big.img.xz"), 20, 2),
                ],
                1,
            ),
            (
                "no image title: largest",
                vec![
                    layer(LAYER, Some("a.bin"), 5, 1),
                    layer(LAYER, Some("b.bin"), 50, 2),
                ],
                1,
            ),
            (
                "tie: first wins",
                vec![layer(OCTET, None, 7, 1), layer(OCTET, None, 7, 2)],
                0,
            ),
            (
                "sidecars are skipped even when larger",
                vec![
                    layer(OCTET, Some("disk.img.sha256"), 99, 1),
                    layer(OCTET, Some("disk.IMG.SIG"), 98, 2),
                    layer(OCTET, Some("meta.json"), 97, 3),
                    layer(OCTET, Some("disk.raw"), 1, 4),
                ],
                3,
            ),
            (
                "signature media types are skipped",
                vec![
                    layer(
                        "application/vnd.dev.cosign.simplesigning.v1+json",
                        None,
                        500,
                        1,
                    ),
                    layer("application/vnd.in-toto+json", None, 400, 2),
                    layer("application/spdx+json", None, 300, 3),
                    layer(OCTET, None, 1, 4),
                ],
                3,
            ),
            (
                "catalog artifact",
                vec![layer(OCTET, Some("catalog.toml"), 100, 1)],
                0,
            ),
        ];
        for (name, layers, want) in cases {
            let got = choose_layer(&layers).unwrap_or_else(|r| panic!("{name}: refused {r:?}"));
            assert_eq!(got.digest, layers[want].digest, "{name}");
            assert_eq!(got.size, layers[want].size, "{name}");
            assert_eq!(got.title.as_deref(), layers[want].title(), "{name}");
        }
    }

    #[test]
    fn refuses_non_image_layers() {
        let refused = [
            layer(
                "application/vnd.dev.cosign.simplesigning.v1+json",
                None,
                1,
                1,
            ),
            layer("application/vnd.dev.sigstore.bundle.v0.3+json", None, 1, 2),
            layer("application/vnd.in-toto+json", None, 1, 3),
            layer("application/spdx+json", None, 1, 4),
            layer("application/vnd.cyclonedx+json", None, 1, 5),
            layer("application/vnd.syft+json", None, 1, 6),
            layer(
                "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                None,
                1,
                7,
            ),
            layer("application/vnd.oci.empty.v1+json", None, 2, 8),
            layer("application/vnd.oci.image.config.v1+json", None, 1, 9),
            layer(OCTET, Some("x.asc"), 1, 10),
            layer(OCTET, Some("x.pem"), 1, 11),
            layer(OCTET, Some("x.cert"), 1, 12),
            layer(OCTET, Some("x.sbom"), 1, 13),
            layer(OCTET, Some("x.att"), 1, 14),
            layer(OCTET, Some("x.sha512"), 1, 15),
        ];
        for l in &refused {
            assert!(refusal(l).is_some(), "{l:?} should be refused");
        }
        let err = choose_layer(&refused).unwrap_err();
        assert_eq!(err.len(), refused.len());
        assert_eq!(err[9], (OCTET.to_owned(), Some("x.asc".to_owned())));
        assert_eq!(choose_layer(&[]).unwrap_err(), vec![]);
    }

    #[test]
    fn refuses_non_sha256_digests() {
        let mut l = layer(OCTET, Some("disk.img"), 1, 1);
        l.digest = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(refusal(&l), Some("digest is not sha256"));
    }
}
