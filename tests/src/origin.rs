//! An HTTP(S) origin server for download tests: serves in-memory files with
//! ETag, Range and HEAD, counts what it sends, redirects on demand, and can
//! be slowed down, held before the first body byte, or cut off mid-body. Runs
//! on its own thread and runtime so blocking test code can drive it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Files {
    files: HashMap<String, (Arc<Vec<u8>>, String)>,
    /// Paths answered with `302 Found` to a URL.
    redirects: HashMap<String, String>,
    /// Paths whose full responses declare this `Content-Length` instead of
    /// the real one (a lying server; the body ends where the bytes do).
    declared: HashMap<String, u64>,
    version: u64,
}

/// Shared state and counters.
#[derive(Default)]
pub struct OriginState {
    files: Mutex<Files>,
    /// GET requests that sent a body.
    pub body_requests: AtomicU64,
    /// Body bytes sent in total.
    pub bytes_sent: AtomicU64,
    /// Microseconds to sleep per 64 KiB chunk (0 = full speed).
    pub delay_us_per_chunk: AtomicU64,
    /// Break the next body's connection after this many bytes (0 = never).
    pub drop_next_after: AtomicU64,
    /// Every path asked for, in order.
    seen: Mutex<Vec<String>>,
    /// While `true`, bodies wait before their first byte (the response
    /// head is sent, so the client sees a download that stalls).
    held: tokio::sync::watch::Sender<bool>,
}

/// A running origin.
pub struct Origin {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    /// Its state and counters.
    pub state: Arc<OriginState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The origin sends bodies in chunks of this many bytes.
pub const CHUNK: usize = 64 << 10;

impl Origin {
    /// Start on 127.0.0.1:0.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Start on 127.0.0.1:0 serving https with `tls` (see
    /// [`crate::tls::TestCa::server_config`]).
    pub fn start_tls(tls: Arc<tokio_rustls::rustls::ServerConfig>) -> Self {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(OriginState::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("origin runtime");
            rt.block_on(async move {
                let app = axum::Router::new()
                    .route("/{*path}", axum::routing::get(serve).head(serve))
                    .with_state(served);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let stopped = async {
                    let _ = stop.await;
                };
                match tls {
                    Some(config) => {
                        let listener = crate::tls::TlsListener::new(listener, config);
                        let _ = axum::serve(listener, app)
                            .with_graceful_shutdown(stopped)
                            .await;
                    }
                    None => {
                        let _ = axum::serve(listener, app)
                            .with_graceful_shutdown(stopped)
                            .await;
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("origin started");
        Self {
            addr,
            scheme,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Serve `bytes` at `/path` with a fresh ETag.
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        let mut files = self.state.files.lock().expect("files");
        files.version += 1;
        let etag = format!("\"v{}-{}\"", files.version, bytes.len());
        files.files.insert(
            path.trim_start_matches('/').to_owned(),
            (Arc::new(bytes), etag),
        );
    }

    /// Answer GETs of `/path` with `302 Found` to `to`.
    pub fn redirect(&self, path: &str, to: &str) {
        let mut files = self.state.files.lock().expect("files");
        files
            .redirects
            .insert(path.trim_start_matches('/').to_owned(), to.to_owned());
    }

    /// Declare `len` as the `Content-Length` of `/path` (full responses).
    pub fn declare_length(&self, path: &str, len: u64) {
        let mut files = self.state.files.lock().expect("files");
        files
            .declared
            .insert(path.trim_start_matches('/').to_owned(), len);
    }

    /// Requests for `/path` so far (any method, any answer).
    pub fn requests_for(&self, path: &str) -> u64 {
        let seen = self.state.seen.lock().expect("seen");
        seen.iter()
            .filter(|p| *p == path.trim_start_matches('/'))
            .count() as u64
    }

    /// The URL of `/path`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://{}/{}",
            self.scheme,
            self.addr,
            path.trim_start_matches('/')
        )
    }

    /// Slow every 64 KiB chunk down by `delay`.
    pub fn throttle(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.state.delay_us_per_chunk.store(us, Ordering::Relaxed);
    }

    /// Break the connection of the next body after `bytes` (once).
    pub fn drop_next_after(&self, bytes: u64) {
        self.state.drop_next_after.store(bytes, Ordering::Relaxed);
    }

    /// GET requests that sent a body so far.
    pub fn body_requests(&self) -> u64 {
        self.state.body_requests.load(Ordering::Relaxed)
    }

    /// Body bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.state.bytes_sent.load(Ordering::Relaxed)
    }

    /// Hold every body before its first byte until [`Origin::release`].
    pub fn hold(&self) {
        self.state.held.send_replace(true);
    }

    /// Let held bodies (and later ones) flow.
    pub fn release(&self) {
        self.state.held.send_replace(false);
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Parse `bytes=a-` / `bytes=a-b` (the forms download clients send).
fn range(headers: &HeaderMap, len: u64) -> Option<(u64, u64)> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = value.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.parse().ok()?;
    let end = if b.is_empty() {
        len.checked_sub(1)?
    } else {
        b.parse().ok()?
    };
    (start <= end && end < len).then_some((start, end))
}

async fn serve(
    State(state): State<Arc<OriginState>>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    state.seen.lock().expect("seen").push(path.clone());
    let (found, redirect, declared) = {
        let files = state.files.lock().expect("files");
        (
            files.files.get(&path).cloned(),
            files.redirects.get(&path).cloned(),
            files.declared.get(&path).copied(),
        )
    };
    if let Some(to) = redirect {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, to)
            .body(Body::empty())
            .expect("response");
    }
    let Some((bytes, etag)) = found else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("not found"))
            .expect("response");
    };
    let len = bytes.len() as u64;
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v == etag));
    let (status, start, end) = match range(&headers, len).filter(|_| if_range_ok) {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b),
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
    };
    let body_len = if len == 0 { 0 } else { end - start + 1 };
    let declared_len = match declared {
        Some(len) if status == StatusCode::OK => len,
        _ => body_len,
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, declared_len);
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    if method == Method::HEAD || body_len == 0 {
        return response.body(Body::empty()).expect("response");
    }
    state.body_requests.fetch_add(1, Ordering::Relaxed);
    let stream_state = state.clone();
    let drop_after = state.drop_next_after.swap(0, Ordering::Relaxed);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let mut held = state.held.subscribe();
    tokio::spawn(async move {
        // Closed only when the origin goes away; then nothing waits.
        let _ = held.wait_for(|held| !held).await;
        let first = usize::try_from(start).unwrap_or(0);
        let mut at = first;
        let stop = usize::try_from(end).unwrap_or(0) + 1;
        while at < stop {
            if drop_after > 0 && (at - first) as u64 >= drop_after {
                // An error mid-body makes hyper cut the connection.
                let _ = tx.send(Err(std::io::Error::other("dropped"))).await;
                return;
            }
            let next = (at + CHUNK).min(stop);
            let delay = stream_state.delay_us_per_chunk.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_micros(delay)).await;
            }
            if tx.send(Ok(bytes[at..next].to_vec())).await.is_err() {
                return;
            }
            stream_state
                .bytes_sent
                .fetch_add((next - at) as u64, Ordering::Relaxed);
            at = next;
        }
    });
    response
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .expect("response")
}
