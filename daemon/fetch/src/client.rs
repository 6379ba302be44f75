//! The shared `reqwest::Client`: ring as the TLS provider, our user agent, no
//! transparent decompression, a connect timeout, default redirect policy.

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

/// Build the HTTP client used for all downloads and registry calls.
///
/// Redirects follow reqwest's default policy (up to 10), which strips
/// `Authorization`, cookies and `WWW-Authenticate` when a redirect leaves
/// the original scheme, host or port — so a registry token never reaches
/// blob storage. Bodies are never decompressed: we hash what the server
/// sends.
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
