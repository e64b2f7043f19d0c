//! Reading a roster database behind the server's back, after a fault: the ids a scenario
//! checks, and the invariants every scenario ends with. Plain SQL on a connection of its own,
//! the same on both backends but for how an id reads as text.

use std::collections::HashSet;

use roster_bench::{Target, seed};
use roster_core::ids::OrganizationId;
use sqlx::{Connection, Row};

pub enum Db {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// What must hold of a roster database whatever happened to the process that wrote it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Invariants {
    pub memberships: i64,
    pub project_memberships: i64,
    pub audit_events: i64,
    pub events: i64,
    pub former_members: i64,
    /// Organizations with members but no active admin among them.
    pub without_admin: i64,
    /// Rows pointing at nothing: a membership's user or role gone, a project membership whose
    /// project is gone or whose user is no longer a member (a removal done in half).
    pub dangling: i64,
    /// Organizations whose kept member or invitation count disagrees with their memberships.
    pub miscounted: i64,
}

impl Invariants {
    /// Whether every rule holds (the counts are reported, not judged).
    pub fn hold(&self) -> bool {
        self.without_admin == 0 && self.dangling == 0 && self.miscounted == 0
    }

    /// "ok", or what broke.
    pub fn verdict(&self) -> String {
        if self.hold() {
            "ok".into()
        } else {
            format!(
                "BROKEN: {} without admin, {} dangling, {} miscounted",
                self.without_admin, self.dangling, self.miscounted
            )
        }
    }
}

/// What became of a set of seeded members after removals were tried, member by member.
#[derive(Default)]
pub struct Tally {
    /// Wholly removed: membership and project membership gone, audit event and former-member
    /// record written.
    pub done: usize,
    /// Wholly kept: none of that.
    pub not_done: usize,
    /// Some of it: a removal done in part.
    pub half_done: usize,
    /// Answered 200, yet not done.
    pub lost: usize,
}

impl Db {
    pub async fn open(target: &Target) -> Db {
        match target {
            Target::Sqlite(path) => Db::Sqlite(
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("open the SQLite database"),
            ),
            Target::Postgres(url) => Db::Postgres(
                sqlx::PgConnection::connect(url)
                    .await
                    .expect("connect to the PostgreSQL database"),
            ),
        }
    }

