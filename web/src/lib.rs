//! bty-web: the HTTP pages and routes of bty, a thin axum + askama adapter
//! over btyd's gRPC API. It never touches the image store itself: every
//! handler validates its input, calls one or two RPCs and converts.
//!
//! btyd embeds it with [`router`] + [`serve`] on a channel to its own socket;
//! the `bty-web` binary runs it standalone against a (possibly remote) daemon.
#![warn(missing_docs)]

mod api;
mod assets;
mod error;
mod fmt;
mod pages;
mod state;

use axum::Router;
use axum::routing::get;
use std::future::Future;
use tonic::transport::Channel;

pub use error::{WebError, status_for_code};

/// Settings of the web adapter that do not come from the daemon.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// Image root shown on the pages when `DescribeStore` cannot be reached
    /// (e.g. the daemon is restarting); the daemon's answer wins otherwise.
    pub image_root_hint: Option<String>,
}

/// The whole web adapter: pages under `/ui`, JSON/HTTP routes compatible
/// with upstream bty, `/healthz` and the embedded static assets.
///
/// `channel` is a (lazy) gRPC channel to btyd; nothing is sent until a
/// request needs it.
pub fn router(channel: Channel, options: WebOptions) -> Router {
    let state = state::AppState::new(channel, options);
    Router::new()
        .route("/", get(pages::index))
        .merge(pages::routes())
        .merge(api::routes())
        .merge(assets::routes())
        .with_state(state)
}

/// Serve `router` on `listener` until `shutdown` resolves, then finish the
/// requests in flight and return.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
