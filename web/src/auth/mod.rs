//! Who may use the adapter: holders of the access token (bearer header,
//! `/login?token=`, or typed into the form), of the password when one is
//! configured, and browsers with the session cookie either one gave. CSRF
//! checks guard every state-changing request a browser can send.

mod credentials;
mod csrf;
mod limit;
mod login;
mod session;

pub(crate) use credentials::Credentials;
pub use credentials::{hash_password, is_password_hash, random_token};
pub(crate) use limit::Limiter;
pub(crate) use session::Sessions;

use crate::body_limit::{FORM_LIMIT, MULTIPART_LIMIT, refuse_declared_over};
use crate::error::{Forbidden, PageError, TooLarge, WebError};
use crate::fmt::percent_encode;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/login", get(login::page).post(login::submit))
        .route("/login", get(login::with_token))
        .route("/ui/logout", post(login::logout))
}

/// What pages and handlers need to know about the viewer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Viewer {
    /// A credential came with the request (session or bearer token);
    /// `false` only on the public routes.
    pub(crate) authenticated: bool,
    /// A browser session (offers "Log out").
    pub(crate) logged_in: bool,
    /// The token forms and scripts must send back.
    pub(crate) csrf: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}

/// The peer's address, as the server recorded it (unspecified when the
/// router runs without one, as in tests).
pub(crate) fn client_ip(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Routes anyone may use without a credential: the health probe and the
/// version (as upstream: monitors and smoke tests carry no login), the login
/// and the assets; the fetch routes only when the operator made them public.
fn is_public(method: &Method, path: &str, public_read: bool) -> bool {
    if *method == Method::POST {
        return path == "/ui/login";
    }
    if *method != Method::GET && *method != Method::HEAD {
        return false;
    }
    let fetch = matches!(path, "/images" | "/catalog.toml") || path.starts_with("/images/");
    matches!(
        path,
        "/healthz" | "/version" | "/ui/login" | "/login" | "/favicon.ico"
    ) || path.starts_with("/static/")
        || (public_read && fetch)
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

/// An error as a page under `/ui`, as JSON elsewhere.
pub(crate) fn refuse(path: &str, error: WebError) -> Response {
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

/// A bearer token, checked under the login limiter.
async fn check_bearer(state: &AppState, parts: &Parts, token: &str) -> Result<(), Response> {
    let attempt = state
        .limiter()
        .begin(client_ip(&parts.extensions))
        .map_err(|wait| login::too_many(wait, None))?;
    if state.credentials().token_matches(token) {
        attempt.succeeded();
        return Ok(());
    }
    tracing::info!(path = parts.uri.path(), "refused a wrong bearer token");
    tokio::time::sleep(login::FAILURE_DELAY).await;
    Err(WebError::Unauthorized.into_response())
}

/// The kinds of form body a browser submits without script.
enum FormKind {
    Urlencoded,
    Multipart(String),
}

fn form_kind(headers: &HeaderMap) -> Option<FormKind> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Some(FormKind::Urlencoded)
    } else if essence.eq_ignore_ascii_case("multipart/form-data") {
        Some(FormKind::Multipart(value.to_owned()))
    } else {
        None
    }
}

/// The CSRF token of a request: its header, else its form's field. The
/// body is read (bounded) and put back for the handler.
async fn csrf_token(parts: &Parts, body: Body) -> Result<(Option<String>, Body), WebError> {
    if let Some(token) = csrf::header_token(&parts.headers) {
        return Ok((Some(token), body));
    }
    let Some(kind) = form_kind(&parts.headers) else {
        return Ok((None, body));
    };
    let (limit, what) = match kind {
        FormKind::Urlencoded => (FORM_LIMIT, "a form"),
        FormKind::Multipart(_) => (MULTIPART_LIMIT, "a multipart form"),
    };
    refuse_declared_over(&parts.headers, limit, what)?;
    let bytes = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| TooLarge::Form)?;
    let token = match kind {
        FormKind::Urlencoded => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|form| csrf::field(form, csrf::FIELD)),
        FormKind::Multipart(content_type) => {
            csrf::multipart_field(&content_type, bytes.clone()).await
        }
    };
    Ok((token, Body::from(bytes)))
}

