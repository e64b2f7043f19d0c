//! Scenarios 2 and 3: the database fails under the server. PostgreSQL is stopped for a few
//! seconds in the middle of a removal load and started again (`pg_ctlcluster`); SQLite's disk
//! fills up (the database on a small tmpfs). Requests must fail fast and cleanly (503 in the
//! mount's envelope, no hang, no 500), the service must come back by itself, and nothing may
//! be half-done.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster_bench::{Bench, Server, Target, client, seed};

use crate::Chaos;
use crate::db::Db;

/// One answer of the load: when it was sent (from the load's start), its status (0: the
/// connection failed) and how long it took.
#[derive(Clone, Copy)]
struct Answer {
    sent: Duration,
    status: u16,
    took: Duration,
}

/// Single native removals of `seeded`, over 8 connections, until `until` has passed or every
/// member is removed; each connection opened again if it breaks.
async fn removal_load(
    addr: &str,
    b: &Bench,
    seeded: &[seed::Seeded],
    started: Instant,
    until: Duration,
) -> (Vec<Answer>, HashSet<String>) {
    let answers = Arc::new(Mutex::new(Vec::new()));
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let queue = Arc::new(seeded.to_vec());
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (addr, org, auth) = (addr.to_owned(), b.org, format!("Bearer {}", b.token));
        let (answers, acknowledged, next, queue) = (
            answers.clone(),
            acknowledged.clone(),
            next.clone(),
            queue.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut conn = None;
            while started.elapsed() < until {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(s) = queue.get(i) else { return };
                let t = Instant::now();
                if conn.is_none() {
                    conn = client::Conn::open(&addr).await.ok();
                }
                let status = match &mut conn {
                    Some(c) => match tokio::time::timeout(
                        Duration::from_secs(30),
                        c.remove_member(org, s.membership, &auth),
                    )
                    .await
                    {
                        Ok(Ok(status)) => status,
                        _ => 0,
                    },
                    None => 0,
                };
                if status == 0 {
                    conn = None;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if status == 200 {
                    acknowledged
                        .lock()
                        .unwrap()
                        .insert(s.membership.0.simple().to_string());
                }
                answers.lock().unwrap().push(Answer {
                    sent: t - started,
                    status,
                    took: t.elapsed(),
                });
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let answers = answers.lock().unwrap().clone();
    let acknowledged = acknowledged.lock().unwrap().clone();
    (answers, acknowledged)
}

/// "N × status" for each status among `answers`.
fn statuses(answers: &[&Answer]) -> String {
    let mut by: BTreeMap<u16, usize> = BTreeMap::new();
    for a in answers {
        *by.entry(a.status).or_default() += 1;
    }
    if by.is_empty() {
        return "none".into();
    }
    by.iter()
        .map(|(s, n)| match s {
            0 => format!("{n} × no answer"),
            s => format!("{n} × {s}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn slowest(answers: &[&Answer]) -> f64 {
    answers
        .iter()
        .map(|a| a.took.as_secs_f64() * 1000.0)
        .fold(0.0, f64::max)
}

/// The PostgreSQL cluster on port 5432, for `pg_ctlcluster`: (version, name).
fn cluster() -> Option<(String, String)> {
    let out = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"5432")).then(|| (f[0].to_owned(), f[1].to_owned()))
    })
}

/// Starts the cluster again when dropped, however the scenario ends: the machine's
/// PostgreSQL is shared with everything else.
struct StartAgain(String, String);

impl StartAgain {
    fn start(&self) -> bool {
        Command::new("pg_ctlcluster")
            .args([&self.0, &self.1, "start"])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for StartAgain {
    fn drop(&mut self) {
        self.start();
    }
}

/// Scenario 2: PostgreSQL stopped 3 s into a removal load, for 5 s, then started again.
pub async fn database_restart(c: &mut Chaos) {
    let Target::Postgres(_) = c.b.target else {
        return;
    };
    let Some((version, name)) = cluster() else {
        println!("\nNo PostgreSQL cluster on port 5432 that pg_ctlcluster knows: skipped.");
        return;
    };
    let seeded = c.b.seed(60_000).await;
    let started = Instant::now();
    let (stop_at, down_for) = (Duration::from_secs(3), Duration::from_secs(5));
    let load = removal_load(
        &c.server.addr,
        &c.b,
        &seeded,
        started,
        Duration::from_secs(16),
    );
    let fault = async {
        tokio::time::sleep(stop_at).await;
        let guard = StartAgain(version.clone(), name.clone());
        let stopped = Command::new("pg_ctlcluster")
            .args([&version, &name, "stop", "-m", "fast"])
            .status()
            .is_ok_and(|s| s.success());
        let stopped_at = started.elapsed();
        tokio::time::sleep(down_for).await;
        // Down until now: PostgreSQL may accept connections before `start` returns.
        let started_at = started.elapsed();
        let restarted = guard.start();
        std::mem::forget(guard);
        (stopped && restarted, stopped_at, started_at)
    };
    let ((answers, acknowledged), (faulted, stopped_at, started_at)) = tokio::join!(load, fault);
    assert!(
        faulted,
        "pg_ctlcluster could not stop and start {version}/{name}"
    );
    c.db = Db::open(&c.b.target).await;
    let before: Vec<&Answer> = answers.iter().filter(|a| a.sent < stopped_at).collect();
    let down: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.sent >= stopped_at && a.sent < started_at)
        .collect();
    let after: Vec<&Answer> = answers.iter().filter(|a| a.sent >= started_at).collect();
    let back = after
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.sent + a.took)
        .min()
        .map_or("never".into(), |t| {
            format!("{:.2} s", (t - started_at).as_secs_f64())
        });
    let t = c.db.tally(Some(c.b.org), &seeded, &acknowledged).await;
    println!(
        "\nPostgreSQL stopped at {:.1} s for {:.1} s under 8 connections of single removals:\n\n\
         | while | answers | slowest answer, ms |\n|---|---|---|\n\
         | up, before | {} | {:.1} |\n| down | {} | {:.1} |\n| up again | {} | {:.1} |\n\n\
         First removal answered 200 {back} after PostgreSQL was told to start again. {} removals done ({} answered 200), {} in part, {} acknowledged and lost. Invariants: {}",
        stopped_at.as_secs_f64(),
        (started_at - stopped_at).as_secs_f64(),
        statuses(&before),
        slowest(&before),
        statuses(&down),
        slowest(&down),
        statuses(&after),
        slowest(&after),
        t.done,
        acknowledged.len(),
        t.half_done,
        t.lost,
        c.db.invariants().await.verdict()
    );
}

/// Unmounts the tmpfs when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills `dir`'s file system until a write fails; the file that fills it.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).and_then(|()| f.sync_all()).is_ok() {}
    // What is left is less than a block: fill that too.
    while f.write_all(&[0u8; 512]).and_then(|()| f.sync_all()).is_ok() {}
    filler
}

/// Scenario 3: SQLite's disk fills up under a removal load, then space returns.
pub async fn disk_full(c: &mut Chaos) {
    let Target::Sqlite(_) = c.b.target else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("roster-full-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!("\nCould not mount a tmpfs (mount needs root): disk-full skipped.");
        return;
    }
    let _unmount = Mounted(dir.clone());
    let b = Bench::setup(Target::Sqlite(dir.join("full.db")), "Full").await;
    let seeded = b.seed(20_000).await;
    let server = Server::start(&c.args.backends.roster, &b.target, "");
    let mut db = Db::open(&b.target).await;
    let filler = fill(&dir);

    let started = Instant::now();
    let (full, acknowledged_full) = removal_load(
        &server.addr,
        &b,
        &seeded[..10_000],
        started,
        Duration::from_secs(4),
    )
    .await;
    let all: Vec<&Answer> = full.iter().collect();
    let while_full = format!("{} (slowest {:.1} ms)", statuses(&all), slowest(&all));
    let integrity_full = integrity(&mut db).await;

    std::fs::remove_file(&filler).unwrap();
    let started = Instant::now();
    let (freed, acknowledged_freed) = removal_load(
        &server.addr,
        &b,
        &seeded[10_000..12_000],
        started,
        Duration::from_secs(10),
    )
    .await;
    let all: Vec<&Answer> = freed.iter().collect();
    let after = format!("{} (slowest {:.1} ms)", statuses(&all), slowest(&all));
    let mut acknowledged = acknowledged_full;
    acknowledged.extend(acknowledged_freed);
    let t = db.tally(Some(b.org), &seeded, &acknowledged).await;
    println!(
        "\nSQLite on a 48 MiB tmpfs, filled while serving: removals while full: {while_full}; integrity_check: {integrity_full}. Space freed: {after}; integrity_check: {}. {} removals done ({} answered 200), {} in part, {} acknowledged and lost. Invariants: {}",
        integrity(&mut db).await,
        t.done,
        acknowledged.len(),
        t.half_done,
        t.lost,
        db.invariants().await.verdict()
    );
    drop(server);
    drop(db);
}

async fn integrity(db: &mut Db) -> String {
    db.text("PRAGMA integrity_check").await
}
