//! The secrets a request may prove it knows: the access token (compared by
//! digest, in constant time) and the optional argon2id password hash.

use super::csrf::constant_time_eq;
use super::session::{hex, random_hex};
use crate::WebAuth;
use crate::error::{ConfigError, WebError};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// argon2id checks run at once; each takes tens of MiB and a core for
/// tens of milliseconds, so a flood of logins cannot exhaust the host.
const PARALLEL_CHECKS: usize = 2;

/// A new random access token: 32 bytes from the kernel, as hex.
pub fn random_token() -> std::io::Result<String> {
    random_hex()
}

/// The argon2id PHC string of `password`, with a random salt and the
/// crate's recommended parameters.
pub fn hash_password(password: &str) -> Result<String, WebError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| ConfigError::HashPassword(e).into())
}

/// Whether `s` is an argon2id PHC string (what `[web] password_hash` holds).
pub fn is_password_hash(s: &str) -> bool {
    PasswordHash::new(s.trim()).is_ok_and(|hash| {
        Algorithm::try_from(hash.algorithm.as_str()).is_ok_and(|a| a == Algorithm::Argon2id)
            && hash.salt.is_some()
            && hash.hash.is_some()
    })
}

fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// The configured secrets: the token only as a digest.
pub(crate) struct Credentials {
    token_sha256: Option<String>,
    password_hash: Option<String>,
    checks: Semaphore,
}

impl Credentials {
    pub(crate) fn new(auth: &WebAuth) -> Self {
        let token = auth.token.trim();
        Self {
            // An empty token must never match an empty guess.
            token_sha256: (!token.is_empty()).then(|| sha256_hex(token)),
            password_hash: auth
                .password_hash
                .as_deref()
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned),
            checks: Semaphore::new(PARALLEL_CHECKS),
        }
    }

    pub(crate) fn token_matches(&self, token: &str) -> bool {
        let given = sha256_hex(token.trim());
        self.token_sha256
            .as_deref()
            .is_some_and(|want| constant_time_eq(want.as_bytes(), given.as_bytes()))
    }

    /// The login form takes the password or the token.
    pub(crate) async fn secret_matches(&self, given: &str) -> bool {
        if self.token_matches(given) {
            return true;
        }
        let Some(hash) = self.password_hash.clone() else {
            return false;
        };
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        let given = given.to_owned();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|hash| {
                Argon2::default()
                    .verify_password(given.as_bytes(), &hash)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn token_or_argon2id_password() {
        let hash = hash_password("hunter2").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(is_password_hash(&hash));
        assert_ne!(hash, hash_password("hunter2").unwrap_or_default(), "salted");
        let credentials = Credentials::new(&WebAuth {
            token: "t0ken-t0ken-t0ken".to_owned(),
            password_hash: Some(hash),
        });
        assert!(credentials.secret_matches("hunter2").await);
        assert!(credentials.secret_matches("t0ken-t0ken-t0ken").await);
        assert!(!credentials.secret_matches("hunter3").await);
        assert!(!credentials.secret_matches("").await);
        assert!(credentials.token_matches("t0ken-t0ken-t0ken"));
        assert!(!credentials.token_matches("hunter2"));
    }

    #[test]
    fn only_argon2id_phc_strings_are_password_hashes() {
        assert!(!is_password_hash(&"ab".repeat(32)));
        assert!(!is_password_hash(
            "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"
        ));
        assert!(!is_password_hash(""));
        let empty = Credentials::new(&WebAuth {
            token: String::new(),
            password_hash: None,
        });
        assert!(!empty.token_matches(""));
    }
}
