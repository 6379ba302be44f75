//! bty-web: the HTTP pages and routes of bty, a thin axum + askama adapter
//! over btyd's gRPC API. It never touches the image store itself: every
//! handler validates its input, calls one or two RPCs and converts.
//!
//! btyd embeds it with [`router`] + [`serve`] on a channel to its own socket;
//! the `bty-web` binary runs it standalone against a (possibly remote) daemon.
//!
//! Who can reach it: anyone who can open its TCP port, and any web page the
//! operator's browser visits. So every route but `/healthz`, `/version`,
//! the login and the static assets (and, when [`WebOptions::public_read`] says so, the
//! read-only fetch routes) needs a credential: the access token, a password
//! login, or the session cookie either one gave. Requests naming a Host that
//! is not this listener's are refused (DNS rebinding), and every answer
//! carries a strict Content-Security-Policy.
#![warn(missing_docs)]

mod access;
mod api;
mod assets;
mod auth;
mod body_limit;
mod body_timeout;
mod error;
mod fallback;
mod fmt;
mod pages;
mod redact;
mod serve;
mod sse;
mod state;

use axum::Router;
use axum::routing::get;
use std::net::SocketAddr;
use tonic::transport::Channel;

pub use auth::{hash_password, is_password_hash, random_token};
pub use error::{
    BadRequest, ConfigError, Forbidden, InvalidRequest, NotFound, TooLarge, WebError,
    status_for_code,
};
pub use serve::{TlsError, load_tls, serve};

/// The version `--version` prints: the package version and the git revision
/// it was built from (`unknown` outside a git checkout).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BTY_GIT_REV"), ")");

/// Settings of the web adapter that do not come from the daemon.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Image root shown on the pages when `DescribeStore` cannot be reached
    /// (e.g. the daemon is restarting); the daemon's answer wins otherwise.
    pub image_root_hint: Option<String>,
    /// How operators and API clients prove who they are.
    pub auth: WebAuth,
    /// The address the listener is bound to: requests must name it (or
    /// `localhost`, or one of [`WebOptions::hosts`]) in their Host header.
    pub listen: SocketAddr,
    /// Host names (no port) this listener answers to besides its address.
    pub hosts: Vec<String>,
    /// Serve `GET /images`, `/images/*` and `/catalog.toml` without a
    /// credential (for other bty servers and PXE clients).
    pub public_read: bool,
    /// The listener speaks TLS: session cookies are `Secure` and URLs this
    /// adapter builds say `https`.
    pub tls: bool,
}

impl WebOptions {
    /// Options for a listener on `listen` with access token `token`, no
    /// password, no extra host names, nothing public, plain HTTP.
    pub fn new(listen: SocketAddr, token: String) -> Self {
        Self {
            image_root_hint: None,
            auth: WebAuth {
                token,
                password_hash: None,
            },
            listen,
            hosts: Vec::new(),
            public_read: false,
            tls: false,
        }
    }
}

