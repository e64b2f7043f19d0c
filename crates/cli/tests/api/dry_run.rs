//! Dry runs: every native removal answers `?dry_run=true` with exactly what the real removal
//! then answers (or the error it would get), and changes nothing: no row, no audit event, no
//! event.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Resp, TestApp};

/// What a removal could change in `org`: its memberships, its projects' members, its
/// credentials, its audit trail and its events, as an admin reads them.
async fn state(app: &TestApp, org: &str, projects: &[&str]) -> Value {
    let mut project_members = Vec::new();
    for p in projects {
        let list = app
            .get(
                &format!("/v1/projects/{p}/memberships?limit=500"),
                &app.admin,
            )
            .await
            .expect(StatusCode::OK);
        project_members.push(list["data"].clone());
        let identities = app
            .get(
                &format!("/v1/projects/{p}/identity-memberships?limit=500"),
                &app.admin,
            )
            .await
            .expect(StatusCode::OK);
        project_members.push(identities["data"].clone());
    }
    let read = |path: String| async move {
        app.get(&path, &app.admin).await.expect(StatusCode::OK)["data"].clone()
    };
    json!({
        "memberships": app.memberships(org).await,
        "projects": project_members,
        "passwords": read(format!("/v1/organizations/{org}/passwords?limit=500")).await,
        "service_tokens": read(format!("/v1/organizations/{org}/service-tokens?limit=500")).await,
        "audit": app.audit_actions(org).await.len(),
        "events": read(format!("/v1/organizations/{org}/events?limit=500")).await,
    })
}

/// `roster_events_written_total` of the app's `/metrics`.
async fn events_written(app: &TestApp) -> u64 {
    let metrics = app.call("GET", "/metrics", None, None).await;
    let text = metrics.body.as_str().unwrap().to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("roster_events_written_total "))
        .unwrap_or_else(|| panic!("no roster_events_written_total in\n{text}"))
        .parse()
        .unwrap()
}

/// The answer without what tells a dry run from the real thing.
fn receipt(mut body: Value) -> Value {
    body.as_object_mut().unwrap().remove("dry_run");
    body
}

/// The error without the request's own id.
fn refusal(res: &Resp) -> (StatusCode, Value) {
    let mut body = res.body.clone();
    body["error"].as_object_mut().unwrap().remove("request_id");
    (res.status, body)
}

