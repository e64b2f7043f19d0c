//! The Clerk dialect at `/clerk`: driven by Clerk's official `@clerk/backend` SDK over a real
//! listener, and its exact JSON pinned by snapshots.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestApp;
use crate::snapshot::assert_snapshot;

/// A user and an organization with the bootstrap owner as admin, through the dialect.
async fn seeded(app: &TestApp) -> (String, String, String) {
    let user = app
        .post("/clerk/v1/users", &app.admin, json!({"email_address": ["jane@example.com"], "first_name": "Jane", "last_name": "Doe"}))
        .await
        .expect(StatusCode::OK);
    let org = app
        .post(
            "/clerk/v1/organizations",
            &app.admin,
            json!({"name": "Acme Rockets", "public_metadata": {"tier": "gold"}}),
        )
        .await
        .expect(StatusCode::OK);
    let (org_id, user_id) = (
        org["id"].as_str().unwrap().to_owned(),
        user["id"].as_str().unwrap().to_owned(),
    );
    let owner = roster_dialect_clerk::ids::encode("user", app.owner.user_id.parse().unwrap());
    app.post(
        &format!("/clerk/v1/organizations/{org_id}/memberships"),
        &app.admin,
        json!({"user_id": owner, "role": "org:admin"}),
    )
    .await
    .expect(StatusCode::OK);
    (org_id, user_id, owner)
}

