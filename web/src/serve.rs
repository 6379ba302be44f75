//! The listener: plain HTTP or TLS (rustls), one task per connection so a
//! slow client (or a slow TLS handshake) never holds up the accept loop,
//! and a graceful stop that lets requests in flight finish for a while.

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A client has this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// ... and to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests in flight at shutdown get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the TLS certificate or key cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The file cannot be read or holds no PEM item of the wanted kind.
    #[error("cannot read {what} from {path}: {message}")]
    Pem {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("unusable certificate/key pair: {0}")]
    Config(#[from] rustls::Error),
}

/// A rustls server config from PEM files: the certificate chain (leaf
/// first) and its private key. Only HTTP/1.1 is offered.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let pem = |what, path: &Path, message: String| TlsError::Pem {
        what,
        path: path.to_owned(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem("certificate", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem("certificate", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("certificate", cert, "no CERTIFICATE block".to_owned()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| pem("private key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serve `router` on `listener` (over TLS when `tls` is given) until
/// `shutdown` resolves, then stop accepting, end the event streams and let
/// requests in flight finish (at most a few seconds).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "cannot accept a web connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let watcher = graceful.watcher();
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            acceptor.clone(),
            watcher,
        ));
    }
    drop(listener);
    crate::sse::end_all_streams();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("web requests still running at shutdown were cut off");
    }
    Ok(())
}

/// One connection: the TLS handshake if any, then HTTP/1.1 until the client
/// or the shutdown ends it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    acceptor: Option<TlsAcceptor>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        tower::ServiceExt::oneshot(router.clone(), request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let outcome = match acceptor {
        Some(acceptor) => {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            watcher
                .watch(builder.serve_connection(TokioIo::new(tls), service))
                .await
        }
        None => {
            watcher
                .watch(builder.serve_connection(TokioIo::new(stream), service))
                .await
        }
    };
    if let Err(error) = outcome {
        tracing::debug!(%peer, %error, "web connection ended with an error");
    }
}
