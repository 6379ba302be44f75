//! What every request passes before the login: the Host allow-list (DNS
//! rebinding) and the security headers on every answer.
//!
//! A web page the operator visits can make the browser send requests to
//! this listener under the page's own host name (DNS rebinding): the
//! browser then treats the listener as that page's origin, so Origin checks
//! pass. Only the Host header tells such requests apart, so requests must
//! name this listener's address, `localhost`, or a configured name.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// No inline script or style, no framing, no foreign form targets.
pub(crate) const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Who may be named in the Host header.
#[derive(Debug, Clone)]
pub(crate) struct HostAllowList(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    listen: IpAddr,
    names: Vec<String>,
}

/// Whether `s` is a DNS name as a config may list it (no port, no scheme).
pub(crate) fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The host part of a Host header value (`name`, `1.2.3.4`, `[::1]`, each
/// with an optional `:port`), lower-cased, without a trailing dot.
fn host_part(value: &str) -> Option<String> {
    let host = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        format!("[{inside}]")
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) if is_port(port) => host.to_owned(),
            Some(_) => return None,
            None => value.to_owned(),
        }
    };
    let host = host.strip_suffix('.').unwrap_or(&host).to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

impl HostAllowList {
    pub(crate) fn new(listen: SocketAddr, names: &[String]) -> Self {
        let names = names
            .iter()
            .map(|n| n.strip_suffix('.').unwrap_or(n).to_ascii_lowercase())
            .collect();
        Self(Arc::new(Inner {
            listen: listen.ip(),
            names,
        }))
    }

    /// Whether a Host header value names this listener. Ports are not
    /// compared (a proxy or NAT may change them).
    pub(crate) fn allows(&self, value: &str) -> bool {
        let Some(host) = host_part(value.trim()) else {
            return false;
        };
        let listen = self.0.listen;
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            // A rebinding page cannot make the browser send an IP literal
            // of this host as its own origin, so any literal is safe on a
            // listener that answers on every address.
            return listen.is_unspecified() || ip == listen;
        }
        if host == "localhost" {
            return listen.is_loopback() || listen.is_unspecified();
        }
        self.0.names.contains(&host)
    }
}

/// 421 for requests naming another host, on every route.
pub(crate) async fn check_host(
    State(hosts): State<HostAllowList>,
    request: Request,
    next: Next,
) -> Response {
    // An absolute-form request line carries its own authority; it and
    // every Host header (a second one may differ) must pass.
    let named: Vec<String> = request
        .headers()
        .get_all(HOST)
        .iter()
        .map(|h| h.to_str().unwrap_or("(not text)").to_owned())
        .collect();
    if named.len() > 1 {
        return misdirected("the request names several Host headers");
    }
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    let all: Vec<&String> = named.iter().chain(authority.iter()).collect();
    if all.is_empty() {
        return misdirected("the request names no Host");
    }
    if let Some(bad) = all.into_iter().find(|h| !hosts.allows(h)) {
        tracing::info!(host = %bad, path = request.uri().path(), "refused a request for another host");
        return misdirected(&format!(
            "this bty listener does not answer to Host {bad:?}; if that name is meant to \
             reach it, add it to [web] hosts in btyd's config (bty-web: --host)"
        ));
    }
    next.run(request).await
}

fn misdirected(message: &str) -> Response {
    let body = serde_json::json!({ "detail": message }).to_string();
    (
        StatusCode::MISDIRECTED_REQUEST,
        [(CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

/// CSP, anti-framing, no sniffing, and no full URLs in Referer to other sites.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(listen: &str, names: &[&str]) -> HostAllowList {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        HostAllowList::new(listen.parse().unwrap_or_else(|_| unreachable!()), &names)
    }

    #[test]
    fn loopback_listener_answers_to_its_address_and_localhost() {
        let hosts = list("127.0.0.1:8080", &[]);
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "127.0.0.1:1",
            "localhost:8080",
            "LOCALHOST",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "127.0.0.2:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "127.0.0.1:80:80",
            "127.0.0.1:x",
            "",
            "[::1]:8080",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
    }

    #[test]
    fn configured_names_and_unspecified_listeners() {
        let hosts = list("0.0.0.0:8080", &["bty.lan", "Lab.Example."]);
        for ok in [
            "bty.lan:8080",
            "BTY.LAN",
            "lab.example",
            "lab.example.:443",
            "10.1.2.3:8080",
            "[fe80::1]:8080",
            "localhost",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in ["evil.example", "bty.lan.evil.example", "[fe80::1]x"] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        let lan = list("192.168.1.5:8080", &[]);
        assert!(lan.allows("192.168.1.5:8080"));
        assert!(!lan.allows("localhost:8080"));
        let v6 = list("[::1]:8080", &[]);
        assert!(v6.allows("[::1]:8080"));
        assert!(v6.allows("localhost:8080"));
    }

    #[test]
    fn host_names_for_the_config() {
        assert!(is_host_name("bty.lan"));
        assert!(is_host_name("a-b.example."));
        assert!(!is_host_name("bty.lan:8080"));
        assert!(!is_host_name("http://bty.lan"));
        assert!(!is_host_name(""));
        assert!(!is_host_name("a..b"));
    }
}
