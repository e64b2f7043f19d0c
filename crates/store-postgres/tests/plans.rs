//! The plans PostgreSQL chooses for roster's lists, pinned: a page of an organization's or a
//! project's rows walks its `(parent, id)` index (a page of tokens, its `(parent, kind, id)`
//! index) from where the page starts, at any depth, in the generic plan that a prepared
//! statement ends up with (the one that once walked the primary key through other
//! organizations' rows: `parent_page_condition` in `roster-store-sql`). A removal's reads and
//! its deletion find their rows by key in theirs. And the webhook worker's claim walks the due
//! index only as far as its limit, past any backlog, and its record finds each delivery by its
//! key, with or without statistics.
//!
//! It needs the PostgreSQL server the API tests use (`ROSTER_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`), and fails if it is not there.

use roster_core::model::{MembershipFilter, Page, TokenKind};
use roster_core::webhooks::DeliveryState;
use roster_core::{
    EventId, MembershipId, OrganizationId, Timestamp, TokenId, UserId, WebhookEndpointId,
};
use roster_store_postgres::{PgConn, PostgresStore};
use roster_store_sql::{
    Arg, PagedList, claim_due_deliveries_statement, delete_owed_deliveries_statement,
    list_memberships_statement, list_page_statement, list_tokens_statement,
    lock_organizations_reading_tokens_statement, memberships_by_ids_statement,
    memberships_by_users_statement, record_deliveries_statement,
    remove_memberships_cascading_statement,
};
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
async fn generic_plan(conn: &mut PgConnection, statement: (String, Vec<Arg>)) -> String {
    plan_in(conn, "force_generic_plan", statement).await
}

