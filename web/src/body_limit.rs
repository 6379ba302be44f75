//! Request bodies refused on the length they declare, before a byte of
//! them is read.
//!
//! Read, a body declared over its limit would fail only once the limit's
//! worth had arrived, or hold its handler until the body idle limit (408)
//! for bytes that are never coming. Refusing on `Content-Length` answers
//! 413 at once and names the limit. A body without a declared length
//! (chunked) is still cut by the reader's own limit.

use crate::error::{InvalidRequest, PageError, TooLarge, WebError};
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use serde::de::DeserializeOwned;

/// The most a JSON body may hold: axum's default body limit, which no JSON
/// route raises.
pub(crate) const JSON_LIMIT: u64 = 2 << 20;
/// The most an urlencoded form may hold (every form bty-web serves is a
/// few short fields).
pub(crate) const FORM_LIMIT: u64 = 64 << 10;
/// The most a multipart form may hold when it is read whole to find its
/// CSRF field (the catalog upload: 1 MiB of TOML plus framing).
pub(crate) const MULTIPART_LIMIT: u64 = 2 << 20;

/// The body's declared length, if it declares one that parses.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()
}

/// 413 when the body declares more than `limit` bytes; `what` names the
/// kind of body ("a JSON body", "a form").
pub(crate) fn refuse_declared_over(
    headers: &HeaderMap,
    limit: u64,
    what: &'static str,
) -> Result<(), WebError> {
    match declared_length(headers) {
        Some(declared) if declared > limit => Err(TooLarge::Declared {
            declared,
            what,
            limit,
        }
        .into()),
        _ => Ok(()),
    }
}

/// `Form<T>` (urlencoded) refused on its declared length first, and whose
/// rejections are error pages (every form bty-web serves is a page's).
pub(crate) struct FormBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        refuse_declared_over(req.headers(), FORM_LIMIT, "a form")?;
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|axum::Form(value)| Self(value))
            .map_err(|rejection: FormRejection| PageError(InvalidRequest::Form(rejection).into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_length(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_LENGTH,
            HeaderValue::from_str(value).expect("header value"),
        );
        headers
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_naming_both() {
        let error = refuse_declared_over(&with_length("65537"), FORM_LIMIT, "a form")
            .expect_err("over the limit");
        assert_eq!(
            error.to_string(),
            "the request body declares 65537 bytes; a form may have at most 64 KiB"
        );
        let error = refuse_declared_over(&with_length("99999999999999"), JSON_LIMIT, "a JSON body")
            .expect_err("over the limit");
        assert_eq!(
            error.to_string(),
            "the request body declares 99999999999999 bytes; a JSON body may have at most 2 MiB"
        );
    }

    #[test]
    fn at_the_limit_unparsable_or_undeclared_is_left_to_the_reader() {
        assert!(refuse_declared_over(&with_length("65536"), FORM_LIMIT, "a form").is_ok());
        assert!(refuse_declared_over(&with_length("-1"), FORM_LIMIT, "a form").is_ok());
        assert!(refuse_declared_over(&HeaderMap::new(), FORM_LIMIT, "a form").is_ok());
    }
}
