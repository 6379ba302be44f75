//! The one error type of the OCI client: every variant names the registry,
//! repository or URL involved and what failed, so a job's error line is
//! enough to act on.

use std::path::PathBuf;

use thiserror::Error;

/// Why an OCI operation failed.
#[derive(Debug, Error)]
pub enum OciError {
    /// The registry or its token service refused us, or gave no usable way
    /// to authenticate.
    #[error("registry {registry}, repository {repository}: authentication failed: {reason}")]
    Auth {
        /// `host[:port]` of the registry.
        registry: String,
        /// The repository being accessed.
        repository: String,
        /// What went wrong, for humans.
        reason: String,
    },
    /// The server answered with an unexpected status.
    #[error("{method} {url} answered {status}: {body_excerpt}")]
    Http {
        /// The request method.
        method: String,
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (error JSON, usually).
        body_excerpt: String,
    },
    /// The request could not be sent or its response not read (connect,
    /// TLS, reset, timeout), after retries where they apply.
    #[error("{method} {url} failed")]
    Transport {
        /// The request method.
        method: String,
        /// The URL requested.
        url: String,
        /// The underlying failure.
        #[source]
        source: reqwest::Error,
    },
    /// A metadata response or small blob was larger than allowed.
    #[error("{url}: response is larger than the {cap}-byte cap")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The cap in bytes.
        cap: usize,
    },
    /// Bytes did not hash to the digest that names them.
    #[error("{what}: digest mismatch, expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked (a manifest reference, a blob).
        what: String,
        /// The digest we asked for.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// An image index had no manifest for our platform.
    #[error(
        "{reference}: no manifest for platform {wanted} in the image index (available: {})",
        available.join(", ")
    )]
    NoMatchingPlatform {
        /// The reference resolved.
        reference: String,
        /// Our platform, `os/arch[/variant]`.
        wanted: String,
        /// The index's platforms, `os/arch[/variant]`.
        available: Vec<String>,
    },
    /// Every layer of the manifest was refused as not a disk image.
    #[error(
        "{reference}: no disk-image layer (refused: {})",
        describe_refused(refused)
    )]
    NoImageLayer {
        /// The reference resolved.
        reference: String,
        /// `(media type, title)` of each refused layer.
        refused: Vec<(String, Option<String>)>,
    },
    /// The manifest could not be understood.
    #[error("{reference}: bad manifest: {reason}")]
    BadManifest {
        /// The reference (or manifest URL) involved.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A plain-http URL is needed for a host that is not listed as insecure.
    #[error(
        "{host} needs plain http, which is allowed only for registries listed as insecure in the config"
    )]
    InsecureNotAllowed {
        /// `host[:port]`.
        host: String,
    },
    /// A `[[trust]]` rule matched and no signature by its keys verified
    /// for the manifest being pulled (boxed: it is rare and large).
    #[error(
        "{}: refused by the [[trust]] rule match = {:?}: manifest {} has no valid signature by the rule's keys ({}): {}",
        .0.reference, .0.rule, .0.digest, .0.keys, .0.reason
    )]
    Untrusted(Box<Untrusted>),
    /// A local file to push could not be read.
    #[error("reading {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
}

/// What [`OciError::Untrusted`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    /// The reference pulled.
    pub reference: String,
    /// The rule's `match` prefix.
    pub rule: String,
    /// The manifest digest whose signature was checked.
    pub digest: String,
    /// Fingerprints of the keys tried, comma-separated.
    pub keys: String,
    /// Why: no signature tag, bad signature, other digest, malformed.
    pub reason: String,
}

fn describe_refused(refused: &[(String, Option<String>)]) -> String {
    if refused.is_empty() {
        return "the manifest has no layers".to_owned();
    }
    refused
        .iter()
        .map(|(media_type, title)| match title {
            Some(title) => format!("{title:?} ({media_type})"),
            None => media_type.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_image_layer_lists_what_was_refused() {
        let e = OciError::NoImageLayer {
            reference: "oras://r/a/b:t".into(),
            refused: vec![
                (
                    "application/vnd.dev.cosign.simplesigning.v1+json".into(),
                    None,
                ),
                ("application/octet-stream".into(), Some("x.sig".into())),
            ],
        };
        let text = e.to_string();
        assert!(text.contains("cosign"), "{text}");
        assert!(text.contains("\"x.sig\""), "{text}");
    }

    #[test]
    fn no_matching_platform_lists_choices() {
        let e = OciError::NoMatchingPlatform {
            reference: "oras://r/a/b:t".into(),
            wanted: "linux/riscv64".into(),
            available: vec!["linux/amd64".into(), "linux/arm64".into()],
        };
        assert!(
            e.to_string()
                .ends_with("(available: linux/amd64, linux/arm64)")
        );
    }
}
