//! The plans PostgreSQL chooses for roster's largest lists, pinned: a page of an organization's
//! memberships or audit events walks the organization's `(org_id, id)` index from where the
//! page starts, at any depth, in the generic plan that a prepared statement ends up with (the
//! one that once walked the primary key through other organizations' rows:
//! `org_page_condition` in `roster-store-sql`).
//!
//! It needs the PostgreSQL server the API tests use (`ROSTER_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`), and fails if it is not there.

use roster_core::OrganizationId;
use roster_core::model::{MembershipFilter, Page};
use roster_store_postgres::PostgresStore;
use roster_store_sql::{Arg, list_audit_events_statement, list_memberships_statement};
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

fn admin_url() -> String {
    std::env::var("ROSTER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// An argument as a literal of `EXPLAIN EXECUTE`'s parameter list.
fn literal(arg: &Arg) -> String {
    match arg {
        Arg::Uuid(u) => format!("'{u}'::uuid"),
        Arg::Int(i) => i.to_string(),
        Arg::Text(t) => format!("'{}'", t.replace('\'', "''")),
        other => panic!("no literal for {other:?} in this test"),
    }
}

/// The generic plan of the statement, as `EXPLAIN` prints it.
async fn generic_plan(conn: &mut PgConnection, (sql, args): (String, Vec<Arg>)) -> String {
    sqlx::raw_sql(&format!(
        "SET plan_cache_mode = force_generic_plan; PREPARE page AS {sql}"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    let params = args.iter().map(literal).collect::<Vec<_>>().join(", ");
    let rows = sqlx::raw_sql(&format!("EXPLAIN EXECUTE page({params})"))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql("DEALLOCATE page")
        .execute(&mut *conn)
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Three organizations of 20,000 invitations and as many audit events each, made one after the
/// other (so each one's rows follow the last one's in id order, ids being time-ordered as
/// roster makes them), and the statistics gathered; then the plans of pages of the last one:
/// (what, plan).
async fn plans(url: &str) -> Vec<(&'static str, &'static str, String)> {
    let store = PostgresStore::connect(url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let mut conn = PgConnection::connect(url).await.unwrap();
    let mut last = None;
    for o in 0..3 {
        let (org, role) = (Uuid::now_v7(), Uuid::now_v7());
        let ids: Vec<Uuid> = (0..20_000).map(|_| Uuid::now_v7()).collect();
        sqlx::query(
            "INSERT INTO organizations (id, name, slug, created_at, updated_at) \
             VALUES ($1, 'Org', $2, 0, 0)",
        )
        .bind(org)
        .bind(format!("org-{o}"))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO roles (id, org_id, role_key, name, permissions, built_in, created_at, \
             updated_at) VALUES ($1, $2, 'member', 'Member', '[]', TRUE, 0, 0)",
        )
        .bind(role)
        .bind(org)
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO memberships (id, org_id, invite_email, role_id, status, is_active, \
                 public_metadata, private_metadata, created_at, updated_at) \
             SELECT id, $1, id || '@example.com', $2, 'invited', TRUE, '{}', '{}', 0, 0 \
             FROM UNNEST($3::uuid[]) AS id",
        )
        .bind(org)
        .bind(role)
        .bind(&ids)
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO audit_events (id, org_id, actor_kind, actor_id, action, target_kind, \
                 target_id, details, created_at) \
             SELECT id, $1, 'user', 'u', 'membership.added', 'membership', id::text, '{}', 0 \
             FROM UNNEST($2::uuid[]) AS id",
        )
        .bind(org)
        .bind(&ids)
        .execute(&mut conn)
        .await
        .unwrap();
        last = Some((org, ids));
    }
    sqlx::raw_sql("ANALYZE").execute(&mut conn).await.unwrap();
    let (org, ids) = last.unwrap();
    let deep = ids[15_000];
    let page = |after: Option<Uuid>, descending| Page {
        after,
        offset: 0,
        limit: 50,
        descending,
    };
    let any = MembershipFilter::default();
    let mut plans = Vec::new();
    for (what, page) in [
        ("first page", page(None, false)),
        ("first page, newest first", page(None, true)),
        ("deep page", page(Some(deep), false)),
        ("deep page, newest first", page(Some(deep), true)),
    ] {
        let org = OrganizationId(org);
        let statement = list_memberships_statement(org, &any, page);
        let plan = generic_plan(&mut conn, statement).await;
        plans.push((what, "memberships_org_id on memberships m", plan));
        let plan = generic_plan(&mut conn, list_audit_events_statement(org, page)).await;
        plans.push((what, "audit_events_org on audit_events", plan));
    }
    plans
}

/// A scratch database, dropped with this (also when the test fails part-way).
struct Scratch {
    admin_url: String,
    name: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Dropping runs outside the test's runtime, which may be unwinding.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
                    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await
                        .unwrap();
                });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("could not drop the scratch database {}", self.name);
        }
    }
}

#[tokio::test]
async fn a_page_of_an_organizations_rows_walks_its_index_in_the_generic_plan() {
    let admin_url = admin_url();
    let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required for this test and is not reachable at {admin_url}: {e}. \
             Start it, or set ROSTER_TEST_POSTGRES_URL."
        )
    });
    let name = format!("roster_plans_{}", Uuid::now_v7().simple());
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let scratch = Scratch {
        admin_url: admin_url.clone(),
        name: name.clone(),
    };
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    for (what, index, plan) in plans(&url).await {
        assert!(
            plan.contains(&format!("using {index}")),
            "{what}: walks the organization's (org_id, id) index ({index}); the plan:\n{plan}"
        );
        assert!(
            !plan.contains("_pkey") && !plan.contains("Sort"),
            "{what}: neither the primary key nor a sort; the plan:\n{plan}"
        );
    }
    drop(scratch);
}
