//! Limits on failed authentication: after too many failures in a minute from one client
//! address, or naming one token id, requests presenting a token from that address or with
//! that token id are refused with 429 (`Rejection::TooManyAuthFailures`, in the mount's
//! envelope, with `Retry-After`) until the minute is over, before any secret is hashed or any
//! row read. Secrets are 32 random bytes, so guessing one is hopeless anyway; the limits keep a
//! prober or a misconfigured client from costing the database a read per attempt, and make
//! its noise stop.
//!
//! Failures are counted where they are seen, on the way out: every 401 a mount answers
//! (`record`), whichever layer refused the credentials. The client address is the connection's
//! peer (`ClientAddr`, set by `serve`); behind a proxy that is the proxy's, and the limit by
//! address then applies to everyone behind it (limit at the proxy instead).
//!
//! A fixed window a key rather than `governor`'s rate limiter: a refusal must look at a key's
//! count without spending from it, which `governor` has no call for.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use roster_core::ids::TokenId;
use roster_core::secrets::Credentials;

use crate::AppState;
use crate::extract::Rejection;

/// Failed authentications a client address may make in a window.
pub const FAILURES_PER_ADDRESS: u32 = 50;
/// Failed authentications naming one token id in a window.
pub const FAILURES_PER_TOKEN: u32 = 10;
/// The window the limits count over.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Keys kept before those whose window is over are swept out.
const SWEEP_AT: usize = 10_000;

/// The peer address of the connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// Failure counts a key, each in the window its first failure opened.
struct Windows<K> {
    limit: u32,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq + Copy> Windows<K> {
    fn new(limit: u32) -> Self {
        Windows {
            limit,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` is still refused, if it is.
    fn refused(&self, key: K, now: Instant) -> Option<Duration> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (opened, failures) = *counts.get(&key)?;
        let left = (opened + WINDOW).checked_duration_since(now)?;
        (failures >= self.limit && !left.is_zero()).then_some(left)
    }

    fn failed(&self, key: K, now: Instant) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= SWEEP_AT {
            counts.retain(|_, (opened, _)| now < *opened + WINDOW);
        }
        let entry = counts.entry(key).or_insert((now, 0));
        if now >= entry.0 + WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// The failure counts of the whole service.
pub struct AuthFailureLimits {
    by_address: Windows<IpAddr>,
    by_token: Windows<TokenId>,
}

impl Default for AuthFailureLimits {
    fn default() -> Self {
        AuthFailureLimits {
            by_address: Windows::new(FAILURES_PER_ADDRESS),
            by_token: Windows::new(FAILURES_PER_TOKEN),
        }
    }
}

impl std::fmt::Debug for AuthFailureLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthFailureLimits")
    }
}

impl AuthFailureLimits {
    /// Whether a request presenting `credentials` from `addr` is refused, and for how long.
    fn refused(&self, addr: Option<IpAddr>, credentials: &Credentials) -> Option<Duration> {
        let now = Instant::now();
        let by_address = addr.and_then(|a| self.by_address.refused(a, now));
        let by_token = match credentials {
            Credentials::Token(t) => self.by_token.refused(t.id, now),
            _ => None,
        };
        by_address.max(by_token)
    }

    /// Counts a failed presentation of a token (only those cost a read, and only those could
    /// be a guess).
    fn failed(&self, addr: Option<IpAddr>, credentials: &Credentials) {
        let Credentials::Token(t) = credentials else {
            return;
        };
        let now = Instant::now();
        if let Some(a) = addr {
            self.by_address.failed(a, now);
        }
        self.by_token.failed(t.id, now);
    }
}

/// For the extractors: refuses a request presenting a token while its address or token id is
/// over its limit. Anything else (no credentials, a key that is not a roster token) fails
/// without a read, and is neither counted nor refused here.
pub fn check(
    state: &AppState,
    extensions: &axum::http::Extensions,
    credentials: &Credentials,
) -> Result<(), Rejection> {
    if !matches!(credentials, Credentials::Token(_)) {
        return Ok(());
    }
    let addr = extensions.get::<ClientAddr>().map(|a| a.0);
    match state.auth_limits.refused(addr, credentials) {
        Some(left) => Err(Rejection::TooManyAuthFailures {
            retry_after_secs: left.as_secs().max(1),
        }),
        None => Ok(()),
    }
}

/// Counts every 401 against its address and token id, and tells a refused client when to
/// come back (`Retry-After`).
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let addr = req.extensions().get::<ClientAddr>().map(|a| a.0);
    // Kept (a reference count), and read only if the answer is a refusal.
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let mut response = next.run(req).await;
    let credentials = || crate::auth::credentials_in(authorization.as_ref());
    match response.status() {
        StatusCode::UNAUTHORIZED => state.auth_limits.failed(addr, &credentials()),
        StatusCode::TOO_MANY_REQUESTS => {
            if let Some(left) = state.auth_limits.refused(addr, &credentials()) {
                let secs = left.as_secs().max(1).to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_once_it_reaches_its_limit_and_only_until_its_window_ends() {
        let w = Windows::new(3);
        let t0 = Instant::now();
        for _ in 0..2 {
            w.failed(1u8, t0);
        }
        assert_eq!(w.refused(1, t0), None, "two failures of three allowed");
        w.failed(1, t0);
        assert_eq!(w.refused(1, t0), Some(WINDOW));
        assert_eq!(w.refused(2, t0), None, "another key is not refused");
        let later = t0 + WINDOW - Duration::from_secs(1);
        assert_eq!(w.refused(1, later), Some(Duration::from_secs(1)));
        assert_eq!(w.refused(1, t0 + WINDOW), None, "the window is over");
        w.failed(1, t0 + WINDOW);
        assert_eq!(
            w.refused(1, t0 + WINDOW),
            None,
            "a new window counts afresh"
        );
    }

    #[test]
    fn keys_whose_window_is_over_are_swept_when_the_map_grows() {
        let w = Windows::new(1);
        let t0 = Instant::now();
        for k in 0..SWEEP_AT as u32 {
            w.failed(k, t0);
        }
        w.failed(u32::MAX, t0 + WINDOW);
        assert_eq!(w.counts.lock().unwrap().len(), 1);
    }
}
