//! [`OciClient`]: registry URLs and the auth flow (cached token, or 401 →
//! challenge → token or Basic → one retry).

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};
use tracing::{debug, info};

use crate::OciConfig;
use crate::auth::{self, Challenge, TokenCache};
use crate::error::OciError;
use crate::transport::{METADATA_CAP, Req, body_excerpt, host_port, http_error, read_capped};

/// A cloneable OCI distribution client; clones share the token cache.
#[derive(Debug, Clone)]
pub struct OciClient {
    pub(crate) http: reqwest::Client,
    config: Arc<OciConfig>,
    pub(crate) cache: Arc<TokenCache>,
}

/// What a request is authorised for: a repository on a registry with
/// some actions (`pull` or `pull,push`).
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) host: String,
    pub(crate) repository: String,
    actions: &'static str,
}

impl Scope {
    pub(crate) fn pull(host: &str, repository: &str) -> Self {
        Self {
            host: host.to_owned(),
            repository: repository.to_owned(),
            actions: "pull",
        }
    }

    pub(crate) fn push(host: &str, repository: &str) -> Self {
        Self {
            actions: "pull,push",
            ..Self::pull(host, repository)
        }
    }

    /// The token-service scope string.
    fn as_scope(&self) -> String {
        format!("repository:{}:{}", self.repository, self.actions)
    }

    fn auth_error(&self, reason: impl Into<String>) -> OciError {
        OciError::Auth {
            registry: self.host.clone(),
            repository: self.repository.clone(),
            reason: reason.into(),
        }
    }
}

impl OciClient {
    /// A client over `http`: build it with
    /// `bty_fetch::http_client(&ClientOptions::default())` so TLS has its
    /// crypto provider and the daemon shares one connection pool.
    pub fn new(config: OciConfig, http: reqwest::Client) -> Self {
        Self {
            http,
            config: Arc::new(config),
            cache: Arc::new(TokenCache::default()),
        }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &OciConfig {
        &self.config
    }

    /// `<scheme>://<host><path>`: plain http only for insecure hosts.
    pub(crate) fn registry_url(&self, host: &str, path: &str) -> Result<Url, OciError> {
        let scheme = if self.config.insecure.contains(host) {
            "http"
        } else {
            "https"
        };
        let text = format!("{scheme}://{host}{path}");
        Url::parse(&text).map_err(|e| OciError::BadManifest {
            reference: text,
            reason: format!("not a valid URL: {e}"),
        })
    }

    /// Refuse a plain-http URL (a token realm, an upload location) whose
    /// host is not listed as insecure.
    pub(crate) fn check_scheme(&self, url: &Url) -> Result<(), OciError> {
        if url.scheme() == "http" {
            let host = host_port(url);
            if !self.config.insecure.contains(&host) {
                return Err(OciError::InsecureNotAllowed { host });
            }
        }
        Ok(())
    }

    /// Send `req` with whatever authorisation the registry wants: a cached
    /// token, or — after a 401 — a fresh one from the challenge's realm,
    /// retrying once. The response may still be any non-401 status.
    pub(crate) async fn send(&self, scope: &Scope, req: &Req) -> Result<Response, OciError> {
        let auth = self.known_authorization(scope).await?;
        let resp = self.send_retrying(req, auth.as_ref()).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenges = challenges(resp.headers());
        debug!(url = %req.url, ?challenges, "registry asked for authentication");
        self.cache.forget(&scope.host, &scope.as_scope());
        let auth = self.answer(scope, &challenges).await?;
        let resp = self.send_retrying(req, Some(&auth)).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let excerpt = body_excerpt(resp).await;
            return Err(scope.auth_error(format!(
                "{} {} still answered 401 with fresh credentials: {excerpt}",
                req.method, req.url
            )));
        }
        Ok(resp)
    }

    /// The `Authorization` value for `scope`, learning whether one is
    /// needed by pinging `/v2/` when nothing is known about the host yet.
    pub(crate) async fn authorization(
        &self,
        scope: &Scope,
    ) -> Result<Option<HeaderValue>, OciError> {
        if let Some(auth) = self.known_authorization(scope).await? {
            return Ok(Some(auth));
        }
        let ping = Req::new(Method::GET, self.registry_url(&scope.host, "/v2/")?);
        let resp = self.send_retrying(&ping, None).await?;
        match resp.status() {
            StatusCode::UNAUTHORIZED => {
                let challenges = challenges(resp.headers());
                self.answer(scope, &challenges).await.map(Some)
            }
            // Anything else (200, or a registry that 404s /v2/) means no
            // auth up front; a later 401 on the real request is reported.
            _ => Ok(None),
        }
    }

