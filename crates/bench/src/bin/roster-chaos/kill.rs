//! Scenario 1: `kill -9` in the middle of removals. A bulk removal of `--bulk-size` members
//! (or a stream of single removals over several connections) is cut off by SIGKILL at a
//! random moment; the server is started again on the same database, and each removal must be
//! wholly done (the membership, its project membership, and its audit event, former-member
//! record and event all there) or wholly not done, and every removal answered 200 done.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster_bench::{client, seed};
use roster_core::ids::OrganizationId;
use serde_json::json;

use crate::Chaos;

/// What a round's end must show besides the members: whether the events match the removals
/// done (one `membership.removed` each, counted from `events_before`), and whether the
/// invariants hold.
#[derive(Default)]
struct RoundChecks {
    events_off: usize,
    broken: usize,
}

impl RoundChecks {
    async fn check(&mut self, c: &mut Chaos, events_before: i64, done: usize) {
        if c.db.removal_events(c.b.org).await - events_before != done as i64 {
            self.events_off += 1;
        }
        if !c.db.invariants().await.hold() {
            self.broken += 1;
        }
    }
}

/// `rounds` bulk removals of `size` members each, each cut off by SIGKILL at a random moment
/// up to 1.5× the time one takes whole.
pub async fn bulk(c: &mut Chaos, rounds: usize, size: usize) {
    let whole = {
        let seeded = c.b.seed(size).await;
        let t = Instant::now();
        let status = send_bulk(c.server.addr.clone(), c.b.org, c.b.token.clone(), seeded).await;
        assert_eq!(status, Some(200), "a bulk removal left alone must succeed");
        t.elapsed()
    };
    let (mut wholly, mut not, mut half, mut lost) = (0, 0, 0, 0);
    let mut checks = RoundChecks::default();
    for _ in 0..rounds {
        let seeded = c.b.seed(size).await;
        let events_before = c.db.removal_events(c.b.org).await;
        let at = whole.mul_f64(1.5 * c.random.uniform());
        let sent = tokio::spawn(send_bulk(
            c.server.addr.clone(),
            c.b.org,
            c.b.token.clone(),
            seeded.clone(),
        ));
        tokio::time::sleep(at).await;
        c.restart_after_kill();
        let answered = sent.await.unwrap_or(None);
        let acknowledged: HashSet<String> = if answered == Some(200) {
            seeded
                .iter()
                .map(|s| s.membership.0.simple().to_string())
                .collect()
        } else {
            HashSet::new()
        };
        let t = c.db.tally(Some(c.b.org), &seeded, &acknowledged).await;
        if t.done == size {
            wholly += 1;
        } else if t.not_done == size {
            not += 1;
        } else {
            half += 1;
        }
        lost += t.lost;
        checks.check(c, events_before, t.done).await;
    }
    let invariants = c.db.invariants().await;
    let RoundChecks { events_off, broken } = checks;
    c.row(&format!(
        "| kill -9 during a {size}-id bulk removal ({:.0} ms whole) | {rounds} | {wholly} wholly done, {not} wholly not done, {half} in part | {lost} | {events_off} | {broken} | {} |",
        whole.as_secs_f64() * 1000.0,
        invariants.verdict()
    ));
}

/// `rounds` streams of single removals over `connections` connections, each cut off by SIGKILL
/// after a random 0.2 to 1.5 s.
pub async fn singles(c: &mut Chaos, rounds: usize, connections: usize) {
    let (mut removals, mut answered, mut half, mut lost) = (0, 0, 0, 0);
    let mut checks = RoundChecks::default();
    for _ in 0..rounds {
        // More than the stream can remove before the kill.
        let seeded = c.b.seed(20_000).await;
        let events_before = c.db.removal_events(c.b.org).await;
        let acknowledged = Arc::new(Mutex::new(HashSet::new()));
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let queue = Arc::new(seeded.clone());
        let mut workers = Vec::new();
        for _ in 0..connections {
            let (addr, org, token) = (c.server.addr.clone(), c.b.org, c.b.token.clone());
            let (acknowledged, next, queue) = (acknowledged.clone(), next.clone(), queue.clone());
            workers.push(tokio::spawn(async move {
                let Ok(mut conn) = client::Conn::open(&addr).await else {
                    return;
                };
                let auth = format!("Bearer {token}");
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(s) = queue.get(i) else { return };
                    match conn.remove_member(org, s.membership, &auth).await {
                        Ok(200) => {
                            acknowledged
                                .lock()
                                .unwrap()
                                .insert(s.membership.0.simple().to_string());
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            }));
        }
        let at = Duration::from_millis(200) + Duration::from_secs_f64(1.3 * c.random.uniform());
        tokio::time::sleep(at).await;
        c.restart_after_kill();
        for w in workers {
            let _ = w.await;
        }
        let acknowledged = acknowledged.lock().unwrap().clone();
        let t = c.db.tally(Some(c.b.org), &seeded, &acknowledged).await;
        removals += t.done;
        answered += acknowledged.len();
        half += t.half_done;
        lost += t.lost;
        checks.check(c, events_before, t.done).await;
    }
    let invariants = c.db.invariants().await;
    let RoundChecks { events_off, broken } = checks;
    c.row(&format!(
        "| kill -9 during single removals ({connections} connections) | {rounds} | {removals} done ({answered} answered 200), {half} in part | {lost} | {events_off} | {broken} | {} |",
        invariants.verdict()
    ));
}

/// The native bulk removal of `seeded`, on a connection of its own: its status, or `None` if
/// the connection broke first.
async fn send_bulk(
    addr: String,
    org: OrganizationId,
    token: String,
    seeded: Vec<seed::Seeded>,
) -> Option<u16> {
    let ids: Vec<String> = seeded.iter().map(|s| s.membership.to_string()).collect();
    let body = json!({ "membership_ids": ids }).to_string();
    let mut conn = client::Conn::open(&addr).await.ok()?;
    conn.send(
        "POST",
        &format!("/v1/organizations/{org}/memberships/bulk-remove"),
        &format!("Bearer {token}"),
        Some(body.as_bytes()),
    )
    .await
    .ok()
}
