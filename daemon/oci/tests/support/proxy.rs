//! A token-issuing auth proxy in front of a real registry, like GHCR or
//! Docker Hub behave: `/v2/…` without a valid token answers 401 with a
//! `Bearer` challenge, `/token` issues tokens (optionally only to Basic
//! credentials), authorised requests are forwarded with bodies streamed
//! both ways and `Location` rewritten to a relative path. Every request is
//! counted per path so tests can assert what the client sent.
//!
//! Options add Basic auth on `/v2/` instead of tokens, 503s on manifests,
//! a blob-storage redirect (to a second listener on another
//! port that records the `Authorization` it receives) and manifest
//! tampering (bytes that no longer match their digest).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tokio::task::JoinHandle;

/// How the proxy behaves.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// `/token` demands these Basic credentials.
    pub credentials: Option<(String, String)>,
    /// Token lifetime in seconds, announced and enforced.
    pub expires_in: u64,
    /// Answer blob GETs with a 307 to the storage listener.
    pub redirect_blobs: bool,
    /// Append a newline to manifest GET bodies (digest no longer matches).
    pub tamper_manifests: bool,
    /// Name the token `access_token` instead of `token`.
    pub access_token_field: bool,
    /// Act as a registry with Basic auth on `/v2/` (no token service).
    pub basic_registry: bool,
    /// Answer this many manifest requests with 503 before forwarding.
    pub fail_manifests: usize,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            credentials: None,
            expires_in: 300,
            redirect_blobs: false,
            tamper_manifests: false,
            access_token_field: false,
            basic_registry: false,
            fail_manifests: 0,
        }
    }
}

struct Shared {
    upstream: String,
    base: String,
    storage_base: String,
    opts: ProxyOptions,
    http: reqwest::Client,
    tokens: Mutex<HashMap<String, Instant>>,
    counts: Mutex<HashMap<String, usize>>,
    token_queries: Mutex<Vec<String>>,
    storage_auth: Mutex<Vec<Option<String>>>,
    next_token: AtomicUsize,
    failures_left: AtomicUsize,
}

/// A running proxy; its tasks stop on drop.
pub struct TokenProxy {
    /// The proxy's address (what `oras://` references name).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl TokenProxy {
    /// Start in front of `upstream` (`http://127.0.0.1:<port>`).
    pub async fn start(upstream: &str, opts: ProxyOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let storage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let storage_addr = storage.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            base: format!("http://{addr}"),
            storage_base: format!("http://{storage_addr}"),
            // The filesystem-backed registry never redirects, so the shared
            // client's redirect policy does not matter here.
            http: super::http(),
            tokens: Mutex::default(),
            counts: Mutex::default(),
            token_queries: Mutex::default(),
            storage_auth: Mutex::default(),
            next_token: AtomicUsize::new(1),
            failures_left: AtomicUsize::new(opts.fail_manifests),
            opts,
        });
        let front = Router::new().fallback(front).with_state(shared.clone());
        let back = Router::new()
            .fallback(storage_side)
            .with_state(shared.clone());
        let tasks = vec![
            tokio::spawn(async move {
                let _ = axum::serve(listener, front).await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(storage, back).await;
            }),
        ];
        Self {
            addr,
            shared,
            tasks,
        }
    }

    /// `127.0.0.1:<port>`, for `oras://` references and the insecure list.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Requests received for exactly `path`.
    pub fn count(&self, path: &str) -> usize {
        let counts = self.shared.counts.lock().unwrap();
        counts.get(path).copied().unwrap_or(0)
    }

    /// Requests received for paths containing `needle`.
    pub fn count_matching(&self, needle: &str) -> usize {
        let counts = self.shared.counts.lock().unwrap();
        counts
            .iter()
            .filter(|(p, _)| p.contains(needle))
            .map(|(_, n)| n)
            .sum()
    }

    /// Query strings of the `/token` requests that got a token.
    pub fn token_queries(&self) -> Vec<String> {
        self.shared.token_queries.lock().unwrap().clone()
    }

    /// The `Authorization` header of each request the storage side got.
    pub fn storage_auth(&self) -> Vec<Option<String>> {
        self.shared.storage_auth.lock().unwrap().clone()
    }
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn front(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    *s.counts.lock().unwrap().entry(path.clone()).or_default() += 1;
    if path == "/token" {
        return s.issue_token(&req);
    }
    if !path.starts_with("/v2/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    if s.opts.basic_registry {
        if !s.basic_ok(req.headers()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, r#"Basic realm="bty-test""#)],
            )
                .into_response();
        }
    } else if !s.authorized(req.headers()) {
        return s.challenge(&path);
    }
    if path.contains("/manifests/")
        && s.failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response();
    }
    if s.opts.redirect_blobs && req.method() == Method::GET && path.contains("/blobs/sha256:") {
        let target = format!("{}{path}", s.storage_base);
        return (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]).into_response();
    }
    let tamper =
        s.opts.tamper_manifests && req.method() == Method::GET && path.contains("/manifests/");
    s.forward(req, tamper).await
}

