//! Cheap questions about a remote file: how big, which version
//! (ETag/Last-Modified), can it be resumed — and has it changed since.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, ETAG, HeaderMap, LAST_MODIFIED, RANGE};

use crate::checkpoint::{
    accepts_byte_ranges, content_length, header_string, is_strong_etag, parse_content_range,
};
use crate::error::FetchError;
use crate::retry::FetchOptions;

/// What a server says about a file without sending it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteMeta {
    /// Size in bytes, when declared.
    pub size: Option<u64>,
    /// `ETag`, as sent.
    pub etag: Option<String>,
    /// `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// Whether byte ranges work (advertised, or a range request got a 206).
    pub accepts_ranges: bool,
}

/// Whether a remote file is the one seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchanged {
    /// Same strong ETag, or (without comparable ETags) same Last-Modified.
    Yes,
    /// The compared validator differs.
    No,
    /// Nothing comparable on both sides.
    Unknown,
}

/// `HEAD url`; if the server refuses HEAD (405/501), a `GET` with
/// `Range: bytes=0-0` whose body is not read. Not retried; follows
/// redirects; gives up after the default stall timeout.
pub async fn probe(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
) -> Result<RemoteMeta, FetchError> {
    let head = send(client.head(url).headers(headers.clone()), url).await?;
    let status = head.status();
    if status.is_success() {
        let h = head.headers();
        return Ok(RemoteMeta {
            size: content_length(h),
            etag: header_string(h, ETAG.as_str()),
            last_modified: header_string(h, LAST_MODIFIED.as_str()),
            accepts_ranges: accepts_byte_ranges(h),
        });
    }
    if !matches!(
        status,
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
    ) {
        return Err(FetchError::Http {
            url: url.to_owned(),
            status,
        });
    }
    tracing::debug!(url, %status, "HEAD refused; probing with a one-byte GET");
    let get = client
        .get(url)
        .headers(headers.clone())
        .header(RANGE, "bytes=0-0");
    let resp = send(get, url).await?;
    let h = resp.headers();
    let meta = match resp.status() {
        StatusCode::PARTIAL_CONTENT => RemoteMeta {
            size: h
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range)
                .and_then(|r| r.total),
            etag: header_string(h, ETAG.as_str()),
            last_modified: header_string(h, LAST_MODIFIED.as_str()),
            accepts_ranges: true,
        },
        s if s.is_success() => RemoteMeta {
            size: content_length(h),
            etag: header_string(h, ETAG.as_str()),
            last_modified: header_string(h, LAST_MODIFIED.as_str()),
            accepts_ranges: accepts_byte_ranges(h),
        },
        status => {
            return Err(FetchError::Http {
                url: url.to_owned(),
                status,
            });
        }
    };
    // Dropping `resp` here closes the connection instead of reading a
    // body that may be the whole image.
    drop(resp);
    Ok(meta)
}

/// Send with the default stall timeout for the response head.
async fn send(rb: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response, FetchError> {
    let after = FetchOptions::default().stall_timeout;
    match tokio::time::timeout(after, rb.send()).await {
        Err(_) => Err(FetchError::Stalled {
            url: url.to_owned(),
            after,
        }),
        Ok(r) => r.map_err(|e| FetchError::transport(url, e)),
    }
}

/// Compare what was seen before with `now`: strong ETags if both sides have
/// one, else Last-Modified if both sides have it.
pub fn unchanged(
    before_etag: Option<&str>,
    before_last_modified: Option<&str>,
    now: &RemoteMeta,
) -> Unchanged {
    let strong = |t: &&str| is_strong_etag(t);
    if let (Some(a), Some(b)) = (
        before_etag.filter(strong),
        now.etag.as_deref().filter(strong),
    ) {
        return if a == b {
            Unchanged::Yes
        } else {
            Unchanged::No
        };
    }
    if let (Some(a), Some(b)) = (before_last_modified, now.last_modified.as_deref()) {
        return if a == b {
            Unchanged::Yes
        } else {
            Unchanged::No
        };
    }
    Unchanged::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(etag: Option<&str>, lm: Option<&str>) -> RemoteMeta {
        RemoteMeta {
            etag: etag.map(str::to_owned),
            last_modified: lm.map(str::to_owned),
            ..RemoteMeta::default()
        }
    }

    #[test]
    fn compares_strong_etags_first() {
        let now = meta(Some("\"a\""), Some("lm2"));
        assert_eq!(unchanged(Some("\"a\""), Some("lm1"), &now), Unchanged::Yes);
        assert_eq!(unchanged(Some("\"b\""), Some("lm2"), &now), Unchanged::No);
    }

    #[test]
    fn weak_or_missing_etags_fall_back_to_last_modified() {
        let now = meta(Some("W/\"a\""), Some("lm"));
        assert_eq!(unchanged(Some("W/\"a\""), Some("lm"), &now), Unchanged::Yes);
        assert_eq!(unchanged(Some("W/\"a\""), Some("old"), &now), Unchanged::No);
        assert_eq!(
            unchanged(None, Some("lm"), &meta(None, Some("lm"))),
            Unchanged::Yes
        );
    }

    #[test]
    fn nothing_comparable_is_unknown() {
        assert_eq!(
            unchanged(None, None, &meta(Some("\"a\""), Some("lm"))),
            Unchanged::Unknown
        );
        assert_eq!(
            unchanged(Some("\"a\""), None, &meta(None, Some("lm"))),
            Unchanged::Unknown
        );
        assert_eq!(
            unchanged(Some("W/\"a\""), None, &meta(Some("W/\"a\""), None)),
            Unchanged::Unknown
        );
    }
}
