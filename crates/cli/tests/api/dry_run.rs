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
    let identity = app
        .post(
            &format!("/v1/organizations/{org}/identities"),
            &app.admin,
            json!({"name": "deployer", "role": "member"}),
        )
        .await
        .expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/v1/projects/{project}/identity-memberships"),
        &app.admin,
        json!({"identity_id": identity, "role": "member"}),
    )
    .await
    .expect(StatusCode::CREATED);

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
