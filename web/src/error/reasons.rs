//! What went wrong, per HTTP status class of [`super::WebError`]: each
//! variant names the problem in its fields, and its `Display` is the text
//! the client sees (kept word for word: clients and tests match on it).

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::http::Method;
use std::net::SocketAddr;
use thiserror::Error;

/// The request's content is not acceptable (400).
#[derive(Debug, Error)]
pub enum BadRequest {
    /// An upload's name is not a bare file name.
    #[error("invalid name {name:?}: must be a bare filename")]
    UploadName {
        /// The name given.
        name: String,
    },
    /// The upload's stream to btyd could not take its first message.
    #[error("upload could not start")]
    UploadNotStarted,
    /// The client's body ended with an error mid-upload.
    #[error("upload of {name} was interrupted")]
    UploadInterrupted {
        /// The file being uploaded.
        name: String,
    },
    /// A download form's URL has a scheme bty does not fetch.
    #[error("{url:?} is not an http://, https:// or oras:// URL")]
    ImageUrl {
        /// The URL given.
        url: String,
    },
    /// A catalog upload whose file name does not end in `.toml`.
    #[error("unexpected file extension for {file_name:?}: expected a .toml catalog")]
    CatalogExtension {
        /// The uploaded file's name.
        file_name: String,
    },
    /// A catalog upload with no bytes.
    #[error("upload was empty")]
    EmptyUpload,
    /// The flash form names no image.
    #[error("choose an image to flash")]
    NoImage,
    /// The flash form names no target.
    #[error("choose at least one target disk")]
    NoTarget,
    /// A chosen target disk is gone from the listing.
    #[error("{path} is no longer present")]
    TargetGone {
        /// The disk's path.
        path: String,
    },
    /// A chosen target disk may not be written.
    #[error("{path} may not be written: {}", .refusals.join("; "))]
    TargetRefused {
        /// The disk's path.
        path: String,
        /// btyd's reasons.
        refusals: Vec<String>,
    },
    /// The chosen image can be neither read locally nor streamed.
    #[error("the chosen image is neither cached nor streamable")]
    NotFlashable,
    /// A confirmed target lacks one of its identity fields.
    #[error("the confirmation is incomplete")]
    ConfirmationIncomplete,
    /// The confirmation form carries no target.
    #[error("no confirmed target")]
    NoConfirmedTarget,
    /// The confirmation box was not ticked.
    #[error("tick the confirmation box to flash")]
    NotConfirmed,
}

/// The request does not have the expected shape (422).
#[derive(Debug, Error)]
pub enum InvalidRequest {
    /// A required field is missing or empty.
    #[error("{field} is required")]
    Missing {
        /// The field's name.
        field: &'static str,
    },
    /// A catalog import source that is neither a URL nor a reference.
    #[error(
        "source {given:?} is not an http(s):// URL or oras:// reference; the daemon \
         does not read paths: upload the catalog file instead"
    )]
    CatalogSource {
        /// What was given.
        given: String,
    },
    /// A name that is not a bare file name.
    #[error("name must be a bare file name, got {name:?}")]
    NotBareName {
        /// The name given.
        name: String,
    },
    /// The JSON body did not parse into the route's request.
    #[error("{}", .0.body_text())]
    Json(#[source] JsonRejection),
    /// The query string did not parse into the route's parameters.
    #[error("{}", .0.body_text())]
    Query(#[source] QueryRejection),
    /// A catalog upload that is not a multipart form.
    #[error("upload is not a multipart form: {}", .0.body_text())]
    NotMultipart(#[source] MultipartRejection),
    /// The urlencoded form did not parse into the page's fields.
    #[error("{}", .0.body_text())]
    Form(#[source] FormRejection),
    /// A multipart catalog upload without its `file` field.
    #[error("no file in upload")]
    NoFile,
    /// A multipart catalog upload that broke off or is malformed.
    #[error("could not read the upload: {}", .0.body_text())]
    UploadRead(#[source] MultipartError),
}

/// The named thing does not exist (404).
#[derive(Debug, Error)]
pub enum NotFound {
    /// No image answers to this key.
    #[error("no such image: {key}")]
    Image {
        /// The key asked for.
        key: String,
    },
    /// No download of this entry is queued or running.
    #[error("no active download named {key:?}")]
    ActiveDownload {
        /// The entry asked for.
        key: String,
    },
    /// No hash of this file is queued or running.
    #[error("no active hash named {name:?}")]
    ActiveHash {
        /// The file asked for.
        name: String,
    },
    /// No listed row has this id, ref or sha256.
    #[error("no image row {id}")]
    Row {
        /// The id asked for.
        id: String,
    },
    /// No page has an activity card of this name.
    #[error("no activity card {name:?} (images, downloads, hashing or flash)")]
    ActivityCard {
        /// The name asked for.
        name: String,
    },
    /// The event log holds no event with this id (never, or no longer).
    #[error("no event {id} in the event log")]
    Event {
        /// The id asked for.
        id: u64,
    },
    /// No route has this path.
    #[error("no such page or route: {method} {path}")]
    Route {
        /// The request's method.
        method: Method,
        /// The path as shown (percent-encoded, cut short).
        path: String,
    },
}

/// The request body is over the route's limit (413).
#[derive(Debug, Error)]
pub enum TooLarge {
    /// A form (read whole for its CSRF token) is over its limit.
    #[error("form is too large")]
    Form,
    /// A body declares more bytes than its kind may have.
    #[error("the request body declares {declared} bytes; {what} may have at most {}", Size(*.limit))]
    Declared {
        /// Its `Content-Length`.
        declared: u64,
        /// The kind of body ("a JSON body", "a form").
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// A catalog upload over btyd's catalog limit.
    #[error(
        "catalog upload is larger than btyd's max_catalog_bytes ({limit} bytes); \
         is this actually a catalog.toml?"
    )]
    CatalogUpload {
        /// btyd's `max_catalog_bytes`.
        limit: usize,
    },
}

/// The request was refused (403).
#[derive(Debug, Error)]
pub enum Forbidden {
    /// A state-changing request from another site (the check says why).
    #[error("{0}")]
    Origin(&'static str),
    /// A state-changing request without its session's CSRF token.
    #[error("missing or wrong CSRF token: reload the page")]
    CsrfToken,
    /// No random bytes for a session id.
    #[error("cannot start a session right now")]
    NoSession(#[source] std::io::Error),
}

/// The adapter's settings are unusable (start-up only).
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The access token is too short to resist guessing.
    #[error(
        "the web access token must be at least {min} characters \
         ([web] token, or leave it unset for a random one)"
    )]
    ShortToken {
        /// The least length.
        min: usize,
    },
    /// `[web] password_hash` is not an argon2id PHC string.
    #[error(
        "[web] password_hash must be an argon2id PHC string ($argon2id$v=19$…); \
         make one with `btyd hash-password`"
    )]
    PasswordHash,
    /// A `[web] hosts` entry that is not a host name.
    #[error("[web] hosts: {host:?} is not a host name (letters, digits, '-' and '.', no port)")]
    Host {
        /// The entry.
        host: String,
    },
    /// Plain HTTP on a non-loopback address without `insecure`.
    #[error(
        "refusing to serve the web UI on {listen} over plain HTTP: passwords, tokens and \
         session cookies would cross the network in clear. Set [web] tls_cert and \
         tls_key (bty-web: --tls-cert/--tls-key), listen on a loopback address, or set \
         [web] insecure = true (bty-web: --insecure) to accept the risk"
    )]
    PlainHttp {
        /// The listening address.
        listen: SocketAddr,
    },
    /// Hashing a password failed.
    #[error("cannot hash the password: {0}")]
    HashPassword(#[source] argon2::password_hash::Error),
}

