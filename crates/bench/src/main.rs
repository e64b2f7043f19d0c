//! `roster-bench`: measures roster's removal paths and prints Markdown tables.
//!
//! For each backend it makes a fresh database, seeds members straight into it, and measures:
//! single removals through every mount over real HTTP against a `roster serve` process it starts
//! (at several connection counts), the same unit of work called directly on the core in-process
//! (the limit the HTTP figure is quoted against), bulk removals, removal and list latency in a
//! large organization against a small one, the server's peak RSS and its time to ready. On
//! request (`--sections open`) it also offers removals at fixed rates whatever the answers
//! (an open loop, arrivals at random), over HTTP and directly, for the latency at a given load
//! rather than the most a fixed number of waiting clients gets through; and (`--sections floor`)
//! HTTP alone, a request that does no work over the same connections, for the ceiling the
//! machine's own HTTP turnaround puts on the HTTP figure's ratio to the direct one.
//!
//! With `--server` and `--database` it drives a `roster serve` already running (on another
//! machine, say) instead of starting one, seeding that server's database directly.
//!
//! A benchmark, not a test: it asserts nothing, it reports. Build roster first:
//! `cargo build --release -p roster && cargo run --release -p roster-bench -- --help`.

mod spread;
mod webhooks;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use roster_core::RequestContext;
use roster_core::auth::Caller;
use roster_core::model::{MemberRef, RemovalOptions};
use roster_core::secrets::{Credentials, PresentedToken};
use roster_core::service::{GroupCommitStats, NewOrganization, RemovalRequest};
use serde_json::json;

use roster_bench::load::{HEADER, Run, connections, drive, drive_open, open_warmup};
use roster_bench::{Backends, Bench, Server, Target, client, org_parts, seed};

/// The allocator `roster` runs with (see its `main.rs`), so that the direct figures, measured in
/// this process, run the core as the server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Benchmark roster's removal paths")]
struct Args {
    #[command(flatten)]
    backends: Backends,
    /// Drive a `roster serve` already running at this address (host:port) instead of starting
    /// one, for example on another machine so that the load does not share its cores.
    /// `--database` must name the database it serves: the benchmark seeds members straight
    /// into it, in an organization of its own each run. The server's RSS and start-up time are
    /// then not measured.
    #[arg(long, requires = "database")]
    server: Option<String>,
    /// With `--server`: the running server's database, `sqlite://PATH` or `postgres://…`.
    /// `--backend` is then ignored.
    #[arg(long, requires = "server")]
    database: Option<String>,
    /// Removals per single-removal run (at least 20 per connection).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,256")]
    concurrency: Vec<usize>,
    /// Rounds of each single-removal run over HTTP. With more than one, each is paired with a
    /// direct run just before it; the row shows the median round and the median ratio. In the
    /// `webhooks` section: the pairs of runs without and with the endpoint (at least two).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    bulk: Vec<usize>,
    /// Members of the large organization of the scale section (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    scale: usize,
    /// Which sections to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,single,bulk,scale"
    )]
    /// (`open`, the open-loop section, `spread`, removals over many organizations, `floor`,
    /// HTTP alone, and `webhooks`, what a webhook endpoint costs, run only when named.)
    sections: Vec<String>,
    /// Open-loop section: the removals/s offered, each rate run for `--requests` removals
    /// arriving at random (Poisson) times whether or not earlier ones have been answered,
    /// after a second of arrivals at the same rate that is not counted (a warm-up).
    #[arg(long, value_delimiter = ',', default_value = "1000,3000,6000")]
    open_rates: Vec<u32>,
    /// Open-loop section: the connections (or in-process callers) serving the arrivals; an
    /// arrival that finds them all busy waits, and its latency counts the wait.
    #[arg(long, default_value_t = 64)]
    open_connections: usize,
    /// Spread section: how many organizations (20 members each) the removals are spread over.
    #[arg(long, default_value_t = 1000)]
    spread_orgs: usize,
    /// Group-commit layers to turn off for this run, to measure what each buys: a comma list
    /// (`batching`), for the server started (`ROSTER_GROUP_COMMIT_OFF`) and the in-process
    /// runs alike.
    #[arg(long, default_value = "")]
    group_commit_off: String,
    /// Which mounts the single-removal section (and the open-loop one) drives.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "native,infisical,clerk,planetscale"
    )]
    mounts: Vec<String>,
    /// Configure one webhook endpoint (for `membership.removed`) in the benchmark's
    /// organization, with a receiver in this process answering 200, so that every removal
    /// also writes, claims and sends a delivery: what an endpoint costs.
    #[arg(long)]
    webhook_endpoint: bool,
}

