//! The spread section: removals spread at random over many organizations (`--spread-orgs`, 20
//! members each), one membership a request over HTTP (native), in a closed loop at each
//! `--concurrency` and in an open loop at each `--open-rates`. A batch of removals in one
//! organization writes the same few pages; here a batch's removals rarely share one, so every
//! removal writes pages of its own: what batching buys on such a load is this section's
//! question.

use std::sync::Arc;

use roster_core::ids::OrganizationId;

use roster_bench::Bench;
use roster_bench::fixture::MEMBERS_EACH;
use roster_bench::load::{HEADER, Xorshift, connections, drive, drive_open, open_warmup};
use roster_bench::seed::Seeded;

use crate::{group_commit_counters, mean_batch};

/// Runs the section against the server at `addr`.
pub async fn section(
    b: &Arc<Bench>,
    addr: &str,
    orgs: usize,
    requests: usize,
    concurrency: &[usize],
    rates: &[u32],
    open_connections: usize,
) {
    let name = b.target.name();
    let runs = concurrency.len() + rates.len();
    let targets = b
        .seed_organizations(orgs, &mut Xorshift(0x2545_F491_4F6C_DD1D))
        .await;
    // Each open-loop run first warms up, on targets of its own: at most half of them in all,
    // each warm-up shortened alike where there are too few (a small `--spread-orgs`).
    let full: usize = rates.iter().map(|&r| open_warmup(r)).sum();
    let share = (targets.len() / 2) as f64 / full.max(1) as f64;
    let warmup = |rate: u32| (open_warmup(rate) as f64 * share.min(1.0)) as usize;
    let warmups: usize = rates.iter().map(|&r| warmup(r)).sum();
    let n = requests.min((targets.len() - warmups) / runs.max(1));
    println!(
        "\n### {name}: removals spread over {orgs} organizations of {MEMBERS_EACH} members (native, {n} a run)\n\n{HEADER}"
    );
    let auth = format!("Bearer {}", b.token);
    let mut rest = targets.as_slice();
    let mut take = |n: usize| {
        let (now, later) = rest.split_at(n);
        rest = later;
        Arc::new(now.to_vec())
    };
    for &c in concurrency {
        let mine = take(n);
        let before = group_commit_counters(addr).await;
        let conns = connections(addr, c).await;
        let work = removal(conns, auth.clone(), mine);
        let run = drive(n, c, work).await;
        let batch = mean_batch(before, group_commit_counters(addr).await);
        println!("{}", run.row(&format!("{c} connections{batch}")));
    }
    for &rate in rates {
        let warmup = warmup(rate);
        let mine = take(warmup + n);
        let before = group_commit_counters(addr).await;
        let conns = connections(addr, open_connections).await;
        let work = removal(conns, auth.clone(), mine);
        let run = drive_open(n, warmup, open_connections, rate, work).await;
        let batch = mean_batch(before, group_commit_counters(addr).await);
        println!(
            "{}",
            run.row(&format!(
                "{rate}/s offered, {open_connections} connections{batch}"
            ))
        );
    }
}

/// The `i`th target removed on connection `w`; whether the answer was 200.
fn removal(
    conns: Arc<Vec<tokio::sync::Mutex<roster_bench::client::Conn>>>,
    auth: String,
    targets: Arc<Vec<(OrganizationId, Seeded)>>,
) -> impl Fn(usize, usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
+ Send
+ Sync
+ 'static {
    move |w, i| {
        let (org, m) = targets[i];
        let (conns, auth) = (conns.clone(), auth.clone());
        Box::pin(async move {
            let mut conn = conns[w].lock().await;
            matches!(conn.remove_member(org, m.membership, &auth).await, Ok(200))
        })
    }
}
