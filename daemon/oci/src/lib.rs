//! bty-oci: bty's own OCI distribution client for `oras://` references —
//! token auth, manifest and platform resolution, disk-image layer choice,
//! small-blob fetch and `oras push`-compatible publishing.
//!
//! Big blobs are not downloaded here: [`OciClient::blob_request`] hands the
//! URL and headers to the resumable downloader (`bty_fetch`).
//!
//! - [`client`]: [`OciClient`], registry URLs and the auth flow
//! - `transport`: retries, capped reads, the plain-http probe
//! - [`auth`]: `WWW-Authenticate` parsing and the token cache
//! - [`manifest`]: resolve, platform choice, manifest digests
//! - [`blob`]: blob requests for the downloader, small verified blobs
//! - [`layer`]: which layer of a manifest is the disk image
//! - [`push`]: publishing a file as an ORAS artifact
//! - [`trust`]: `[[trust]]` rules, cosign signature checks and pushes
//! - [`error`]: the [`OciError`] type

#![warn(missing_docs)]

pub mod auth;
pub mod blob;
pub mod client;
pub mod error;
pub mod layer;
pub mod manifest;
pub mod push;
mod transport;
pub mod trust;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use client::OciClient;
pub use error::OciError;
pub use layer::Layer;
pub use manifest::Resolved;
pub use push::Pushed;
pub use trust::TrustRule;

/// How the client reaches registries.
#[derive(Debug, Clone, Default)]
pub struct OciConfig {
    /// `host[:port]` of registries that may be reached over plain http
    /// (loopback test registries); every other host is https only.
    pub insecure: BTreeSet<String>,
    /// Credentials per registry `host[:port]`, used for token requests and
    /// `Basic` challenges.
    pub credentials: BTreeMap<String, Credentials>,
    /// The platform picked from image indexes.
    pub platform: Platform,
    /// `[[trust]]` rules: sources that need a cosign signature.
    pub trust: Vec<TrustRule>,
}

/// A registry login.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    // Config structs get logged; the password must not be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An OCI platform (`os/architecture[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// OCI architecture name (`amd64`, `arm64`…).
    pub architecture: String,
    /// Optional variant (`v7`, `v8`); `None` matches any variant.
    pub variant: Option<String>,
}

impl Default for Platform {
    /// Linux on the architecture this binary was built for.
    fn default() -> Self {
        Self {
            os: "linux".to_owned(),
            architecture: oci_arch(std::env::consts::ARCH).to_owned(),
            variant: None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Map a Rust `std::env::consts::ARCH` to the GOARCH-style name OCI uses.
pub fn oci_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_rust_arch_names_to_oci() {
        for (rust, oci) in [
            ("x86_64", "amd64"),
            ("aarch64", "arm64"),
            ("x86", "386"),
            ("riscv64", "riscv64"),
            ("s390x", "s390x"),
            ("arm", "arm"),
        ] {
            assert_eq!(oci_arch(rust), oci, "{rust}");
        }
    }

    #[test]
    fn platform_displays_like_oci() {
        let mut p = Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: Some("v7".into()),
        };
        assert_eq!(p.to_string(), "linux/arm/v7");
        p.variant = None;
        assert_eq!(p.to_string(), "linux/arm");
    }

    #[test]
    fn credentials_debug_hides_password() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
