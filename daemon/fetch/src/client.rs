//! The shared `reqwest::Client`: ring as the TLS provider, our user agent, no
//! transparent decompression, a connect timeout, and a redirect policy that
//! never leaves https for plain http.

use std::sync::Once;
use std::time::Duration;

use crate::error::FetchError;

/// `bty/<crate version>`, sent as `User-Agent` on every request.
pub const USER_AGENT: &str = concat!("bty/", env!("CARGO_PKG_VERSION"));

/// How [`http_client`] builds the client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Give up connecting (TCP + TLS) after this long. Default 10 s.
    pub connect_timeout: Duration,
    /// Accept any TLS certificate. Default false; only for test registries.
    pub insecure_tls: bool,
    /// Speak HTTP/1.1 only, never negotiate HTTP/2. Default true: GHCR's CDN
    /// resets long HTTP/2 blob streams (upstream lesson), and one TCP
    /// connection per download is what we want anyway.
    pub http1_only: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            insecure_tls: false,
            http1_only: true,
        }
    }
}

/// Install rustls' ring provider as the process default, once. reqwest is
/// built with `rustls-no-provider`, so building a client without this panics.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another crate already installed a provider: also fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Redirects followed per request, as reqwest's default.
const MAX_REDIRECTS: usize = 10;

/// A redirect from https to plain http: refused, for every request, pinned
/// digest or not. Bytes that left TLS could be changed by anyone on the
/// path, and a registry or origin that downgrades is not one to trust.
#[derive(Debug, thiserror::Error)]
#[error("refusing a redirect from {from} to plain http ({to}): https must not downgrade")]
pub struct InsecureRedirect {
    /// The https URL that redirected (query and credentials removed).
    pub from: String,
    /// The http URL it pointed at (query and credentials removed).
    pub to: String,
}

/// A URL for a message: scheme, host, port and path only, since queries
/// (pre-signed blob URLs) and userinfo carry secrets.
fn shown(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// The redirect policy of [`http_client`]: at most [`MAX_REDIRECTS`]
/// hops, and none to http once any hop was https.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        // The first URL in `previous` is the request itself, not a hop.
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        if attempt.url().scheme() == "http"
            && let Some(from) = attempt
                .previous()
                .iter()
                .rev()
                .find(|u| u.scheme() == "https")
        {
            let refused = InsecureRedirect {
                from: shown(from),
                to: shown(attempt.url()),
            };
            tracing::warn!(
                from = refused.from,
                to = refused.to,
                "refused an https to http redirect"
            );
            return attempt.error(refused);
        }
        attempt.follow()
    })
}

/// Build the HTTP client used for all downloads and registry calls.
///
/// Redirects follow [`redirect_policy`] (up to 10, never https → http);
/// reqwest strips `Authorization`, cookies and `WWW-Authenticate` when a
/// redirect leaves the original scheme, host or port — so a registry token
/// never reaches blob storage. Bodies are never decompressed: we hash what
/// the server sends.
pub fn http_client(opts: &ClientOptions) -> Result<reqwest::Client, FetchError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(opts.connect_timeout)
        // These only matter if a feature elsewhere in the workspace turns
        // decompression on; a decoded body would not match its digest.
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .no_deflate()
        .redirect(redirect_policy())
        .tls_danger_accept_invalid_certs(opts.insecure_tls);
    if opts.http1_only {
        builder = builder.http1_only();
    }
    builder.build().map_err(FetchError::Client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_twice() {
        http_client(&ClientOptions::default()).unwrap();
        http_client(&ClientOptions {
            insecure_tls: true,
            ..ClientOptions::default()
        })
        .unwrap();
    }

    #[test]
    fn user_agent_names_the_version() {
        assert_eq!(USER_AGENT, format!("bty/{}", env!("CARGO_PKG_VERSION")));
    }
}
