//! `roster-chaos`: runs roster where systems really fail, and checks it kept its promises. It
//! starts the release `roster serve` itself on a fresh database of either backend, seeds an
//! organization straight into the database, and runs each scenario asked for: the server
//! killed with SIGKILL in the middle of removals (`kill`), floods of idle connections and
//! clients that send one byte a second (`slow`), the peak memory of a 100,000-id bulk removal
//! (`bulk-memory`), PostgreSQL stopped and started under load (`restart`), SQLite's disk
//! filling up (`disk-full`, on a tmpfs it mounts: root only), removals spread over 10,000
//! organizations against the same in one (`tenants`), and mixed traffic on every mount for
//! half an hour at a fixed rate (`soak`, asked for by name only). Each ends with a check of
//! the invariants (`db::Invariants`) and a line in a Markdown table; `docs/reliability.md`
//! keeps the figures.
//!
//! A tool, not a test: it runs for minutes and reports. Build roster first:
//! `cargo build --release -p roster && cargo run --release -p roster-bench --bin roster-chaos`.

mod db;
mod faults;
mod kill;
mod slow;
mod soak;
mod tenants;

use clap::Parser;
use roster_bench::load::Xorshift;
use roster_bench::{Backends, Bench, Server, Target};

#[derive(Parser, Clone)]
#[command(about = "Fault, flood and memory scenarios against roster serve")]
struct Args {
    #[command(flatten)]
    backends: Backends,
    /// Which scenarios to run: kill, slow, bulk-memory, restart (PostgreSQL only), disk-full
    /// (SQLite only), tenants, and soak (only when named: it runs for `--soak-minutes`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill,slow,bulk-memory,restart,disk-full,tenants"
    )]
    scenarios: Vec<String>,
    /// Rounds of each kill scenario.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Members of each bulk removal the kill scenario cuts off.
    #[arg(long, default_value_t = 10_000)]
    bulk_size: usize,
    /// Members of the bulk removal whose peak memory `bulk-memory` measures.
    #[arg(long, default_value_t = 100_000)]
    bulk_memory_size: usize,
    /// Idle connections the `slow` scenario opens at once.
    #[arg(long, default_value_t = 2000)]
    idle_connections: usize,
    /// How long the soak runs.
    #[arg(long, default_value_t = 30)]
    soak_minutes: u64,
    /// Requests a second the soak offers, arriving whether or not earlier ones were answered.
    #[arg(long, default_value_t = 100.0)]
    soak_rate: f64,
    /// Organizations (20 members each) the `tenants` scenario spreads removals over.
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// Removals a second the `tenants` scenario offers to each of its two loads, in turn.
    #[arg(long, value_delimiter = ',', default_value = "1000,3000")]
    tenants_rates: Vec<u32>,
    /// How long each load of the `tenants` scenario offers removals.
    #[arg(long, default_value_t = 20)]
    tenants_seconds: u64,
}

/// Where a scenario runs: the organization, the server, a connection to its database.
pub struct Chaos {
    args: Args,
    b: Bench,
    server: Server,
    db: db::Db,
    random: Xorshift,
}

impl Chaos {
    /// Kills the server with SIGKILL and starts a new one on the same database.
    fn restart_after_kill(&mut self) {
        std::mem::replace(&mut self.server, Server::running("")).kill();
        self.server = Server::start(&self.args.backends.roster, &self.b.target, "");
    }

    fn row(&self, row: &str) {
        println!("{row}");
    }
}

const HEADER: &str = "| scenario | rounds | outcome | acknowledged, lost | rounds whose events disagree | rounds breaking an invariant | invariants at the end |\n|---|---|---|---|---|---|---|";

async fn run(args: Args, target: Target) {
    let name = target.name();
    let b = Bench::setup(target, "Chaos").await;
    let server = Server::start(&args.backends.roster, &b.target, "");
    let db = db::Db::open(&b.target).await;
    let mut c = Chaos {
        args,
        b,
        server,
        db,
        random: Xorshift::seeded(),
    };
    let wants = |c: &Chaos, s: &str| c.args.scenarios.iter().any(|x| x == s);
    if wants(&c, "kill") {
        println!("\n### {name}: kill -9\n\n{HEADER}");
        let (rounds, size) = (c.args.rounds, c.args.bulk_size);
        kill::bulk(&mut c, rounds, size).await;
        kill::singles(&mut c, rounds, 8).await;
    }
    if wants(&c, "slow") {
        println!("\n### {name}: floods and slow clients\n");
        slow::run(&mut c).await;
    }
    if wants(&c, "bulk-memory") {
        let size = c.args.bulk_memory_size;
        slow::bulk_memory(&mut c, size).await;
    }
    if wants(&c, "restart") {
        faults::database_restart(&mut c).await;
    }
    if wants(&c, "disk-full") {
        faults::disk_full(&mut c).await;
    }
    if wants(&c, "tenants") {
        println!("\n### {name}: many tenants\n");
        let (tenants, seconds) = (c.args.tenants, c.args.tenants_seconds);
        let rates = c.args.tenants_rates.clone();
        tenants::run(&mut c, tenants, &rates, seconds).await;
    }
    if wants(&c, "soak") {
        println!("\n### {name}: soak\n");
        let (minutes, rate) = (c.args.soak_minutes, c.args.soak_rate);
        soak::run(&mut c, minutes, rate).await;
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    args.backends
        .each("roster-chaos", |target| run(args.clone(), target))
        .await;
}
