//! Removals racing other writes: concurrent cross-removals among an organization's admins can
//! never leave it without one, and a removal that waited for its organization's lock is
//! decided on what the transaction it waited for committed.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use roster::Database;
use serde_json::json;
use sqlx::Connection;

use crate::harness::TestApp;

const ADMINS: usize = 6;
const ROUNDS: usize = 4;

async fn concurrent_cross_removals_never_leave_an_organization_without_an_admin(app: TestApp) {
    let app = Arc::new(app);
    // An organization whose only admins are the ones racing (no bootstrap owner in it).
    let org = app.new_org("Race").await;
    for round in 0..ROUNDS {
        let mut admins = Vec::new();
        let active: Vec<_> = app.memberships(&org).await;
        for m in &active {
            assert_eq!(m["role"], "admin");
        }
        // Top up to ADMINS admins; the survivors of the last round take part again, with the
        // tokens they were given then (kept in `admins` below) or fresh ones.
        for m in active {
            let user = m["user_id"].as_str().unwrap().to_owned();
            admins.push((
                m["id"].as_str().unwrap().to_owned(),
                app.token_for(&user).await,
            ));
        }
        while admins.len() < ADMINS {
            let m = app.add_member(&org, "admin").await;
            admins.push((m.membership_id, m.token));
        }

        // Every admin tries to remove every other admin, all at once.
        let mut tasks = Vec::new();
        for (_, token) in &admins {
            for (target, _) in &admins {
                let (app, org, token, target) =
                    (app.clone(), org.clone(), token.clone(), target.clone());
                tasks.push(tokio::spawn(async move {
                    app.delete(
                        &format!("/v1/organizations/{org}/memberships/{target}"),
                        &token,
                    )
                    .await
                }));
            }
        }
        let mut removed = 0;
        for t in tasks {
            let res = t.await.unwrap();
            match res.status {
                StatusCode::OK => removed += 1,
                // Refused: the caller was already removed (404), the target already gone (404),
                // the target is the caller (self_removal) or the last admin (last_admin).
                StatusCode::NOT_FOUND | StatusCode::CONFLICT => {}
                other => panic!("round {round}: unexpected {other}: {}", res.body),
            }
        }
        let left = app.memberships(&org).await;
        let active_admins = left
            .iter()
            .filter(|m| m["role"] == "admin" && m["is_active"] == json!(true))
            .count();
        assert!(
            active_admins >= 1,
            "round {round}: the organization was left without an admin"
        );
        assert_eq!(
            left.len() + removed,
            ADMINS,
            "round {round}: every success removed exactly one admin"
        );
    }
}

/// A transaction behind roster's back that holds an organization's lock (on SQLite, the
/// database's write lock, which every write waits for) and has deleted a token, until `commit`.
enum TokenDeletion {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection, String),
}

impl TokenDeletion {
    async fn begin(database: &Database, org: &str, token: &str) -> TokenDeletion {
        let token = uuid::Uuid::parse_str(token).unwrap();
        match database {
            Database::Sqlite(path) => {
                let mut c =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                let sql = format!(
                    "BEGIN IMMEDIATE; DELETE FROM tokens WHERE id = X'{}'",
                    token.simple()
                );
                sqlx::raw_sql(&sql).execute(&mut c).await.unwrap();
                TokenDeletion::Sqlite(c)
            }
            Database::Postgres(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                let sql = format!(
                    "BEGIN; SELECT 1 FROM organizations WHERE id = '{org}' FOR UPDATE; \
                     DELETE FROM tokens WHERE id = '{token}'"
                );
                sqlx::raw_sql(&sql).execute(&mut c).await.unwrap();
                TokenDeletion::Postgres(c, url.clone())
            }
        }
    }

    /// Returns once some transaction waits for a lock this one holds (on PostgreSQL, where
    /// waiting is visible; SQLite's busy wait is not, so there a moment is given instead).
    async fn keeps_someone_waiting(&self) {
        match self {
            TokenDeletion::Sqlite(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            TokenDeletion::Postgres(_, url) => {
                let mut watch = sqlx::PgConnection::connect(url).await.unwrap();
                for _ in 0..500 {
                    let (waiting,): (i64,) = sqlx::query_as(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    )
                    .fetch_one(&mut watch)
                    .await
                    .unwrap();
                    if waiting > 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                panic!("nothing came to wait for the organization's lock in 10 s");
            }
        }
    }

    async fn commit(self) {
        match self {
            TokenDeletion::Sqlite(mut c) => sqlx::raw_sql("COMMIT").execute(&mut c).await.map(drop),
            TokenDeletion::Postgres(mut c, _) => {
                sqlx::raw_sql("COMMIT").execute(&mut c).await.map(drop)
            }
        }
        .unwrap();
    }
}

/// The token a removal presents is verified once the removal holds its organization's lock:
/// a removal that waited for a transaction deleting that token is refused when it commits,
/// and removes nothing.
async fn a_removal_that_waited_for_its_tokens_deletion_is_refused(app: TestApp) {
    let app = Arc::new(app);
    let org = app.org.clone();
    let created = app
        .post(
            &format!("/v1/organizations/{org}/service-tokens"),
            &app.admin,
            json!({"permissions": ["members:read", "members:delete"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    let (token_id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    );
    let target = app.add_member(&org, "member").await;
    let path = format!(
        "/v1/organizations/{org}/memberships/{}",
        target.membership_id
    );

    let deletion = TokenDeletion::begin(&app.database, &org, &token_id).await;
    let removal = tokio::spawn({
        let (app, path) = (app.clone(), path.clone());
        async move { app.delete(&path, &secret).await }
    });
    deletion.keeps_someone_waiting().await;
    deletion.commit().await;
    let res = removal.await.unwrap();
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    app.get(&path, &app.admin).await.expect(StatusCode::OK);
}

on_both_backends!(
    concurrent_cross_removals_never_leave_an_organization_without_an_admin,
    a_removal_that_waited_for_its_tokens_deletion_is_refused,
);
