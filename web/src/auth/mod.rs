//! Who may use the adapter: no login on loopback, otherwise a password or
//! token from the config (session cookie or bearer token), and CSRF checks
//! on every state-changing request either way.

mod csrf;
mod login;
mod session;

pub(crate) use session::Sessions;

use crate::WebAuth;
use crate::error::{PageError, WebError};
use crate::fmt::percent_encode;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use std::convert::Infallible;

/// Largest urlencoded form body read to find its CSRF field.
const FORM_LIMIT: usize = 64 * 1024;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/login", get(login::page).post(login::submit))
        .route("/ui/logout", post(login::logout))
}

/// Whether `s` is 64 hex digits.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn sha256_hex(s: &str) -> String {
    session::hex(&Sha256::digest(s.as_bytes()))
}

/// The configured secrets, kept only as digests.
pub(crate) struct Credentials {
    password_sha256: Option<String>,
    token_sha256: Option<String>,
}

impl Credentials {
    pub(crate) fn new(auth: &WebAuth) -> Self {
        let given = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            password_sha256: given(&auth.password_sha256).map(|h| h.to_ascii_lowercase()),
            token_sha256: given(&auth.token).map(|t| sha256_hex(&t)),
        }
    }

    /// The login form accepts the password or the token. Both digests are
    /// compared whatever the first outcome, in constant time.
    fn password_matches(&self, password: &str) -> bool {
        let given = sha256_hex(password);
        let check = |want: &Option<String>| {
            want.as_deref()
                .is_some_and(|w| csrf::constant_time_eq(w.as_bytes(), given.as_bytes()))
        };
        let password = check(&self.password_sha256);
        let token = check(&self.token_sha256);
        password | token
    }

    fn token_matches(&self, token: &str) -> bool {
        let given = sha256_hex(token);
        self.token_sha256
            .as_deref()
            .is_some_and(|w| csrf::constant_time_eq(w.as_bytes(), given.as_bytes()))
    }
}

/// What pages need to know about the viewer: whether a login is in use and
/// the CSRF token their forms and scripts must send back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Viewer {
    pub(crate) login_required: bool,
    pub(crate) logged_in: bool,
    pub(crate) csrf: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}

/// Routes anyone may read even when a login is configured: what other
/// machines fetch (upstream serves these open), the login page and assets.
fn is_public(method: &Method, path: &str) -> bool {
    if *method == Method::POST {
        return path == "/ui/login";
    }
    if *method != Method::GET && *method != Method::HEAD {
        return false;
    }
    matches!(path, "/healthz" | "/ui/login" | "/images" | "/catalog.toml")
        || path.starts_with("/static/")
        || path.starts_with("/images/")
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_page(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A cookie's value from the `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn refuse(path: &str, error: WebError) -> Response {
    if is_page(path) {
        PageError(error).into_response()
    } else {
        error.into_response()
    }
}

/// Pages send the browser to the login form; everything else gets 401.
fn login_required(method: &Method, parts: &Parts) -> Response {
    let path = parts.uri.path();
    if is_page(path) && (*method == Method::GET || *method == Method::HEAD) {
        let target = parts
            .uri
            .path_and_query()
            .map_or("/ui/images", |pq| pq.as_str());
        return Redirect::to(&format!("/ui/login?next={}", percent_encode(target))).into_response();
    }
    WebError::Unauthorized.into_response()
}

/// The middleware in front of every route.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, mut body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let mut viewer = Viewer::default();
    let mut by_bearer = false;
    let mut session = None;
    if let Some(credentials) = state.credentials() {
        viewer.login_required = true;
        if let Some(token) = bearer(&parts.headers) {
            if !credentials.token_matches(token) {
                tracing::info!(path, "refused a wrong bearer token");
                return WebError::Unauthorized.into_response();
            }
            by_bearer = true;
        } else if let Some(id) = cookie(&parts.headers, session::COOKIE) {
            session = state.sessions().touch(id);
        }
        if !by_bearer && session.is_none() && !is_public(&method, &path) {
            return login_required(&method, &parts);
        }
        if let Some(session) = &session {
            viewer.logged_in = true;
            viewer.csrf = session.csrf.clone();
        }
    }
    // A bearer token is never sent by a browser on its own, so requests
    // carrying one cannot be forged cross-site.
    if is_state_changing(&method) && !by_bearer {
        if let Err(why) = csrf::check_origin(&parts.headers) {
            tracing::info!(path, why, "refused a state-changing request");
            return refuse(&path, WebError::Forbidden(why.to_owned()));
        }
        if let Some(session) = &session {
            let mut token = csrf::token_in(&parts.headers, parts.uri.query());
            if token.is_none() && is_urlencoded(&parts.headers) {
                let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
                    Ok(bytes) => bytes,
                    Err(_) => {
                        return refuse(&path, WebError::TooLarge("form is too large".to_owned()));
                    }
                };
                token = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|form| csrf::field(form, csrf::FIELD));
                body = Body::from(bytes);
            }
            let valid = token
                .is_some_and(|t| csrf::constant_time_eq(t.as_bytes(), session.csrf.as_bytes()));
            if !valid {
                tracing::info!(path, "refused a request without the session's csrf token");
                return refuse(
                    &path,
                    WebError::Forbidden("missing or wrong CSRF token: reload the page".to_owned()),
                );
            }
        }
    }
    parts.extensions.insert(viewer);
    next.run(Request::from_parts(parts, body)).await
}

fn is_urlencoded(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_accept_password_or_token_only() {
        let auth = WebAuth {
            password_sha256: Some(sha256_hex("hunter2").to_ascii_uppercase()),
            token: Some("t0ken".to_owned()),
        };
        let credentials = Credentials::new(&auth);
        assert!(credentials.password_matches("hunter2"));
        assert!(credentials.password_matches("t0ken"));
        assert!(!credentials.password_matches("hunter3"));
        assert!(credentials.token_matches("t0ken"));
        assert!(!credentials.token_matches("hunter2"));
    }

    #[test]
    fn only_fetch_routes_are_public() {
        assert!(is_public(&Method::GET, "/images/abc/x.img"));
        assert!(is_public(&Method::HEAD, "/images/abc"));
        assert!(!is_public(&Method::PUT, "/images/x.img"));
        assert!(!is_public(&Method::GET, "/ui/images"));
        assert!(!is_public(&Method::GET, "/catalog/downloads"));
        assert!(is_public(&Method::POST, "/ui/login"));
    }
}
