//! Request ids: every request gets one (a client's own `x-request-id` is kept when it is short
//! and plain), every response carries it back, every error body names it, and it is written
//! into the audit events of the change. It travels in a task-local, so that error renderers,
//! including those of framework rejections, can read it without threading it through.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use roster_core::RequestContext;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

struct Current {
    id: String,
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
        })
        .unwrap_or_default()
}

fn acceptable(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// A fresh request id: `req-` and a UUIDv7 in 32 hex digits, its time first so that ids sort
/// by when their requests came. Its random bits come from a generator of the thread's own,
/// seeded once: `Uuid::now_v7` takes a process-wide lock (for an order within the millisecond
/// that a request id does not need) and makes a system call for its random bits, two costs
/// on every request's path, where the async workers contend for that lock.
fn new_id() -> String {
    thread_local! {
        // Seeded with the random tail of one `now_v7` id per thread.
        static STATE: Cell<u64> = Cell::new(u64::from_le_bytes(
            uuid::Uuid::now_v7().as_bytes()[8..].try_into().expect("8 bytes"),
        ));
    }
    let [a, b] = STATE.with(|s| [next_random(s), next_random(s)]);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&a.to_le_bytes());
    random[8..].copy_from_slice(&b.to_le_bytes()[..2]);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    format!("req-{}", id.simple())
}

/// SplitMix64: a step of a Weyl sequence, mixed. Not for secrets; ids only need to differ.
fn next_random(state: &Cell<u64>) -> u64 {
    let x = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
    state.set(x);
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub async fn assign(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(new_id);
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let current = Current { id: id.clone() };
    let mut res = CURRENT.scope(current, next.run(req).instrument(span)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::new_id;

    fn parse(id: &str) -> uuid::Uuid {
        let hex = id.strip_prefix("req-").expect("the req- prefix");
        uuid::Uuid::parse_str(hex).expect("a UUID in hex")
    }

    #[test]
    fn generated_request_ids_are_distinct_uuid_v7_of_the_current_time() {
        let ids: Vec<String> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..5_000).map(|_| new_id()).collect::<Vec<_>>()))
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        for id in &ids {
            let uuid = parse(id);
            assert_eq!(uuid.get_version_num(), 7, "{id}");
            let (secs, _) = uuid.get_timestamp().expect("a v7 timestamp").to_unix();
            assert!(now.as_secs().abs_diff(secs) <= 60, "{id} is not of now");
        }
    }
}
