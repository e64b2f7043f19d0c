//! Seeding members fast: multi-row `INSERT`s of users, their memberships and one project
//! membership each, straight into the database (the API would make seeding a million members
//! the slowest part of the run). Ids are UUID v7, as roster makes them.

use roster_core::Timestamp;
use roster_core::ids::{
    MembershipId, OrganizationId, ProjectId, ProjectMembershipId, RoleId, UserId,
};
use sqlx::Connection;
use uuid::Uuid;

use crate::Target;

/// One seeded member.
#[derive(Clone, Copy, Debug)]
pub struct Seeded {
    pub membership: MembershipId,
    pub user: UserId,
    /// Its membership of the project.
    pub project_membership: ProjectMembershipId,
}

/// `id` as an SQL literal of `target`'s dialect.
pub fn literal(target: &Target, id: Uuid) -> String {
    match target {
        Target::Sqlite(_) => format!("X'{}'", id.simple()),
        Target::Postgres(_) => format!("'{id}'"),
    }
}

async fn run(target: &Target, sql: &str) {
    match target {
        Target::Sqlite(path) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
        Target::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    }
}

/// Adds `n` members with role `role` to `org`, each also in `project`; returns them in order.
/// Call `analyze` when done seeding.
pub async fn members(
    target: &Target,
    org: OrganizationId,
    role: RoleId,
    project: ProjectId,
    n: usize,
) -> Vec<Seeded> {
    let now = Timestamp::now().0;
    let truth = match target {
        Target::Sqlite(_) => "1",
        Target::Postgres(_) => "TRUE",
    };
    let seeded: Vec<Seeded> = (0..n)
        .map(|_| Seeded {
            membership: MembershipId::new(),
            user: UserId::new(),
            project_membership: ProjectMembershipId::new(),
        })
        .collect();
    let l = |id: Uuid| literal(target, id);
    for chunk in seeded.chunks(2000) {
        let mut users = Vec::with_capacity(chunk.len());
        let mut memberships = Vec::with_capacity(chunk.len());
        let mut projects = Vec::with_capacity(chunk.len());
        for s in chunk {
            let email = format!("{}@bench.example", s.user.0.simple());
            users.push(format!(
                "({}, '{email}', '{email}', 'Bench', 'User', {now}, {now})",
                l(s.user.0)
            ));
            memberships.push(format!(
                "({}, {}, {}, {}, 'accepted', {truth}, '{{}}', '{{}}', {now}, {now})",
                l(s.membership.0),
                l(org.0),
                l(s.user.0),
                l(role.0)
            ));
            projects.push(format!(
                "({}, {}, {}, {}, 'member', {now}, {now})",
                l(s.project_membership.0),
                l(org.0),
                l(project.0),
                l(s.user.0)
            ));
        }
        let sql = format!(
            "BEGIN;
             INSERT INTO users (id, email, email_normalized, first_name, last_name, created_at, updated_at) VALUES {};
             INSERT INTO memberships (id, org_id, user_id, role_id, status, is_active, public_metadata, private_metadata, created_at, updated_at) VALUES {};
             INSERT INTO project_memberships (id, org_id, project_id, user_id, role, created_at, updated_at) VALUES {};
             COMMIT;",
            users.join(", "),
            memberships.join(", "),
            projects.join(", ")
        );
        run(target, &sql).await;
    }
    seeded
}

/// Brings PostgreSQL's planner statistics up to date after seeding (the seeded rows would
/// otherwise be planned as an empty table's). Once after all seeding: it reads every table.
pub async fn analyze(target: &Target) {
    if let Target::Postgres(_) = target {
        run(target, "ANALYZE").await;
    }
}
