//! A request body that stops arriving ends its request with 408.
//!
//! hyper limits how long a client may take over the request head, but not
//! over the body: a request declaring `Content-Length: 400` and sending 40
//! bytes would hold its handler (and a connection) until the client goes
//! away. Every body is wrapped so that waiting longer than [`BODY_IDLE`] for
//! its next bytes is an error, and a request whose body timed out is
//! answered 408 whatever its handler made of the error (a JSON parse error,
//! a "form is too large"). The limit is on silence, not on the whole body,
//! so a slow but moving upload of any size is never cut.

use crate::error::WebError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// The longest wait for the next bytes of a request body; the same as the
/// listener's limit on the request head.
pub(crate) const BODY_IDLE: Duration = Duration::from_secs(30);

/// The middleware (state: the idle limit, [`BODY_IDLE`] but in tests):
/// wrap the body, and answer 408 if it timed out.
pub(crate) async fn limit_body_idle(
    State(idle): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let timed_out = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(IdleBody {
            inner: body,
            idle,
            wait: None,
            timed_out: Arc::clone(&timed_out),
        })
    });
    let response = next.run(request).await;
    if timed_out.load(Ordering::Acquire) {
        return WebError::Timeout { idle }.into_response();
    }
    response
}

/// The body was silent for this long.
#[derive(Debug, thiserror::Error)]
#[error("no request body bytes for {0:?}")]
struct BodyIdle(Duration);

/// A body whose reader gives up after `idle` without a frame.
struct IdleBody {
    inner: Body,
    idle: Duration,
    /// Armed when a read finds nothing, disarmed by the next frame: only
    /// time spent waiting on the client counts, not time the handler spent
    /// elsewhere between reads.
    wait: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for IdleBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.wait = None;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let idle = self.idle;
                let wait = self
                    .wait
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.timed_out.store(true, Ordering::Release);
                Poll::Ready(Some(Err(axum::Error::new(BodyIdle(idle)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use tower::ServiceExt as _;

    async fn read_all(body: Body) -> Result<String, String> {
        axum::body::to_bytes(body, 1 << 20)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string())
    }

    const IDLE: Duration = Duration::from_millis(300);

    fn app() -> Router {
        Router::new()
            .route(
                "/",
                post(|body: Body| async move {
                    match read_all(body).await {
                        Ok(text) => (StatusCode::OK, text),
                        // What a handler makes of a read error: not 408.
                        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e),
                    }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(IDLE, limit_body_idle))
    }

    #[tokio::test]
    async fn a_stalled_body_is_answered_408() {
        // A body that sends one chunk and then nothing, like a client that
        // declared more bytes than it sent.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        tx.send(Ok(Bytes::from_static(b"{\"a\":"))).await.unwrap();
        let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
        let request = Request::post("/").body(body).unwrap();
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        let text = read_all(response.into_body()).await.unwrap();
        assert!(text.contains("stopped arriving"), "{text}");
        assert!(text.contains("300ms"), "{text}");
        drop(tx);
    }

    #[tokio::test]
    async fn a_slow_moving_body_is_read_whole() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        tokio::spawn(async move {
            for _ in 0..4 {
                // Each gap is under the limit; together they are over it.
                tokio::time::sleep(IDLE / 3).await;
                tx.send(Ok(Bytes::from_static(b"x"))).await.unwrap();
            }
        });
        let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
        let request = Request::post("/").body(body).unwrap();
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(read_all(response.into_body()).await.unwrap(), "xxxx");
    }
}
