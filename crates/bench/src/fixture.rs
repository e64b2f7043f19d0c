//! What roster's load tools share: the database a run uses (`Target`), the organization it
//! works in (`Bench`, made through the core and seeded straight into the database) and the
//! `roster serve` process it drives (`Server`).

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use roster_core::ids::{OrganizationId, ProjectId, RoleId, UserId};
use roster_core::service::{NewOrganization, NewProject};
use roster_core::{Actor, RequestContext, Roster};

use sqlx::Connection;

use crate::load::Xorshift;
use crate::seed;

/// Members seeded in each organization of `Bench::seed_organizations`.
pub const MEMBERS_EACH: usize = 20;

/// Where the benchmark's database is.
pub enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Target {
    /// The target a database URL names, as `roster serve --database` takes it.
    pub fn parse(url: &str) -> Target {
        match roster::Database::parse(url).unwrap_or_else(|e| panic!("--database {url}: {e}")) {
            roster::Database::Sqlite(path) => Target::Sqlite(path),
            roster::Database::Postgres(url) => Target::Postgres(url),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Target::Sqlite(p) => format!("sqlite://{}", p.display()),
            Target::Postgres(u) => u.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "SQLite",
            Target::Postgres(_) => "PostgreSQL",
        }
    }
}

/// The organization the runs remove members from, and how to reach it.
pub struct Bench {
    pub target: Target,
    pub roster: Roster,
    pub admin: Actor,
    pub token: String,
    pub org: OrganizationId,
    pub slug: String,
    /// The organization's first admin, who is also the first admin of every organization
    /// `seed_organizations` makes.
    pub user: UserId,
    pub role: RoleId,
    pub project: ProjectId,
}

impl Bench {
    /// A new organization named `org_name` in `target`, with an instance admin key.
    pub async fn setup(target: Target, org_name: &str) -> Bench {
        let store = roster::open_store(&roster::Database::parse(&target.url()).unwrap())
            .await
            .unwrap();
        let roster = Roster::new(store);
        let boot = roster
            .bootstrap(org_name, "bench@example.com")
            .await
            .unwrap();
        let token = boot.admin_key.bearer();
        let presented = roster_core::secrets::PresentedToken::parse_bearer(&token).unwrap();
        let credentials = roster_core::secrets::Credentials::Token(presented);
        let admin = roster_core::auth::authenticate(roster.store(), credentials)
            .await
            .unwrap();
        let (org, role, project) = org_parts(&roster, &admin, boot.organization.id).await;
        Bench {
            target,
            roster,
            admin,
            token,
            org,
            slug: boot.organization.slug,
            user: boot.user.id,
            role,
            project,
        }
    }

    pub async fn seed(&self, n: usize) -> Vec<seed::Seeded> {
        let seeded = seed::members(&self.target, self.org, self.role, self.project, n).await;
        seed::analyze(&self.target).await;
        seeded
    }

    /// `orgs` new organizations, each with `self.user` as its admin and `MEMBERS_EACH` seeded
    /// members in a project; every seeded member with its organization, in a random order.
    pub async fn seed_organizations(
        &self,
        orgs: usize,
        random: &mut Xorshift,
    ) -> Vec<(OrganizationId, seed::Seeded)> {
        let mut members = Vec::with_capacity(orgs * MEMBERS_EACH);
        for i in 0..orgs {
            let input = NewOrganization {
                name: format!("Tenant {i} {}", self.slug),
                created_by: Some(self.user),
                ..Default::default()
            };
            let org = self
                .roster
                .create_organization(Some(&self.admin), input, &RequestContext::default())
                .await
                .unwrap()
                .id;
            let (org, role, project) = org_parts(&self.roster, &self.admin, org).await;
            for m in seed::members(&self.target, org, role, project, MEMBERS_EACH).await {
                members.push((org, m));
            }
        }
        seed::analyze(&self.target).await;
        random.shuffle(&mut members);
        members
    }
}

pub async fn org_parts(
    roster: &Roster,
    admin: &Actor,
    org: OrganizationId,
) -> (OrganizationId, RoleId, ProjectId) {
    let role = roster
        .list_roles(admin, org)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key == "member")
        .unwrap()
        .id;
    let project = roster
        .create_project(
            admin,
            org,
            NewProject {
                name: "bench".into(),
                slug: None,
                external_id: None,
            },
            &RequestContext::default(),
        )
        .await
        .unwrap();
    (org, role, project.id)
}

