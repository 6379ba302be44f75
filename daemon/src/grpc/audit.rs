//! Who did what: every mutating call is logged, and entered in the event
//! log, with the caller's identity as the transport knows it (Unix socket
//! peer credentials, or the TCP peer address) and whom the caller said it
//! acted for (`x-bty-on-behalf-of`: bty-web names the browser's address).

use crate::events::{Actor, EventBus, Origin};
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

/// Whom the caller says it acts for: a claim by a caller that already has
/// full access, kept printable and short.
fn on_behalf_of<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get(bty_proto::auth::ON_BEHALF_OF)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .take(128)
                .collect()
        })
        .unwrap_or_default()
}

/// Log a mutating call about `subject` before it runs, and enter it in the
/// event log.
pub(crate) fn audit<T>(events: &EventBus, request: &Request<T>, call: &str, subject: &str) {
    events.request(call, subject, log(request, call, subject));
}

/// Log a mutating call about `subject` before it runs; who made it.
pub(crate) fn log<T>(request: &Request<T>, call: &str, subject: &str) -> Origin {
    let origin = Origin {
        actor: Actor::Operator,
        peer: peer(request),
        on_behalf_of: on_behalf_of(request),
    };
    tracing::info!(call, subject, peer = %origin.peer, on_behalf_of = %origin.on_behalf_of, "mutating call");
    origin
}