/// ", n per commit, t ms a batch": how many removals shared each group-commit transaction on
/// average between two readings of the counters, and how long each batch took.
fn mean_batch(before: GroupCommitStats, after: GroupCommitStats) -> String {
    let transactions = after.transactions - before.transactions;
    if transactions == 0 {
        return String::new();
    }
    let requests = after.requests - before.requests;
    let busy = after.busy.saturating_sub(before.busy);
    format!(
        ", {:.1} per commit, {:.2} ms a batch",
        requests as f64 / transactions as f64,
        busy.as_secs_f64() * 1000.0 / transactions as f64,
    )
}

/// The server's group-commit counters, read from `/metrics`.
async fn group_commit_counters(addr: &str) -> GroupCommitStats {
    let metrics = client::get_text(addr, "/metrics").await.unwrap_or_default();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    GroupCommitStats {
        transactions: value("roster_removal_shared_transactions_total ") as u64,
        requests: value("roster_removal_shared_requests_total ") as u64,
        restarts: value("roster_removal_batch_restarts_total ") as u64,
        busy: Duration::from_secs_f64(value("roster_removal_batch_seconds_total ")),
    }
}

/// The unit of work behind a mount's single removal (named by what it removes by), as its
/// handler calls the core: the direct figure each mount is quoted against.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Unit {
    /// Native and Infisical: a membership id, the token verified in the removal's transaction.
    Membership,
    /// Clerk: a user id, the token verified in the removal's transaction, which also reads what
    /// the answer shows (the organization and its member count, the user, the roles).
    UserWithContext,
    /// PlanetScale: the organization's id read by slug first, then the removal by user id,
    /// the token verified in the removal's transaction.
    SlugAndUser,
}

impl Unit {
    fn of(mount: &str) -> Unit {
        match mount {
            "clerk" => Unit::UserWithContext,
            "planetscale" => Unit::SlugAndUser,
            _ => Unit::Membership,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Unit::Membership => "by membership id (native, Infisical)",
            Unit::UserWithContext => "by user id, with context (Clerk)",
            Unit::SlugAndUser => "by slug and user id (PlanetScale)",
        }
    }
}

/// `n` single removals on the core, in-process, over `c` concurrent tasks: the same unit of
/// work as an HTTP removal through a mount doing `unit`, without HTTP.
async fn direct_run(b: &Arc<Bench>, unit: Unit, c: usize, n: usize) -> Run {
    let members = b.seed(n).await;
    drive(members.len(), c, direct_work(b, unit, members)).await
}

/// The `i`th of `members` removed on the core as `unit` does it; whether it was removed.
fn direct_work(
    b: &Arc<Bench>,
    unit: Unit,
    members: Vec<seed::Seeded>,
) -> impl Fn(usize, usize) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync + 'static {
    let (bb, members) = (b.clone(), Arc::new(members));
    move |_, i| {
        let (bb, m) = (bb.clone(), members[i]);
        Box::pin(async move {
            let presented = PresentedToken::parse_bearer(&bb.token).unwrap();
            let caller = Caller::presenting(Credentials::Token(presented)).unwrap();
            let roster = &bb.roster;
            let ctx = RequestContext::default();
            let membership = vec![MemberRef::Membership(m.membership)];
            let options = RemovalOptions::default();
            // Every mount queues its removal with the token as presented; PlanetScale names
            // its organization by slug, with its own rules.
            match unit {
                Unit::Membership => {
                    let request = RemovalRequest::new(caller, membership, options, ctx);
                    roster.remove(bb.org, request).await
                }
                Unit::UserWithContext => {
                    let user = vec![MemberRef::User(m.user)];
                    let mut request = RemovalRequest::new(caller, user, options, ctx);
                    request.include_context = true;
                    roster.remove(bb.org, request).await
                }
                Unit::SlugAndUser => {
                    let request =
                        roster_dialect_planetscale::removal_of(caller, m.user, options, ctx);
                    roster.remove_in_organization_named(&bb.slug, request).await
                }
            }
            .is_ok()
        })
    }
}

