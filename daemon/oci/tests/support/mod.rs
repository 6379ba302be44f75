//! Test support for bty-oci: the real registry harness (shared with the
//! end-to-end crate), the token proxy, and small helpers.

#![allow(dead_code)]

#[path = "../../../../tests/src/registry.rs"]
pub mod registry;

pub mod proxy;

use std::path::{Path, PathBuf};

use bty_oci::{OciClient, OciConfig};
use bty_store::oras_ref::OrasRef;

pub use proxy::{ProxyOptions, TokenProxy};
pub use registry::Registry;

/// The daemon's HTTP client (ring TLS provider installed).
pub fn http() -> reqwest::Client {
    bty_fetch::http_client(&bty_fetch::ClientOptions::default()).unwrap()
}

/// A config allowing plain http to `insecure` hosts, default platform.
pub fn config(insecure: &[&str]) -> OciConfig {
    OciConfig {
        insecure: insecure.iter().map(|h| (*h).to_owned()).collect(),
        ..OciConfig::default()
    }
}

/// A fresh client (own token cache).
pub fn client(config: OciConfig) -> OciClient {
    OciClient::new(config, http())
}

/// `oras://<host>/<rest>`, parsed.
pub fn oras(host: &str, rest: &str) -> OrasRef {
    OrasRef::parse(&format!("oras://{host}/{rest}")).unwrap()
}

/// `sha256:<hex>` of bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", bty_store::digest::sha256_bytes(bytes))
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Write `bytes` to `dir/name`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// GET the manifest at `url` as an OCI image manifest; its bytes.
pub async fn get_manifest(url: &str) -> Vec<u8> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT,
        reqwest::header::HeaderValue::from_static(bty_oci::manifest::OCI_MANIFEST),
    );
    get_bytes(url, headers).await
}

/// GET `url` with `headers` on a plain client (redirects followed) and
/// return the body.
pub async fn get_bytes(url: &str, headers: reqwest::header::HeaderMap) -> Vec<u8> {
    let resp = http().get(url).headers(headers).send().await.unwrap();
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.bytes().await.unwrap().to_vec()
}
