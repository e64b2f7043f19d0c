//! `Idempotency-Key`: a repeat of a native request gets the first answer and changes nothing
//! twice (not even when the two arrive at once); the key used for a different request is
//! refused; keys are the caller's own; a request that changed nothing keeps nothing; a secret
//! is never kept; the answer is kept with the change or not at all; expired keys run afresh.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use roster::Database;
use serde_json::{Value, json};

use crate::harness::{Resp, TestApp};

/// `method path` with `body`, as `token`, under `key`.
async fn keyed(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    key: &str,
    body: Option<Value>,
) -> Resp {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("idempotency-key", key);
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    };
    app.send(req.unwrap()).await
}

fn replayed(res: &Resp) -> bool {
    res.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// What a repeat could change twice in `org`: its members, its audit trail, its events.
async fn trail(app: &TestApp, org: &str) -> (Vec<String>, usize, Value) {
    let events = app
        .get(
            &format!("/v1/organizations/{org}/events?limit=500"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK)["data"]
        .clone();
    (
        app.membership_ids(org).await,
        app.audit_actions(org).await.len(),
        events,
    )
}

async fn a_repeated_request_gets_the_first_answer_and_changes_nothing_twice(app: TestApp) {
    let org = app.new_org("Repeats").await;
    let user = app.new_user("twice@example.com").await;
    let add = format!("/v1/organizations/{org}/memberships");
    let body = json!({"user_id": user, "role": "member"});

    let first = keyed(&app, "POST", &add, &app.admin, "add-1", Some(body.clone())).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(!replayed(&first));
    let after_first = trail(&app, &org).await;
    let again = keyed(&app, "POST", &add, &app.admin, "add-1", Some(body.clone())).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert!(replayed(&again), "the repeat says it is a stored answer");
    assert_eq!(again.body, first.body);
    assert_eq!(
        trail(&app, &org).await,
        after_first,
        "nothing written twice"
    );
    // Without the key, the same request runs, and is refused: the user is a member already.
    let unkeyed = app.post(&add, &app.admin, body).await;
    assert_eq!(unkeyed.status, StatusCode::CONFLICT, "{}", unkeyed.body);

    // A removal repeated gets its receipt again, not a 404.
    let membership = first.body["id"].as_str().unwrap();
    let remove = format!("/v1/organizations/{org}/memberships/{membership}");
    let removed = keyed(&app, "DELETE", &remove, &app.admin, "rm-1", None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let after_removal = trail(&app, &org).await;
    let again = keyed(&app, "DELETE", &remove, &app.admin, "rm-1", None).await;
    assert_eq!((again.status, replayed(&again)), (StatusCode::OK, true));
    assert_eq!(again.body, removed.body);
    assert_eq!(trail(&app, &org).await, after_removal);

    // A bulk removal, and a change of an organization (an answer of another shape).
    let [a, b] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let bulk = format!("/v1/organizations/{org}/memberships/bulk-remove");
    let ids = json!({"membership_ids": [a.membership_id, b.membership_id]});
    let first = keyed(&app, "POST", &bulk, &app.admin, "bulk-1", Some(ids.clone())).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["removed"].as_array().unwrap().len(), 2);
    let again = keyed(&app, "POST", &bulk, &app.admin, "bulk-1", Some(ids)).await;
    assert_eq!((again.status, replayed(&again)), (StatusCode::OK, true));
    assert_eq!(again.body, first.body);
    let rename = format!("/v1/organizations/{org}");
    let renamed = json!({"name": "Repeats Ltd"});
    let first = keyed(
        &app,
        "PATCH",
        &rename,
        &app.admin,
        "org-1",
        Some(renamed.clone()),
    )
    .await;
    let again = keyed(&app, "PATCH", &rename, &app.admin, "org-1", Some(renamed)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!((again.status, again.body), (first.status, first.body));
    assert_eq!(
        app.audited(&org, "organization.updated").await.len(),
        1,
        "renamed once"
    );
}

async fn a_key_used_for_a_different_request_is_refused_and_changes_nothing(app: TestApp) {
    let org = app.new_org("Reuse").await;
    let [a, b] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let path = |m: &str| format!("/v1/organizations/{org}/memberships/{m}");
    let first = keyed(
        &app,
        "DELETE",
        &path(&a.membership_id),
        &app.admin,
        "k",
        None,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let before = trail(&app, &org).await;
    // Another path, another method, another body: each is another request.
    let other_path = keyed(
        &app,
        "DELETE",
        &path(&b.membership_id),
        &app.admin,
        "k",
        None,
    )
    .await;
    let other_method = keyed(
        &app,
        "PATCH",
        &path(&a.membership_id),
        &app.admin,
        "k",
        Some(json!({"role": "admin"})),
    )
    .await;
    let other_body = keyed(
        &app,
        "DELETE",
        &path(&a.membership_id),
        &app.admin,
        "k",
        Some(json!({"delete_passwords": true})),
    )
    .await;
    for refused in [other_path, other_method, other_body] {
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            "{}",
            refused.body
        );
    }
    assert_eq!(trail(&app, &org).await, before, "nothing changed");
}

async fn keys_are_the_callers_own(app: TestApp) {
    let org = app.new_org("Own keys").await;
    let other_admin = app.add_member(&org, "admin").await;
    let user = app.new_user("shared-key@example.com").await;
    let add = format!("/v1/organizations/{org}/memberships");
    let body = json!({"user_id": user});
    let first = keyed(&app, "POST", &add, &app.admin, "same", Some(body.clone())).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    // The same key and request from another caller runs (and is refused: a member already);
    // it is never given the first caller's answer.
    let theirs = keyed(&app, "POST", &add, &other_admin.token, "same", Some(body)).await;
    assert_eq!(theirs.status, StatusCode::CONFLICT, "{}", theirs.body);
    assert!(!replayed(&theirs));
}

async fn repeats_arriving_at_once_run_once(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let org = app.new_org("At once").await;
    let mut members = Vec::new();
    // Rounds enough for the race between one request's commit and another's look-up to show.
    for _ in 0..16 {
        members.push(app.add_member(&org, "member").await);
    }
    for (round, target) in members.iter().enumerate() {
        let path = format!(
            "/v1/organizations/{org}/memberships/{}",
            target.membership_id
        );
        let key = format!("together-{round}");
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (app, path, key) = (app.clone(), path.clone(), key.clone());
                tokio::spawn(
                    async move { keyed(&app, "DELETE", &path, &app.admin, &key, None).await },
                )
            })
            .collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.unwrap());
        }
        let ran: Vec<_> = answers
            .iter()
            .filter(|r| r.status == StatusCode::OK && !replayed(r))
            .collect();
        assert_eq!(ran.len(), 1, "exactly one ran");
        for r in &answers {
            match (r.status, r.code()) {
                (StatusCode::OK, _) => assert_eq!(r.body, ran[0].body, "the same receipt"),
                (StatusCode::CONFLICT, "idempotency_key_in_use") => {}
                other => panic!("{other:?}: {}", r.body),
            }
        }
    }
    assert_eq!(
        app.audited(&org, "membership.removed").await.len(),
        members.len(),
        "each removed once"
    );
}

