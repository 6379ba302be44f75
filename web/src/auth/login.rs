//! `GET/POST /ui/login`, `GET /login?token=…` and `POST /ui/logout`: the
//! password form, the start-up login URL, the session cookie, and where the
//! browser goes next.

use super::{Viewer, client_ip, cookie, session};
use crate::body_limit::FormBody;
use crate::error::{Forbidden, PageError, WebError};
use crate::pages::Chrome;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, RETRY_AFTER, SET_COOKIE};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::time::Duration;

/// Slows password guessing down; a person does not notice.
pub(crate) const FAILURE_DELAY: Duration = Duration::from_millis(400);

/// Where a login lands without a (valid) `next`.
const HOME: &str = "/ui/images";

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    chrome: Chrome,
    next: String,
    error: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// Whether `next` is a path of this site after any browser normalisation:
/// only `/`, `/ui` and `/ui/…`, with no control characters, backslashes,
/// empty or dot segments, or percent-encoded slashes, backslashes, dots or
/// control characters (browsers turn `/\t/evil`, `/\evil` and `/%2fevil`
/// into other hosts or paths). Anything else lands on the images page.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| is_safe_next(n))
        .map_or_else(|| HOME.to_owned(), str::to_owned)
}

fn is_safe_next(next: &str) -> bool {
    if next.len() > 2048
        || next
            .bytes()
            .any(|b| b.is_ascii_control() || b == b'\\' || b == b' ')
    {
        return false;
    }
    let lower = next.to_ascii_lowercase();
    // Encoded `/`, `\`, `.`, `%` and control characters (%00-%1f, %7f).
    let encoded_danger = lower.match_indices('%').any(|(i, _)| {
        let code = lower.get(i + 1..i + 3).unwrap_or("");
        matches!(code, "2f" | "5c" | "2e" | "25" | "7f")
            || code.starts_with('0')
            || code.starts_with('1')
            || code.len() < 2
    });
    if encoded_danger {
        return false;
    }
    let path = next.split(['?', '#']).next().unwrap_or("");
    if path.contains("//") || path.split('/').any(|seg| seg == "." || seg == "..") {
        return false;
    }
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

pub(crate) async fn page(viewer: Viewer, Query(query): Query<LoginQuery>) -> LoginPage {
    LoginPage {
        chrome: Chrome::new("login", viewer),
        next: safe_next(query.next.as_deref()),
        error: None,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    password: String,
    next: Option<String>,
}

/// `Set-Cookie` for a new session; `Secure` when the listener speaks TLS.
fn session_cookie(id: &str, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        session::COOKIE,
        session::SESSION_TTL.as_secs()
    )
}

/// 429 with `Retry-After` (whole seconds, at least 1).
pub(crate) fn too_many(wait: Duration, page: Option<LoginPage>) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let retry = [(RETRY_AFTER, secs.max(1).to_string())];
    tracing::info!(retry_after = secs, "login attempts limited");
    match page {
        Some(page) => (StatusCode::TOO_MANY_REQUESTS, retry, page).into_response(),
        None => (
            StatusCode::TOO_MANY_REQUESTS,
            retry,
            WebError::TooManyAttempts,
        )
            .into_response(),
    }
}

/// Check `secret` under the limiter, then start a session and send the
/// browser to `next`; a wrong secret gets the form back with 401.
async fn log_in(
    state: &AppState,
    viewer: Viewer,
    extensions: &Extensions,
    secret: &str,
    next: String,
) -> Result<Response, PageError> {
    let failed = |viewer: Viewer, next: String, error| LoginPage {
        chrome: Chrome::new("login", viewer),
        next,
        error: Some(error),
    };
    let attempt = match state.limiter().begin(client_ip(extensions)) {
        Ok(attempt) => attempt,
        Err(wait) => {
            let page = failed(viewer, next, "Too many failed logins: wait a moment.");
            return Ok(too_many(wait, Some(page)));
        }
    };
    if !state.credentials().secret_matches(secret).await {
        tracing::info!("failed login");
        tokio::time::sleep(FAILURE_DELAY).await;
        let page = failed(viewer, next, "Wrong password or token.");
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    attempt.succeeded();
    let (id, _csrf) = state.sessions().create().map_err(|error| {
        tracing::error!(%error, "cannot read random bytes for a session");
        WebError::from(Forbidden::NoSession(error))
    })?;
    tracing::info!("login");
    let cookie = session_cookie(&id, state.tls());
    Ok((
        [(SET_COOKIE, cookie), (CACHE_CONTROL, "no-store".to_owned())],
        Redirect::to(&next),
    )
        .into_response())
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    extensions: Extensions,
    FormBody(form): FormBody<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    log_in(&state, viewer, &extensions, &form.password, next).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
    next: Option<String>,
}

/// `GET /login?token=…`: the URL btyd logs at start. A right token sets the
/// session cookie and redirects, so the token leaves the address bar.
pub(crate) async fn with_token(
    State(state): State<AppState>,
    viewer: Viewer,
    extensions: Extensions,
    Query(query): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(query.next.as_deref());
    match query.token.filter(|t| !t.is_empty()) {
        Some(token) => log_in(&state, viewer, &extensions, &token, next).await,
        None => Ok(Redirect::to(&format!(
            "/ui/login?next={}",
            crate::fmt::percent_encode(&next)
        ))
        .into_response()),
    }
}

/// Forget the session and clear the cookie.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Some(id) = cookie(&headers, session::COOKIE) {
        state.sessions().remove(id);
    }
    let clear = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        session::COOKIE
    );
    ([(SET_COOKIE, clear)], Redirect::to("/ui/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        for ok in [
            "/ui/flash?x=1",
            "/",
            "/ui",
            "/ui/images?q=a%20b",
            "/ui/flash#x",
        ] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/ui/\t/evil",
            "/%2f%2fevil.example",
            "/ui/%2F%2Fevil",
            "/%5cevil.example",
            "/ui/%5C",
            "/ui/../..//evil.example",
            "/ui/%2e%2e/x",
            "/ui//evil",
            "/ui/x%0d%0aSet-Cookie:%20a=b",
            "/ui/%",
            "/ui/%252f",
            "/ui/ x",
            "/catalog/entries",
            "/uievil",
            "",
            "evil.example",
        ] {
            assert_eq!(safe_next(Some(bad)), HOME, "{bad:?}");
        }
        assert_eq!(safe_next(None), HOME);
    }
}