/// The server driven: started here (`child`), or already running (`--server`).
pub struct Server {
    pub child: Option<Child>,
    pub addr: String,
    pub ready: Option<Duration>,
}

impl Server {
    pub fn running(addr: &str) -> Server {
        Server {
            child: None,
            addr: addr.to_owned(),
            ready: None,
        }
    }

    pub fn start(bin: &PathBuf, target: &Target, group_commit_off: &str) -> Server {
        Server::start_with(bin, target, group_commit_off, &[])
    }

    /// `start`, with more arguments for `roster serve`.
    pub fn start_with(
        bin: &PathBuf,
        target: &Target,
        group_commit_off: &str,
        more: &[&str],
    ) -> Server {
        let started = Instant::now();
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                &target.url(),
                // The benchmark's webhook receiver listens on loopback.
                "--allow-private-webhook-urls",
            ])
            .args(more)
            .env("RUST_LOG", "warn,roster=info")
            .env("ROSTER_GROUP_COMMIT_OFF", group_commit_off)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {}: {e} (cargo build --release -p roster first)",
                    bin.display()
                )
            });
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("roster serve exited").unwrap();
            if let Some(at) = line.find("address=") {
                break line[at + 8..].split_whitespace().next().unwrap().to_owned();
            }
        };
        let ready = Some(started.elapsed());
        std::thread::spawn(move || for _ in lines {});
        Server {
            child: Some(child),
            addr,
            ready,
        }
    }

    /// Peak resident memory so far (VmHWM) of a server started here, in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.status_mib("VmHWM:")
    }

    /// Resident memory now (VmRSS) of a server started here, in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        self.status_mib("VmRSS:")
    }

    fn status_mib(&self, field: &str) -> Option<f64> {
        let child = self.child.as_ref()?;
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    }

    /// File descriptors a server started here has open now.
    pub fn open_fds(&self) -> Option<usize> {
        let child = self.child.as_ref()?;
        Some(
            std::fs::read_dir(format!("/proc/{}/fd", child.id()))
                .ok()?
                .count(),
        )
    }

    /// Ends a server started here at once with SIGKILL, as a crash or the OOM killer would:
    /// no shutdown, no flush, whatever was in flight cut off.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// "NAME: server peak RSS WHEN: N MiB", for a server started here.
    pub fn print_peak_rss(&self, name: &str, when: &str) {
        if let Some(mib) = self.peak_rss_mib() {
            println!("\n{name}: server peak RSS {when}: {mib:.1} MiB");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// Where a tool runs: on which backends, making PostgreSQL databases on which server, with
/// which `roster` binary.
#[derive(clap::Args, Clone)]
pub struct Backends {
    /// sqlite, postgres, or both.
    #[arg(long, default_value = "both")]
    pub backend: String,
    /// A PostgreSQL URL of a database to connect to for creating the run's own.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres: String,
    /// The roster binary to start.
    #[arg(long, default_value = "target/release/roster")]
    pub roster: PathBuf,
}

impl Backends {
    /// Runs `run` on a fresh database of each backend asked for: SQLite in a directory of its
    /// own, PostgreSQL a database of its own dropped afterwards; `tool` names both.
    pub async fn each<F, Fut>(&self, tool: &str, mut run: F)
    where
        F: FnMut(Target) -> Fut,
        Fut: Future<Output = ()>,
    {
        let dir = std::env::temp_dir().join(format!("{tool}-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if matches!(self.backend.as_str(), "sqlite" | "both") {
            run(Target::Sqlite(dir.join("roster.db"))).await;
        }
        if matches!(self.backend.as_str(), "postgres" | "both") {
            let url = create_postgres_database(&self.postgres, &tool.replace('-', "_")).await;
            run(Target::Postgres(url.clone())).await;
            drop_postgres_database(&self.postgres, &url).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A database of its own, `{prefix}_<uuid>`, on the PostgreSQL server `admin_url` connects to:
/// its URL.
pub async fn create_postgres_database(admin_url: &str, prefix: &str) -> String {
    let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
    postgres_admin(admin_url, &format!("CREATE DATABASE {name}")).await;
    format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0)
}

/// Drops the database `url` names, on a connection of its own (whatever happened to the server
/// meanwhile).
pub async fn drop_postgres_database(admin_url: &str, url: &str) {
    let name = url.rsplit_once('/').unwrap().1;
    postgres_admin(
        admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await;
}

async fn postgres_admin(admin_url: &str, sql: &str) {
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(sql)
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
