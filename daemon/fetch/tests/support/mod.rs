//! Test support: an axum file server on 127.0.0.1:0 that serves a
//! pseudo-random payload with ETag/Last-Modified/Range support and
//! misbehaves on demand, one scripted fault per request.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

pub const MIB: usize = 1 << 20;
pub const LAST_MODIFIED: &str = "Tue, 01 Jan 2030 00:00:00 GMT";

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn payload(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    bty_store::digest::sha256_bytes(bytes)
}

/// One misbehaviour, used for one request to `/file`.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Send this many body bytes, then break the connection.
    DropAfter(usize),
    /// Answer with this status (and `Retry-After` seconds if given).
    Status(u16, Option<u64>),
    /// Send this many body bytes, then go silent for a minute.
    StallAfter(usize),
    /// Declare the full length, send this many bytes, end the body.
    ShortBody(usize),
    /// Answer `200` with the full body whatever `Range` asked for.
    IgnoreRange,
    /// Change the entity's ETag from now on, then serve normally.
    ChangeEtag(&'static str),
    /// Serve the full body chunked, without `Content-Length`.
    Chunked,
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
}

/// How the server describes its entity.
#[derive(Debug, Clone)]
pub struct Config {
    pub etag: Option<String>,
    pub last_modified: Option<&'static str>,
    pub accept_ranges: bool,
    pub head_allowed: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            etag: Some("\"v1\"".into()),
            last_modified: Some(LAST_MODIFIED),
            accept_ranges: true,
            head_allowed: true,
        }
    }
}

pub struct Shared {
    pub payload: Bytes,
    config: Mutex<Config>,
    faults: Mutex<VecDeque<Fault>>,
    seen: Mutex<Vec<Seen>>,
    redirect_to: Mutex<Option<String>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
}

impl TestServer {
    pub async fn start(payload: Bytes, config: Config) -> Self {
        let shared = Arc::new(Shared {
            payload,
            config: Mutex::new(config),
            faults: Mutex::new(VecDeque::new()),
            seen: Mutex::new(Vec::new()),
            redirect_to: Mutex::new(None),
        });
        let app = Router::new()
            .route("/file", any(serve_file))
            .route("/missing", any(missing))
            .route("/redirect", any(redirect))
            .route("/redirect-local", any(redirect_local))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queue faults for the next GET requests to `/file`, in order.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.faults.lock().unwrap().extend(faults);
    }

    pub fn redirect_to(&self, url: String) {
        *self.shared.redirect_to.lock().unwrap() = Some(url);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn gets(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == Method::GET)
            .collect()
    }
}

fn record(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap) {
    let get = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    shared.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.to_owned(),
        range: get(header::RANGE),
        if_range: get(header::IF_RANGE),
        authorization: get(header::AUTHORIZATION),
        user_agent: get(header::USER_AGENT),
    });
}

async fn missing(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    record(&shared, &method, "/missing", &headers);
    StatusCode::NOT_FOUND.into_response()
}

