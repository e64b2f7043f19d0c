//! Scenario 4, the soak: mixed traffic on every mount (member-list reads, invitations, single
//! removals through each of the five mounts, small bulk removals) arriving at a fixed rate
//! whether or not earlier requests were answered, for `--soak-minutes`, with the server's RSS,
//! its open file descriptors and the p99 latency of each 10-second window sampled. Over a long
//! run none of them may grow: the report gives each one's slope (least squares, per hour),
//! every error, and each kind of request's p50 and p99 over the whole run.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster_bench::client::Conn;
use roster_bench::load::nearest_rank;
use roster_bench::seed::Seeded;
use serde_json::json;
use tokio::sync::mpsc;

use crate::Chaos;

/// How often the server is sampled.
const WINDOW: Duration = Duration::from_secs(10);
/// Connections serving the arrivals; an arrival that finds them all busy waits, and its
/// latency counts the wait.
const CONNECTIONS: usize = 16;
/// Members each bulk removal of the mix names.
const BULK: usize = 5;

/// One request of the mix, what kind it is, and when it arrived.
struct Job {
    kind: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    arrived: Instant,
}

/// What the workers saw since the last sample.
#[derive(Default)]
struct Window {
    latencies_ms: Vec<f64>,
    errors: usize,
}

/// Every latency of the run by kind of request, in ms: which kind a high p99 comes from.
type ByKind = BTreeMap<&'static str, Vec<f64>>;

/// One sample: minutes since the start, RSS in MiB, open descriptors, the window's p99 in ms.
struct Sample {
    minutes: f64,
    rss_mib: f64,
    fds: f64,
    p99_ms: f64,
}

/// The share of each kind of request in the mix; removals take the rest.
const READS: f64 = 0.40;
const INVITATIONS: f64 = 0.15;
const BULKS: f64 = 0.05;

