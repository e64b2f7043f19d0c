//! The rest of the native API: organizations, invitations, roles, pagination, audit, health.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::TestApp;

async fn operational_endpoints_answer_and_every_response_has_a_request_id(app: TestApp) {
    let res = app.call("GET", "/healthz", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.headers.contains_key("x-request-id"));
    let ready = app
        .call("GET", "/readyz", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(ready["database"], json!(app.store.backend()));
    app.get(&format!("/v1/organizations/{}", app.org), &app.admin)
        .await
        .expect(StatusCode::OK);
    app.get(&format!("/v1/organizations/{}", app.org), &app.admin)
        .await
        .expect(StatusCode::OK);
    app.call(
        "DELETE",
        &format!("/v1/organizations/{}", uuid::Uuid::nil()),
        Some(&app.admin),
        None,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
    app.call("GET", "/no/such/route", None, None)
        .await
        .expect(StatusCode::NOT_FOUND);
    let metrics = app.call("GET", "/metrics", None, None).await;
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.body.as_str().unwrap().to_owned();
    let org_route = "route=\"/v1/organizations/{organization_id}\"";
    for line in [
        format!(r#"roster_http_requests_total{{method="GET",{org_route},status="200"}} 2"#),
        format!(r#"roster_http_requests_total{{method="DELETE",{org_route},status="404"}} 1"#),
        r#"roster_http_requests_total{method="GET",route="unmatched",status="404"} 1"#.to_owned(),
        format!(r#"roster_http_request_duration_seconds_bucket{{{org_route},le="+Inf"}} 3"#),
        format!(r#"roster_http_request_duration_seconds_count{{{org_route}}} 3"#),
        "roster_removal_shared_transactions_total 0".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    let buckets = text
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "roster_http_request_duration_seconds_bucket{{{org_route},"
            ))
        })
        .count();
    assert_eq!(buckets, 13, "twelve bounds and +Inf:\n{text}");
    let doc = app
        .call("GET", "/openapi.json", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["paths"]["/v1/organizations/{organization_id}/memberships/bulk-remove"]["post"]
            .is_object()
    );
    let own = app
        .send(
            axum::http::Request::get("/healthz")
                .header("x-request-id", "trace-42")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        own.headers["x-request-id"], "trace-42",
        "a client's own request id is kept"
    );
}

async fn organizations_are_created_read_updated_and_deleted_with_everything_they_hold(
    app: TestApp,
) {
    let user = app.new_user("founder@example.com").await;
    let token = app.token_for(&user).await;
    let org = app
        .post(
            "/v1/organizations",
            &token,
            json!({"name": "Globex Corp", "public_metadata": {"tier": "gold"}}),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = org["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (org["slug"].as_str(), org["created_by"].as_str()),
        (Some("globex-corp"), Some(user.as_str()))
    );
    let members = app.memberships(&id).await;
    assert_eq!(
        (members.len(), members[0]["role"].as_str()),
        (1, Some("admin")),
        "the creator is its admin"
    );
    let dup = app
        .post("/v1/organizations", &token, json!({"name": "Globex Corp"}))
        .await;
    assert_eq!(
        (dup.status, dup.code()),
        (StatusCode::CONFLICT, "slug_taken")
    );

    let updated = app
        .patch(
            &format!("/v1/organizations/{id}"),
            &token,
            json!({"name": "Globex", "max_allowed_memberships": 2}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (
            updated["name"].as_str(),
            updated["max_allowed_memberships"].as_i64()
        ),
        (Some("Globex"), Some(2))
    );
    let listed = app
        .get("/v1/organizations", &token)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "a user lists only their organizations"
    );

    let second = app
        .post(
            &format!("/v1/organizations/{id}/memberships"),
            &token,
            json!({"email": "a@example.com"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(second["status"], "invited");
    let third = app
        .post(
            &format!("/v1/organizations/{id}/memberships"),
            &token,
            json!({"email": "b@example.com"}),
        )
        .await;
    assert_eq!(
        (third.status, third.code()),
        (StatusCode::CONFLICT, "membership_quota")
    );

    app.post(
        &format!("/v1/organizations/{id}/projects"),
        &token,
        json!({"name": "p"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let deleted = app
        .delete(&format!("/v1/organizations/{id}"), &token)
        .await
        .expect(StatusCode::OK);
    assert_eq!(deleted["id"], json!(id));
    app.get(&format!("/v1/organizations/{id}"), &app.admin)
        .await
        .expect(StatusCode::NOT_FOUND);
    app.get(&format!("/v1/organizations/{id}/memberships"), &app.admin)
        .await
        .expect(StatusCode::NOT_FOUND);
}

async fn an_invited_address_becomes_a_member_when_its_user_accepts(app: TestApp) {
    let org = app.org.clone();
    let invite = app
        .post(
            &format!("/v1/organizations/{org}/memberships"),
            &app.owner.token,
            json!({"email": "Grace@Example.com", "role": "member"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        (invite["status"].as_str(), invite["user_id"].as_null()),
        (Some("invited"), Some(()))
    );
    assert!(invite["last_invited_at"].is_string());
    let grace = app.new_user("grace@example.com").await;
    let token = app.token_for(&grace).await;
    app.get(&format!("/v1/organizations/{org}"), &token)
        .await
        .expect(StatusCode::NOT_FOUND);
    let stranger = app.token_for(&app.new_user("eve@example.com").await).await;
    let path = format!(
        "/v1/organizations/{org}/memberships/{}/accept",
        invite["id"].as_str().unwrap()
    );
    app.post(&path, &stranger, json!({}))
        .await
        .expect(StatusCode::NOT_FOUND);
    let accepted = app
        .post(&path, &token, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (accepted["status"].as_str(), accepted["user_id"].as_str()),
        (Some("accepted"), Some(grace.as_str()))
    );
    app.get(&format!("/v1/organizations/{org}"), &token)
        .await
        .expect(StatusCode::OK);
}

async fn custom_roles_grant_what_they_list_and_no_more(app: TestApp) {
    let org = app.org.clone();
    let role = app
        .post(&format!("/v1/organizations/{org}/roles"), &app.owner.token, json!({"key": "offboarder", "name": "Offboarder", "permissions": ["members:read", "members:delete"]}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        role["permissions"],
        json!(["members:read", "members:delete"])
    );
    let offboarder = app.add_member(&org, "offboarder").await;
    let victim = app.add_member(&org, "member").await;
    app.delete(
        &format!(
            "/v1/organizations/{org}/memberships/{}",
            victim.membership_id
        ),
        &offboarder.token,
    )
    .await
    .expect(StatusCode::OK);
    let res = app
        .patch(
            &format!("/v1/organizations/{org}"),
            &offboarder.token,
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    let bad = app
        .post(
            &format!("/v1/organizations/{org}/roles"),
            &app.owner.token,
            json!({"key": "x", "name": "X", "permissions": ["members:fly"]}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let admin_role = app
        .get(&format!("/v1/organizations/{org}/roles"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let admin_id = admin_role
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .delete(
            &format!("/v1/organizations/{org}/roles/{admin_id}"),
            &app.owner.token,
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "built_in_role")
    );
    let res = app
        .delete(
            &format!(
                "/v1/organizations/{org}/roles/{}",
                role["id"].as_str().unwrap()
            ),
            &app.owner.token,
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "role_in_use")
    );
}

/// Every item of a list, walked page by page by its cursor, `limit` at a time. A walk that
/// comes back to where it was fails, rather than going round for ever.
async fn walk(app: &TestApp, list: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut path = format!("{list}?limit={limit}");
    for _ in 0..100 {
        let page = app.get(&path, &app.admin).await.expect(StatusCode::OK);
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit);
        seen.extend(data.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("{list}?limit={limit}&cursor={c}"),
            None => return seen,
        }
    }
    panic!("{list}: still more after 100 pages of {limit}: {seen:?}");
}

/// Another organization grows at the same time, so that its rows lie between and after this
/// one's in id order: a page must hold this organization's (or its project's) rows only,
/// wherever it starts. Every list paged by a cursor is walked.
async fn lists_walk_every_member_once_by_keyset_cursor(app: TestApp) {
    let org = app.org.clone();
    let neighbour = app.new_org("Neighbour").await;
    let mut projects = Vec::new();
    let mut owners = Vec::new();
    for o in [&org, &neighbour] {
        projects.push(app.project_with(o, "main", &[]).await);
        owners.push(app.add_user_as_member(o, "member").await.0);
    }
    for i in 0..7 {
        for ((o, project), owner) in [&org, &neighbour].into_iter().zip(&projects).zip(&owners) {
            let (user_id, _) = app.add_user_as_member(o, "member").await;
            let identity = app
                .post(
                    &format!("/v1/organizations/{o}/identities"),
                    &app.admin,
                    json!({"name": format!("robot-{i}"), "role": "member"}),
                )
                .await
                .expect(StatusCode::CREATED);
            for (list, body) in [
                (
                    format!("/v1/projects/{project}/memberships"),
                    json!({"user_id": user_id}),
                ),
                (
                    format!("/v1/projects/{project}/identity-memberships"),
                    json!({"identity_id": identity["id"], "role": "member"}),
                ),
                (
                    format!("/v1/organizations/{o}/projects"),
                    json!({"name": format!("project-{i}")}),
                ),
                (
                    format!("/v1/organizations/{o}/passwords"),
                    json!({"name": format!("password-{i}"), "user_id": user_id}),
                ),
                (
                    format!("/v1/organizations/{o}/service-tokens"),
                    json!({"name": format!("service-{i}"), "permissions": []}),
                ),
                (
                    format!("/v1/users/{owner}/tokens"),
                    json!({"name": format!("token-{i}")}),
                ),
            ] {
                app.post(&list, &app.admin, body)
                    .await
                    .expect(StatusCode::CREATED);
            }
        }
    }
    let memberships = format!("/v1/organizations/{org}/memberships");
    let seen = walk(&app, &memberships, 3).await;
    // The app's owner, the tokens' owner and the seven added in turn.
    assert_eq!(seen.len(), 9);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "in creation order, each once");
    let project = &projects[0];
    for list in [
        memberships,
        format!("/v1/organizations/{org}/identities"),
        format!("/v1/organizations/{org}/audit-events"),
        format!("/v1/organizations/{org}/projects"),
        format!("/v1/organizations/{org}/passwords"),
        format!("/v1/projects/{project}/memberships"),
        format!("/v1/projects/{project}/identity-memberships"),
        format!("/v1/organizations/{org}/service-tokens"),
        format!("/v1/users/{}/tokens", owners[0]),
    ] {
        let whole = walk(&app, &list, 500).await;
        assert!(whole.len() >= 7, "{list}: {whole:?}");
        assert_eq!(
            walk(&app, &list, 3).await,
            whole,
            "{list}: by pages of 3, the same items in the same order"
        );
    }
    let admins = app
        .get(
            &format!("/v1/organizations/{org}/memberships?role=admin"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(admins["data"].as_array().unwrap().len(), 1);
}

on_both_backends!(
    operational_endpoints_answer_and_every_response_has_a_request_id,
    organizations_are_created_read_updated_and_deleted_with_everything_they_hold,
    an_invited_address_becomes_a_member_when_its_user_accepts,
    custom_roles_grant_what_they_list_and_no_more,
    lists_walk_every_member_once_by_keyset_cursor,
);
