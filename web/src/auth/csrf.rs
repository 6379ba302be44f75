//! Cross-site request checks for state-changing requests: the Origin (or
//! Referer) must name this host, and logged-in browsers must echo their
//! session's token.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN, REFERER};

/// The header `bty.js` sends the token in.
pub(crate) const HEADER: &str = "x-csrf-token";

/// The form field forms send the token in.
pub(crate) const FIELD: &str = "csrf";

/// `Ok` when the request's Origin (else Referer) has this request's Host
/// as its authority. A request carrying neither is refused: browsers send
/// Origin on every state-changing request, so only a stripped header or a
/// non-browser client lacks it (API clients use a bearer token instead).
pub(crate) fn check_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .ok_or("request has no Host header")?;
    let claimed = headers
        .get(ORIGIN)
        .or_else(|| headers.get(REFERER))
        .and_then(|v| v.to_str().ok())
        .ok_or("cross-site check failed: the request has no Origin or Referer header")?;
    match authority(claimed) {
        Some(authority) if authority.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err("cross-site request refused: Origin does not match this host"),
    }
}

/// `host[:port]` of an `http(s)://…` URL or origin.
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Userinfo would let `http://host@evil` pass a prefix check.
    (!authority.is_empty() && !authority.contains('@')).then_some(authority)
}

/// The token in the request's header. Never read from the URL: URLs end
/// up in logs, history and Referer headers.
pub(crate) fn header_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The `csrf` field of a buffered multipart form (the pages put it before
/// the file).
pub(crate) async fn multipart_field(content_type: &str, body: axum::body::Bytes) -> Option<String> {
    use axum::extract::FromRequest as _;
    let request = axum::http::Request::builder()
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .ok()?;
    let mut multipart = axum::extract::Multipart::from_request(request, &())
        .await
        .ok()?;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(FIELD) {
            return field.text().await.ok();
        }
    }
    None
}

/// One field of an urlencoded string. Tokens are hex, so no decoding is
/// needed to compare them.
pub(crate) fn field(encoded: &str, name: &str) -> Option<String> {
    encoded
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn origin_must_name_the_host() {
        let ok = headers(&[("host", "bty.lan:8080"), ("origin", "http://bty.lan:8080")]);
        assert!(check_origin(&ok).is_ok());
        let referer = headers(&[
            ("host", "bty.lan"),
            ("referer", "https://bty.lan/ui/images"),
        ]);
        assert!(check_origin(&referer).is_ok());
        for bad in [
            headers(&[("host", "bty.lan:8080"), ("origin", "http://evil.example")]),
            headers(&[
                ("host", "bty.lan:8080"),
                ("origin", "http://bty.lan:8080@evil"),
            ]),
            headers(&[("host", "bty.lan:8080"), ("origin", "null")]),
            headers(&[("host", "bty.lan:8080")]),
            headers(&[("origin", "http://bty.lan:8080")]),
        ] {
            assert!(check_origin(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn finds_tokens_and_compares_in_constant_time() {
        assert_eq!(field("a=1&csrf=abc", "csrf").as_deref(), Some("abc"));
        assert_eq!(field("a=1", "csrf"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