pub async fn run(c: &mut Chaos, minutes: u64, rate: f64) {
    let arrivals = (minutes as f64 * 60.0 * rate) as usize;
    let singles = 1.0 - READS - INVITATIONS - BULKS;
    // Enough members for every removal, with a margin for chance.
    let needed = (arrivals as f64 * (singles + BULKS * BULK as f64) * 1.1) as usize + 100;
    let mut members: VecDeque<Seeded> = c.b.seed(needed).await.into();
    let invariants_before = c.db.invariants().await.hold();

    let window = Arc::new(Mutex::new(Window::default()));
    let by_kind: Arc<Mutex<ByKind>> = Arc::default();
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let (jobs, queue) = mpsc::channel::<Job>(arrivals.max(1));
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    let auth = format!("Bearer {}", c.b.token);
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (queue, window, first_error) = (queue.clone(), window.clone(), first_error.clone());
        let by_kind = by_kind.clone();
        let (addr, auth) = (c.server.addr.clone(), auth.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await.ok();
            loop {
                let Some(job) = queue.lock().await.recv().await else {
                    return;
                };
                if conn.is_none() {
                    conn = Conn::open(&addr).await.ok();
                }
                let answer = match conn.as_mut() {
                    Some(cn) => {
                        cn.send(job.method, &job.path, &auth, job.body.as_deref())
                            .await
                    }
                    None => Err(std::io::ErrorKind::NotConnected.into()),
                };
                let ms = job.arrived.elapsed().as_secs_f64() * 1000.0;
                let failure = match answer {
                    Ok(status) if (200..300).contains(&status) => None,
                    Ok(status) => Some(format!("{} {} answered {status}", job.method, job.path)),
                    Err(e) => {
                        conn = None;
                        Some(format!("{} {}: {e}", job.method, job.path))
                    }
                };
                by_kind
                    .lock()
                    .unwrap()
                    .entry(job.kind)
                    .or_default()
                    .push(ms);
                let mut w = window.lock().unwrap();
                w.latencies_ms.push(ms);
                if let Some(failure) = failure {
                    w.errors += 1;
                    first_error.lock().unwrap().get_or_insert(failure);
                }
            }
        }));
    }

    let (org, slug) = (c.b.org, c.b.slug.clone());
    let clerk_org = roster_dialect_clerk::ids::encode("org", org.0);
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = start + WINDOW;
    let (mut requests, mut errors, mut unserved) = (0usize, 0usize, 0usize);
    let mut sample = |samples: &mut Vec<Sample>, c: &Chaos| {
        let w = std::mem::take(&mut *window.lock().unwrap());
        errors += w.errors;
        requests += w.latencies_ms.len();
        samples.push(Sample {
            minutes: start.elapsed().as_secs_f64() / 60.0,
            rss_mib: c.server.rss_mib().unwrap_or(f64::NAN),
            fds: c.server.open_fds().map_or(f64::NAN, |n| n as f64),
            p99_ms: p99(w.latencies_ms),
        });
    };
    for i in 0..arrivals {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        while next_sample <= due {
            tokio::time::sleep_until(next_sample.into()).await;
            sample(&mut samples, c);
            next_sample += WINDOW;
        }
        tokio::time::sleep_until(due.into()).await;
        let u = c.random.uniform();
        let (kind, method, path, body) = if u < READS {
            let path = match i % 4 {
                0 => format!("/v1/organizations/{org}/memberships?limit=20"),
                1 => format!("/clerk/v1/organizations/{clerk_org}/memberships?limit=20"),
                2 => format!("/planetscale/v1/organizations/{slug}/members?per_page=20"),
                _ => format!("/scim/v2/organizations/{slug}/Users?count=20"),
            };
            (
                ["read native", "read Clerk", "read PlanetScale", "read SCIM"][i % 4],
                "GET",
                path,
                None,
            )
        } else if u < READS + INVITATIONS {
            let body = json!({"email": format!("soak-{i}@example.com")});
            let path = format!("/v1/organizations/{org}/memberships");
            (
                "invitation",
                "POST",
                path,
                Some(body.to_string().into_bytes()),
            )
        } else if u < READS + INVITATIONS + BULKS {
            if members.len() < BULK {
                unserved += 1;
                continue;
            }
            let ids: Vec<String> = members
                .drain(..BULK)
                .map(|m| m.membership.to_string())
                .collect();
            let body = json!({ "membership_ids": ids });
            let path = format!("/v1/organizations/{org}/memberships/bulk-remove");
            (
                "bulk removal",
                "POST",
                path,
                Some(body.to_string().into_bytes()),
            )
        } else {
            let Some(m) = members.pop_front() else {
                unserved += 1;
                continue;
            };
            let path = match i % 5 {
                0 => format!("/v1/organizations/{org}/memberships/{}", m.membership),
                1 => format!(
                    "/infisical/api/v2/organizations/{org}/memberships/{}",
                    m.membership
                ),
                2 => format!(
                    "/clerk/v1/organizations/{clerk_org}/memberships/{}",
                    roster_dialect_clerk::ids::encode("user", m.user.0)
                ),
                3 => format!("/planetscale/v1/organizations/{slug}/members/{}", m.user),
                _ => format!("/scim/v2/organizations/{slug}/Users/{}", m.membership),
            };
            let kind = [
                "removal native",
                "removal Infisical",
                "removal Clerk",
                "removal PlanetScale",
                "removal SCIM",
            ][i % 5];
            (kind, "DELETE", path, None)
        };
        let job = Job {
            kind,
            method,
            path,
            body,
            arrived: due,
        };
        if jobs.send(job).await.is_err() {
            break;
        }
    }
    tokio::time::sleep_until(next_sample.into()).await;
    sample(&mut samples, c);
    drop(jobs);
    for w in workers {
        let _ = w.await;
    }
    // What was answered after the last sample counts, but the closing connections are not a
    // sample of the server's state.
    let rest = std::mem::take(&mut *window.lock().unwrap());
    let (requests, errors) = (requests + rest.latencies_ms.len(), errors + rest.errors);
    let invariants_after = c.db.invariants().await.hold();

    println!("\n| minute | RSS MiB | open fds | p99 ms (window) |\n|---|---|---|---|");
    for s in samples.iter().step_by(6) {
        println!(
            "| {:.0} | {:.1} | {:.0} | {:.2} |",
            s.minutes, s.rss_mib, s.fds, s.p99_ms
        );
    }
    let slope = |value: fn(&Sample) -> f64| per_hour(&samples, value);
    // The first window includes the server warming its caches: the slopes start after it.
    println!(
        "\n| minutes | offered/s | requests | errors | unserved | RSS MiB first → last (slope/h) | open fds (slope/h) | p99 ms (slope/h) | invariants before, after |\n|---|---|---|---|---|---|---|---|---|"
    );
    let (first, last) = (
        &samples[1.min(samples.len() - 1)],
        &samples[samples.len() - 1],
    );
    println!(
        "| {minutes} | {rate:.0} | {requests} | {errors} | {unserved} | {:.1} → {:.1} ({:+.2}) | {:.0} → {:.0} ({:+.1}) | {:.2} → {:.2} ({:+.3}) | {}, {} |",
        first.rss_mib,
        last.rss_mib,
        slope(|s| s.rss_mib),
        first.fds,
        last.fds,
        slope(|s| s.fds),
        first.p99_ms,
        last.p99_ms,
        slope(|s| s.p99_ms),
        if invariants_before { "hold" } else { "BROKEN" },
        if invariants_after { "hold" } else { "BROKEN" },
    );
    println!("\n| request | count | p50 ms | p99 ms |\n|---|---|---|---|");
    for (kind, ms) in std::mem::take(&mut *by_kind.lock().unwrap()) {
        let (count, p50) = (ms.len(), percentile(ms.clone(), 0.50));
        println!("| {kind} | {count} | {p50:.2} | {:.2} |", p99(ms));
    }
    if let Some(e) = first_error.lock().unwrap().as_ref() {
        println!("\nfirst error: {e}");
    }
}

/// The 99th percentile of `ms` (NaN for none).
fn p99(ms: Vec<f64>) -> f64 {
    percentile(ms, 0.99)
}

/// The value a share `p` of `ms` does not exceed (NaN for none).
fn percentile(mut ms: Vec<f64>, p: f64) -> f64 {
    ms.sort_by(f64::total_cmp);
    nearest_rank(&ms, p).unwrap_or(f64::NAN)
}

/// The least-squares slope of `value` over time, per hour, leaving out the first sample (the
/// server warming up) and samples without a value.
fn per_hour(samples: &[Sample], value: fn(&Sample) -> f64) -> f64 {
    let points: Vec<(f64, f64)> = samples
        .iter()
        .skip(1)
        .map(|s| (s.minutes / 60.0, value(s)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    let n = points.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    num / den
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: f64, rss_mib: f64) -> Sample {
        Sample {
            minutes,
            rss_mib,
            fds: 0.0,
            p99_ms: 0.0,
        }
    }

    #[test]
    fn the_slope_is_per_hour_and_leaves_out_the_warm_up_sample() {
        // 100 MiB at the start (warming up), then 2 MiB more every 30 minutes: 4 MiB/h.
        let samples = [
            at(0.0, 100.0),
            at(10.0, 10.0),
            at(40.0, 12.0),
            at(70.0, 14.0),
        ];
        assert!((per_hour(&samples, |s| s.rss_mib) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn the_p99_of_a_hundred_values_is_the_ninety_ninth() {
        let ms: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(p99(ms), 99.0);
        assert!(p99(Vec::new()).is_nan());
    }
}