/// `n` single removals through `mount` over `c` keep-alive connections to the server.
async fn http_run(b: &Arc<Bench>, addr: &str, mount: &'static str, c: usize, n: usize) -> Run {
    let members = b.seed(n).await;
    let conns = connections(addr, c).await;
    drive(members.len(), c, http_work(b, conns, mount, members)).await
}

/// The `i`th of `members` removed through `mount` on connection `w` of `conns`; whether the
/// answer was the mount's success.
fn http_work(
    b: &Arc<Bench>,
    conns: Arc<Vec<tokio::sync::Mutex<client::Conn>>>,
    mount: &'static str,
    members: Vec<seed::Seeded>,
) -> impl Fn(usize, usize) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync + 'static {
    let members = Arc::new(members);
    let clerk_org = roster_dialect_clerk::ids::encode("org", b.org.0);
    let (org, slug, auth) = (b.org, b.slug.clone(), format!("Bearer {}", b.token));
    move |w, i| {
        let m = members[i];
        let (conns, auth) = (conns.clone(), auth.clone());
        let (path, expect) = match mount {
            "native" => (
                format!("/v1/organizations/{org}/memberships/{}", m.membership),
                200,
            ),
            "infisical" => (
                format!(
                    "/infisical/api/v2/organizations/{org}/memberships/{}",
                    m.membership
                ),
                200,
            ),
            "clerk" => (
                format!(
                    "/clerk/v1/organizations/{clerk_org}/memberships/{}",
                    roster_dialect_clerk::ids::encode("user", m.user.0)
                ),
                200,
            ),
            _ => (
                format!("/planetscale/v1/organizations/{slug}/members/{}", m.user),
                204,
            ),
        };
        Box::pin(async move {
            let mut conn = conns[w].lock().await;
            matches!(conn.send("DELETE", &path, &auth, None).await, Ok(status) if status == expect)
        })
    }
}

/// The median of `xs` (the upper one of an even count).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// The rate of each direct run, by unit of work and concurrency.
type DirectRates = std::collections::HashMap<(Unit, usize), f64>;

/// What every section of one backend's run shares: the arguments, the bench's organization and
/// admin key, the server driven, and the direct section's rates.
struct Sections<'a> {
    args: &'a Args,
    b: Arc<Bench>,
    server: Server,
    name: &'static str,
    direct_at: DirectRates,
    /// With `--webhook-endpoint`: the endpoint every section runs with.
    endpoint: Option<webhooks::Endpoint>,
}

async fn bench_backend(args: &Args, target: Target) {
    let name = target.name();
    // A running server's database may have been benchmarked before: a name of its own.
    let org_name = match &args.server {
        Some(_) => format!("Bench {}", uuid::Uuid::now_v7().simple()),
        None => "Bench".to_owned(),
    };
    let b = Arc::new(Bench::setup(target, &org_name).await);
    b.roster.set_group_commit_layers(
        roster_core::service::GroupCommitLayers::without(&args.group_commit_off)
            .unwrap_or_else(|e| panic!("--group-commit-off: {e}")),
    );
    let wants = |section: &str| args.sections.iter().any(|s| s == section);

    // The units of work of the mounts measured, each once.
    let mut units: Vec<Unit> = Vec::new();
    for mount in &args.mounts {
        if !units.contains(&Unit::of(mount)) {
            units.push(Unit::of(mount));
        }
    }
    let direct_at = if wants("direct") {
        direct_section(args, &b, &units).await
    } else {
        DirectRates::new()
    };

    let server = match &args.server {
        Some(addr) => Server::running(addr),
        None => Server::start(&args.backends.roster, &b.target, &args.group_commit_off),
    };
    if let Some(ready) = server.ready {
        println!(
            "\n{name}: `roster serve` ready {:.0} ms after start (migrations included)",
            ready.as_secs_f64() * 1000.0
        );
    }
    let endpoint = if args.webhook_endpoint {
        Some(webhooks::Endpoint::configure(&b).await)
    } else {
        None
    };
    let sections = Sections {
        args,
        b,
        server,
        name,
        direct_at,
        endpoint,
    };
    if wants("single") {
        sections.single().await;
    }
    if wants("webhooks") {
        sections.webhooks().await;
    }
    if wants("floor") {
        sections.floor().await;
    }
    if wants("spread") {
        sections.spread().await;
    }
    if wants("open") {
        sections.open().await;
    }
    if wants("bulk") {
        sections.bulk().await;
    }
    if wants("scale") && args.scale > 0 {
        sections.scale().await;
    }
    if let Some(endpoint) = &sections.endpoint {
        // What the worker has not sent yet is sent within seconds; the count is of what
        // arrived while the sections ran, and just after.
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!(
            "\n{name}: the webhook receiver got {} deliveries",
            endpoint.received.load(Ordering::Relaxed)
        );
    }
    sections.server.print_peak_rss(name, "at the end");
}

