//! The one error type of the web adapter and its HTTP faces: JSON
//! `{"detail": …}` for API routes, an HTML page for UI pages, and a
//! `303 /ui/images?error=…` redirect for UI forms.

mod reasons;

pub use reasons::{BadRequest, ConfigError, Forbidden, InvalidRequest, NotFound, TooLarge};

use crate::fmt::percent_encode;
use crate::pages::Chrome;
use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::time::Duration;
use thiserror::Error;
use tonic::Code;

/// Why a web request failed. The message is safe to show to the operator:
/// internal details of failed RPCs are logged, not returned.
#[derive(Debug, Error)]
pub enum WebError {
    /// btyd answered with an error status.
    #[error("{}", grpc_message(.0))]
    Grpc(#[from] tonic::Status),
    /// The request is well-formed but its content is not acceptable (400).
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    /// The request does not have the expected shape (422).
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequest),
    /// The named thing does not exist (404).
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// The route does not take this method (405).
    #[error("{path} does not take {method} requests")]
    MethodNotAllowed {
        /// The request's method.
        method: Method,
        /// The path as shown (percent-encoded, cut short).
        path: String,
    },
    /// The request body is over the route's limit (413).
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// btyd cancelled the upload: its job was cancelled (409).
    #[error("the upload of {name} was cancelled (its job was cancelled); nothing was stored")]
    UploadCancelled {
        /// The file that was being uploaded.
        name: String,
    },
    /// The client stopped sending the request (408).
    #[error("the request body stopped arriving: nothing came for {idle:?}")]
    Timeout {
        /// How long the body was silent.
        idle: Duration,
    },
    /// A page failed to render (500).
    #[error("page rendering failed")]
    Render(#[from] askama::Error),
    /// The request needs a login (401).
    #[error("login required")]
    Unauthorized,
    /// Too many failed logins from this client or overall (429).
    #[error("too many failed logins: wait and try again")]
    TooManyAttempts,
    /// The request was refused, e.g. by the CSRF checks (403).
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The adapter's settings are unusable (start-up only).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The text shown for a gRPC status: the daemon's message for the codes it
/// uses to talk to clients, a neutral phrase for everything else.
fn grpc_message(status: &tonic::Status) -> String {
    match status.code() {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::ResourceExhausted
        | Code::OutOfRange
        | Code::Unimplemented => status.message().to_owned(),
        // Transport errors name sockets and addresses: keep those in the log.
        Code::Unavailable => "btyd is not reachable".to_owned(),
        _ => "internal error in btyd".to_owned(),
    }
}

impl WebError {
    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Grpc(status) => status_for_code(status.code()),
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::InvalidRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::UploadCancelled { .. } => StatusCode::CONFLICT,
            Self::Render(_) | Self::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// Log what the operator does not see (server-side faults only).
    fn log(&self) {
        match self {
            Self::Grpc(status) if self.status().is_server_error() => {
                tracing::warn!(code = ?status.code(), detail = status.message(), "btyd call failed");
            }
            Self::Render(source) => tracing::error!(error = %source, "template rendering failed"),
            _ => {}
        }
    }

    /// The UI-form face: back to the images page with the message.
    pub(crate) fn redirect_to_images(&self) -> Redirect {
        self.redirect_to("/ui/images")
    }

    /// The UI-form face: back to `page` with the message.
    pub(crate) fn redirect_to(&self, page: &str) -> Redirect {
        self.log();
        redirect_with_error(page, &self.to_string())
    }

    /// [`Self::redirect_to`] with more of the query string after `?error=`
    /// (`extra` is `&name=value…`, already encoded).
    pub(crate) fn redirect_to_with(&self, page: &str, extra: &str) -> Redirect {
        self.log();
        Redirect::to(&format!(
            "{page}?error={}{extra}",
            percent_encode(&self.to_string())
        ))
    }
}

/// `303 <page>?error=<message>`, the pattern every UI form uses.
pub(crate) fn redirect_with_error(page: &str, message: &str) -> Redirect {
    Redirect::to(&format!("{page}?error={}", percent_encode(message)))
}

/// The HTTP status for a gRPC code. Codes btyd does not use to describe a
/// client's mistake (including `Ok`, which never arrives as an error) are 500.
pub fn status_for_code(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::PAYLOAD_TOO_LARGE,
        Code::OutOfRange => StatusCode::RANGE_NOT_SATISFIABLE,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        self.log();
        let body = serde_json::json!({ "detail": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}

/// A [`WebError`] met while rendering a page: answered with an HTML page.
#[derive(Debug)]
pub(crate) struct PageError(pub(crate) WebError);

impl From<WebError> for PageError {
    fn from(error: WebError) -> Self {
        Self(error)
    }
}

impl From<tonic::Status> for PageError {
    fn from(status: tonic::Status) -> Self {
        Self(WebError::Grpc(status))
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    code: u16,
    reason: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        let status = self.0.status();
        let page = ErrorPage {
            chrome: Chrome::bare(),
            code: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.0.to_string(),
        };
        (status, page).into_response()
    }
}
