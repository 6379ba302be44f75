//! Who did what: every mutating call is logged with the caller's identity
//! (Unix socket peer credentials, or the TCP peer address).

use tonic::Request;
use tonic::transport::server::UdsConnectInfo;

/// The caller, as the transport knows it.
fn peer<T>(request: &Request<T>) -> String {
    if let Some(cred) = request
        .extensions()
        .get::<UdsConnectInfo>()
        .and_then(|info| info.peer_cred)
    {
        let pid = cred.pid().map_or_else(|| "?".to_owned(), |p| p.to_string());
        return format!("uid={} gid={} pid={pid}", cred.uid(), cred.gid());
    }
    request
        .remote_addr()
        .map_or_else(|| "unknown".to_owned(), |addr| addr.to_string())
}

/// Log a mutating call before it runs.
pub(crate) fn audit<T>(request: &Request<T>, call: &str) {
    tracing::info!(call, peer = %peer(request), "mutating call");
}