/// The statement's plan in a `plan_cache_mode` (`force_generic_plan`: made without its
/// arguments; `force_custom_plan`: for them), as `EXPLAIN` prints it.
async fn plan_in(
    conn: &mut PgConnection,
    cache_mode: &str,
    (sql, args): (String, Vec<Arg>),
) -> String {
    sqlx::raw_sql(&format!(
        "SET plan_cache_mode = {cache_mode}; PREPARE page AS {sql}"
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

/// The rows of an organization, one per id of `$2`, in each list paged by id (its first row's id
/// `($2)[1]` is also its first project's and its first user's), the organization `$1` and its
/// one role made first. Tokens of three kinds: a service token of the organization, an
/// identity's token in it, and a personal token of its first user.
const ROWS: [&str; 13] = [
    "INSERT INTO memberships (id, org_id, invite_email, role_id, status, is_active, \
         public_metadata, private_metadata, created_at, updated_at) \
     SELECT id, $1, id || '@example.com', (SELECT id FROM roles WHERE org_id = $1), 'invited', \
         TRUE, '{}', '{}', 0, 0 \
     FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO audit_events (id, org_id, actor_kind, actor_id, action, target_kind, \
         target_id, details, created_at) \
     SELECT id, $1, 'user', 'u', 'membership.added', 'membership', id::text, '{}', 0 \
     FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO events (id, org_id, event_type, data, created_at) \
     SELECT id, $1, 'membership.created', '{}', 0 FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO webhook_endpoints (id, org_id, url, event_types, format, secret, disabled, \
         created_at, updated_at) \
     SELECT id, $1, 'https://h.example', '', 'native', 's', FALSE, 0, 0 \
     FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO users (id, email, email_normalized, created_at, updated_at) \
     SELECT id, id || '@example.com', id || '@example.com', 0, 0 FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO identities (id, org_id, name, role_id, created_at, updated_at) \
     SELECT id, $1, 'i', (SELECT id FROM roles WHERE org_id = $1), 0, 0 \
     FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO projects (id, org_id, name, slug, created_at, updated_at) \
     SELECT id, $1, 'P', id::text, 0, 0 FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO passwords (id, org_id, user_id, name, secret_hash, created_at) \
     SELECT id, $1, id, 'p', '\\x00'::bytea, 0 FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO project_memberships (id, org_id, project_id, user_id, role, created_at, \
         updated_at) \
     SELECT id, $1, ($2::uuid[])[1], id, 'member', 0, 0 FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO identity_project_memberships (id, org_id, project_id, identity_id, role, \
         created_at, updated_at) \
     SELECT id, $1, ($2::uuid[])[1], id, 'member', 0, 0 FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO tokens (id, kind, org_id, created_by, name, secret_hash, permissions, \
         created_at) \
     SELECT id, 'service', $1, id, 't', '\\x00'::bytea, '[]', 0 FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO tokens (id, kind, org_id, identity_id, name, secret_hash, permissions, \
         created_at) \
     SELECT gen_random_uuid(), 'identity', $1, id, 't', '\\x00'::bytea, '[]', 0 \
     FROM UNNEST($2::uuid[]) AS id",
    "INSERT INTO tokens (id, kind, user_id, name, secret_hash, permissions, created_at) \
     SELECT gen_random_uuid(), 'user', ($2::uuid[])[1], 't', '\\x00'::bytea, '[]', 0 \
     FROM UNNEST($2::uuid[]) AS id",
];

/// Three organizations of 20,000 rows in each list paged by id (`ROWS`), made one after the
/// other (so each one's rows follow the last one's in id order, ids being time-ordered as
/// roster makes them), and the statistics gathered: a connection, the last organization and
/// its rows' ids.
async fn three_organizations(url: &str) -> (PgConnection, Uuid, Vec<Uuid>) {
    let store = PostgresStore::connect(url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let mut conn = PgConnection::connect(url).await.unwrap();
    let mut last = None;
    for o in 0..3 {
        let org = Uuid::now_v7();
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
        .bind(Uuid::now_v7())
        .bind(org)
        .execute(&mut conn)
        .await
        .unwrap();
        let ids: Vec<Uuid> = (0..20_000).map(|_| Uuid::now_v7()).collect();
        for sql in ROWS {
            sqlx::query(sql)
                .bind(org)
                .bind(&ids)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        last = Some((org, ids));
    }
    sqlx::raw_sql("ANALYZE").execute(&mut conn).await.unwrap();
    let (org, ids) = last.unwrap();
    (conn, org, ids)
}

/// The plans of pages of the last of `three_organizations`: (what, index, plan).
async fn plans(url: &str) -> Vec<(&'static str, &'static str, String)> {
    let (mut conn, org, ids) = three_organizations(url).await;
    let project = ids[0];
    let deep = ids[15_000];
    let page = |after: Option<Uuid>, descending| Page {
        after,
        offset: 0,
        limit: 50,
        descending,
    };
    let any = MembershipFilter::default();
    let users_only = MembershipFilter {
        users_only: true,
        ..Default::default()
    };
    let mut plans = Vec::new();
    for (what, page) in [
        ("first page", page(None, false)),
        ("first page, newest first", page(None, true)),
        ("deep page", page(Some(deep), false)),
        ("deep page, newest first", page(Some(deep), true)),
    ] {
        let statement = list_memberships_statement(OrganizationId(org), &any, page);
        let plan = generic_plan(&mut conn, statement).await;
        plans.push((what, "memberships_org_id on memberships m", plan));
        // Users' memberships alone, as the vendor mounts list them: the partial index.
        let statement = list_memberships_statement(OrganizationId(org), &users_only, page);
        let plan = generic_plan(&mut conn, statement).await;
        plans.push((what, "memberships_users_org_id on memberships m", plan));
        for list in PagedList::ALL {
            let (parent, index) = match list {
                PagedList::AuditEvents => (org, "audit_events_org on audit_events"),
                PagedList::Events => (org, "events_org on events"),
                PagedList::WebhookEndpoints => (org, "webhook_endpoints_org on webhook_endpoints"),
                PagedList::Identities => (org, "identities_org on identities i"),
                PagedList::Projects => (org, "projects_org_id on projects"),
                PagedList::Passwords => (org, "passwords_org_id on passwords"),
                PagedList::ProjectMemberships => (
                    project,
                    "project_memberships_project_id on project_memberships",
                ),
                PagedList::IdentityProjectMemberships => (
                    project,
                    "identity_project_memberships_project_id on identity_project_memberships",
                ),
            };
            let statement = list_page_statement(list, parent, page);
            plans.push((what, index, generic_plan(&mut conn, statement).await));
        }
        let (holder, owner) = (Some(OrganizationId(org)), Some(UserId(ids[0])));
        let statement = list_tokens_statement(TokenKind::Service, holder, None, page);
        let plan = generic_plan(&mut conn, statement).await;
        plans.push((what, "tokens_org_kind_id on tokens", plan));
        let statement = list_tokens_statement(TokenKind::User, None, owner, page);
        let plan = generic_plan(&mut conn, statement).await;
        plans.push((what, "tokens_user_kind_id on tokens", plan));
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

/// A scratch database of its own, and its URL.
async fn scratch() -> (Scratch, String) {
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
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    (Scratch { admin_url, name }, url)
}

/// A scratch database with roster's tables, and a connection to it.
async fn migrated_scratch() -> (Scratch, PgConnection) {
    let (scratch, url) = scratch().await;
    let store = PostgresStore::connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
    (scratch, PgConnection::connect(&url).await.unwrap())
}

#[tokio::test]
async fn a_page_of_a_parents_rows_walks_its_index_in_the_generic_plan() {
    let (scratch, url) = scratch().await;
    for (what, index, plan) in plans(&url).await {
        assert!(
            plan.contains(&format!("using {index}")),
            "{what}: walks its parent's index ({index}); the plan:\n{plan}"
        );
        let table = index
            .split(" on ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        assert!(
            !plan.contains(&format!("using {table}_pkey")) && !plan.contains("Sort"),
            "{what}: neither the primary key of {table} nor a sort; the plan:\n{plan}"
        );
    }
    drop(scratch);
}

/// A removal's statements find their rows by key in the generic plans that their prepared
/// statements end up with, among three organizations of 20,000 members (each a user's) with a
/// project membership and a service token each: none reads a table of members, project
/// memberships or tokens whole, or walks an organization's range of an index.
#[tokio::test]
async fn a_removals_statements_find_their_rows_by_key_in_the_generic_plan() {
    let (scratch, url) = scratch().await;
    let (mut conn, org, ids) = three_organizations(&url).await;
    // The members accepted invitations: each membership a user's, as a removal finds them.
    sqlx::raw_sql(
        "UPDATE memberships SET user_id = id, invite_email = NULL, status = 'accepted'; \
         ANALYZE memberships",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let (org, some) = (OrganizationId(org), &ids[100..108]);
    let members: Vec<MembershipId> = some.iter().map(|&i| MembershipId(i)).collect();
    // Each row's id is also its user's (and its token's, for the service tokens).
    let users: Vec<UserId> = some.iter().map(|&i| UserId(i)).collect();
    let tokens: Vec<TokenId> = some.iter().map(|&i| TokenId(i)).collect();
    // Each statement's tables of members, project memberships and tokens, and the index (one
    // of those named) by which the statement finds its rows in each: by their keys.
    let statements: [(&str, _, &[&[&str]]); 4] = [
        (
            "the targets, by id",
            memberships_by_ids_statement(&[org], &members),
            &[&["memberships_pkey"]],
        ),
        (
            "the targets, by user",
            memberships_by_users_statement(&[org], &users),
            &[&["memberships_user"]],
        ),
        (
            "the deletion and its cascade",
            remove_memberships_cascading_statement(org, &users, &members),
            &[
                &["memberships_pkey"],
                &["project_memberships_user", "project_memberships_org_user"],
            ],
        ),
        (
            "the locks and the tokens",
            lock_organizations_reading_tokens_statement(&[org], &tokens),
            &[&["tokens_pkey"]],
        ),
    ];
    for (what, statement, tables) in statements {
        let plan = generic_plan(&mut conn, statement).await;
        for indexes in tables {
            assert!(
                indexes
                    .iter()
                    .any(|index| plan.contains(&format!("Index Scan using {index} on"))),
                "{what}: finds its rows by one of {indexes:?}; the plan:\n{plan}"
            );
        }
        for table in ["memberships", "project_memberships", "tokens"] {
            assert!(
                !plan.contains(&format!("Scan on {table} ")),
                "{what}: does not read {table} whole; the plan:\n{plan}"
            );
        }
    }
    drop(scratch);
}

/// One endpoint with a backlog of 20,000 due deliveries, as a burst of removals leaves it: the
/// claim's pick walks the due index and stops at its limit. (With the disabled endpoints
/// joined, PostgreSQL read and sorted the whole backlog at every turn.)
#[tokio::test]
async fn a_claim_walks_the_due_index_only_as_far_as_its_limit() {
    let (scratch, mut conn) = migrated_scratch().await;
    let (org, endpoint) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, org_id, url, event_types, format, secret, disabled, \
         created_at, updated_at) VALUES ($1, $2, 'https://h.example', '', 'native', 's', FALSE, \
         0, 0)",
    )
    .bind(endpoint)
    .bind(org)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, org_id, state, attempts, \
         next_attempt_at, claimed_until, created_at, updated_at) \
         SELECT $1, gen_random_uuid(), $2, 'pending', 0, i, NULL, i, i \
         FROM generate_series(1, 20000) AS i",
    )
    .bind(endpoint)
    .bind(org)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql("ANALYZE").execute(&mut conn).await.unwrap();
    let statement =
        claim_due_deliveries_statement::<PgConn>(Timestamp(30_000), Timestamp(60_000), 256);
    let plan = generic_plan(&mut conn, statement).await;
    assert!(
        plan.contains("using webhook_deliveries_due on webhook_deliveries d")
            && !plan.contains("Sort"),
        "the pick walks the due index in order and sorts nothing; the plan:\n{plan}"
    );
    drop(scratch);
}

/// The plans of `statement`, custom and generic, over deliveries of `events` to one endpoint
/// (pending from the `pending_from`th on, succeeded before), as what PostgreSQL knows of the
/// table goes from nothing (never analyzed), to an empty table (analyzed while it was, as in a
/// new database before autovacuum comes), to the table as it is: (what it knew, plan cache
/// mode, plan).
async fn deliveries_plans_whatever_the_statistics(
    conn: &mut PgConnection,
    (org, endpoint): (Uuid, Uuid),
    events: &[Uuid],
    pending_from: usize,
    statement: impl Fn() -> (String, Vec<Arg>),
) -> Vec<(&'static str, &'static str, String)> {
    let fill = || {
        sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, org_id, state, attempts, \
             next_attempt_at, claimed_until, created_at, updated_at) \
             SELECT $1, e, $2, CASE WHEN n > $4 THEN 'pending' ELSE 'succeeded' END, 1, 0, \
             NULL, 0, 0 FROM unnest($3::uuid[]) WITH ORDINALITY AS t(e, n)",
        )
        .bind(endpoint)
        .bind(org)
        .bind(events)
        .bind(pending_from as i64)
    };
    fill().execute(&mut *conn).await.unwrap();
    let mut plans = Vec::new();
    for statistics in ["never analyzed", "analyzed empty", "analyzed"] {
        let gather = match statistics {
            "analyzed empty" => Some("TRUNCATE webhook_deliveries; ANALYZE webhook_deliveries"),
            "analyzed" => Some("ANALYZE webhook_deliveries"),
            _ => None,
        };
        if let Some(sql) = gather {
            sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap();
        }
        if statistics == "analyzed empty" {
            fill().execute(&mut *conn).await.unwrap();
        }
        for mode in ["force_custom_plan", "force_generic_plan"] {
            let plan = plan_in(conn, mode, statement()).await;
            plans.push((statistics, mode, plan));
        }
    }
    plans
}

/// A turn's record of its attempts finds its deliveries by their events, whatever PostgreSQL
/// knows of the table: never analyzed, analyzed while it was empty (a new database, before
/// autovacuum comes), or analyzed as it is. Keyed by (endpoint, event), statistics of an empty
/// table made it take the endpoint's whole range from the index and filter the events row by
/// row.
#[tokio::test]
async fn a_record_finds_its_deliveries_by_their_events_whatever_the_statistics() {
    let (scratch, mut conn) = migrated_scratch().await;
    let (org, endpoint) = (Uuid::now_v7(), Uuid::now_v7());
    // Events' ids grow with time, as roster makes them; the turn records the latest.
    let events: Vec<Uuid> = (0..40_000).map(|_| Uuid::now_v7()).collect();
    // A turn's worth of attempts to one endpoint.
    let part: Vec<EventId> = events.iter().rev().take(256).map(|&e| EventId(e)).collect();
    let statement = || {
        record_deliveries_statement(
            WebhookEndpointId(endpoint),
            DeliveryState::Succeeded,
            Timestamp(5),
            Timestamp(5),
            &part,
        )
    };
    // All of them pending, as a turn's are.
    let ids = (org, endpoint);
    let plans = deliveries_plans_whatever_the_statistics(&mut conn, ids, &events, 0, statement);
    for (statistics, mode, plan) in plans.await {
        let by_events = plan
            .lines()
            .any(|l| l.contains("Index Cond") && l.contains("event_id"));
        assert!(
            by_events && !plan.contains("Seq Scan"),
            "{statistics}, {mode}: the key finds the events; the plan:\n{plan}"
        );
    }
    drop(scratch);
}

/// An endpoint's deletion reads the pending deliveries (the due index), not the table: led by
/// the event, the deliveries' key cannot find an endpoint's, and the deletion holds its
/// organization's lock.
#[tokio::test]
async fn an_endpoints_deletion_reads_only_what_it_is_owed_whatever_the_statistics() {
    let (scratch, mut conn) = migrated_scratch().await;
    let (org, endpoint) = (Uuid::now_v7(), Uuid::now_v7());
    let events: Vec<Uuid> = (0..40_000).map(|_| Uuid::now_v7()).collect();
    let statement =
        || delete_owed_deliveries_statement(OrganizationId(org), WebhookEndpointId(endpoint));
    // A long history, all delivered but for the last few.
    let ids = (org, endpoint);
    let plans =
        deliveries_plans_whatever_the_statistics(&mut conn, ids, &events, 39_990, statement);
    for (statistics, mode, plan) in plans.await {
        assert!(
            plan.contains("webhook_deliveries_due") && !plan.contains("Seq Scan"),
            "{statistics}, {mode}: the pending deliveries alone; the plan:\n{plan}"
        );
    }
    drop(scratch);
}