async fn a_request_that_changed_nothing_keeps_nothing_and_runs_again(app: TestApp) {
    let org = app.empty_org("Sole admin").await;
    let admin = app.add_member(&org, "admin").await;
    let remove = format!(
        "/v1/organizations/{org}/memberships/{}",
        admin.membership_id
    );
    let refused = keyed(&app, "DELETE", &remove, &app.admin, "retry-me", None).await;
    assert_eq!(refused.code(), "last_admin", "{}", refused.body);
    // A dry run keeps nothing either (it is another request: its query differs).
    app.add_member(&org, "admin").await;
    let dry = keyed(
        &app,
        "DELETE",
        &format!("{remove}?dry_run=true"),
        &app.admin,
        "dry",
        None,
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let dry_again = keyed(
        &app,
        "DELETE",
        &format!("{remove}?dry_run=true"),
        &app.admin,
        "dry",
        None,
    )
    .await;
    assert!(!replayed(&dry_again), "a dry run is not kept");
    // What refused the removal changed: the repeat runs, and removes.
    let removed = keyed(&app, "DELETE", &remove, &app.admin, "retry-me", None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(!replayed(&removed));
    assert!(
        !app.membership_ids(&org)
            .await
            .contains(&admin.membership_id)
    );
}

async fn a_secret_shown_once_is_null_in_a_repeat(app: TestApp) {
    let org = app.org.clone();
    let path = format!("/v1/organizations/{org}/service-tokens");
    let body = json!({"name": "ci", "permissions": ["members:read"]});
    let first = keyed(&app, "POST", &path, &app.admin, "tok", Some(body.clone())).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let bearer = first.body["token"].as_str().unwrap().to_owned();
    let again = keyed(&app, "POST", &path, &app.admin, "tok", Some(body)).await;
    assert_eq!(
        (again.status, replayed(&again)),
        (StatusCode::CREATED, true)
    );
    assert_eq!(again.body["id"], first.body["id"], "the same token");
    for secret in ["token", "token_value", "token_secret"] {
        assert!(first.body[secret].is_string(), "{secret} shown once");
        assert_eq!(again.body[secret], Value::Null, "{secret} not kept");
    }
    assert!(!again.body.to_string().contains(&bearer));
    let listed = app
        .get(&format!("{path}?limit=500"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let named_ci = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "ci")
        .count();
    assert_eq!(named_ci, 1, "one token made");
    // The token works: the first answer's secret was the real one.
    let works = app
        .get(&format!("/v1/organizations/{org}/memberships"), &bearer)
        .await;
    assert_eq!(works.status, StatusCode::OK);

    let hooks = format!("/v1/organizations/{org}/webhook-endpoints");
    let hook = json!({"url": "https://hooks.example.com/roster"});
    let first = keyed(&app, "POST", &hooks, &app.admin, "hook", Some(hook.clone())).await;
    let again = keyed(&app, "POST", &hooks, &app.admin, "hook", Some(hook)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.body["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        (again.body["id"].clone(), again.body["secret"].clone()),
        (first.body["id"].clone(), Value::Null)
    );
}

/// Makes every insert into `idempotency_records` fail, as a full disk or a crash at that
/// moment would.
async fn fail_idempotency_writes(app: &TestApp) {
    let sql = match &app.database {
        Database::Sqlite(_) => "CREATE TRIGGER fail_keys BEFORE INSERT ON idempotency_records \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
            .to_owned(),
        Database::Postgres(_) => "CREATE FUNCTION fail_keys() RETURNS trigger AS $$ BEGIN \
               RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER fail_keys BEFORE INSERT ON idempotency_records \
               FOR EACH ROW EXECUTE FUNCTION fail_keys();"
            .to_owned(),
    };
    app.sabotage(&sql).await;
}

async fn an_answer_that_cannot_be_kept_leaves_no_change_behind(app: TestApp) {
    let org = app.new_org("Kept together").await;
    let member = app.add_member(&org, "member").await;
    let before = trail(&app, &org).await;
    fail_idempotency_writes(&app).await;
    let remove = format!(
        "/v1/organizations/{org}/memberships/{}",
        member.membership_id
    );
    let failed = keyed(&app, "DELETE", &remove, &app.admin, "lost", None).await;
    assert_eq!(
        failed.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        failed.body
    );
    assert_eq!(
        trail(&app, &org).await,
        before,
        "the removal was rolled back"
    );
    let user = app.new_user("never-added@example.com").await;
    let add = format!("/v1/organizations/{org}/memberships");
    let failed = keyed(
        &app,
        "POST",
        &add,
        &app.admin,
        "lost-2",
        Some(json!({"user_id": user})),
    )
    .await;
    assert_eq!(
        failed.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        failed.body
    );
    assert_eq!(trail(&app, &org).await, before, "nobody was added");
}

async fn a_malformed_key_is_refused_before_anything_runs(app: TestApp) {
    let org = app.new_org("Bad keys").await;
    let member = app.add_member(&org, "member").await;
    let remove = format!(
        "/v1/organizations/{org}/memberships/{}",
        member.membership_id
    );
    let too_long = "k".repeat(256);
    for key in ["", too_long.as_str(), "tab\there"] {
        let r = keyed(&app, "DELETE", &remove, &app.admin, key, None).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{key:?}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["details"]["field"], "Idempotency-Key");
    }
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&member.membership_id)
    );
    // A bad token is told so first, as on every route.
    let r = keyed(&app, "DELETE", &remove, "rst_not_a_token", "k", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

async fn an_expired_key_runs_afresh_and_is_purged(mut app: TestApp) {
    let roster = roster_core::Roster::new(app.store.clone())
        .with_idempotency_retention(Duration::from_millis(300));
    app.router = roster::app_over(roster.clone());
    let org = app.new_org("Expiry").await;
    let user = app.new_user("expiring@example.com").await;
    let add = format!("/v1/organizations/{org}/memberships");
    let body = json!({"user_id": user});
    let first = keyed(&app, "POST", &add, &app.admin, "day", Some(body.clone())).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The window closed: the request runs again (and is refused: a member already).
    let again = keyed(&app, "POST", &add, &app.admin, "day", Some(body.clone())).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(!replayed(&again));
    assert!(roster.purge_expired_idempotency_records().await.unwrap() >= 1);
    assert_eq!(roster.purge_expired_idempotency_records().await.unwrap(), 0);
}

on_both_backends!(
    a_repeated_request_gets_the_first_answer_and_changes_nothing_twice,
    a_key_used_for_a_different_request_is_refused_and_changes_nothing,
    keys_are_the_callers_own,
    repeats_arriving_at_once_run_once,
    a_request_that_changed_nothing_keeps_nothing_and_runs_again,
    a_secret_shown_once_is_null_in_a_repeat,
    an_answer_that_cannot_be_kept_leaves_no_change_behind,
    a_malformed_key_is_refused_before_anything_runs,
    an_expired_key_runs_afresh_and_is_purged,
);