/// The secrets (config `[web]`).
#[derive(Clone)]
pub struct WebAuth {
    /// The access token: `Authorization: Bearer …`, `/login?token=…`, or
    /// typed into the login form. btyd makes a random one at each start
    /// unless the config names one.
    pub token: String,
    /// Optional argon2id PHC string of the login password
    /// (`btyd hash-password` prints one).
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for WebAuth {
    // Secrets stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAuth")
            .field("token", &"…")
            .field("password_hash", &self.password_hash.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Shortest access token accepted (a configured one; generated ones are 64
/// hex digits).
pub const MIN_TOKEN_LEN: usize = 16;

/// Refuse settings that would leave the listener open: a missing or short
/// token, a password hash that is not argon2id, and plain HTTP off
/// loopback unless `insecure` says the operator accepts it. Call before
/// [`serve`].
pub fn validate(options: &WebOptions, insecure: bool) -> Result<(), ConfigError> {
    if options.auth.token.trim().len() < MIN_TOKEN_LEN {
        return Err(ConfigError::ShortToken { min: MIN_TOKEN_LEN });
    }
    if let Some(hash) = &options.auth.password_hash
        && !is_password_hash(hash)
    {
        return Err(ConfigError::PasswordHash);
    }
    for host in &options.hosts {
        if !access::is_host_name(host) {
            return Err(ConfigError::Host { host: host.clone() });
        }
    }
    if !options.tls && !options.listen.ip().is_loopback() && !insecure {
        return Err(ConfigError::PlainHttp {
            listen: options.listen,
        });
    }
    Ok(())
}

/// The URL that logs a browser in with `token` (the Jupyter convention):
/// `http(s)://HOST:PORT/login?token=…`. HOST is the listen address, or the
/// first configured host name (else 127.0.0.1) when it listens everywhere.
pub fn login_url(options: &WebOptions, token: &str) -> String {
    let scheme = if options.tls { "https" } else { "http" };
    let port = options.listen.port();
    let host = if options.listen.ip().is_unspecified() {
        options
            .hosts
            .first()
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".to_owned())
    } else {
        match options.listen.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        }
    };
    format!(
        "{scheme}://{host}:{port}/login?token={}",
        fmt::percent_encode(token)
    )
}

/// The whole web adapter: pages under `/ui`, JSON/HTTP routes compatible
/// with upstream bty, `/healthz` and the embedded static assets, behind the
/// Host allow-list, the login and CSRF checks, and the security headers.
///
/// `channel` is a (lazy) gRPC channel to btyd; nothing is sent until a
/// request needs it.
pub fn router(channel: Channel, options: WebOptions) -> Router {
    let hosts = access::HostAllowList::new(options.listen, &options.hosts);
    let state = state::AppState::new(channel, options);
    Router::new()
        .route("/", get(pages::index))
        .merge(pages::routes())
        .merge(api::routes())
        .merge(auth::routes())
        .route("/events/workers", get(sse::workers))
        .merge(assets::routes())
        .fallback(fallback::no_route)
        .method_not_allowed_fallback(fallback::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        // Outside the guard, which reads form bodies for their CSRF field.
        .layer(axum::middleware::from_fn_with_state(
            body_timeout::BODY_IDLE,
            body_timeout::limit_body_idle,
        ))
        // Outside the login: a rebinding page learns nothing, not even
        // whether a login exists.
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            access::check_host,
        ))
        // Outermost, so refusals carry the headers too.
        .layer(axum::middleware::map_response(access::security_headers))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(listen: &str) -> WebOptions {
        let listen = listen.parse().unwrap_or_else(|_| unreachable!());
        WebOptions::new(listen, "0123456789abcdef0123".to_owned())
    }

    #[test]
    fn plain_http_only_on_loopback_unless_insecure() {
        assert!(validate(&options("127.0.0.1:8080"), false).is_ok());
        assert!(validate(&options("[::1]:8080"), false).is_ok());
        let lan = options("0.0.0.0:8080");
        let refused = validate(&lan, false).map_err(|e| e.to_string());
        assert!(refused.is_err_and(|e| e.contains("tls_cert") && e.contains("insecure")));
        assert!(validate(&lan, true).is_ok());
        let tls = WebOptions { tls: true, ..lan };
        assert!(validate(&tls, false).is_ok());
    }

    #[test]
    fn short_tokens_and_foreign_hashes_are_refused() {
        let mut short = options("127.0.0.1:8080");
        short.auth.token = "s3cret".to_owned();
        assert!(validate(&short, false).is_err());
        let mut sha = options("127.0.0.1:8080");
        sha.auth.password_hash = Some("ab".repeat(32));
        assert!(validate(&sha, false).is_err());
        let mut bad_host = options("127.0.0.1:8080");
        bad_host.hosts = vec!["bty.lan:8080".to_owned()];
        assert!(validate(&bad_host, false).is_err());
    }

    #[test]
    fn login_urls_name_a_reachable_host() {
        let url = login_url(&options("127.0.0.1:8080"), "a b");
        assert_eq!(url, "http://127.0.0.1:8080/login?token=a%20b");
        let mut any = options("0.0.0.0:9000");
        any.tls = true;
        assert_eq!(login_url(&any, "t"), "https://127.0.0.1:9000/login?token=t");
        any.hosts = vec!["bty.lan".to_owned()];
        assert_eq!(login_url(&any, "t"), "https://bty.lan:9000/login?token=t");
        let v6 = options("[::1]:80");
        assert_eq!(login_url(&v6, "t"), "http://[::1]:80/login?token=t");
    }
}
