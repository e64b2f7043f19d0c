//! The member and invitation counts each organization keeps (migrations 0002 and 0014,
//! maintained by triggers): they must stay equal to the real numbers whichever way memberships
//! come and go, and a database migrated from before them gets them filled in.

use axum::http::StatusCode;
use roster::{Database, open_store};
use roster_core::{MembershipFilter, OrganizationId};
use serde_json::json;
use sqlx::Connection;

use crate::harness::{TestApp, postgres_url};

/// The counts as Clerk renders them (read from the kept columns: every membership on the
/// organization, the users' ones as a list's total) and the real numbers (listed through the
/// native API); they must agree, and equal `expected` memberships of which `invited` are
/// invitations by email.
async fn assert_count(app: &TestApp, org: &str, expected: usize, invited: usize, after: &str) {
    let clerk_org = roster_dialect_clerk::ids::encode("org", org.parse().unwrap());
    let kept = app
        .get(
            &format!("/clerk/v1/organizations/{clerk_org}?include_members_count=true"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK)["members_count"]
        .clone();
    let kept_users = app
        .get(
            &format!("/clerk/v1/organizations/{clerk_org}/memberships?limit=1"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK)["total_count"]
        .clone();
    let listed = app.memberships(org).await;
    let listed_invitations = listed.iter().filter(|m| m["user_id"].is_null()).count();
    assert_eq!(listed.len(), expected, "after {after}: memberships listed");
    assert_eq!(
        listed_invitations, invited,
        "after {after}: invitations listed"
    );
    assert_eq!(kept, json!(expected), "after {after}: the kept count");
    assert_eq!(
        kept_users,
        json!(expected - invited),
        "after {after}: the kept count less the kept invitations"
    );
}

async fn the_kept_counts_follow_every_way_memberships_come_and_go(app: TestApp) {
    let org = app.empty_org("Counted").await;
    assert_count(&app, &org, 0, 0, "creating the organization").await;
    let admin = app.add_member(&org, "admin").await;
    let [b, c, d] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    assert_count(&app, &org, 4, 0, "adding four members").await;

    let new_address = || format!("{}@example.com", uuid::Uuid::now_v7().simple());
    let email = new_address();
    let invitation = app.invite(&org, &email).await;
    assert_count(&app, &org, 5, 1, "an invitation").await;
    let withdrawn = app.invite(&org, &new_address()).await;
    let bulk_withdrawn = app.invite(&org, &new_address()).await;
    assert_count(&app, &org, 7, 3, "two more invitations").await;
    let invitee = app.new_user(&email).await;
    let invitee_token = app.token_for(&invitee).await;
    app.post(
        &format!(
            "/v1/organizations/{org}/memberships/{}/accept",
            invitation["id"].as_str().unwrap()
        ),
        &invitee_token,
        json!({}),
    )
    .await
    .expect(StatusCode::OK);
    assert_count(&app, &org, 7, 2, "accepting one").await;

    app.delete(
        &format!("/v1/organizations/{org}/memberships/{}", b.membership_id),
        &admin.token,
    )
    .await
    .expect(StatusCode::OK);
    assert_count(&app, &org, 6, 2, "a removal").await;
    app.delete(
        &format!(
            "/v1/organizations/{org}/memberships/{}",
            withdrawn["id"].as_str().unwrap()
        ),
        &admin.token,
    )
    .await
    .expect(StatusCode::OK);
    assert_count(&app, &org, 5, 1, "withdrawing an invitation").await;

    // A refused bulk removal (one target unknown) changes nothing, the count included.
    app.post(
        &format!("/v1/organizations/{org}/memberships/bulk-remove"),
        &admin.token,
        json!({"membership_ids": [c.membership_id, uuid::Uuid::now_v7()]}),
    )
    .await
    .expect(StatusCode::NOT_FOUND);
    assert_count(&app, &org, 5, 1, "a refused bulk removal").await;
    app.post(
        &format!("/v1/organizations/{org}/memberships/bulk-remove"),
        &admin.token,
        json!({"membership_ids": [c.membership_id, d.membership_id, bulk_withdrawn["id"]]}),
    )
    .await
    .expect(StatusCode::OK);
    assert_count(&app, &org, 2, 0, "a bulk removal with an invitation").await;

    app.post(
        &format!("/v1/organizations/{org}/leave"),
        &invitee_token,
        json!({}),
    )
    .await
    .expect(StatusCode::OK);
    assert_count(&app, &org, 1, 0, "leaving").await;

    let second_admin = app.add_member(&org, "admin").await;
    app.delete(&format!("/v1/users/{}", second_admin.user_id), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_count(&app, &org, 1, 0, "deleting a member's user").await;
}

/// An id as a literal of the backend's id column.
fn id_literal(db: &Database, id: uuid::Uuid) -> String {
    match db {
        Database::Sqlite(_) => format!("X'{}'", id.simple()),
        Database::Postgres(_) => format!("'{id}'"),
    }
}

/// A database at schema version 1 with one organization of three invitations, as an older
/// roster left it.
fn version_one_with_three_invitations(db: &Database, org: uuid::Uuid) -> String {
    let (schema, t) = match db {
        Database::Sqlite(_) => (
            include_str!("../../../store-sqlite/migrations/0001_initial.sql"),
            "1",
        ),
        Database::Postgres(_) => (
            include_str!("../../../store-postgres/migrations/0001_initial.sql"),
            "TRUE",
        ),
    };
    let role = uuid::Uuid::now_v7();
    let (org_id, role_id) = (id_literal(db, org), id_literal(db, role));
    let mut sql = format!(
        "{schema};
         CREATE TABLE roster_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);
         INSERT INTO roster_migrations VALUES (1, 'initial', 0);
         INSERT INTO organizations (id, name, slug, max_allowed_memberships, admin_delete_enabled, public_metadata, private_metadata, created_at, updated_at)
           VALUES ({org_id}, 'Old', 'old', 0, {t}, '{{}}', '{{}}', 0, 0);
         INSERT INTO roles (id, org_id, role_key, name, permissions, built_in, created_at, updated_at)
           VALUES ({role_id}, {org_id}, 'member', 'Member', '', {t}, 0, 0);"
    );
    for i in 0..3 {
        sql += &format!(
            "INSERT INTO memberships (id, org_id, invite_email, role_id, status, is_active, public_metadata, private_metadata, created_at, updated_at)
               VALUES ({}, {org_id}, 'old{i}@example.com', {role_id}, 'invited', {t}, '{{}}', '{{}}', 0, 0);",
            id_literal(db, uuid::Uuid::now_v7()),
        );
    }
    sql
}

/// The organization's memberships and its users' memberships, as counted after the upgrade.
async fn count_after_upgrade(db: &Database, org: uuid::Uuid) -> (i64, i64) {
    let store = open_store(db).await.expect("the upgrade applies");
    let mut s = store.read().await.unwrap();
    let users_only = MembershipFilter {
        users_only: true,
        ..Default::default()
    };
    (
        s.count_memberships(OrganizationId(org)).await.unwrap(),
        s.count_matching_memberships(OrganizationId(org), &users_only)
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_database_from_before_the_kept_counts_gets_them_filled_in() {
    let path = std::env::temp_dir().join(format!(
        "roster-upgrade-{}.db",
        uuid::Uuid::now_v7().simple()
    ));
    let db = Database::Sqlite(path.clone());
    let org = uuid::Uuid::now_v7();
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(&version_one_with_three_invitations(&db, org))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let count = count_after_upgrade(&db, org).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert_eq!(count, (3, 0), "three invitations, no user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_from_before_the_kept_counts_gets_them_filled_in() {
    let admin_url = postgres_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("PostgreSQL is required for the API tests");
    let name = format!("roster_upgrade_{}", uuid::Uuid::now_v7().simple());
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let db = Database::Postgres(url.clone());
    let org = uuid::Uuid::now_v7();
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&version_one_with_three_invitations(&db, org))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let count = count_after_upgrade(&db, org).await;
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(count, (3, 0), "three invitations, no user");
}

/// The store's one read of an organization with its count and roles (what Clerk's removal
/// answer shows) must give what its three reads give one by one.
async fn the_organization_in_context_is_what_its_three_reads_give(app: TestApp) {
    let org = app.empty_org("In context").await;
    app.add_member(&org, "member").await;
    app.add_member(&org, "admin").await;
    app.post(
        &format!("/v1/organizations/{org}/roles"),
        &app.admin,
        json!({"key": "offboarder", "name": "Offboarder", "permissions": ["members:delete"]}),
    )
    .await
    .expect(StatusCode::CREATED);
    let id: OrganizationId = org.parse().unwrap();
    let mut s = app.store.read().await.unwrap();
    let (organization, count, roles) = s.organization_in_context(id).await.unwrap().unwrap();
    assert_eq!(Some(organization), s.organization(id).await.unwrap());
    assert_eq!(count, 2);
    assert_eq!(count, s.count_memberships(id).await.unwrap());
    assert_eq!(roles.len(), 4, "three built-in roles and one of its own");
    assert_eq!(roles, s.list_roles(id).await.unwrap());
    let unknown = OrganizationId::new();
    assert_eq!(s.organization_in_context(unknown).await.unwrap(), None);
}

on_both_backends!(
    the_kept_counts_follow_every_way_memberships_come_and_go,
    the_organization_in_context_is_what_its_three_reads_give
);