    /// SQL reading the id column `col` as 32 lowercase hex digits.
    fn hex(&self, col: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("lower(hex({col}))"),
            Db::Postgres(_) => format!("replace({col}::text, '-', '')"),
        }
    }

    fn literal(&self, org: OrganizationId) -> String {
        match self {
            Db::Sqlite(_) => format!("X'{}'", org.0.simple()),
            Db::Postgres(_) => format!("'{}'", org.0),
        }
    }

    /// A condition keeping the rows of `org`, or every row.
    fn of(&self, org: Option<OrganizationId>) -> String {
        org.map_or("TRUE".into(), |org| {
            format!("org_id = {}", self.literal(org))
        })
    }

    pub async fn count(&mut self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(c) => sqlx::query(sql).fetch_one(c).await.map(|r| r.get(0)),
            Db::Postgres(c) => sqlx::query(sql).fetch_one(c).await.map(|r| r.get(0)),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Writes what seeding left in the write-ahead log back to the database, so that a load
    /// measured next does not pay for the seeding's writes (on PostgreSQL a checkpoint, and
    /// its fsyncs, would otherwise start in the middle of it).
    pub async fn checkpoint(&mut self) {
        let sql = match self {
            Db::Sqlite(_) => "PRAGMA wal_checkpoint(TRUNCATE)",
            Db::Postgres(_) => "CHECKPOINT",
        };
        match self {
            Db::Sqlite(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
            Db::Postgres(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of the first row, as text.
    pub async fn text(&mut self, sql: &str) -> String {
        match self {
            Db::Sqlite(c) => sqlx::query(sql).fetch_one(c).await.map(|r| r.get(0)),
            Db::Postgres(c) => sqlx::query(sql).fetch_one(c).await.map(|r| r.get(0)),
        }
        .unwrap_or_else(|e| format!("{sql}: {e}"))
    }

    /// The first column of every row, as text, ids normalized to plain hex.
    async fn texts(&mut self, sql: &str) -> HashSet<String> {
        let rows: Vec<String> = match self {
            Db::Sqlite(c) => sqlx::query(sql)
                .fetch_all(c)
                .await
                .map(|rs| rs.iter().map(|r| r.get(0)).collect()),
            Db::Postgres(c) => sqlx::query(sql)
                .fetch_all(c)
                .await
                .map(|rs| rs.iter().map(|r| r.get(0)).collect()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter()
            .map(|t| t.replace('-', "").to_lowercase())
            .collect()
    }

    /// The organization's memberships (or every one), by id.
    async fn memberships(&mut self, org: Option<OrganizationId>) -> HashSet<String> {
        let sql = format!(
            "SELECT {} FROM memberships WHERE {}",
            self.hex("id"),
            self.of(org)
        );
        self.texts(&sql).await
    }

    /// The users holding a project membership in the organization (or in any).
    async fn project_members(&mut self, org: Option<OrganizationId>) -> HashSet<String> {
        let sql = format!(
            "SELECT {} FROM project_memberships WHERE {}",
            self.hex("user_id"),
            self.of(org)
        );
        self.texts(&sql).await
    }

    /// The memberships the audit trail says were removed from the organization (or any).
    async fn audited_removals(&mut self, org: Option<OrganizationId>) -> HashSet<String> {
        let sql = format!(
            "SELECT target_id FROM audit_events WHERE {} AND action = 'membership.removed'",
            self.of(org)
        );
        self.texts(&sql).await
    }

    /// The organization's former-member records (or every one), by membership id.
    async fn former_members(&mut self, org: Option<OrganizationId>) -> HashSet<String> {
        let sql = format!(
            "SELECT {} FROM former_members WHERE {}",
            self.hex("membership_id"),
            self.of(org)
        );
        self.texts(&sql).await
    }

    /// Sorts each member of `seeded` (all of `org`, or of any organization) by what the
    /// database holds of it now; `acknowledged` are the memberships (plain hex) whose removal
    /// was answered 200.
    pub async fn tally(
        &mut self,
        org: Option<OrganizationId>,
        seeded: &[seed::Seeded],
        acknowledged: &HashSet<String>,
    ) -> Tally {
        let members = self.memberships(org).await;
        let in_projects = self.project_members(org).await;
        let audited = self.audited_removals(org).await;
        let former = self.former_members(org).await;
        let mut t = Tally::default();
        for s in seeded {
            let id = s.membership.0.simple().to_string();
            let kept = [
                members.contains(&id),
                in_projects.contains(&s.user.0.simple().to_string()),
                !audited.contains(&id),
                !former.contains(&id),
            ];
            if kept.iter().all(|k| *k) {
                t.not_done += 1;
                t.lost += usize::from(acknowledged.contains(&id));
            } else if kept.iter().all(|k| !*k) {
                t.done += 1;
            } else {
                t.half_done += 1;
            }
        }
        t
    }

    /// The organization's `membership.removed` events.
    pub async fn removal_events(&mut self, org: OrganizationId) -> i64 {
        let sql = format!(
            "SELECT COUNT(*) FROM events WHERE org_id = {} AND event_type = 'membership.removed'",
            self.literal(org)
        );
        self.count(&sql).await
    }

    pub async fn invariants(&mut self) -> Invariants {
        let admin = "SELECT 1 FROM memberships a JOIN roles r ON r.id = a.role_id \
                     WHERE a.org_id = o.id AND a.status = 'accepted' AND a.is_active \
                     AND r.role_key = 'admin'";
        Invariants {
            memberships: self.count("SELECT COUNT(*) FROM memberships").await,
            project_memberships: self.count("SELECT COUNT(*) FROM project_memberships").await,
            audit_events: self.count("SELECT COUNT(*) FROM audit_events").await,
            events: self.count("SELECT COUNT(*) FROM events").await,
            former_members: self.count("SELECT COUNT(*) FROM former_members").await,
            without_admin: self
                .count(&format!(
                    "SELECT COUNT(*) FROM organizations o \
                     WHERE EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = o.id) \
                     AND NOT EXISTS ({admin})"
                ))
                .await,
            dangling: self
                .count(
                    "SELECT \
                     (SELECT COUNT(*) FROM memberships m WHERE m.user_id IS NOT NULL \
                        AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.user_id)) \
                     + (SELECT COUNT(*) FROM memberships m \
                        WHERE NOT EXISTS (SELECT 1 FROM roles r WHERE r.id = m.role_id)) \
                     + (SELECT COUNT(*) FROM project_memberships p \
                        WHERE NOT EXISTS (SELECT 1 FROM projects j WHERE j.id = p.project_id)) \
                     + (SELECT COUNT(*) FROM project_memberships p WHERE NOT EXISTS \
                        (SELECT 1 FROM memberships m \
                         WHERE m.org_id = p.org_id AND m.user_id = p.user_id))",
                )
                .await,
            miscounted: self
                .count(
                    "SELECT COUNT(*) FROM organizations o WHERE o.member_count <> \
                     (SELECT COUNT(*) FROM memberships m WHERE m.org_id = o.id) \
                     OR o.invitation_count <> (SELECT COUNT(*) FROM memberships m \
                        WHERE m.org_id = o.id AND m.user_id IS NULL)",
                )
                .await,
        }
    }
}