/// The `direct` section: single removals in-process, each mount's unit of work at each
/// concurrency; returns each run's removals/s, for the HTTP rows' ratios.
async fn direct_section(args: &Args, b: &Arc<Bench>, units: &[Unit]) -> DirectRates {
    let name = b.target.name();
    let requests = |c: usize| args.requests.max(20 * c);
    let mut direct_at = DirectRates::new();
    println!("\n### {name}: single removal, direct on the core (no HTTP)\n\n{HEADER}");
    for &unit in units {
        for &c in &args.concurrency {
            let before = b.roster.group_commit_stats();
            let run = direct_run(b, unit, c, requests(c)).await;
            direct_at.insert((unit, c), run.rps());
            let after = b.roster.group_commit_stats();
            let batch = mean_batch(before, after);
            let label = format!("direct {}, {c} concurrent{batch}", unit.label());
            println!("{}", run.row(&label));
        }
    }
    direct_at
}

impl Sections<'_> {
    /// The `single` section: single removals over HTTP, by mount, each paired with a direct run when there are rounds.
    async fn single(&self) {
        let (args, b, server, name) = (self.args, &self.b, &self.server, self.name);
        let requests = |c: usize| args.requests.max(20 * c);
        let direct_at = &self.direct_at;
        println!("\n### {name}: single removal over HTTP, by mount\n\n{HEADER}");
        const MOUNTS: [&str; 4] = ["native", "infisical", "clerk", "planetscale"];
        for mount in MOUNTS
            .into_iter()
            .filter(|m| args.mounts.iter().any(|a| a == m))
        {
            for &c in &args.concurrency {
                // With several rounds, each HTTP run is paired with a direct run just before
                // it, and the row is the median round: the machine's noise drifts over seconds,
                // so adjacent runs compare better than runs minutes apart.
                let (mut runs, mut ratios) = (Vec::new(), Vec::new());
                let before = group_commit_counters(&server.addr).await;
                let direct_before = b.roster.group_commit_stats();
                for _ in 0..args.rounds {
                    let direct = if args.rounds > 1 {
                        Some(direct_run(b, Unit::of(mount), c, requests(c)).await.rps())
                    } else {
                        direct_at.get(&(Unit::of(mount), c)).copied()
                    };
                    let sent_before = self
                        .endpoint
                        .as_ref()
                        .map(|e| e.received.load(Ordering::Relaxed));
                    let run = http_run(b, &server.addr, mount, c, requests(c)).await;
                    let lag = match (&self.endpoint, sent_before) {
                        (Some(endpoint), Some(before)) => {
                            endpoint.lag(before, requests(c) as u64).await
                        }
                        _ => String::new(),
                    };
                    if let Some(d) = direct {
                        ratios.push(run.rps() / d);
                    }
                    runs.push((run, lag));
                }
                let after = group_commit_counters(&server.addr).await;
                let batch = mean_batch(before, after);
                // The paired direct runs' batches, to tell a slower batch from a longer wait
                // between batches.
                let direct_batch = mean_batch(direct_before, b.roster.group_commit_stats());
                let ratio = if ratios.is_empty() {
                    String::new()
                } else {
                    format!(" ({:.2}× direct{direct_batch})", median(ratios))
                };
                runs.sort_by(|x, y| x.0.rps().total_cmp(&y.0.rps()));
                let rounds = if args.rounds > 1 {
                    format!(", median of {}", args.rounds)
                } else {
                    String::new()
                };
                let (run, lag) = runs.swap_remove(runs.len() / 2);
                println!(
                    "{}",
                    run.row(&format!(
                        "{mount}, {c} connections{ratio}{batch}{rounds}{lag}"
                    ))
                );
            }
        }
        server.print_peak_rss(name, "after the single-removal runs");
    }

    /// The `floor` section: HTTP alone (`GET /healthz`) and the ceiling it puts on the ratio to direct.
    async fn floor(&self) {
        let (args, b, server, name) = (self.args, &self.b, &self.server, self.name);
        let requests = |c: usize| args.requests.max(20 * c);
        let direct_at = &self.direct_at;
        // Closed loop, c clients: a removal's cycle is its batch plus the cohort's turnaround
        // (answers written, read, next requests sent, read and parsed). In-process the
        // turnaround is nil, so the direct figure is c / batch. The turnaround can be no
        // shorter than the time these two cores take to serve c requests that do no work:
        // c / (this rate). Hence the ceiling the HTTP figure can reach as a share of the
        // direct one: batch / (batch + turnaround) = 1 / (1 + direct / this rate).
        println!(
            "\n### {name}: HTTP alone (`GET /healthz`, no work) and the ceiling it puts on the ratio\n\n{}",
            HEADER.replace("removals/s", "requests/s")
        );
        for &c in &args.concurrency {
            // With several rounds, against a direct run just before, as the single section
            // pairs its rows: the machine's speed drifts between sections.
            let direct = if args.rounds > 1 {
                let run = direct_run(b, Unit::Membership, c, requests(c)).await;
                Some(run.rps())
            } else {
                direct_at.get(&(Unit::Membership, c)).copied()
            };
            let conns = connections(&server.addr, c).await;
            let run = drive(requests(c), c, move |w, _| {
                let conns = conns.clone();
                async move {
                    let mut conn = conns[w].lock().await;
                    matches!(conn.send("GET", "/healthz", "", None).await, Ok(200))
                }
            })
            .await;
            let ceiling = direct
                .map(|direct| {
                    let ceiling = 1.0 / (1.0 + direct / run.rps());
                    format!(" (direct {direct:.0}/s: ceiling of native's ratio {ceiling:.2}×)")
                })
                .unwrap_or_default();
            println!(
                "{}",
                run.row(&format!("GET /healthz, {c} connections{ceiling}"))
            );
        }
    }

    /// The `webhooks` section: what one webhook endpoint costs (`webhooks`).
    async fn webhooks(&self) {
        let (args, b, server) = (self.args, &self.b, &self.server);
        webhooks::section(
            b,
            &server.addr,
            self.name,
            self.endpoint.as_ref(),
            args.rounds,
            args.requests,
            &args.concurrency,
        )
        .await;
    }

    /// The `spread` section: removals spread over many organizations (`spread`).
    async fn spread(&self) {
        let (args, b, server) = (self.args, &self.b, &self.server);
        spread::section(
            b,
            &server.addr,
            args.spread_orgs,
            args.requests,
            &args.concurrency,
            &args.open_rates,
            args.open_connections,
        )
        .await;
    }

    /// The `open` section: single removals under open-loop load, HTTP and direct.
    async fn open(&self) {
        let (args, b, server, name) = (self.args, &self.b, &self.server, self.name);
        // The first mount named, against its own unit of work called directly, both served
        // by the same number of workers and offered the same arrivals.
        let mount = ["native", "infisical", "clerk", "planetscale"]
            .into_iter()
            .find(|m| args.mounts.iter().any(|a| a == m))
            .unwrap_or("native");
        let c = args.open_connections;
        println!(
            "\n### {name}: single removal under open-loop load ({mount}, {c} connections or callers)\n\n{HEADER}"
        );
        for &rate in &args.open_rates {
            let (n, warmup) = (args.requests, open_warmup(rate));
            let before = b.roster.group_commit_stats();
            let members = b.seed(warmup + n).await;
            let work = direct_work(b, Unit::of(mount), members);
            let run = drive_open(n, warmup, c, rate, work).await;
            let batch = mean_batch(before, b.roster.group_commit_stats());
            println!("{}", run.row(&format!("direct, {rate}/s offered{batch}")));
            let before = group_commit_counters(&server.addr).await;
            let members = b.seed(warmup + n).await;
            let conns = connections(&server.addr, c).await;
            let work = http_work(b, conns, mount, members);
            let run = drive_open(n, warmup, c, rate, work).await;
            let batch = mean_batch(before, group_commit_counters(&server.addr).await);
            println!("{}", run.row(&format!("{mount}, {rate}/s offered{batch}")));
        }
    }

    /// The `bulk` section: bulk removals of each size, native and Infisical.
    async fn bulk(&self) {
        let (args, b, server, name) = (self.args, &self.b, &self.server, self.name);
        let auth = format!("Bearer {}", b.token);
        println!(
            "\n### {name}: bulk removal in one request (each member also in a project)\n\n| request | members | seconds | members/s | status |\n|---|---|---|---|---|"
        );
        for &k in &args.bulk {
            for mount in ["native", "infisical"] {
                let members = b.seed(k).await;
                let ids: Vec<String> = members.iter().map(|m| m.membership.to_string()).collect();
                let (method, path, body) = match mount {
                    "native" => (
                        "POST",
                        format!("/v1/organizations/{}/memberships/bulk-remove", b.org),
                        json!({"membership_ids": ids}),
                    ),
                    _ => (
                        "DELETE",
                        format!("/infisical/api/v2/organizations/{}/memberships", b.org),
                        json!({"membershipIds": ids}),
                    ),
                };
                let body = body.to_string().into_bytes();
                let mut conn = client::Conn::open(&server.addr).await.unwrap();
                let t = Instant::now();
                let status = conn.send(method, &path, &auth, Some(&body)).await.unwrap();
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "| {mount} bulk | {k} | {secs:.3} | {:.0} | {} |",
                    k as f64 / secs,
                    status
                );
            }
        }
    }

    /// The `scale` section: removal and page latency in a small and a large organization.
    async fn scale(&self) {
        let (args, b, server, name) = (self.args, &self.b, &self.server, self.name);
        let auth = format!("Bearer {}", b.token);
        println!(
            "\n### {name}: removal and list latency by organization size\n\n| organization | members | removal p50 ms | removal p99 ms | first page p50 ms | deep page p50 ms | project's first page p50 ms | project's deep page p50 ms |\n|---|---|---|---|---|---|---|---|"
        );
        for size in [1_000, args.scale] {
            let org = b
                .roster
                .create_organization(
                    Some(&b.admin),
                    NewOrganization {
                        name: format!("Scale {size} {}", b.slug),
                        // Its members are seeded straight into the store, admins included.
                        may_start_without_admin: true,
                        ..Default::default()
                    },
                    &RequestContext::default(),
                )
                .await
                .unwrap();
            let (org, role, project) = org_parts(&b.roster, &b.admin, org.id).await;
            let members = seed::members(&b.target, org, role, project, size).await;
            seed::analyze(&b.target).await;
            let conns = connections(&server.addr, 1).await;
            let deep = members[size * 9 / 10].membership;
            let timed = |paths: Vec<String>, method: &'static str| {
                let (conns, auth) = (conns.clone(), auth.clone());
                async move {
                    let mut lat = Vec::new();
                    for p in paths {
                        let t = Instant::now();
                        let status = conns[0]
                            .lock()
                            .await
                            .send(method, &p, &auth, None)
                            .await
                            .unwrap();
                        assert!(status < 300, "{method} {p}: {status}");
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    lat.sort_by(f64::total_cmp);
                    (
                        lat[lat.len() / 2],
                        lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
                    )
                }
            };
            let removals = members[..200]
                .iter()
                .map(|m| format!("/v1/organizations/{org}/memberships/{}", m.membership))
                .collect();
            let (rp50, rp99) = timed(removals, "DELETE").await;
            // 200 requests for a page of 50 of `list`, from its start or after `cursor`.
            let pages = |list: String, cursor: Option<String>| {
                let cursor = cursor.map_or(String::new(), |c| format!("&cursor={c}"));
                (0..200)
                    .map(|_| format!("{list}?limit=50{cursor}"))
                    .collect()
            };
            let memberships = format!("/v1/organizations/{org}/memberships");
            let (fp50, _) = timed(pages(memberships.clone(), None), "GET").await;
            let (dp50, _) = timed(pages(memberships, Some(deep.to_string())), "GET").await;
            // Every member is also in the organization's one project: its pages too.
            let project_deep = members[size * 9 / 10].project_membership.to_string();
            let project_memberships = format!("/v1/projects/{project}/memberships");
            let (pfp50, _) = timed(pages(project_memberships.clone(), None), "GET").await;
            let (pdp50, _) = timed(pages(project_memberships, Some(project_deep)), "GET").await;
            println!(
                "| {size} members | {size} | {rp50:.2} | {rp99:.2} | {fp50:.2} | {dp50:.2} | {pfp50:.2} | {pdp50:.2} |"
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(url) = &args.database {
        bench_backend(&args, Target::parse(url)).await;
        return;
    }
    args.backends
        .each("roster-bench", |target| bench_backend(&args, target))
        .await;
}
