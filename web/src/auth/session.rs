//! Server-side login sessions: random ids from the kernel, kept in memory
//! with a sliding expiry, each with its own CSRF token.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "bty_session";

/// How long a session lives without a request (sliding).
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A logged-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The token forms and `bty.js` must echo on state-changing requests.
    pub(crate) csrf: String,
    expires: Instant,
}

/// All live sessions, keyed by the sha256 of their id so the map never
/// holds a usable cookie value.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes from the kernel, as hex.
pub(crate) fn random_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex(&bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn key(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

impl Sessions {
    /// A new session: `(cookie value, csrf token)`.
    pub(crate) fn create(&self) -> std::io::Result<(String, String)> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let now = Instant::now();
        // A poisoned map only means another request panicked mid-update;
        // the sessions themselves are still consistent.
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|_, s| s.expires > now);
        live.insert(
            key(&id),
            Session {
                csrf: csrf.clone(),
                expires: now + SESSION_TTL,
            },
        );
        Ok((id, csrf))
    }

    /// The live session of a cookie value, its expiry pushed back.
    pub(crate) fn touch(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let key = key(id);
        match live.get_mut(&key) {
            Some(session) if session.expires > now => {
                session.expires = now + SESSION_TTL;
                Some(session.clone())
            }
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Log a session out.
    pub(crate) fn remove(&self, id: &str) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.remove(&key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_and_removable() {
        let sessions = Sessions::default();
        let (a, csrf_a) = sessions.create().unwrap_or_default();
        let (b, _) = sessions.create().unwrap_or_default();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(sessions.touch(&a).map(|s| s.csrf), Some(csrf_a));
        sessions.remove(&a);
        assert!(sessions.touch(&a).is_none());
        assert!(sessions.touch("forged").is_none());
    }
}
