//! Concurrent cross-removals among an organization's admins can never leave it without one.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

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

on_both_backends!(concurrent_cross_removals_never_leave_an_organization_without_an_admin);
