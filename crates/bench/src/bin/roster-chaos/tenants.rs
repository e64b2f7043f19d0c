//! Scenario 6, many tenants: single removals (native, one membership a request) arriving at
//! random at fixed rates whether or not earlier ones were answered (an open loop), first all
//! in the one seeded organization, then spread at random over `--tenants` organizations of
//! 20 members each, where two removals rarely meet in one organization. For each load: the
//! rate served and its latency, on PostgreSQL the most connections the server held at once
//! (group commit's lanes must not exhaust its pool), what became of every member a removal
//! was sent for, and the invariants; then the spread load against the one organization's.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roster_bench::load::{Run, connections, drive_open};
use roster_bench::seed::Seeded;
use roster_core::ids::OrganizationId;

use crate::Chaos;
use crate::db::Db;

/// Connections serving the arrivals (as `roster-bench`'s open loop); an arrival that finds
/// them all busy waits, and its latency counts the wait.
const CONNECTIONS: usize = 64;

/// One load's figures.
struct Load {
    served: f64,
    p50_ms: f64,
    p99_ms: f64,
}

pub async fn run(c: &mut Chaos, tenants: usize, rates: &[u32], seconds: u64) {
    println!(
        "| load | offered/s | served/s | p50 ms | p99 ms | max ms | errors | most PostgreSQL connections | removed wholly, kept, in part, answered 200 and kept | invariants |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut spread = c.b.seed_organizations(tenants, &mut c.random).await;
    let mut ratios = Vec::new();
    for &rate in rates {
        let n = rate as usize * seconds as usize;
        let org = c.b.org;
        let one: Vec<(OrganizationId, Seeded)> =
            c.b.seed(n).await.into_iter().map(|m| (org, m)).collect();
        let in_one = load(c, "one organization".into(), rate, one).await;
        let mine = spread.split_off(spread.len().saturating_sub(n));
        let label = format!("spread over {tenants} organizations");
        let spread_out = load(c, label, rate, mine).await;
        ratios.push(format!(
            "at {rate}/s offered, spread against one organization: {:.2}× the rate served, {:.2}× the p50, {:.2}× the p99",
            spread_out.served / in_one.served,
            spread_out.p50_ms / in_one.p50_ms,
            spread_out.p99_ms / in_one.p99_ms
        ));
    }
    println!();
    for r in ratios {
        println!("- {r}");
    }
}

/// Offers the removal of every member of `targets` at `rate` a second and prints its row.
async fn load(
    c: &mut Chaos,
    label: String,
    rate: u32,
    targets: Vec<(OrganizationId, Seeded)>,
) -> Load {
    c.db.checkpoint().await;
    let targets = Arc::new(targets);
    let acknowledged: Arc<Mutex<HashSet<String>>> = Arc::default();
    let watch = ConnectionWatch::start(&c.b.target).await;
    let conns = connections(&c.server.addr, CONNECTIONS).await;
    let auth = format!("Bearer {}", c.b.token);
    let work = {
        let (targets, acknowledged) = (targets.clone(), acknowledged.clone());
        move |w: usize, i: usize| {
            let (org, m) = targets[i];
            let (conns, auth, acknowledged) = (conns.clone(), auth.clone(), acknowledged.clone());
            async move {
                let answer = conns[w]
                    .lock()
                    .await
                    .remove_member(org, m.membership, &auth)
                    .await;
                let removed = matches!(answer, Ok(200));
                if removed {
                    let id = m.membership.0.simple().to_string();
                    acknowledged.lock().unwrap().insert(id);
                }
                removed
            }
        }
    };
    let mut run: Run = drive_open(targets.len(), 0, CONNECTIONS, rate, work).await;
    let most_connections = watch.stop().await;
    let seeded: Vec<Seeded> = targets.iter().map(|(_, m)| *m).collect();
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    let t = c.db.tally(None, &seeded, &acknowledged).await;
    let invariants = c.db.invariants().await.verdict();
    let figures = Load {
        served: run.rps(),
        p50_ms: run.percentile_ms(0.50),
        p99_ms: run.percentile_ms(0.99),
    };
    println!(
        "| {label} | {rate} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {}, {}, {}, {} | {invariants} |",
        figures.served,
        figures.p50_ms,
        figures.p99_ms,
        run.percentile_ms(1.0),
        run.errors,
        most_connections.map_or("n/a".into(), |k| k.to_string()),
        t.done,
        t.not_done,
        t.half_done,
        t.lost,
    );
    figures
}

/// On PostgreSQL, the most connections the server held to its database, polled every 20 ms
/// from a connection of its own while a load runs.
struct ConnectionWatch {
    done: Arc<AtomicBool>,
    most: Arc<AtomicI64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ConnectionWatch {
    async fn start(target: &roster_bench::Target) -> ConnectionWatch {
        let (done, most) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicI64::new(0)),
        );
        let task = match Db::open(target).await {
            db @ Db::Postgres(_) => {
                let (done, most) = (done.clone(), most.clone());
                Some(tokio::spawn(async move {
                    let mut db = db;
                    let sql = "SELECT COUNT(*) FROM pg_stat_activity \
                               WHERE datname = current_database() AND pid <> pg_backend_pid()";
                    while !done.load(Ordering::Relaxed) {
                        most.fetch_max(db.count(sql).await, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }))
            }
            Db::Sqlite(_) => None,
        };
        ConnectionWatch { done, most, task }
    }

    /// The most seen, or `None` on SQLite.
    async fn stop(self) -> Option<i64> {
        self.done.store(true, Ordering::Relaxed);
        let task = self.task?;
        task.await.unwrap();
        Some(self.most.load(Ordering::Relaxed))
    }
}
