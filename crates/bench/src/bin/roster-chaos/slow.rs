//! Scenario 5, floods and slow clients: thousands of connections that send nothing, clients
//! that send a request's headers or its body one byte a second. The server must keep serving
//! everyone else, keep its memory bounded, and close the idle and the slow after its
//! documented timeouts. And scenario 7, the peak memory of one very large bulk removal.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster_bench::{Server, client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Chaos;

/// How long the scenario waits for the server to close what it should close.
const PATIENCE: Duration = Duration::from_secs(75);

/// Kinds of misbehaving client.
#[derive(Clone, Copy)]
enum Kind {
    /// Connects and sends nothing.
    Idle,
    /// Sends a request's headers one byte a second, never ending them.
    SlowHeaders,
    /// Sends complete headers announcing a body, then the body one byte a second.
    SlowBody,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Idle => "connections sending nothing",
            Kind::SlowHeaders => "clients sending headers 1 byte/s",
            Kind::SlowBody => "clients sending a body 1 byte/s",
        }
    }
}

/// What became of one misbehaving client.
enum Fate {
    /// It could not connect.
    Refused(std::io::Error),
    /// The server closed its connection this long after it connected.
    Closed(Duration),
    /// Still open after `PATIENCE`.
    Open,
}

/// One misbehaving client.
async fn misbehave(addr: String, kind: Kind, head: String) -> Fate {
    let mut stream = match TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => return Fate::Refused(e),
    };
    let started = Instant::now();
    let (prefix, drip): (&[u8], u8) = match kind {
        Kind::Idle => (b"", 0),
        Kind::SlowHeaders => (b"GET /healthz HTTP/1.1\r\nhost: chaos\r\nx-slow: ", b'a'),
        Kind::SlowBody => (head.as_bytes(), b' '),
    };
    if stream.write_all(prefix).await.is_err() {
        return Fate::Closed(started.elapsed());
    }
    let mut buf = [0u8; 4096];
    while started.elapsed() < PATIENCE {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            // Closed, or an answer (a 408, say) before closing: keep reading to the end.
            Ok(Ok(0)) | Ok(Err(_)) => return Fate::Closed(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => {}
        }
        if drip != 0 && stream.write_all(&[drip]).await.is_err() {
            return Fate::Closed(started.elapsed());
        }
    }
    Fate::Open
}

/// p99 of `n` member-list reads over 8 connections, in ms, and how many failed.
async fn served(c: &Chaos, n: usize) -> (f64, usize) {
    let path = format!("/v1/organizations/{}/memberships?limit=10", c.b.org);
    let auth = format!("Bearer {}", c.b.token);
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (addr, path, auth) = (c.server.addr.clone(), path.clone(), auth.clone());
        let (latencies, failed) = (latencies.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let Ok(mut conn) = client::Conn::open(&addr).await else {
                failed.fetch_add(n / 8, std::sync::atomic::Ordering::Relaxed);
                return;
            };
            for _ in 0..n / 8 {
                let t = Instant::now();
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    conn.send("GET", &path, &auth, None),
                )
                .await
                {
                    Ok(Ok(200)) => latencies.lock().unwrap().push(t.elapsed()),
                    _ => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let p99 = l
        .get((l.len() * 99 / 100).min(l.len().saturating_sub(1)))
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    (p99, failed.load(std::sync::atomic::Ordering::Relaxed))
}

pub async fn run(c: &mut Chaos) {
    let (p99_before, _) = served(c, 2000).await;
    let rss_before = c.server.rss_mib().unwrap_or(f64::NAN);
    let head = format!(
        "POST /v1/organizations/{}/memberships/bulk-remove HTTP/1.1\r\nhost: chaos\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n[",
        c.b.org, c.b.token
    );
    let crowd = [
        (Kind::Idle, c.args.idle_connections),
        (Kind::SlowHeaders, 100),
        (Kind::SlowBody, 100),
    ];
    let mut tasks = Vec::new();
    for (kind, n) in crowd {
        for _ in 0..n {
            tasks.push((
                kind,
                tokio::spawn(misbehave(c.server.addr.clone(), kind, head.clone())),
            ));
        }
    }
    // Let them all connect and start, then serve others beside them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fds_during = c.server.open_fds().unwrap_or(0);
    let (p99_during, failed_during) = served(c, 2000).await;
    let rss_during = c.server.rss_mib().unwrap_or(f64::NAN);
    println!(
        "Served beside them: 2,000 reads, p99 {p99_before:.2} ms before, {p99_during:.2} ms with them connected, {failed_during} failed. Server RSS {rss_before:.1} MiB before, {rss_during:.1} MiB with them; {fds_during} descriptors open.\n"
    );
    println!(
        "| clients | count | could not connect | closed by the server within {} s | slowest close, s |\n|---|---|---|---|---|",
        PATIENCE.as_secs()
    );
    for (kind, n) in crowd {
        let (mut closed, mut refused) = (Vec::new(), Vec::new());
        for (k, t) in tasks.iter_mut() {
            if std::mem::discriminant(k) == std::mem::discriminant(&kind) {
                match t.await {
                    Ok(Fate::Closed(d)) => closed.push(d),
                    Ok(Fate::Refused(e)) => refused.push(e.to_string()),
                    _ => {}
                }
            }
        }
        let slowest = closed
            .iter()
            .max()
            .map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64()));
        let (count, why) = (refused.len(), refused.first().cloned().unwrap_or_default());
        println!(
            "| {} | {n} | {count} {why} | {} | {slowest} |",
            kind.label(),
            closed.len()
        );
    }
    println!(
        "\nAfterwards: {} descriptors open, RSS {:.1} MiB.",
        c.server.open_fds().unwrap_or(0),
        c.server.rss_mib().unwrap_or(f64::NAN)
    );
}

/// Scenario 7: the server's peak memory over one bulk removal of `size` members, from a fresh
/// start (so that the peak is the removal's).
pub async fn bulk_memory(c: &mut Chaos, size: usize) {
    let seeded = c.b.seed(size).await;
    std::mem::replace(&mut c.server, Server::running("")).kill();
    c.server = Server::start(&c.args.backends.roster, &c.b.target, "");
    let idle = c.server.rss_mib().unwrap_or(f64::NAN);
    let ids: Vec<String> = seeded.iter().map(|s| s.membership.to_string()).collect();
    let body = serde_json::json!({ "membership_ids": ids }).to_string();
    let mut conn = client::Conn::open(&c.server.addr).await.unwrap();
    let t = Instant::now();
    let status = conn
        .send(
            "POST",
            &format!("/v1/organizations/{}/memberships/bulk-remove", c.b.org),
            &format!("Bearer {}", c.b.token),
            Some(body.as_bytes()),
        )
        .await
        .ok();
    println!(
        "\nBulk removal of {size} members ({} KiB request): status {status:?} in {:.2} s; server RSS {idle:.1} MiB at start, peak {:.1} MiB. Invariants: {}",
        body.len() / 1024,
        t.elapsed().as_secs_f64(),
        c.server.peak_rss_mib().unwrap_or(f64::NAN),
        c.db.invariants().await.verdict()
    );
}
