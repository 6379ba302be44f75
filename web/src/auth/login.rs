//! `GET/POST /ui/login` and `POST /ui/logout`: the password form, the
//! session cookie, and where the browser goes next.

use super::{Viewer, cookie, session};
use crate::error::{PageError, WebError};
use crate::pages::Chrome;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::time::Duration;

/// Slows password guessing down; a person does not notice.
const FAILURE_DELAY: Duration = Duration::from_millis(400);

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    chrome: Chrome,
    next: String,
    error: Option<&'static str>,
    login_required: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// Only same-site paths: `//host` and `/\host` would leave the site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            n.to_owned()
        }
        _ => "/ui/images".to_owned(),
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<LoginQuery>,
) -> LoginPage {
    LoginPage {
        login_required: state.credentials().is_some(),
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

/// Whether the browser reached us over TLS (directly or via a proxy that
/// says so), so the cookie must be `Secure`.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    let Some(credentials) = state.credentials() else {
        // No login configured: nothing to check, carry on.
        return Ok(Redirect::to(&next).into_response());
    };
    if !credentials.password_matches(&form.password) {
        tracing::info!("failed login");
        tokio::time::sleep(FAILURE_DELAY).await;
        let page = LoginPage {
            chrome: Chrome::new("login", viewer),
            next,
            error: Some("Wrong password or token."),
            login_required: true,
        };
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    let (id, _csrf) = state.sessions().create().map_err(|error| {
        tracing::error!(%error, "cannot read random bytes for a session");
        WebError::Forbidden("cannot start a session right now".to_owned())
    })?;
    let secure = if over_tls(&headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        session::COOKIE,
        session::SESSION_TTL.as_secs()
    );
    tracing::info!("login");
    Ok(([(SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
}

/// Forget the session and clear the cookie.
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
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
        assert_eq!(safe_next(Some("/ui/flash?x=1")), "/ui/flash?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/ui/images");
        assert_eq!(safe_next(Some("/\\evil.example")), "/ui/images");
        assert_eq!(safe_next(Some("https://evil.example")), "/ui/images");
        assert_eq!(safe_next(None), "/ui/images");
    }
}