/// The "blob storage" a redirect points at: records what auth it was sent,
/// serves the blob without any.
async fn storage_side(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("<binary>").to_owned());
    s.storage_auth.lock().unwrap().push(auth);
    s.forward(req, false).await
}

impl Shared {
    /// Whether the request carries the configured Basic credentials (or
    /// none are configured).
    fn basic_ok(&self, headers: &HeaderMap) -> bool {
        let Some((user, pass)) = &self.opts.credentials else {
            return true;
        };
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        let got = headers.get(header::AUTHORIZATION);
        got.and_then(|v| v.to_str().ok()) == Some(want.as_str())
    }

    fn issue_token(&self, req: &Request) -> Response {
        if !self.basic_ok(req.headers()) {
            return (
                StatusCode::UNAUTHORIZED,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
            )
                .into_response();
        }
        let n = self.next_token.fetch_add(1, Ordering::SeqCst);
        let token = format!("tok-{n}");
        let ttl = Duration::from_secs(self.opts.expires_in);
        self.tokens
            .lock()
            .unwrap()
            .insert(token.clone(), Instant::now() + ttl);
        self.token_queries
            .lock()
            .unwrap()
            .push(req.uri().query().unwrap_or_default().to_owned());
        let field = if self.opts.access_token_field {
            "access_token"
        } else {
            "token"
        };
        let body = serde_json::json!({ field: token, "expires_in": self.opts.expires_in });
        (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let tokens = self.tokens.lock().unwrap();
        tokens
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires)
    }

    fn challenge(&self, path: &str) -> Response {
        // The realm carries a query of its own, as some token services' do.
        let mut value = format!(
            r#"Bearer realm="{}/token?account=bty",service="bty-test""#,
            self.base
        );
        if let Some(repo) = repo_of(path) {
            value.push_str(&format!(r#",scope="repository:{repo}:pull""#));
        }
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, value),
                (header::CONTENT_TYPE, "application/json".to_owned()),
            ],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
            .into_response()
    }

    async fn forward(&self, req: Request, tamper: bool) -> Response {
        let (parts, body) = req.into_parts();
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut rb = self.http.request(
            parts.method.clone(),
            format!("{}{path_and_query}", self.upstream),
        );
        for (name, value) in &parts.headers {
            if !matches!(
                name.as_str(),
                "host" | "authorization" | "connection" | "transfer-encoding"
            ) {
                rb = rb.header(name, value);
            }
        }
        if matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
            rb = rb.body(reqwest::Body::wrap_stream(body.into_data_stream()));
        }
        let resp = match rb.send().await {
            Ok(resp) => resp,
            Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        };
        let mut out = Response::builder().status(resp.status());
        for (name, value) in resp.headers() {
            match name.as_str() {
                "connection" | "transfer-encoding" => {}
                "content-length" if tamper => {}
                "location" => {
                    // Upstream names itself; clients must come back here.
                    let loc = value.to_str().unwrap_or_default();
                    let rel = loc.strip_prefix(&self.upstream).unwrap_or(loc);
                    out = out.header(name, rel);
                }
                _ => out = out.header(name, value),
            }
        }
        let body = if tamper {
            let mut bytes = resp.bytes().await.unwrap_or_default().to_vec();
            bytes.push(b'\n');
            Body::from(bytes)
        } else {
            Body::from_stream(resp.bytes_stream())
        };
        out.body(body).unwrap()
    }
}

/// The repository of `/v2/<repo>/(blobs|manifests|tags)/…`.
fn repo_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    ["/blobs/", "/manifests/", "/tags/"]
        .iter()
        .filter_map(|marker| rest.find(marker))
        .min()
        .map(|i| &rest[..i])
}