async fn redirect(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    record(&shared, &method, "/redirect", &headers);
    let to = shared.redirect_to.lock().unwrap().clone().unwrap();
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn redirect_local(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    record(&shared, &method, "/redirect-local", &headers);
    (StatusCode::FOUND, [(header::LOCATION, "/file")]).into_response()
}

/// `bytes=N-` → (N, None); `bytes=N-M` → (N, Some(M)).
fn parse_range(headers: &HeaderMap) -> Option<(usize, Option<usize>)> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let (start, end) = v.strip_prefix("bytes=")?.split_once('-')?;
    let end = match end {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some((start.parse().ok()?, end))
}

async fn serve_file(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    record(&shared, &method, "/file", &headers);
    let config = shared.config.lock().unwrap().clone();
    if method == Method::HEAD && !config.head_allowed {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let fault = if method == Method::GET {
        shared.faults.lock().unwrap().pop_front()
    } else {
        None
    };
    let config = match &fault {
        Some(Fault::Status(code, retry_after)) => {
            let mut resp = StatusCode::from_u16(*code).unwrap().into_response();
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            return resp;
        }
        Some(Fault::ChangeEtag(tag)) => {
            let mut c = shared.config.lock().unwrap();
            c.etag = Some((*tag).to_owned());
            c.clone()
        }
        _ => config,
    };

    let payload = &shared.payload;
    let total = payload.len();
    let if_range_ok = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => config.etag.as_deref() == Some(v) || config.last_modified == Some(v),
    };
    let ranged = match parse_range(&headers) {
        Some((start, end))
            if config.accept_ranges
                && if_range_ok
                && !matches!(fault, Some(Fault::IgnoreRange))
                && start < total =>
        {
            Some((start, end.unwrap_or(total - 1).min(total - 1)))
        }
        _ => None,
    };
    let (status, body_bytes) = match ranged {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, payload.slice(start..=end)),
        None => (StatusCode::OK, payload.clone()),
    };

    let mut resp_headers = HeaderMap::new();
    if let Some(tag) = &config.etag {
        resp_headers.insert(header::ETAG, HeaderValue::from_str(tag).unwrap());
    }
    if let Some(lm) = config.last_modified {
        resp_headers.insert(header::LAST_MODIFIED, HeaderValue::from_static(lm));
    }
    if config.accept_ranges {
        resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if let Some((start, end)) = ranged {
        let v = format!("bytes {start}-{end}/{total}");
        resp_headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).unwrap());
    }
    let declared = body_bytes.len();
    let body = match fault {
        Some(Fault::DropAfter(n)) => streamed(body_bytes, n, Tail::Error),
        Some(Fault::StallAfter(n)) => streamed(body_bytes, n, Tail::Stall),
        Some(Fault::ShortBody(n)) => streamed(body_bytes, n, Tail::End),
        Some(Fault::Chunked) => {
            let len = body_bytes.len();
            let body = streamed(body_bytes, len, Tail::End);
            return (status, resp_headers, body).into_response();
        }
        _ => Body::from(body_bytes),
    };
    resp_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
    (status, resp_headers, body).into_response()
}

enum Tail {
    Error,
    Stall,
    End,
}

/// A body that yields the first `n` bytes of `bytes` in 64 KiB pieces, then
/// fails, stalls or ends.
fn streamed(bytes: Bytes, n: usize, tail: Tail) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let head = bytes.slice(..n.min(bytes.len()));
        let mut at = 0;
        while at < head.len() {
            let end = (at + 64 * 1024).min(head.len());
            if tx.send(Ok(head.slice(at..end))).await.is_err() {
                return;
            }
            at = end;
        }
        match tail {
            Tail::Error => {
                let _ = tx
                    .send(Err(std::io::Error::other("injected failure")))
                    .await;
            }
            Tail::Stall => {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Tail::End => {}
        }
    });
    Body::from_stream(ReceiverStream::new(rx))
}

/// A client with the crate's own settings.
pub fn client() -> reqwest::Client {
    bty_fetch::http_client(&bty_fetch::ClientOptions::default()).unwrap()
}

/// Fast options for tests: 300 ms stall, 10 ms backoff.
pub fn fast() -> bty_fetch::FetchOptions {
    bty_fetch::FetchOptions {
        stall_timeout: Duration::from_millis(300),
        max_attempts: 6,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        max_size: Some(bty_fetch::DEFAULT_MAX_SIZE),
    }
}

/// A request for `url` into a fresh temp dir, with a checkpoint.
pub fn request(dir: &std::path::Path, url: String) -> bty_fetch::FetchRequest {
    bty_fetch::FetchRequest {
        url,
        headers: reqwest::header::HeaderMap::new(),
        partial: dir.join("img.partial"),
        dest: dir.join("img"),
        checkpoint: Some(dir.join("img.partial.json")),
        expected_sha256: None,
        expected_size: None,
    }
}

pub fn no_progress(_: bty_fetch::Progress) {}