async fn the_exact_json_of_each_object_is_pinned(app: TestApp) {
    let (org, user, _) = seeded(&app).await;
    let created = app
        .post(
            &format!("/clerk/v1/organizations/{org}/memberships"),
            &app.admin,
            json!({"user_id": user, "role": "org:member"}),
        )
        .await;
    assert_eq!(
        created.headers["content-type"], "application/json",
        "exactly, no charset"
    );
    assert_snapshot("clerk_membership", &created.body);
    assert_snapshot(
        "clerk_user",
        &app.get(&format!("/clerk/v1/users/{user}"), &app.admin)
            .await
            .expect(StatusCode::OK),
    );
    assert_snapshot(
        "clerk_organization_with_count",
        &app.get(
            &format!("/clerk/v1/organizations/{org}?include_members_count=true"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK),
    );
    assert_snapshot(
        "clerk_membership_list",
        &app.get(
            &format!("/clerk/v1/organizations/{org}/memberships?limit=1&order_by=created_at"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK),
    );
    assert_snapshot(
        "clerk_removed_membership",
        &app.delete(
            &format!("/clerk/v1/organizations/{org}/memberships/{user}"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK),
    );
    assert_snapshot(
        "clerk_users_count",
        &app.get("/clerk/v1/users/count", &app.admin)
            .await
            .expect(StatusCode::OK),
    );
    assert_snapshot(
        "clerk_deleted_organization",
        &app.delete(&format!("/clerk/v1/organizations/{org}"), &app.admin)
            .await
            .expect(StatusCode::OK),
    );
}

async fn the_exact_json_of_each_error_is_pinned(app: TestApp) {
    let (org, _, owner) = seeded(&app).await;
    let cases: Vec<(&str, Value)> = vec![
        (
            "clerk_error_not_found",
            app.get(
                "/clerk/v1/organizations/org_0000000000000000000000",
                &app.admin,
            )
            .await
            .body,
        ),
        (
            "clerk_error_unknown_route",
            app.get("/clerk/v1/nothing", &app.admin).await.body,
        ),
        (
            "clerk_error_param_missing",
            app.post("/clerk/v1/organizations", &app.admin, json!({}))
                .await
                .body,
        ),
        (
            "clerk_error_param_invalid",
            app.get("/clerk/v1/organizations?offset=-1", &app.admin)
                .await
                .body,
        ),
        (
            "clerk_error_param_unknown",
            app.post(
                "/clerk/v1/organizations",
                &app.admin,
                json!({"name": "x", "colour": "red"}),
            )
            .await
            .body,
        ),
        (
            "clerk_error_header_format",
            app.call("GET", "/clerk/v1/organizations", None, None)
                .await
                .body,
        ),
        (
            "clerk_error_key_invalid",
            app.get(
                "/clerk/v1/organizations",
                "rst_00000000000000000000000000000000_00",
            )
            .await
            .body,
        ),
        (
            "clerk_error_last_admin",
            app.delete(
                &format!("/clerk/v1/organizations/{org}/memberships/{owner}"),
                &app.admin,
            )
            .await
            .body,
        ),
    ];
    for (name, body) in cases {
        assert_snapshot(name, &body);
    }
}

async fn a_removal_through_clerk_is_the_core_removal(app: TestApp) {
    let (org, user, _) = seeded(&app).await;
    app.post(
        &format!("/clerk/v1/organizations/{org}/memberships"),
        &app.admin,
        json!({"user_id": user, "role": "org:member"}),
    )
    .await
    .expect(StatusCode::OK);
    let org_uuid = roster_dialect_clerk::ids::decode("org", &org).unwrap();
    let before = app.memberships(&org_uuid.to_string()).await.len();
    let removed = app
        .delete(
            &format!("/clerk/v1/organizations/{org}/memberships/{user}"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(removed["organization"]["members_count"], json!(before - 1));
    assert!(
        removed.get("deleted").is_none(),
        "never `deleted` on a membership: the SDK would make it a DeletedObject"
    );
    let events = app.audit_actions(&org_uuid.to_string()).await;
    assert!(
        events.iter().any(|(a, _)| a == "membership.removed"),
        "audited like any removal"
    );
}

async fn a_malformed_header_and_an_unknown_key_are_told_apart(app: TestApp) {
    let code = |res: crate::harness::Resp| {
        (
            res.status,
            res.body["errors"][0]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let get = |auth: &'static str| {
        axum::http::Request::get("/clerk/v1/organizations")
            .header("authorization", auth)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    for malformed in ["Basic dXNlcjpwYXNz", "Bearer", "sk_live_no_scheme"] {
        let res = app.send(get(malformed)).await;
        assert_eq!(
            code(res),
            (
                StatusCode::UNAUTHORIZED,
                "authorization_header_format_invalid".to_owned()
            ),
            "{malformed}"
        );
    }
    let res = app
        .send(get("Bearer sk_live_2VdArFEn2gfBqt8sRePmsVPyDHv"))
        .await;
    assert_eq!(
        code(res),
        (StatusCode::UNAUTHORIZED, "clerk_key_invalid".to_owned())
    );
}

async fn put_metadata_replaces_each_object_given(app: TestApp) {
    let (org, _, _) = seeded(&app).await;
    let path = format!("/clerk/v1/organizations/{org}/metadata");
    let merged = app
        .patch(
            &path,
            &app.admin,
            json!({"public_metadata": {"plan": {"seats": 5}}}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        merged["public_metadata"],
        json!({"tier": "gold", "plan": {"seats": 5}})
    );
    let replaced = app
        .call(
            "PUT",
            &path,
            Some(&app.admin),
            Some(json!({"public_metadata": {"plan": "free"}})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(replaced["public_metadata"], json!({"plan": "free"}));
    assert_eq!(
        replaced["private_metadata"],
        json!({}),
        "an object not given is left as it is"
    );
}

/// Clerk's delete answers with the organization and the members around the removal, so it
/// needs the read permissions as well as `members:delete` (the native delete does not).
async fn a_clerk_removal_by_a_caller_who_may_not_read_the_organization_is_forbidden(app: TestApp) {
    let org = app.org.clone();
    app.post(
        &format!("/v1/organizations/{org}/roles"),
        &app.owner.token,
        json!({"key": "remover", "name": "Remover", "permissions": ["members:read", "members:delete"]}),
    )
    .await
    .expect(StatusCode::CREATED);
    let remover = app.add_member(&org, "remover").await;
    let [a, b] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let clerk_org = roster_dialect_clerk::ids::encode("org", org.parse().unwrap());
    let clerk_user = |id: &str| roster_dialect_clerk::ids::encode("user", id.parse().unwrap());
    let res = app
        .delete(
            &format!(
                "/clerk/v1/organizations/{clerk_org}/memberships/{}",
                clerk_user(&a.user_id)
            ),
            &remover.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert!(app.membership_ids(&org).await.contains(&a.membership_id));
    app.delete(
        &format!("/v1/organizations/{org}/memberships/{}", b.membership_id),
        &remover.token,
    )
    .await
    .expect(StatusCode::OK);
}

/// Clerk lists memberships newest first unless asked otherwise, a page at a time by offset: the
/// walk gives every membership once, in the order of the native list or its reverse.
async fn clerk_lists_memberships_newest_first_by_offset_and_oldest_first_on_request(app: TestApp) {
    let org = app.org.clone();
    app.add_users_as_members(&org, "member", 5).await;
    let native: Vec<String> = app
        .membership_ids(&org)
        .await
        .iter()
        .map(|id| roster_dialect_clerk::ids::encode("orgmem", id.parse().unwrap()))
        .collect();
    assert!(native.len() >= 6, "{native:?}");
    let clerk_org = roster_dialect_clerk::ids::encode("org", org.parse().unwrap());
    let newest_first = walk_by_offset(&app, &clerk_org, native.len(), "").await;
    let mut reversed = native.clone();
    reversed.reverse();
    assert_eq!(newest_first, reversed);
    let oldest_first = walk_by_offset(&app, &clerk_org, native.len(), "&order_by=created_at").await;
    assert_eq!(oldest_first, native);
}

/// Clerk's `total_count` and SCIM's `totalResults` count the organization's users, as its
/// member count changes, and leave out invitations by email.
async fn list_totals_count_users_and_leave_out_invitations(app: TestApp) {
    let org = app.new_org("Totals").await;
    let members = app.add_users_as_members(&org, "member", 3).await;
    for email in ["one@invited.example", "two@invited.example"] {
        app.invite(&org, email).await;
    }
    let clerk_org = roster_dialect_clerk::ids::encode("org", org.parse().unwrap());
    let scim_token = app
        .new_service_token(&org, &app.admin, &["members:read"])
        .await;
    let totals = || async {
        let clerk = app
            .get(
                &format!("/clerk/v1/organizations/{clerk_org}/memberships?limit=1"),
                &app.admin,
            )
            .await
            .expect(StatusCode::OK);
        let scim = app
            .get(
                &format!("/scim/v2/organizations/{org}/Users?count=1"),
                &scim_token,
            )
            .await
            .expect(StatusCode::OK);
        (clerk["total_count"].clone(), scim["totalResults"].clone())
    };
    // The organization's creator and the three members; the two invitations are no users.
    assert_eq!(app.membership_ids(&org).await.len(), 6);
    assert_eq!(totals().await, (json!(4), json!(4)));
    app.remove_member(&org, &members[0]).await;
    assert_eq!(totals().await, (json!(3), json!(3)));
}

/// The ids of a Clerk organization's `total` memberships, two a page by offset, in `order`.
async fn walk_by_offset(app: &TestApp, clerk_org: &str, total: usize, order: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for offset in (0..total + 2).step_by(2) {
        let page = app
            .get(
                &format!(
                    "/clerk/v1/organizations/{clerk_org}/memberships?limit=2&offset={offset}{order}"
                ),
                &app.admin,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(page["total_count"], json!(total), "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
    }
    seen
}

on_both_backends!(
    a_malformed_header_and_an_unknown_key_are_told_apart,
    put_metadata_replaces_each_object_given,
    the_exact_json_of_each_object_is_pinned,
    the_exact_json_of_each_error_is_pinned,
    a_removal_through_clerk_is_the_core_removal,
    a_clerk_removal_by_a_caller_who_may_not_read_the_organization_is_forbidden,
    clerk_lists_memberships_newest_first_by_offset_and_oldest_first_on_request,
    list_totals_count_users_and_leave_out_invitations,
);

/// Needs `@clerk/backend` from npm (`./test` installs it).
mod official_sdk {
    use std::path::PathBuf;
    use std::process::Command;

    use crate::harness::TestApp;

    fn sdk_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clerk-sdk")
    }

    async fn the_official_sdk_runs_the_whole_lifecycle(app: TestApp) {
        assert!(
            sdk_dir().join("node_modules/@clerk/backend").is_dir(),
            "@clerk/backend is not installed: run `npm ci` in {} (./test does)",
            sdk_dir().display()
        );
        let key = app.admin.clone();
        let out = app
            .run_tool_against(move |addr| {
                let mut node = Command::new("node");
                node.arg("lifecycle.mjs")
                    .current_dir(sdk_dir())
                    .env("CLERK_API_URL", format!("http://{addr}/clerk"))
                    .env("CLERK_SECRET_KEY", key);
                node
            })
            .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the SDK run failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    }

    on_both_backends!(needs_tool; the_official_sdk_runs_the_whole_lifecycle);
}
