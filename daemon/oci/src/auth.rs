//! Registry authentication: parsing `WWW-Authenticate` challenges, building
//! token-service URLs, reading token responses and caching tokens until
//! they expire. The network calls live in [`crate::client`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Url;
use serde::Deserialize;

use crate::Credentials;

/// Token lifetime when the token service does not say (distribution spec).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Tokens are dropped this long before they expire, so a request sent with
/// a cached token does not race its expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Auth scheme, lowercased (`bearer`, `basic`).
    pub scheme: String,
    /// Parameters with lowercased keys and unquoted values.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// Whether this is a `Bearer` challenge.
    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }

    /// Whether this is a `Basic` challenge.
    pub fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }

    /// A parameter by (lowercase) name.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parse a `WWW-Authenticate` header value into its challenges (RFC 9110
/// §11.6.1): schemes and keys are case-insensitive, values are tokens or
/// quoted strings that may contain commas and backslash escapes. Malformed
/// trailing parts are skipped rather than failing the whole header.
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_separators();
        let Some(scheme) = p.token() else {
            // Not a token where a scheme should be: skip one byte so the
            // loop always progresses on garbage.
            if p.i >= p.s.len() {
                break;
            }
            p.i += 1;
            continue;
        };
        let mut params = BTreeMap::new();
        loop {
            let before = p.i;
            p.skip_separators();
            let Some(key) = p.token() else { break };
            p.skip_ws();
            if p.peek() != Some(b'=') {
                // A bare token: the next challenge's scheme. Rewind to it.
                p.i = before;
                break;
            }
            p.i += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            params.insert(key.to_ascii_lowercase(), value);
        }
        out.push(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        });
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// An RFC 9110 token (plus `/` so token68-ish values survive).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string starting at `"`; an unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The token-service URL for a Bearer challenge: the realm with `service`
/// and each scope appended to whatever query it already has.
pub fn token_url(realm: &str, service: Option<&str>, scopes: &[&str]) -> Option<Url> {
    let mut url = Url::parse(realm).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    {
        let mut query = url.query_pairs_mut();
        if let Some(service) = service {
            query.append_pair("service", service);
        }
        for scope in scopes {
            query.append_pair("scope", scope);
        }
    }
    Some(url)
}

/// A token service's JSON answer (distribution token spec).
#[derive(Debug, Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// The token and its lifetime from a token response body, or why not.
pub fn parse_token_response(body: &[u8]) -> Result<(String, Duration), String> {
    let parsed: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| format!("token response is not the expected JSON object: {e}"))?;
    let token = [parsed.token, parsed.access_token]
        .into_iter()
        .flatten()
        .find(|t| !t.is_empty())
        .ok_or_else(|| "token response has neither `token` nor `access_token`".to_owned())?;
    // Zero or absurdly small lifetimes fall back to the spec's default.
    let ttl = parsed
        .expires_in
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TOKEN_TTL, Duration::from_secs);
    Ok((token, ttl))
}

/// `Authorization: Basic …` value for credentials.
pub fn basic_header(creds: &Credentials) -> String {
    let raw = format!("{}:{}", creds.username, creds.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Tokens per `(registry host, scope)` until they expire, and the last
/// challenge seen per host (so later requests can fetch a token up front
/// instead of eating a 401 first).
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
    challenges: Mutex<HashMap<String, Challenge>>,
}

impl TokenCache {
    /// A still-valid token for `host` and `scope`.
    pub fn token(&self, host: &str, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(&(host.to_owned(), scope.to_owned()))
            .filter(|(_, expires_at)| Instant::now() < *expires_at)
            .map(|(token, _)| token.clone())
    }

    /// Remember a token that lives `ttl` from now.
    pub fn store(&self, host: &str, scope: &str, token: String, ttl: Duration) {
        let expires_at = Instant::now() + usable_ttl(ttl);
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|_, (_, at)| Instant::now() < *at);
        tokens.insert((host.to_owned(), scope.to_owned()), (token, expires_at));
    }

    /// Forget a token the registry refused.
    pub fn forget(&self, host: &str, scope: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.remove(&(host.to_owned(), scope.to_owned()));
    }

    /// The last challenge `host` sent.
    pub fn challenge(&self, host: &str) -> Option<Challenge> {
        let challenges = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        challenges.get(host).cloned()
    }

    /// Remember `host`'s challenge.
    pub fn store_challenge(&self, host: &str, challenge: Challenge) {
        let mut challenges = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        challenges.insert(host.to_owned(), challenge);
    }
}

/// How long a token is used: its lifetime minus a margin, keeping at least
/// half of a short lifetime.
fn usable_ttl(ttl: Duration) -> Duration {
    if ttl > EXPIRY_MARGIN * 2 {
        ttl - EXPIRY_MARGIN
    } else {
        ttl / 2
    }
}

#[cfg(test)]
mod tests;
