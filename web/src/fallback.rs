//! Answers for requests no route takes. axum's own 404 and 405 have empty
//! bodies; these say what was asked and why it is refused, as a page under
//! `/ui` and as JSON `detail` elsewhere, like every other error.

use crate::auth::refuse;
use crate::error::{NotFound, WebError};
use axum::http::{Method, Uri};
use axum::response::Response;

/// The most of a request path repeated back in a message.
const PATH_SHOWN: usize = 120;

/// 404: no route has this path.
pub(crate) async fn no_route(method: Method, uri: Uri) -> Response {
    refuse(
        uri.path(),
        NotFound::Route {
            method,
            path: shown(uri.path()),
        }
        .into(),
    )
}

/// 405: a route has this path, but not for this method.
pub(crate) async fn wrong_method(method: Method, uri: Uri) -> Response {
    refuse(
        uri.path(),
        WebError::MethodNotAllowed {
            method,
            path: shown(uri.path()),
        },
    )
}

/// The path as it came (still percent-encoded), cut to [`PATH_SHOWN`].
fn shown(path: &str) -> String {
    let mut out: String = path.chars().take(PATH_SHOWN).collect();
    if out.len() < path.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt as _;

    fn app() -> Router {
        Router::new()
            .route("/ui/images", get(|| async { "page" }))
            .route("/healthz", get(|| async { "ok" }))
            .fallback(no_route)
            .method_not_allowed_fallback(wrong_method)
    }

    async fn ask(method: &str, path: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_say_what_was_asked() {
        let (status, body) = ask("GET", "/images/../../etc/passwd").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            body.contains("no such page or route: GET /images/../../etc/passwd"),
            "{body}"
        );
        let (status, body) = ask("DELETE", "/healthz").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            body.contains("/healthz does not take DELETE requests"),
            "{body}"
        );
        // Pages get a page.
        let (status, body) = ask("DELETE", "/ui/images").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            body.contains("<html") || body.contains("<!DOCTYPE"),
            "{body}"
        );
        assert!(
            body.contains("/ui/images does not take DELETE requests"),
            "{body}"
        );
        let long = format!("/{}", "a".repeat(500));
        let (_, body) = ask("GET", &long).await;
        assert!(
            body.contains(&format!("{}…", &long[..PATH_SHOWN])),
            "{body}"
        );
        assert!(!body.contains(&long), "the whole path came back");
    }
}
