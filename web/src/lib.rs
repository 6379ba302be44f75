//! bty-web: the HTTP pages and routes of bty, a thin axum + askama adapter
//! over btyd's gRPC API. It never touches the image store itself: every
//! handler validates its input, calls one or two RPCs and converts.
//!
//! btyd embeds it with [`router`] + [`serve`] on a channel to its own socket;
//! the `bty-web` binary runs it standalone against a (possibly remote) daemon.
#![warn(missing_docs)]

mod api;
mod assets;
mod auth;
mod error;
mod fmt;
mod pages;
mod sse;
mod state;

use axum::Router;
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use tonic::transport::Channel;

pub use error::{WebError, status_for_code};

/// Settings of the web adapter that do not come from the daemon.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// Image root shown on the pages when `DescribeStore` cannot be reached
    /// (e.g. the daemon is restarting); the daemon's answer wins otherwise.
    pub image_root_hint: Option<String>,
    /// Login settings. `None` (or neither secret set) serves without a
    /// login, which [`validate`] allows on loopback addresses only.
    pub auth: Option<WebAuth>,
}

/// How operators and API clients prove who they are (config `[web]`).
#[derive(Clone, Default)]
pub struct WebAuth {
    /// Hex sha256 of the login password.
    pub password_sha256: Option<String>,
    /// A bearer token for API clients (`Authorization: Bearer …`); it is
    /// also accepted as the password on the login form.
    pub token: Option<String>,
}

impl std::fmt::Debug for WebAuth {
    // Secrets stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAuth")
            .field(
                "password_sha256",
                &self.password_sha256.as_ref().map(|_| "…"),
            )
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

impl WebAuth {
    /// Whether at least one usable secret is configured.
    pub fn is_configured(&self) -> bool {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        set(&self.password_sha256) || set(&self.token)
    }
}

/// Refuse to serve without a login anywhere but loopback, and refuse a
/// malformed password hash. Call before [`serve`]; there is never a
/// default password.
pub fn validate(listen: SocketAddr, auth: &Option<WebAuth>) -> Result<(), WebError> {
    let configured = auth.as_ref().is_some_and(WebAuth::is_configured);
    if let Some(hash) = auth.as_ref().and_then(|a| a.password_sha256.as_deref())
        && !hash.trim().is_empty()
        && !auth::is_sha256_hex(hash.trim())
    {
        return Err(WebError::Config(
            "[web] password_sha256 must be 64 hex digits (sha256 of the password)".to_owned(),
        ));
    }
    if !configured && !listen.ip().is_loopback() {
        return Err(WebError::Config(format!(
            "refusing to serve the web UI on {listen} without a login: set [web] \
             password_sha256 or token in the config, or listen on a loopback address"
        )));
    }
    Ok(())
}

/// The whole web adapter: pages under `/ui`, JSON/HTTP routes compatible
/// with upstream bty, `/healthz` and the embedded static assets, behind the
/// login and CSRF checks.
///
/// `channel` is a (lazy) gRPC channel to btyd; nothing is sent until a
/// request needs it.
pub fn router(channel: Channel, options: WebOptions) -> Router {
    let state = state::AppState::new(channel, options);
    Router::new()
        .route("/", get(pages::index))
        .merge(pages::routes())
        .merge(api::routes())
        .merge(auth::routes())
        .route("/events/workers", get(sse::workers))
        .merge(assets::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state)
}

/// Serve `router` on `listener` until `shutdown` resolves, then finish the
/// requests in flight and return. Open event streams are ended at shutdown
/// so they do not hold the server open.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shutdown = async move {
        shutdown.await;
        sse::end_all_streams();
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_may_run_without_login_other_addresses_may_not() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap_or_else(|_| unreachable!());
        let v6: SocketAddr = "[::1]:8080".parse().unwrap_or_else(|_| unreachable!());
        let lan: SocketAddr = "0.0.0.0:8080".parse().unwrap_or_else(|_| unreachable!());
        assert!(validate(loopback, &None).is_ok());
        assert!(validate(v6, &None).is_ok());
        let refused = validate(lan, &None).map_err(|e| e.to_string());
        assert!(refused.is_err_and(|e| e.contains("without a login")));
        let empty = Some(WebAuth::default());
        assert!(validate(lan, &empty).is_err());
        let token = Some(WebAuth {
            token: Some("s3cret".to_owned()),
            ..WebAuth::default()
        });
        assert!(validate(lan, &token).is_ok());
        let bad_hash = Some(WebAuth {
            password_sha256: Some("xyz".to_owned()),
            ..WebAuth::default()
        });
        assert!(validate(loopback, &bad_hash).is_err());
    }
}
