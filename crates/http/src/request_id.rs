//! Request ids: every request gets one (a client's own `x-request-id` is kept when it is short
//! and plain), every response carries it back, every error body names it, and it is written
//! into the audit events of the change. It travels in a task-local, so that error renderers,
//! including those of framework rejections, can read it without threading it through.
//!
//! With it travels the key of the client's connection (`RequestContext::client`), when the
//! server was started with the peers' addresses (`serve` does): group commit holds a batch for
//! the connections it has just answered.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use roster_core::RequestContext;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

struct Current {
    id: String,
    client: Option<u64>,
}

tokio::task_local! {
    static CURRENT: Current;
}

/// The current request's id ("" outside a request).
pub fn current() -> String {
    CURRENT.try_with(|c| c.id.clone()).unwrap_or_default()
}

/// The core's view of the current request.
pub fn context() -> RequestContext {
    CURRENT
        .try_with(|c| RequestContext {
            request_id: (!c.id.is_empty()).then(|| c.id.clone()),
            client: c.client,
        })
        .unwrap_or_default()
}

/// A key for the connection from `peer`: a TCP connection is one peer address at a time.
/// Only equality matters (a collision would merely make a hold wait for the wrong client).
fn client_key(peer: SocketAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    peer.hash(&mut hasher);
    hasher.finish()
}

fn acceptable(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

pub async fn assign(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::now_v7().simple()));
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| client_key(*peer));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let current = Current {
        id: id.clone(),
        client,
    };
    let mut res = CURRENT.scope(current, next.run(req).instrument(span)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, v);
    }
    res
}
