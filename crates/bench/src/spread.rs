//! The spread section: removals spread at random over many organizations (`--spread-orgs`, 20
//! members each), one membership a request over HTTP (native), in a closed loop at each
//! `--concurrency` and in an open loop at each `--open-rates`. Group commit batches by
//! organization, so this is the load where a batch rarely holds more than one request: what
//! its layers cost or buy there is the question this section answers.

use std::sync::Arc;

use roster_core::RequestContext;
use roster_core::ids::{MembershipId, OrganizationId};
use roster_core::service::NewOrganization;

use roster_bench::{Bench, org_parts, seed};

use crate::{HEADER, Xorshift, connections, drive, drive_open, group_commit_counters, mean_batch};

/// Members of each organization of the section.
const MEMBERS: usize = 20;

/// `orgs` new organizations of `MEMBERS` members each; every membership, in a random order.
async fn seed_organizations(b: &Bench, orgs: usize) -> Vec<(OrganizationId, MembershipId)> {
    let mut targets = Vec::with_capacity(orgs * MEMBERS);
    for i in 0..orgs {
        let org = create(b, i).await;
        let (org, role, project) = org_parts(&b.roster, &b.admin, org).await;
        for m in seed::members(&b.target, org, role, project, MEMBERS).await {
            targets.push((org, m.membership));
        }
    }
    seed::analyze(&b.target).await;
    let mut random = Xorshift(0x2545_F491_4F6C_DD1D);
    for i in (1..targets.len()).rev() {
        let j = (random.uniform() * (i + 1) as f64) as usize % (i + 1);
        targets.swap(i, j);
    }
    targets
}

/// The `i`th organization of the section, with no member yet.
async fn create(b: &Bench, i: usize) -> OrganizationId {
    let input = NewOrganization {
        name: format!("Spread {i} {}", b.slug),
        // Its members are seeded straight into the store.
        may_start_without_admin: true,
        ..Default::default()
    };
    b.roster
        .create_organization(Some(&b.admin), input, &RequestContext::default())
        .await
        .unwrap()
        .id
}

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
    let targets = seed_organizations(b, orgs).await;
    let n = requests.min(targets.len() / runs.max(1));
    println!(
        "\n### {name}: removals spread over {orgs} organizations of {MEMBERS} members (native, {n} a run)\n\n{HEADER}"
    );
    let auth = format!("Bearer {}", b.token);
    let mut rest = targets.as_slice();
    let mut take = || {
        let (now, later) = rest.split_at(n);
        rest = later;
        Arc::new(now.to_vec())
    };
    for &c in concurrency {
        let mine = take();
        let before = group_commit_counters(addr).await;
        let conns = connections(addr, c).await;
        let work = removal(conns, auth.clone(), mine);
        let run = drive(n, c, work).await;
        let batch = mean_batch(before, group_commit_counters(addr).await);
        println!("{}", run.row(&format!("{c} connections{batch}")));
    }
    for &rate in rates {
        let mine = take();
        let before = group_commit_counters(addr).await;
        let conns = connections(addr, open_connections).await;
        let work = removal(conns, auth.clone(), mine);
        let run = drive_open(n, open_connections, rate, work).await;
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
    conns: Arc<Vec<tokio::sync::Mutex<crate::client::Conn>>>,
    auth: String,
    targets: Arc<Vec<(OrganizationId, MembershipId)>>,
) -> impl Fn(usize, usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
+ Send
+ Sync
+ 'static {
    move |w, i| {
        let (org, m) = targets[i];
        let (conns, auth) = (conns.clone(), auth.clone());
        Box::pin(async move {
            let path = format!("/v1/organizations/{org}/memberships/{m}");
            let mut conn = conns[w].lock().await;
            matches!(conn.send("DELETE", &path, &auth, None).await, Ok(200))
        })
    }
}
