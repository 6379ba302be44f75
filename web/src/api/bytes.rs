//! `GET|HEAD /images/{key}[/{name}]`: an image's stored bytes, streamed from
//! `ReadImage`, with single `Range` requests (206, 416), `ETag` = sha256 and
//! a download file name. `{name}` is decorative except that it names the
//! downloaded file.

use crate::error::{NotFound, WebError};
use crate::fmt;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_RANGE, LAST_MODIFIED, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bty_proto::v1::image_chunk::Part;
use bty_proto::v1::{ImageStat, ReadImageRequest, StatImageRequest};
use tokio_stream::StreamExt as _;
use tonic::Code;

/// What a `Range` header asks for, resolved against the file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// No (usable) range: the whole file, 200.
    Full,
    /// Bytes `start..=end`, 206.
    Part { start: u64, end: u64 },
    /// Nothing of the file is in the range, 416.
    Unsatisfiable,
}

/// Resolve `bytes=a-b`, `bytes=a-` and `bytes=-n`. Malformed headers and
/// multi-range requests are ignored (RFC 9110 allows serving the whole
/// representation instead).
pub(crate) fn parse_range(header: &str, size: u64) -> ByteRange {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (number(first), number(last), first.trim().is_empty()) {
        // bytes=-n: the last n bytes.
        (None, Some(n), true) => {
            if n == 0 || size == 0 {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Part {
                    start: size.saturating_sub(n),
                    end: size - 1,
                }
            }
        }
        // bytes=a- : from a to the end.
        (Some(start), None, false) if last.trim().is_empty() => {
            if start >= size {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Part {
                    start,
                    end: size - 1,
                }
            }
        }
        (Some(start), Some(end), false) if start <= end => {
            if start >= size {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Part {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        _ => ByteRange::Full,
    }
}

/// `attachment; filename="…"` with an ASCII fallback and the exact UTF-8
/// name (RFC 6266), so no header injection and no mangled names.
fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let value = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        fmt::percent_encode(name)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn etag(stat: &ImageStat) -> Option<String> {
    stat.sha256
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| format!("\"{s}\""))
}

/// Headers every answer about the file carries.
fn file_headers(stat: &ImageStat, name: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(tag) = etag(stat).and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert(ETAG, tag);
    }
    if stat.modified_ms > 0
        && let Ok(date) = HeaderValue::from_str(&fmt::http_date(stat.modified_ms))
    {
        headers.insert(LAST_MODIFIED, date);
    }
    let name = name.filter(|n| !n.is_empty()).unwrap_or(&stat.file_name);
    headers.insert(CONTENT_DISPOSITION, disposition(name));
    headers
}

fn not_found(key: &str, status: tonic::Status) -> WebError {
    if status.code() == Code::NotFound {
        NotFound::Image {
            key: key.to_owned(),
        }
        .into()
    } else {
        WebError::from(status)
    }
}

async fn stat(state: &AppState, key: &str) -> Result<ImageStat, WebError> {
    state
        .catalog()
        .stat_image(StatImageRequest {
            key: key.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| not_found(key, status))
}

/// The range to serve: `If-Range` that does not name the current sha256
/// means the client's copy is stale, so it gets the whole file.
fn wanted_range(headers: &HeaderMap, stat: &ImageStat) -> ByteRange {
    let Some(range) = headers.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return ByteRange::Full;
    };
    if let Some(if_range) = headers.get(IF_RANGE).and_then(|v| v.to_str().ok())
        && etag(stat).as_deref() != Some(if_range.trim())
    {
        return ByteRange::Full;
    }
    parse_range(range, stat.size_bytes)
}

async fn answer(
    state: AppState,
    key: String,
    name: Option<String>,
    headers: HeaderMap,
    head: bool,
) -> Result<Response, WebError> {
    let stat = stat(&state, &key).await?;
    let mut out = file_headers(&stat, name.as_deref());
    let (status, offset, length) = match wanted_range(&headers, &stat) {
        ByteRange::Unsatisfiable => {
            out.insert(
                CONTENT_RANGE,
                header_value(format!("bytes */{}", stat.size_bytes)),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out).into_response());
        }
        ByteRange::Full => (StatusCode::OK, 0, stat.size_bytes),
        ByteRange::Part { start, end } => {
            let range = format!("bytes {start}-{end}/{}", stat.size_bytes);
            out.insert(CONTENT_RANGE, header_value(range));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
    };
    out.insert(CONTENT_LENGTH, header_value(length.to_string()));
    if head || length == 0 {
        return Ok((status, out).into_response());
    }
    let request = ReadImageRequest {
        key: key.clone(),
        offset,
        length,
    };
    let mut stream = state
        .catalog()
        .read_image(request)
        .await
        .map_err(|status| not_found(&key, status))?
        .into_inner();
    // The first message describes the file being read: if it was replaced
    // since the stat, the headers above would describe other bytes.
    match stream.message().await? {
        Some(chunk) => match chunk.part {
            Some(Part::Stat(now))
                if now.size_bytes == stat.size_bytes && now.sha256 == stat.sha256 => {}
            _ => {
                return Err(WebError::Grpc(tonic::Status::unavailable(
                    "the image changed while it was being read",
                )));
            }
        },
        None => {
            return Err(NotFound::Image {
                key: key.to_owned(),
            }
            .into());
        }
    }
    let body = stream.filter_map(|chunk| match chunk {
        Ok(chunk) => match chunk.part {
            Some(Part::Data(data)) => Some(Ok(data)),
            _ => None,
        },
        Err(status) => {
            tracing::warn!(code = ?status.code(), detail = status.message(), "image read broke off");
            Some(Err(std::io::Error::other("image read broke off")))
        }
    });
    Ok((status, out, Body::from_stream(body)).into_response())
}

fn header_value(value: String) -> HeaderValue {
    // Digits, spaces, `-`, `/` and `*` only: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

pub(crate) async fn get_image(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    answer(state, key, None, headers, false).await
}

pub(crate) async fn head_image(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    answer(state, key, None, headers, true).await
}

pub(crate) async fn get_named(
    State(state): State<AppState>,
    Path((key, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    answer(state, key, Some(name), headers, false).await
}

pub(crate) async fn head_named(
    State(state): State<AppState>,
    Path((key, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    answer(state, key, Some(name), headers, true).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ByteRange::{Full, Part, Unsatisfiable};

    #[test]
    fn resolves_ranges_like_rfc_9110() {
        let size = 1000;
        assert_eq!(parse_range("bytes=0-99", size), Part { start: 0, end: 99 });
        assert_eq!(
            parse_range("bytes=100-", size),
            Part {
                start: 100,
                end: 999
            }
        );
        assert_eq!(
            parse_range("bytes=-100", size),
            Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse_range("bytes=-5000", size),
            Part { start: 0, end: 999 }
        );
        assert_eq!(
            parse_range("bytes=990-5000", size),
            Part {
                start: 990,
                end: 999
            }
        );
        assert_eq!(parse_range("bytes=1000-", size), Unsatisfiable);
        assert_eq!(parse_range("bytes=1000-1001", size), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", size), Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", size), Full);
        assert_eq!(parse_range("bytes=0-1,5-6", size), Full);
        assert_eq!(parse_range("items=0-1", size), Full);
        assert_eq!(parse_range("bytes=a-b", size), Full);
        assert_eq!(parse_range("bytes=+1-2", size), Full);
    }

    #[test]
    fn download_names_cannot_inject_headers() {
        let value = disposition("a\"b\r\nX: y é.img");
        let text = value.to_str().unwrap_or_default();
        assert!(
            text.starts_with("attachment; filename=\"a_b__X: y _.img\""),
            "{text}"
        );
        assert!(
            text.contains("filename*=UTF-8''a%22b%0D%0AX%3A%20y%20%C3%A9.img"),
            "{text}"
        );
    }
}
