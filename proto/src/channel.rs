//! Opening a gRPC channel to btyd: over its Unix socket (the default) or
//! over TCP (`http://host:port`), optionally with a bearer token.

use crate::auth::{Bearer, ClientAuth};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use thiserror::Error;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

/// HTTP/2 flow-control windows: the 64 KiB default caps a bulk stream
/// (uploads, image bytes) at one window per round trip.
pub const STREAM_WINDOW: u32 = 8 << 20;
/// Connection-wide window, a few streams' worth.
pub const CONNECTION_WINDOW: u32 = 32 << 20;
/// Largest HTTP/2 frame either end accepts. The 16 KiB default splits a
/// 1 MiB bulk message into 64 DATA frames, each a write and a read on the
/// socket; 1 MiB frames carry it in one.
pub const MAX_FRAME: u32 = 1 << 20;

/// An endpoint with bty's transport settings.
fn endpoint(uri: &'static str) -> Endpoint {
    with_settings(Endpoint::from_static(uri))
}

/// bty's transport settings on any endpoint.
fn with_settings(endpoint: Endpoint) -> Endpoint {
    endpoint
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
}

/// Where btyd listens, as a client names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Unix domain socket path.
    Unix(PathBuf),
    /// An `http://host:port` URL.
    Tcp(String),
}

/// Why a target could not be used.
#[derive(Debug, Error)]
pub enum ChannelError {
    /// The endpoint string is not `unix:PATH`, a path, or `http(s)://…`.
    #[error("invalid endpoint {0:?}: expected unix:///path, /path or http://host:port")]
    InvalidEndpoint(String),
    /// The CA file for an `https://` endpoint could not be read.
    #[error(
        "cannot read the CA certificates {path} (give the CA that signed btyd's certificate with --tls-ca)"
    )]
    TlsCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS settings were refused (e.g. no certificate in the CA file).
    #[error("invalid TLS settings for {target}")]
    Tls {
        /// The endpoint.
        target: String,
        /// What tonic said.
        #[source]
        source: tonic::transport::Error,
    },
    /// The bearer token cannot go into a header (control characters).
    #[error("the bearer token holds characters a header cannot carry")]
    InvalidToken,
    /// Connecting failed.
    #[error("cannot connect to btyd at {target}")]
    Connect {
        /// The target, as given.
        target: String,
        /// What the transport said.
        #[source]
        source: tonic::transport::Error,
    },
}

impl Target {
    /// Parse `unix:///path`, `unix:path`, a bare path, or `http(s)://…`.
    pub fn parse(endpoint: &str) -> Result<Self, ChannelError> {
        if let Some(path) = endpoint.strip_prefix("unix://") {
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(path) = endpoint.strip_prefix("unix:") {
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            return Ok(Self::Tcp(endpoint.to_owned()));
        }
        if endpoint.starts_with('/') || endpoint.starts_with('.') {
            return Ok(Self::Unix(PathBuf::from(endpoint)));
        }
        Err(ChannelError::InvalidEndpoint(endpoint.to_owned()))
    }

    /// A channel that connects on first use (and reconnects after errors).
    pub fn lazy_channel(&self) -> Result<Channel, ChannelError> {
        match self {
            Self::Unix(path) => {
                let path = path.clone();
                // The URI is ignored by the connector; tonic needs a valid one.
                let endpoint = endpoint("http://[::]:50051");
                Ok(
                    endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    })),
                )
            }
            Self::Tcp(url) => Endpoint::from_shared(url.clone())
                .map(|e| with_settings(e).connect_lazy())
                .map_err(|_| ChannelError::InvalidEndpoint(url.clone())),
        }
    }

    /// Connect now, failing fast if btyd is not there.
    pub async fn connect(&self) -> Result<Channel, ChannelError> {
        self.connect_with(&ClientAuth::default()).await
    }

    /// Connect now, with TLS for `https://` endpoints (trusting
    /// `auth.tls_ca`, or the system bundle).
    pub async fn connect_with(&self, auth: &ClientAuth) -> Result<Channel, ChannelError> {
        let connect_error = |source| ChannelError::Connect {
            target: self.to_string(),
            source,
        };
        match self {
            Self::Unix(path) => {
                let path = path.clone();
                endpoint("http://[::]:50051")
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    }))
                    .await
                    .map_err(connect_error)
            }
            Self::Tcp(url) => {
                let mut endpoint = with_settings(
                    Endpoint::from_shared(url.clone())
                        .map_err(|_| ChannelError::InvalidEndpoint(url.clone()))?,
                );
                if url.starts_with("https://") {
                    endpoint =
                        endpoint
                            .tls_config(auth.tls()?)
                            .map_err(|source| ChannelError::Tls {
                                target: url.clone(),
                                source,
                            })?;
                }
                endpoint.connect().await.map_err(connect_error)
            }
        }
    }

    /// Connect now; every call then carries `auth`'s bearer token.
    pub async fn connect_authed(&self, auth: &ClientAuth) -> Result<AuthChannel, ChannelError> {
        let bearer = auth.bearer()?;
        Ok(InterceptedService::new(
            self.connect_with(auth).await?,
            bearer,
        ))
    }
}

/// A channel whose calls carry the bearer token.
pub type AuthChannel = InterceptedService<Channel, Bearer>;

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(url) => f.write_str(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        assert_eq!(
            Target::parse("unix:///run/bty/btyd.sock").ok(),
            Some(Target::Unix("/run/bty/btyd.sock".into()))
        );
        assert_eq!(
            Target::parse("/tmp/s").ok(),
            Some(Target::Unix("/tmp/s".into()))
        );
        assert_eq!(
            Target::parse("http://127.0.0.1:50051").ok(),
            Some(Target::Tcp("http://127.0.0.1:50051".into()))
        );
        assert!(Target::parse("ftp://x").is_err());
    }
}
