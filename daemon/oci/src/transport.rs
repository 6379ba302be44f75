//! Sending registry requests: retries with backoff on 429/5xx and
//! connect errors, the plain-http probe behind `InsecureNotAllowed`, capped
//! body reads and error excerpts.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use tracing::warn;

use crate::client::OciClient;
use crate::error::OciError;

/// Cap on metadata bodies: token responses and manifests.
pub(crate) const METADATA_CAP: usize = 10 << 20;
/// Attempts for one metadata request (first try included).
const ATTEMPTS: u32 = 3;
/// Wait before the second attempt; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Whole-request timeout for metadata (not for blob uploads).
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the plain-http probe may take before we give up on it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How much of an error body to quote.
const EXCERPT_LEN: usize = 300;

/// A metadata request that can be sent again (retries, auth retry).
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
}

impl Req {
    pub(crate) fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }
}

impl OciClient {
    /// Send with up to [`ATTEMPTS`] tries on 429/5xx and connect errors.
    pub(crate) async fn send_retrying(
        &self,
        req: &Req,
        auth: Option<&HeaderValue>,
    ) -> Result<Response, OciError> {
        let mut attempt = 1;
        loop {
            let mut rb = self
                .http
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone())
                .timeout(METADATA_TIMEOUT);
            if let Some(auth) = auth {
                rb = rb.header(AUTHORIZATION, auth.clone());
            }
            if let Some(body) = &req.body {
                rb = rb.body(body.clone());
            }
            let retry_in = FIRST_BACKOFF * 2u32.pow(attempt - 1);
            match rb.send().await {
                Ok(resp) if retryable(resp.status()) && attempt < ATTEMPTS => {
                    warn!(method = %req.method, url = %req.url, status = %resp.status(),
                          attempt, "registry busy or failing; retrying");
                }
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    if attempt == 1 && e.is_connect() {
                        self.refuse_unlisted_plain_http(&req.url).await?;
                    }
                    let transient = e.is_connect() || e.is_timeout() || e.is_request();
                    if !transient || attempt >= ATTEMPTS {
                        return Err(OciError::Transport {
                            method: req.method.to_string(),
                            url: req.url.to_string(),
                            source: e,
                        });
                    }
                    warn!(method = %req.method, url = %req.url, error = %e, attempt,
                          "registry request failed; retrying");
                }
            }
            tokio::time::sleep(retry_in).await;
            attempt += 1;
        }
    }

    /// An https connect failure to a host that answers plain http is a
    /// configuration problem, not a network one: say so instead of
    /// retrying a TLS handshake that cannot work.
    async fn refuse_unlisted_plain_http(&self, url: &Url) -> Result<(), OciError> {
        let host = host_port(url);
        if url.scheme() != "https" || self.config().insecure.contains(&host) {
            return Ok(());
        }
        let Ok(probe) = Url::parse(&format!("http://{host}/v2/")) else {
            return Ok(());
        };
        // No credentials are ever sent on this probe; its answer only
        // shapes the error message.
        let answered = self
            .http
            .get(probe)
            .timeout(PROBE_TIMEOUT)
            .send()
            .await
            .is_ok();
        if answered {
            Err(OciError::InsecureNotAllowed { host })
        } else {
            Ok(())
        }
    }
}

/// `host[:port]` of a URL, spelled like registry references and the
/// `insecure` list.
pub(crate) fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Read a whole body, refusing more than `cap` bytes.
pub(crate) async fn read_capped(
    method: &Method,
    url: &Url,
    mut resp: Response,
    cap: usize,
) -> Result<Bytes, OciError> {
    let too_large = || OciError::TooLarge {
        url: url.to_string(),
        cap,
    };
    if resp.content_length().is_some_and(|len| len > cap as u64) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > cap {
                    return Err(too_large());
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(source) => {
                return Err(OciError::Transport {
                    method: method.to_string(),
                    url: url.to_string(),
                    source,
                });
            }
        }
    }
}

/// An [`OciError::Http`] for an unexpected status, quoting the body.
pub(crate) async fn http_error(method: &Method, url: &Url, resp: Response) -> OciError {
    let status = resp.status().as_u16();
    OciError::Http {
        method: method.to_string(),
        url: url.to_string(),
        status,
        body_excerpt: body_excerpt(resp).await,
    }
}

/// The start of a response body, on one line.
pub(crate) async fn body_excerpt(mut resp: Response) -> String {
    let mut raw = Vec::new();
    while raw.len() < EXCERPT_LEN {
        match resp.chunk().await {
            Ok(Some(chunk)) => raw.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > EXCERPT_LEN {
        let cut = (0..=EXCERPT_LEN)
            .rev()
            .find(|i| line.is_char_boundary(*i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    if line.is_empty() {
        "(empty body)".to_owned()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_matches_reference_spelling() {
        for (url, want) in [
            ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
            ("https://ghcr.io/v2/", "ghcr.io"),
            ("https://reg.example:8443/x", "reg.example:8443"),
        ] {
            assert_eq!(host_port(&Url::parse(url).unwrap()), want);
        }
    }

    #[test]
    fn retries_only_transient_statuses() {
        for (code, want) in [
            (429, true),
            (500, true),
            (503, true),
            (404, false),
            (401, false),
        ] {
            assert_eq!(
                retryable(StatusCode::from_u16(code).unwrap()),
                want,
                "{code}"
            );
        }
    }
}
