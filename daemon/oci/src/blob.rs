//! Blobs: the request the downloader sends for a (big) layer, and small
//! blobs (catalog artifacts) read into memory and verified here.

use bty_store::digest::sha256_bytes;
use bty_store::oras_ref::OrasRef;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, Url};

use crate::client::{OciClient, Scope};
use crate::error::OciError;
use crate::manifest::is_sha256_digest;
use crate::transport::{Req, http_error, read_capped};

/// Cap for catalog artifacts fetched with [`OciClient::fetch_blob`].
pub const CATALOG_CAP: usize = 4 << 20;

impl OciClient {
    /// URL and headers to GET blob `digest` of `r`'s repository: hand them
    /// to the downloader. Carries `Authorization` when the registry wants a
    /// token (fetched now, or reused from the cache). Call again for every
    /// download attempt: a token lives about a minute.
    pub async fn blob_request(
        &self,
        r: &OrasRef,
        digest: &str,
    ) -> Result<(String, HeaderMap), OciError> {
        let url = self.blob_url(r, digest)?;
        let scope = Scope::pull(&r.host, &r.repository);
        let mut headers = HeaderMap::new();
        if let Some(auth) = self.authorization(&scope).await? {
            headers.insert(AUTHORIZATION, auth);
        }
        Ok((url.to_string(), headers))
    }

    /// Read a small blob whole (at most `cap` bytes) and verify its digest.
    pub async fn fetch_blob(
        &self,
        r: &OrasRef,
        digest: &str,
        cap: usize,
    ) -> Result<Vec<u8>, OciError> {
        let url = self.blob_url(r, digest)?;
        let scope = Scope::pull(&r.host, &r.repository);
        let resp = self
            .send(&scope, &Req::new(Method::GET, url.clone()))
            .await?;
        if !resp.status().is_success() {
            return Err(http_error(&Method::GET, &url, resp).await);
        }
        let bytes = read_capped(&Method::GET, &url, resp, cap).await?;
        let actual = format!("sha256:{}", sha256_bytes(&bytes));
        if actual != digest {
            return Err(OciError::DigestMismatch {
                what: format!("blob of {r}"),
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes.to_vec())
    }

    pub(crate) fn blob_url(&self, r: &OrasRef, digest: &str) -> Result<Url, OciError> {
        if !is_sha256_digest(digest) {
            return Err(OciError::BadManifest {
                reference: r.to_string(),
                reason: format!("blob digest {digest:?} is not sha256:<64 lowercase hex>"),
            });
        }
        self.registry_url(&r.host, &format!("/v2/{}/blobs/{digest}", r.repository))
    }
}
