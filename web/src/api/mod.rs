//! The JSON/HTTP routes, compatible with upstream bty's (the list is in
//! docs/behaviour.md, "HTTP routes"), and the health probe.

mod bytes;
mod catalog;
mod downloads;
mod events;
mod hashes;
mod images;
mod jobs;
mod upload;

pub(crate) use jobs::JobJson;

use crate::body_limit::{JSON_LIMIT, refuse_declared_over};
use crate::error::{InvalidRequest, WebError};
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bty_proto::v1::MetricsRequest;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;

/// How long `/healthz` waits for btyd before calling it down.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/version", get(version))
        .route("/images", get(images::list))
        .route("/api/images", get(images::rows))
        .route("/catalog.toml", get(catalog::export))
        .route(
            "/catalog/entries",
            get(catalog::list_entries)
                .post(catalog::add_entry)
                .delete(catalog::remove_entry),
        )
        .route("/catalog/import", post(catalog::import))
        .route(
            "/images/{key}",
            get(bytes::get_image)
                .head(bytes::head_image)
                // The daemon enforces the configured upload cap (413); the
                // body is streamed, never buffered, so no limit here.
                .put(upload::put_image)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/images/{key}/{name}",
            get(bytes::get_named).head(bytes::head_named),
        )
        .route(
            "/catalog/downloads",
            get(downloads::list).post(downloads::start),
        )
        .route("/catalog/downloads/{id}", delete(downloads::cancel))
        .route("/catalog/cache/{id}", delete(downloads::delete_cache))
        .route("/api/jobs/{id}", delete(jobs::cancel))
        .route("/metrics", get(metrics))
        .route("/events", get(events::list))
        .route("/events/{id}/ack", post(events::acknowledge))
        .route("/catalog/hashes", get(hashes::list).post(hashes::start))
        .route("/catalog/hashes/{name}", delete(hashes::cancel))
}

/// `GET /metrics`: btyd's counters and gauges, Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, WebError> {
    let text = state
        .events()
        .metrics(MetricsRequest {})
        .await?
        .into_inner()
        .prometheus_text;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    ))
}

/// `GET /healthz`: `200 {"status":"ok"}` (upstream's body) when btyd
/// answers `DescribeStore`, else `503 {"status":"unavailable","detail":…}`
/// (`detail` as in every other error body), so a prober that reads only
/// the code and one that reads `status` agree.
async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let down = |detail: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "detail": detail})),
        )
    };
    match tokio::time::timeout(HEALTH_TIMEOUT, state.store()).await {
        Ok(Ok(_)) => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Ok(Err(status)) => {
            tracing::debug!(code = ?status.code(), detail = status.message(), "health check failed");
            down("btyd is not reachable")
        }
        Err(_) => down("btyd did not answer in time"),
    }
}

/// `GET /version`: `{"version": "<package version>", "revision": "<git>"}`.
/// Upstream's body is `{"version"}`; `revision` is extra. No daemon call:
/// it answers while btyd is down.
async fn version() -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": env!("BTY_GIT_REV"),
    }))
}

/// `Json<T>` whose rejections are [`WebError`]s (JSON `detail`, 422; 413
/// when the body is over [`JSON_LIMIT`]).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        refuse_declared_over(req.headers(), JSON_LIMIT, "a JSON body")?;
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(value)| Self(value))
            .map_err(|rejection: JsonRejection| InvalidRequest::Json(rejection).into())
    }
}

/// `Query<T>` whose rejections are [`WebError`]s (JSON `detail`, 422).
pub(crate) struct QueryArgs<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| InvalidRequest::Query(rejection).into())
    }
}

/// A bare file name as upstream's API accepts it: not empty, no `/`, `\`
/// or NUL (the daemon applies the full rules).
pub(crate) fn check_bare_name(name: &str) -> Result<(), WebError> {
    if name.is_empty() || name.contains(['/', '\\', '\0']) {
        return Err(InvalidRequest::NotBareName {
            name: name.to_owned(),
        }
        .into());
    }
    Ok(())
}
