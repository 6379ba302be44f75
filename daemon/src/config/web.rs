//! The `[web]` section: the listener's secrets, the host names it answers
//! to, what it serves without a login, and TLS.

use super::ConfigError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[web]` section as written.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebSection {
    /// `host:port`, or `off`.
    pub listen: Option<String>,
    /// The access token (bearer header, `/login?token=`, login form); unset
    /// = a random one at each start, written to `<state_dir>/web-token`.
    pub token: Option<String>,
    /// argon2id PHC string of the login password (`btyd hash-password`).
    pub password_hash: Option<String>,
    /// No longer accepted (unsalted); present only to say how to migrate.
    pub password_sha256: Option<String>,
    /// Host names the listener answers to besides its address (DNS
    /// rebinding defence: other Host headers get 421).
    pub hosts: Vec<String>,
    /// Serve `GET /images`, `/images/*` and `/catalog.toml` without a login.
    pub public_read: bool,
    /// PEM certificate chain for HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address.
    pub insecure: bool,
}

/// The resolved `[web]` settings (besides `listen`).
#[derive(Clone, Default, PartialEq)]
pub struct WebConfig {
    /// A configured access token; `None` = random at each start.
    pub token: Option<String>,
    /// argon2id PHC string of the login password.
    pub password_hash: Option<String>,
    /// Extra host names.
    pub hosts: Vec<String>,
    /// The fetch routes answer without a login.
    pub public_read: bool,
    /// `(certificate, key)` PEM paths when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Plain HTTP off loopback accepted.
    pub insecure: bool,
}

impl std::fmt::Debug for WebConfig {
    // Secrets stay out of `--check-config` and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &Option<String>| s.as_ref().map(|_| "(set)");
        f.debug_struct("WebConfig")
            .field("token", &set(&self.token))
            .field("password_hash", &set(&self.password_hash))
            .field("hosts", &self.hosts)
            .field("public_read", &self.public_read)
            .field("tls", &self.tls)
            .field("insecure", &self.insecure)
            .finish()
    }
}

fn invalid(key: &'static str, value: impl Into<String>, why: &'static str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.into(),
        why,
    }
}

impl WebConfig {
    /// Check the section against the listen address it applies to.
    pub fn resolve(section: WebSection, listen: Option<SocketAddr>) -> Result<Self, ConfigError> {
        if section.password_sha256.is_some() {
            return Err(invalid(
                "web.password_sha256",
                "(set)",
                "unsalted sha256 password hashes are no longer accepted: run \
                 `btyd hash-password`, put its output in [web] password_hash, and remove \
                 password_sha256",
            ));
        }
        let given = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let token = given(section.token);
        if token
            .as_ref()
            .is_some_and(|t| t.len() < bty_web::MIN_TOKEN_LEN)
        {
            return Err(invalid(
                "web.token",
                "(short)",
                "must be at least 16 characters (or unset: btyd then makes a random one)",
            ));
        }
        let password_hash = given(section.password_hash);
        if password_hash
            .as_deref()
            .is_some_and(|h| !bty_web::is_password_hash(h))
        {
            return Err(invalid(
                "web.password_hash",
                "(set)",
                "must be an argon2id PHC string ($argon2id$v=19$…): make one with \
                 `btyd hash-password`",
            ));
        }
        let tls = match (section.tls_cert, section.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (cert, _) => {
                return Err(invalid(
                    if cert.is_some() {
                        "web.tls_key"
                    } else {
                        "web.tls_cert"
                    },
                    "(missing)",
                    "tls_cert and tls_key go together",
                ));
            }
        };
        if let Some(addr) = listen
            && tls.is_none()
            && !section.insecure
            && !addr.ip().is_loopback()
        {
            return Err(invalid(
                "web.listen",
                addr.to_string(),
                "plain HTTP off loopback sends passwords, tokens and session cookies in \
                 clear: set [web] tls_cert and tls_key, listen on a loopback address, or \
                 set [web] insecure = true to accept the risk",
            ));
        }
        Ok(Self {
            token,
            password_hash,
            hosts: section.hosts,
            public_read: section.public_read,
            tls,
            insecure: section.insecure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(s: &str) -> Option<SocketAddr> {
        s.parse().ok()
    }

    #[test]
    fn sha256_passwords_are_refused_with_the_migration() {
        let section = WebSection {
            password_sha256: Some("ab".repeat(32)),
            ..WebSection::default()
        };
        let error = WebConfig::resolve(section, listen("127.0.0.1:8080"))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            error
                .as_ref()
                .is_err_and(|e| e.contains("btyd hash-password") && e.contains("password_hash")),
            "{error:?}"
        );
    }

    #[test]
    fn plain_http_off_loopback_needs_insecure() {
        let open = WebConfig::resolve(WebSection::default(), listen("0.0.0.0:8080"));
        assert!(open.is_err_and(|e| e.to_string().contains("tls_cert")));
        let insecure = WebSection {
            insecure: true,
            ..WebSection::default()
        };
        assert!(WebConfig::resolve(insecure, listen("0.0.0.0:8080")).is_ok());
        let tls = WebSection {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..WebSection::default()
        };
        assert!(WebConfig::resolve(tls, listen("0.0.0.0:8080")).is_ok());
        let half = WebSection {
            tls_cert: Some("c.pem".into()),
            ..WebSection::default()
        };
        assert!(WebConfig::resolve(half, listen("127.0.0.1:8080")).is_err());
        assert!(WebConfig::resolve(WebSection::default(), None).is_ok());
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        let short = WebSection {
            token: Some("short".into()),
            ..WebSection::default()
        };
        assert!(WebConfig::resolve(short, listen("127.0.0.1:1")).is_err());
        let bad_hash = WebSection {
            password_hash: Some("$2y$10$bcrypt".into()),
            ..WebSection::default()
        };
        assert!(WebConfig::resolve(bad_hash, listen("127.0.0.1:1")).is_err());
        let hash = bty_web::hash_password("hunter2").unwrap_or_default();
        let good = WebSection {
            token: Some("0123456789abcdef-SECRET".into()),
            password_hash: Some(hash.clone()),
            ..WebSection::default()
        };
        let config = WebConfig::resolve(good, listen("127.0.0.1:1")).unwrap_or_default();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains(&hash),
            "{shown}"
        );
        assert_eq!(config.password_hash, Some(hash));
    }
}