/// The middleware in front of every route (behind the Host check).
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, mut body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let mut viewer = Viewer::default();
    let mut by_bearer = false;
    let mut session = None;
    if let Some(token) = bearer(&parts.headers) {
        if let Err(refused) = check_bearer(&state, &parts, token).await {
            return refused;
        }
        by_bearer = true;
    } else if let Some(id) = cookie(&parts.headers, session::COOKIE) {
        session = state.sessions().touch(id);
    }
    viewer.authenticated = by_bearer || session.is_some();
    if !viewer.authenticated && !is_public(&method, &path, state.public_read()) {
        return login_required(&method, &parts);
    }
    if let Some(session) = &session {
        viewer.logged_in = true;
        viewer.csrf = session.csrf.clone();
    }
    // A bearer token is never sent by a browser on its own, so requests
    // carrying one cannot be forged cross-site.
    if is_state_changing(&method) && !by_bearer {
        if let Err(why) = csrf::check_origin(&parts.headers) {
            tracing::info!(path, why, "refused a state-changing request");
            return refuse(&path, Forbidden::Origin(why).into());
        }
        if let Some(session) = &session {
            let (token, restored) = match csrf_token(&parts, body).await {
                Ok(found) => found,
                Err(error) => return refuse(&path, error),
            };
            body = restored;
            let valid = token
                .is_some_and(|t| csrf::constant_time_eq(t.as_bytes(), session.csrf.as_bytes()));
            if !valid {
                tracing::info!(path, "refused a request without the session's csrf token");
                return refuse(&path, Forbidden::CsrfToken.into());
            }
        }
    }
    parts.extensions.insert(viewer);
    // btyd's event log names the browser behind each request.
    let on_behalf_of = format!("web {}", client_ip(&parts.extensions));
    bty_proto::auth::acting_for(&on_behalf_of, next.run(Request::from_parts(parts, body))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_health_login_and_assets_are_public_by_default() {
        assert!(is_public(&Method::GET, "/healthz", false));
        assert!(is_public(&Method::GET, "/version", false));
        assert!(!is_public(&Method::POST, "/version", false));
        assert!(!is_public(&Method::GET, "/catalog/entries", false));
        assert!(!is_public(&Method::GET, "/catalog/entries", true));
        assert!(is_public(&Method::GET, "/login", false));
        assert!(is_public(&Method::POST, "/ui/login", false));
        assert!(is_public(&Method::GET, "/static/bty.js", false));
        assert!(is_public(&Method::GET, "/static/favicon.svg", false));
        assert!(is_public(&Method::GET, "/favicon.ico", false));
        assert!(!is_public(&Method::POST, "/favicon.ico", false));
        assert!(!is_public(&Method::GET, "/images", false));
        assert!(!is_public(&Method::GET, "/images/abc/x.img", false));
        assert!(!is_public(&Method::GET, "/catalog.toml", false));
        assert!(!is_public(&Method::GET, "/ui/images", false));
        assert!(!is_public(&Method::GET, "/ui/flash", false));
    }

    #[test]
    fn public_read_opens_only_the_fetch_routes() {
        assert!(is_public(&Method::GET, "/images", true));
        assert!(is_public(&Method::HEAD, "/images/abc", true));
        assert!(is_public(&Method::GET, "/catalog.toml", true));
        assert!(!is_public(&Method::PUT, "/images/x.img", true));
        assert!(!is_public(&Method::GET, "/api/images", true));
        assert!(!is_public(&Method::GET, "/catalog/downloads", true));
        assert!(!is_public(&Method::GET, "/metrics", true));
    }
}
