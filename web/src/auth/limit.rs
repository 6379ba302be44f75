//! Login attempts per client and overall: token buckets of failures.
//!
//! Every attempt (login form, token URL, bearer token) takes a token from
//! its client's bucket and from the global one before the secret is
//! checked; a success gives them back. With a bucket empty the attempt is
//! refused unchecked (429), so guessing stays slow however many requests
//! run in parallel. Clients are keyed by IP address (IPv6 by /64, which one
//! host usually owns); behind a reverse proxy they all share its address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures one client may make in a row.
const CLIENT_BURST: f64 = 10.0;
/// One more failure allowed per this many seconds, per client.
const CLIENT_REFILL_SECS: f64 = 6.0;
/// Failures all clients together may make in a row.
const GLOBAL_BURST: f64 = 100.0;
/// One more failure allowed per this many seconds, overall.
const GLOBAL_REFILL_SECS: f64 = 1.0;
/// Clients tracked at once; past it only the global bucket counts.
const MAX_CLIENTS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant, burst: f64, refill_secs: f64) {
        let gained = now.duration_since(self.at).as_secs_f64() / refill_secs;
        self.tokens = (self.tokens + gained).min(burst);
        self.at = now;
    }

    /// Time until one token is there.
    fn wait(&self, refill_secs: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens).max(0.0) * refill_secs).max(0.0))
    }
}

#[derive(Debug)]
struct Buckets {
    global: Bucket,
    clients: HashMap<IpAddr, Bucket>,
}

/// The login limiter shared by every request.
#[derive(Debug)]
pub(crate) struct Limiter {
    buckets: Mutex<Buckets>,
}

impl Default for Limiter {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            buckets: Mutex::new(Buckets {
                global: Bucket::full(GLOBAL_BURST, now),
                clients: HashMap::new(),
            }),
        }
    }
}

/// One /64 per IPv6 host; IPv4 addresses as they are.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// An attempt that passed the limiter; dropped without [`Attempt::succeeded`]
/// it counts as a failure.
pub(crate) struct Attempt<'a> {
    limiter: &'a Limiter,
    client: IpAddr,
}

impl Attempt<'_> {
    /// The secret was right: give the tokens back.
    pub(crate) fn succeeded(self) {
        let now = Instant::now();
        let mut buckets = self.limiter.lock();
        buckets.global.refill(now, GLOBAL_BURST, GLOBAL_REFILL_SECS);
        buckets.global.tokens = (buckets.global.tokens + 1.0).min(GLOBAL_BURST);
        if let Some(bucket) = buckets.clients.get_mut(&self.client) {
            bucket.refill(now, CLIENT_BURST, CLIENT_REFILL_SECS);
            bucket.tokens = (bucket.tokens + 1.0).min(CLIENT_BURST);
        }
    }
}

impl Limiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        // The buckets stay consistent even if a holder panicked.
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take a token for an attempt from `client`, or say how long to wait.
    pub(crate) fn begin(&self, client: IpAddr) -> Result<Attempt<'_>, Duration> {
        let client = client_key(client);
        let now = Instant::now();
        let mut buckets = self.lock();
        buckets.global.refill(now, GLOBAL_BURST, GLOBAL_REFILL_SECS);
        if buckets.clients.len() >= MAX_CLIENTS && !buckets.clients.contains_key(&client) {
            // Buckets that refilled are the same as none.
            buckets.clients.retain(|_, b| {
                b.refill(now, CLIENT_BURST, CLIENT_REFILL_SECS);
                b.tokens < CLIENT_BURST
            });
        }
        let tracked = buckets.clients.len() < MAX_CLIENTS || buckets.clients.contains_key(&client);
        let mut client_bucket = None;
        if tracked {
            let bucket = buckets
                .clients
                .entry(client)
                .or_insert_with(|| Bucket::full(CLIENT_BURST, now));
            bucket.refill(now, CLIENT_BURST, CLIENT_REFILL_SECS);
            if bucket.tokens < 1.0 {
                return Err(bucket.wait(CLIENT_REFILL_SECS));
            }
            client_bucket = Some(bucket.tokens);
        }
        if buckets.global.tokens < 1.0 {
            return Err(buckets.global.wait(GLOBAL_REFILL_SECS));
        }
        buckets.global.tokens -= 1.0;
        if client_bucket.is_some()
            && let Some(bucket) = buckets.clients.get_mut(&client)
        {
            bucket.tokens -= 1.0;
        }
        Ok(Attempt {
            limiter: self,
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_runs_out_of_failures_but_not_of_successes() {
        let limiter = Limiter::default();
        let me: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..10 {
            assert!(limiter.begin(me).map(|a| a.succeeded()).is_ok());
        }
        for _ in 0..10 {
            assert!(limiter.begin(me).is_ok());
        }
        let wait = limiter.begin(me).err().unwrap_or_default();
        assert!(
            wait > Duration::from_secs(4) && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
        assert!(
            limiter.begin(other).is_ok(),
            "other clients keep their budget"
        );
    }

    #[test]
    fn all_clients_share_a_global_budget() {
        let limiter = Limiter::default();
        for i in 0..100u32 {
            let ip = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            assert!(limiter.begin(ip).is_ok());
        }
        assert!(limiter.begin([192, 168, 0, 1].into()).is_err());
    }

    #[test]
    fn ipv6_hosts_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8::1".parse().unwrap_or_else(|_| unreachable!());
        let b: IpAddr = "2001:db8::ffff:1"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(client_key(a), client_key(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(client_key(mapped), IpAddr::from([10, 0, 0, 1]));
    }
}