async fn each_removal_dry_runs_to_what_it_then_does_and_changes_nothing(app: TestApp) {
    let org = app.new_org("Leavers").await;
    let [single, bulk_a, bulk_b, leaver] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let project = app
        .project_with(&org, "vault", &[&single, &bulk_a, &leaver])
        .await;
    app.post(
        &format!("/v1/organizations/{org}/passwords"),
        &app.admin,
        json!({"name": "db", "user_id": single.user_id}),
    )
    .await
    .expect(StatusCode::CREATED);
    let identity = app.new_identity(&org, "deployer").await;
    app.add_identity_to_project(&project, &identity).await;

    let single_path = format!(
        "/v1/organizations/{org}/memberships/{}",
        single.membership_id
    );
    let bulk_path = format!("/v1/organizations/{org}/memberships/bulk-remove");
    let bulk_body = json!({"membership_ids": [bulk_a.membership_id, bulk_b.membership_id]});
    let leave_path = format!("/v1/organizations/{org}/leave");
    let identity_path = format!("/v1/projects/{project}/identity-memberships/{identity}");
    type Call<'a> = (&'a str, String, &'a str, Option<Value>);
    let calls: [Call<'_>; 4] = [
        (
            "DELETE",
            single_path,
            app.admin.as_str(),
            Some(json!({"delete_passwords": true})),
        ),
        ("POST", bulk_path, app.admin.as_str(), Some(bulk_body)),
        ("POST", leave_path, leaver.token.as_str(), Some(json!({}))),
        ("DELETE", identity_path, app.admin.as_str(), None),
    ];
    for (method, path, token, body) in calls {
        let before = state(&app, &org, &[&project]).await;
        let written = events_written(&app).await;
        let dry = app
            .call(
                method,
                &format!("{path}?dry_run=true"),
                Some(token),
                body.clone(),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(dry["dry_run"], json!(true), "{method} {path}: {dry}");
        assert_eq!(
            state(&app, &org, &[&project]).await,
            before,
            "{method} {path}: a dry run changes nothing"
        );
        assert_eq!(events_written(&app).await, written, "no event counted");
        let real = app
            .call(method, &path, Some(token), body)
            .await
            .expect(StatusCode::OK);
        assert_ne!(state(&app, &org, &[&project]).await, before);
        let removed = dry["removed"].as_array().unwrap().len() as u64;
        assert_eq!(
            events_written(&app).await,
            written + removed,
            "{method} {path}"
        );
        if real.get("dry_run").is_some() {
            assert_eq!(real["dry_run"], json!(false));
            assert_eq!(receipt(dry), receipt(real), "{method} {path}");
        } else {
            // Removing an identity answers with the membership; its dry run, with a receipt.
            assert_eq!(dry["removed"], json!([real]), "{method} {path}");
            assert_eq!(
                dry["cascade"],
                json!({"project_memberships": [], "passwords": [], "service_tokens": []})
            );
        }
    }
}

async fn the_receipt_names_what_the_cascade_takes(app: TestApp) {
    let org = app.new_org("Cascade").await;
    let member = app.add_member(&org, "member").await;
    let project = app.project_with(&org, "web", &[&member]).await;
    let password = app
        .post(
            &format!("/v1/organizations/{org}/passwords"),
            &app.admin,
            json!({"name": "db", "user_id": member.user_id}),
        )
        .await
        .expect(StatusCode::CREATED);
    let dry = app
        .call(
            "DELETE",
            &format!(
                "/v1/organizations/{org}/memberships/{}?dry_run=true",
                member.membership_id
            ),
            Some(&app.admin),
            Some(json!({"delete_passwords": true})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(dry["removed"][0]["id"], json!(member.membership_id));
    let cascade = &dry["cascade"];
    assert_eq!(
        cascade["project_memberships"][0]["project_id"],
        json!(project)
    );
    assert_eq!(cascade["passwords"], json!([password["id"]]));
    assert_eq!(cascade["service_tokens"], json!([]));
    assert_eq!(dry["project_memberships_removed"], 1);
}

async fn a_dry_run_of_a_refused_removal_gets_the_refusal_it_would_get(app: TestApp) {
    let org = app.new_org("Refusals").await;
    let admin_membership = app.membership_ids(&org).await.remove(0);
    let member = app.add_member(&org, "member").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let bulk = format!("/v1/organizations/{org}/memberships/bulk-remove");
    let before = state(&app, &org, &[]).await;
    let cases: [(&str, String, String, Option<Value>); 4] = [
        // The last admin.
        (
            "DELETE",
            format!("/v1/organizations/{org}/memberships/{admin_membership}"),
            app.admin.clone(),
            None,
        ),
        // One id that names nothing, among good ones: named.
        (
            "POST",
            bulk.clone(),
            app.admin.clone(),
            Some(json!({"membership_ids": [member.membership_id, unknown]})),
        ),
        // A caller without the permission.
        (
            "DELETE",
            format!("/v1/organizations/{org}/memberships/{admin_membership}"),
            member.token.clone(),
            None,
        ),
        // A token that is not one.
        (
            "POST",
            bulk,
            crate::harness::with_wrong_secret(&app.admin),
            Some(json!({"membership_ids": [member.membership_id]})),
        ),
    ];
    for (method, path, token, body) in cases {
        let dry = app
            .call(
                method,
                &format!("{path}?dry_run=true"),
                Some(&token),
                body.clone(),
            )
            .await;
        let real = app.call(method, &path, Some(&token), body).await;
        assert!(
            dry.status.is_client_error(),
            "{method} {path}: {:?}",
            dry.body
        );
        assert_eq!(refusal(&dry), refusal(&real), "{method} {path}");
    }
    assert_eq!(state(&app, &org, &[]).await, before, "nothing was removed");
}

on_both_backends!(
    each_removal_dry_runs_to_what_it_then_does_and_changes_nothing,
    the_receipt_names_what_the_cascade_takes,
    a_dry_run_of_a_refused_removal_gets_the_refusal_it_would_get,
);

/// A leaver is offboarded from every organization at once, their own tokens revoked; a dry
/// run says the same and does nothing; an organization they are the last admin of refuses the
/// whole, and nothing is done anywhere.
async fn a_person_is_offboarded_from_everything_at_once(app: TestApp) {
    let (a, b) = (app.new_org("A").await, app.new_org("B").await);
    let leaver = app.add_member(&a, "member").await;
    app.make_member(&b, &leaver.user_id, "member").await;
    let project = app.project_with(&a, "vault", &[&leaver]).await;
    let path = format!("/v1/users/{}/offboard", leaver.user_id);
    let can_read = |org: String| {
        let (app, token) = (&app, leaver.token.clone());
        async move {
            app.get(&format!("/v1/organizations/{org}"), &token)
                .await
                .status
        }
    };
    let before = (
        state(&app, &a, &[&project]).await,
        state(&app, &b, &[]).await,
    );
    let dry = app
        .post(&format!("{path}?dry_run=true"), &app.admin, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(dry["dry_run"], json!(true));
    assert_eq!(
        (
            state(&app, &a, &[&project]).await,
            state(&app, &b, &[]).await
        ),
        before,
        "a dry run changes nothing"
    );
    assert_eq!(can_read(a.clone()).await, StatusCode::OK);

    // Not an instance admin: forbidden, whoever they are.
    let res = app.post(&path, &app.owner.token, json!({})).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    let real = app
        .post(&path, &app.admin, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(receipt(dry), receipt(real.clone()));
    let orgs: Vec<&str> = real["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["organization_id"].as_str().unwrap())
        .collect();
    let mut expected = vec![a.as_str(), b.as_str()];
    expected.sort();
    assert_eq!(orgs, expected);
    assert_eq!(real["tokens_revoked"], 1);
    let in_a = real["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["organization_id"] == json!(a))
        .unwrap();
    assert_eq!(in_a["removed"][0]["id"], json!(leaver.membership_id));
    assert_eq!(
        in_a["cascade"]["project_memberships"][0]["project_id"],
        json!(project)
    );
    for org in [&a, &b] {
        let ids: Vec<String> = app
            .memberships(org)
            .await
            .iter()
            .filter(|m| m["user_id"] == json!(leaver.user_id))
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.is_empty(), "still in {org}: {ids:?}");
        assert!(app.audited(org, "membership.removed").await.len() == 1);
    }
    assert_eq!(
        can_read(a.clone()).await,
        StatusCode::UNAUTHORIZED,
        "token revoked"
    );

    // The last admin of one organization: nothing is done anywhere, and the refusal names it.
    let c = app.empty_org("C").await;
    let keeper = app.add_member(&a, "member").await;
    let sole_admin = app.make_member(&c, &keeper.user_id, "admin").await;
    let before = (state(&app, &a, &[]).await, state(&app, &c, &[]).await);
    let refused = app
        .post(
            &format!("/v1/users/{}/offboard", keeper.user_id),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "last_admin")
    );
    assert!(refused.body.to_string().contains(&sole_admin));
    assert_eq!(
        (state(&app, &a, &[]).await, state(&app, &c, &[]).await),
        before
    );
    let token_works = app
        .get(&format!("/v1/organizations/{a}"), &keeper.token)
        .await;
    assert_eq!(token_works.status, StatusCode::OK);
}

mod offboarding {
    use super::*;

    on_both_backends!(a_person_is_offboarded_from_everything_at_once);
}