/// A byte limit as an operator would write it (`2 MiB`, `64 KiB`).
struct Size(u64);

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_multiple_of(1 << 20) {
            write!(f, "{} MiB", self.0 >> 20)
        } else {
            write!(f, "{} KiB", self.0 >> 10)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WebError;
    use std::time::Duration;

    /// The texts clients see are the ones the adapter sent before its
    /// errors were typed, word for word.
    #[test]
    fn typed_errors_read_as_before() {
        let cases: Vec<(WebError, &str)> = vec![
            (
                TooLarge::Declared {
                    declared: 3 << 20,
                    what: "a JSON body",
                    limit: 1 << 20,
                }
                .into(),
                "the request body declares 3145728 bytes; a JSON body may have at most 1 MiB",
            ),
            (
                BadRequest::TargetRefused {
                    path: "/dev/sdb".to_owned(),
                    refusals: vec!["mounted".to_owned(), "system disk".to_owned()],
                }
                .into(),
                "/dev/sdb may not be written: mounted; system disk",
            ),
            (
                InvalidRequest::Missing { field: "src" }.into(),
                "src is required",
            ),
            (
                NotFound::Route {
                    method: Method::DELETE,
                    path: "/x".to_owned(),
                }
                .into(),
                "no such page or route: DELETE /x",
            ),
            (
                WebError::MethodNotAllowed {
                    method: Method::PUT,
                    path: "/ui/images".to_owned(),
                },
                "/ui/images does not take PUT requests",
            ),
            (
                WebError::Timeout {
                    idle: Duration::from_secs(30),
                },
                "the request body stopped arriving: nothing came for 30s",
            ),
            (
                ConfigError::ShortToken { min: 32 }.into(),
                "the web access token must be at least 32 characters \
                 ([web] token, or leave it unset for a random one)",
            ),
            (
                ConfigError::PlainHttp {
                    listen: "192.0.2.1:8080".parse().unwrap(),
                }
                .into(),
                "refusing to serve the web UI on 192.0.2.1:8080 over plain HTTP: passwords, \
                 tokens and session cookies would cross the network in clear. Set [web] \
                 tls_cert and tls_key (bty-web: --tls-cert/--tls-key), listen on a loopback \
                 address, or set [web] insecure = true (bty-web: --insecure) to accept the risk",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn each_class_keeps_its_status() {
        use axum::http::StatusCode;
        let statuses = [
            (WebError::from(BadRequest::NoImage), StatusCode::BAD_REQUEST),
            (
                InvalidRequest::NoFile.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                NotFound::Row { id: "r".to_owned() }.into(),
                StatusCode::NOT_FOUND,
            ),
            (TooLarge::Form.into(), StatusCode::PAYLOAD_TOO_LARGE),
            (Forbidden::CsrfToken.into(), StatusCode::FORBIDDEN),
            (
                ConfigError::PasswordHash.into(),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (error, status) in statuses {
            assert_eq!(error.status(), status, "{error}");
        }
    }
}
