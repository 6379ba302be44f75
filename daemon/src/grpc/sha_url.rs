//! An entry's `sha_url`: fetch the checksum file and read the digest it
//! lists for the image URL's file name, before the catalog is asked to add
//! the entry (the catalog never waits on the network). The fetch goes
//! through the downloader, so it follows the same client, redirect rules
//! and retries as a catalog fetch, under its own cap and deadline.

use crate::actors::downloader::{DocumentError, DownloaderError, DownloaderHandle};
use bty_store::canon::{Scheme, canonicalise_src, scheme, url_file_name};
use bty_store::chain::chain;
use bty_store::digest::is_sha256_hex;
use bty_store::sums::{MAX_SUMS_BYTES, SumsError, digest_for};
use std::time::Duration;
use thiserror::Error;
use tonic::Status;

/// The longest a checksum file fetch may take, retries included.
pub(crate) const SUMS_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a `sha_url` gave no digest.
#[derive(Debug, Error)]
pub(crate) enum ShaUrlError {
    /// Not an http(s) URL with a host.
    #[error("sha_url must be an http(s) URL, got {given:?}")]
    NotHttp {
        /// What was given, cut short.
        given: String,
    },
    /// Not a URL bty fetches (userinfo, a bad host, …).
    #[error("invalid sha_url")]
    BadUrl(#[source] bty_store::canon::SrcError),
    /// The fetch took longer than [`SUMS_TIMEOUT`].
    #[error("fetching {url} took longer than {}s", SUMS_TIMEOUT.as_secs())]
    Timeout {
        /// The checksum file's URL.
        url: String,
    },
    /// The body passed [`MAX_SUMS_BYTES`].
    #[error(
        "{url} is larger than {MAX_SUMS_BYTES} bytes, too large for a checksum file: did you paste an image URL into the sha_url field?"
    )]
    TooLarge {
        /// The checksum file's URL.
        url: String,
    },
    /// The fetch failed.
    #[error(transparent)]
    Fetch(DownloaderError),
    /// The file gave no digest for the name.
    #[error("{url}")]
    Sums {
        /// The checksum file's URL.
        url: String,
        /// Why.
        #[source]
        source: SumsError,
    },
    /// An explicit `sha256` names other content.
    #[error(
        "the sha256 given ({given}) does not match the sha256 {url} lists for the image ({listed})"
    )]
    Disagree {
        /// The explicit pin.
        given: String,
        /// What the checksum file lists.
        listed: String,
        /// The checksum file's URL.
        url: String,
    },
}

impl From<ShaUrlError> for Status {
    fn from(e: ShaUrlError) -> Self {
        match e {
            // The downloader being away is not the client's mistake.
            ShaUrlError::Fetch(e @ DownloaderError::Unavailable(_)) => e.into(),
            // Both values are in the message; no "could not resolve".
            e @ ShaUrlError::Disagree { .. } => Status::invalid_argument(chain(&e)),
            e => Status::invalid_argument(format!("could not resolve sha256: {}", chain(&e))),
        }
    }
}

/// The http(s) shape upstream accepted: `^https?://[^\s/?#]+(?:[/?#]\S*)?$`.
pub(crate) fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    host_end > 0 && !url.chars().any(char::is_whitespace)
}

/// The digest `sha_url` lists for `image_url`'s file name, checked against
/// an explicit `sha256` when one is given (a malformed one is left for the
/// catalog to refuse).
pub(crate) async fn resolve(
    downloader: &DownloaderHandle,
    image_url: &str,
    sha_url: &str,
    given: Option<&str>,
) -> Result<String, ShaUrlError> {
    if !is_http_url(sha_url) {
        return Err(ShaUrlError::NotHttp {
            given: sha_url.chars().take(200).collect(),
        });
    }
    let canonical = canonicalise_src(sha_url).map_err(ShaUrlError::BadUrl)?;
    if !matches!(scheme(&canonical), Ok(Scheme::Http | Scheme::Https)) {
        return Err(ShaUrlError::NotHttp {
            given: sha_url.chars().take(200).collect(),
        });
    }
    let fetched = tokio::time::timeout(
        SUMS_TIMEOUT,
        downloader.fetch_document(&canonical, MAX_SUMS_BYTES),
    )
    .await
    .map_err(|_| ShaUrlError::Timeout {
        url: canonical.clone(),
    })?;
    let body = fetched.map_err(|e| match e {
        DownloaderError::FetchDocument {
            url,
            source: DocumentError::Fetch(bty_fetch::FetchError::TooLarge { .. }),
        } => ShaUrlError::TooLarge { url },
        e => ShaUrlError::Fetch(e),
    })?;
    let name = url_file_name(image_url.trim());
    let listed = digest_for(&body, name.as_deref()).map_err(|source| ShaUrlError::Sums {
        url: canonical.clone(),
        source,
    })?;
    if let Some(given) = given.map(|g| g.trim().to_ascii_lowercase())
        && is_sha256_hex(&given)
        && given != listed
    {
        return Err(ShaUrlError::Disagree {
            given,
            listed,
            url: canonical,
        });
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_told_from_the_rest() {
        for good in [
            "http://h/SHA256SUMS",
            "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS",
            "HTTPS://h",
            "https://h?x=1",
            "http://h#frag",
            "https://[::1]:8080/sums",
        ] {
            assert!(is_http_url(good), "{good}");
        }
        for bad in [
            "",
            "ftp://h/sums",
            "oras://h/r:t",
            "file:///etc/passwd",
            "https://",
            "https:///path",
            "https://h/with space",
            "https://h/\tx",
            "/SHA256SUMS",
            "SHA256SUMS",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn errors_become_invalid_argument_with_the_upstream_prefix() {
        let status = Status::from(ShaUrlError::TooLarge {
            url: "http://h/big.img".into(),
        });
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().starts_with(
                "could not resolve sha256: http://h/big.img is larger than 1048576 bytes"
            ),
            "{}",
            status.message()
        );
        assert!(
            status
                .message()
                .contains("did you paste an image URL into the sha_url field?")
        );
        let status = Status::from(ShaUrlError::Sums {
            url: "http://h/SHA256SUMS".into(),
            source: SumsError::Malformed { line: 3 },
        });
        assert_eq!(
            status.message(),
            "could not resolve sha256: http://h/SHA256SUMS: malformed sha256 line 3"
        );
        let status = Status::from(ShaUrlError::Disagree {
            given: "a".repeat(64),
            listed: "b".repeat(64),
            url: "http://h/S".into(),
        });
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains(&"a".repeat(64)));
        assert!(status.message().contains(&"b".repeat(64)));
    }
}