    /// A cached token, or one fetched from the host's known challenge.
    async fn known_authorization(&self, scope: &Scope) -> Result<Option<HeaderValue>, OciError> {
        if let Some(token) = self.cache.token(&scope.host, &scope.as_scope()) {
            return Ok(Some(header_value(scope, format!("Bearer {token}"))?));
        }
        match self.cache.challenge(&scope.host) {
            Some(challenge) => self.answer(scope, &[challenge]).await.map(Some),
            None => Ok(None),
        }
    }

    /// Turn a 401's challenges into an `Authorization` value.
    async fn answer(
        &self,
        scope: &Scope,
        challenges: &[Challenge],
    ) -> Result<HeaderValue, OciError> {
        if let Some(bearer) = challenges.iter().find(|c| c.is_bearer()) {
            self.cache.store_challenge(&scope.host, bearer.clone());
            let token = self.fetch_token(scope, bearer).await?;
            return header_value(scope, format!("Bearer {token}"));
        }
        if let Some(basic) = challenges.iter().find(|c| c.is_basic()) {
            self.cache.store_challenge(&scope.host, basic.clone());
            let creds = self.config.credentials.get(&scope.host).ok_or_else(|| {
                scope.auth_error(format!(
                    "the registry wants Basic credentials and none are configured for {}",
                    scope.host
                ))
            })?;
            return header_value(scope, auth::basic_header(creds));
        }
        Err(scope.auth_error(
            "the registry answered 401 without a Bearer or Basic WWW-Authenticate challenge",
        ))
    }

    /// Get a token from the challenge's realm and cache it.
    async fn fetch_token(&self, scope: &Scope, challenge: &Challenge) -> Result<String, OciError> {
        let wanted = scope.as_scope();
        let realm = challenge
            .param("realm")
            .ok_or_else(|| scope.auth_error("Bearer challenge without a realm"))?;
        let mut scopes = vec![wanted.as_str()];
        // Ask for what the registry named too, in case it differs from ours.
        if let Some(named) = challenge.param("scope").filter(|s| !s.is_empty())
            && named != wanted
        {
            scopes.push(named);
        }
        let url = auth::token_url(realm, challenge.param("service"), &scopes)
            .ok_or_else(|| scope.auth_error(format!("unusable token realm {realm:?}")))?;
        self.check_scheme(&url)?;
        let mut req = Req::new(Method::GET, url.clone());
        let creds = self.config.credentials.get(&scope.host);
        if let Some(creds) = creds {
            req.headers.insert(
                AUTHORIZATION,
                header_value(scope, auth::basic_header(creds))?,
            );
        }
        info!(registry = %scope.host, scope = %wanted, realm, "fetching registry token");
        let resp = self.send_retrying(&req, None).await?;
        let status = resp.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            let hint = match creds {
                Some(_) => "check the configured credentials".to_owned(),
                None => format!("no credentials are configured for {}", scope.host),
            };
            let excerpt = body_excerpt(resp).await;
            return Err(scope.auth_error(format!(
                "token service {realm} refused with {status} ({hint}): {excerpt}"
            )));
        }
        if !status.is_success() {
            return Err(http_error(&Method::GET, &url, resp).await);
        }
        let body = read_capped(&Method::GET, &url, resp, METADATA_CAP).await?;
        let (token, ttl) = auth::parse_token_response(&body)
            .map_err(|reason| scope.auth_error(format!("token service {realm}: {reason}")))?;
        self.cache.store(&scope.host, &wanted, token.clone(), ttl);
        Ok(token)
    }
}

fn challenges(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(auth::parse_www_authenticate)
        .collect()
}

fn header_value(scope: &Scope, value: String) -> Result<HeaderValue, OciError> {
    HeaderValue::try_from(value)
        .map(|mut v| {
            v.set_sensitive(true);
            v
        })
        .map_err(|_| scope.auth_error("credentials or token contain bytes not allowed in a header"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_spell_like_the_token_spec() {
        assert_eq!(Scope::pull("h", "a/b").as_scope(), "repository:a/b:pull");
        assert_eq!(
            Scope::push("h", "a/b").as_scope(),
            "repository:a/b:pull,push"
        );
    }
}
