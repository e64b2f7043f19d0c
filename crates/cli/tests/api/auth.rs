//! Who may do what: 401, 403, tenant isolation, tokens of removed members, secrets shown once.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::harness::{TestApp, with_wrong_secret};

async fn missing_or_bad_credentials_get_401_in_the_envelope(app: TestApp) {
    let path = format!("/v1/organizations/{}", app.org);
    let none = app.call("GET", &path, None, None).await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    for bad in ["garbage", "rst_00000000000000000000000000000000_abc"] {
        let res = app.get(&path, bad).await;
        assert_eq!(
            (res.status, res.code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{bad}"
        );
    }
    // The right id with a wrong secret.
    let res = app.get(&path, &with_wrong_secret(&app.admin)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

async fn the_same_key_authenticates_in_planetscale_form(app: TestApp) {
    let (id, secret) = app
        .admin
        .trim_start_matches("rst_")
        .split_once('_')
        .unwrap();
    let id = uuid::Uuid::parse_str(id).unwrap();
    let req = Request::get(format!("/v1/organizations/{}", app.org))
        .header("authorization", format!("{id}:{secret}"))
        .body(Body::empty())
        .unwrap();
    app.send(req).await.expect(StatusCode::OK);
}

async fn a_member_without_the_permission_gets_403_and_nothing_changes(app: TestApp) {
    let org = app.org.clone();
    let reader = app.add_member(&org, "member").await;
    let victim = app.add_member(&org, "member").await;
    app.get(
        &format!("/v1/organizations/{org}/memberships"),
        &reader.token,
    )
    .await
    .expect(StatusCode::OK);
    let res = app
        .delete(
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                victim.membership_id
            ),
            &reader.token,
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    assert_eq!(res.body["error"]["details"]["permission"], "members:delete");
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&victim.membership_id)
    );
    let res = app
        .patch(
            &format!("/v1/organizations/{org}"),
            &reader.token,
            json!({"name": "Mine"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

async fn a_token_of_one_organization_gets_not_found_for_another_by_any_path(app: TestApp) {
    let other = app.new_org("Other").await;
    let victim = app.add_member(&other, "admin").await;
    let project = app
        .post(
            &format!("/v1/organizations/{other}/projects"),
            &app.admin,
            json!({"name": "p"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let pid = project["id"].as_str().unwrap().to_owned();
    let service = app
        .post(
            &format!("/v1/organizations/{}/service-tokens", app.org),
            &app.owner.token,
            json!({"permissions": ["members:read", "members:delete"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    let service = service["token"].as_str().unwrap().to_owned();
    let missing = uuid::Uuid::now_v7().to_string();
    let before = app.memberships(&other).await;

    for token in [&app.owner.token, &service] {
        let attempts = [
            ("GET", format!("/v1/organizations/{other}"), None),
            (
                "PATCH",
                format!("/v1/organizations/{other}"),
                Some(json!({"name": "pwned"})),
            ),
            ("DELETE", format!("/v1/organizations/{other}"), None),
            (
                "GET",
                format!("/v1/organizations/{other}/memberships"),
                None,
            ),
            (
                "DELETE",
                format!(
                    "/v1/organizations/{other}/memberships/{}",
                    victim.membership_id
                ),
                None,
            ),
            (
                "POST",
                format!("/v1/organizations/{other}/memberships/bulk-remove"),
                Some(json!({"membership_ids": [victim.membership_id]})),
            ),
            ("GET", format!("/v1/projects/{pid}"), None),
            ("DELETE", format!("/v1/projects/{pid}"), None),
        ];
        for (method, path, body) in attempts {
            let res = app.call(method, &path, Some(token), body.clone()).await;
            assert_eq!(
                (res.status, res.code()),
                (StatusCode::NOT_FOUND, "not_found"),
                "{method} {path}"
            );
            let twin = app
                .call(
                    method,
                    &path.replace(&other, &missing).replace(&pid, &missing),
                    Some(token),
                    body,
                )
                .await;
            assert_eq!(
                twin.status,
                StatusCode::NOT_FOUND,
                "a missing twin of {method} {path}"
            );
            assert_eq!(
                res.body["error"]["message"]
                    .as_str()
                    .map(|m| m.split(' ').next()),
                twin.body["error"]["message"]
                    .as_str()
                    .map(|m| m.split(' ').next())
            );
        }
    }
    assert_eq!(
        app.memberships(&other).await,
        before,
        "nothing changed in the other organization"
    );
    app.get(&format!("/v1/projects/{pid}"), &app.admin)
        .await
        .expect(StatusCode::OK);
}

async fn a_removed_members_token_is_refused_at_its_very_next_request(app: TestApp) {
    let org = app.org.clone();
    let member = app.add_member(&org, "admin").await;
    app.get(&format!("/v1/organizations/{org}"), &member.token)
        .await
        .expect(StatusCode::OK);
    app.delete(
        &format!(
            "/v1/organizations/{org}/memberships/{}",
            member.membership_id
        ),
        &app.owner.token,
    )
    .await
    .expect(StatusCode::OK);
    let res = app
        .get(&format!("/v1/organizations/{org}"), &member.token)
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let res = app
        .delete(
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                app.owner.membership_id
            ),
            &member.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

async fn secrets_are_shown_once_and_stored_only_as_hashes(app: TestApp) {
    let created = app
        .post(
            &format!("/v1/users/{}/tokens", app.owner.user_id),
            &app.owner.token,
            json!({"name": "laptop"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let secret = created["token_secret"].as_str().unwrap().to_owned();
    assert!(created["token"].as_str().unwrap().ends_with(&secret));
    let pw = app
        .post(
            &format!("/v1/organizations/{}/passwords", app.org),
            &app.owner.token,
            json!({"name": "db"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let plain = pw["plain_text"].as_str().unwrap().to_owned();
    let service = app
        .post(
            &format!("/v1/organizations/{}/service-tokens", app.org),
            &app.owner.token,
            json!({"permissions": []}),
        )
        .await
        .expect(StatusCode::CREATED);
    let service_secret = service["token_secret"].as_str().unwrap().to_owned();

    let listings = [
        app.get(
            &format!("/v1/users/{}/tokens", app.owner.user_id),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK),
        app.get(
            &format!("/v1/organizations/{}/passwords", app.org),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK),
        app.get(
            &format!("/v1/organizations/{}/service-tokens", app.org),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK),
        app.get(
            &format!(
                "/v1/organizations/{}/service-tokens/{}",
                app.org,
                service["id"].as_str().unwrap()
            ),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK),
        app.get(
            &format!("/v1/organizations/{}/audit-events?limit=500", app.org),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK),
    ];
    for body in listings {
        let text = body.to_string();
        for s in [&secret, &plain, &service_secret] {
            assert!(!text.contains(s.as_str()), "a secret leaked into {text}");
        }
    }
    // Stored only as a hash: no column of any row holds the clear text.
    let mut session = app.store.read().await.unwrap();
    let token = session
        .token(created["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        token.secret_hash,
        roster_core::secrets::hash_secret(&secret)
    );
    assert_ne!(token.secret_hash, secret.as_bytes());
}

async fn a_service_token_acts_only_within_its_accesses(app: TestApp) {
    let org = app.org.clone();
    let victim = app.add_member(&org, "member").await;
    let reader = app
        .post(
            &format!("/v1/organizations/{org}/service-tokens"),
            &app.owner.token,
            json!({"permissions": ["members:read"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    let reader = reader["token"].as_str().unwrap();
    app.get(&format!("/v1/organizations/{org}/memberships"), reader)
        .await
        .expect(StatusCode::OK);
    let res = app
        .delete(
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                victim.membership_id
            ),
            reader,
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    let member = app.add_member(&org, "member").await;
    let res = app
        .post(
            &format!("/v1/organizations/{org}/service-tokens"),
            &member.token,
            json!({"permissions": ["members:delete"]}),
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::FORBIDDEN,
        "members cannot mint service tokens"
    );
}

/// Removals verify their token inside the removal's own transaction, not before it: every
/// answer they give before that point must still be a 401 for a bad token.
async fn every_removal_route_answers_a_bad_token_with_401_before_any_other_error(app: TestApp) {
    let org = app.org.clone();
    let member = app.add_member(&org, "member").await;
    let wrong = with_wrong_secret(&app.admin);
    let clerk_org = roster_dialect_clerk::ids::encode("org", org.parse().unwrap());
    let clerk_user = roster_dialect_clerk::ids::encode("user", member.user_id.parse().unwrap());
    let slug = app.slug(&org).await;
    let (m, missing) = (&member.membership_id, uuid::Uuid::now_v7());
    let cases: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        (
            "DELETE",
            format!("/v1/organizations/{org}/memberships/{m}"),
            None,
        ),
        (
            "DELETE",
            format!("/v1/organizations/{org}/memberships/not-an-id"),
            None,
        ),
        (
            "DELETE",
            format!("/v1/organizations/not-an-id/memberships/{m}"),
            None,
        ),
        (
            "DELETE",
            format!("/v1/organizations/{missing}/memberships/{m}"),
            None,
        ),
        (
            "DELETE",
            format!("/v1/organizations/{org}/memberships/{m}"),
            Some(json!({"delete_passwords": "yes"})),
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships/bulk-remove"),
            Some(json!({"membership_ids": [m]})),
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships/bulk-remove"),
            Some(json!({"membership_ids": []})),
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships/bulk-remove"),
            Some(json!({"membership_ids": 5})),
        ),
        (
            "DELETE",
            format!("/infisical/api/v2/organizations/{org}/memberships/{m}"),
            None,
        ),
        (
            "DELETE",
            format!("/infisical/api/v2/organizations/{org}/memberships/not-an-id"),
            None,
        ),
        (
            "DELETE",
            format!("/infisical/api/v2/organizations/{org}/memberships"),
            Some(json!({"membershipIds": [m]})),
        ),
        (
            "DELETE",
            format!("/infisical/api/v2/organizations/{org}/memberships"),
            Some(json!({"membershipIds": ["not-an-id"]})),
        ),
        (
            "DELETE",
            format!("/clerk/v1/organizations/{clerk_org}/memberships/{clerk_user}"),
            None,
        ),
        (
            "DELETE",
            format!("/clerk/v1/organizations/{clerk_org}/memberships/user_bad"),
            None,
        ),
        (
            "DELETE",
            format!("/clerk/v1/organizations/some-slug/memberships/{clerk_user}"),
            None,
        ),
        (
            "DELETE",
            format!(
                "/planetscale/v1/organizations/{slug}/members/{}",
                member.user_id
            ),
            None,
        ),
        (
            "DELETE",
            format!(
                "/planetscale/v1/organizations/no-such-org/members/{}",
                member.user_id
            ),
            None,
        ),
        (
            "DELETE",
            format!(
                "/planetscale/v1/organizations/{slug}/members/{}?delete_passwords=maybe",
                member.user_id
            ),
            None,
        ),
    ];
    for (i, (method, path, body)) in cases.iter().enumerate() {
        // Each case fails with a token id of its own past the first few, so that the failures
        // stay under the limit a token id has (`auth_limit`, tested on its own).
        let wrong = if i < 5 {
            wrong.clone()
        } else {
            format!("rst_{}_{}", uuid::Uuid::now_v7().simple(), "0".repeat(64))
        };
        let res = app.call(method, path, Some(&wrong), body.clone()).await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} {body:?}: {}",
            res.body
        );
    }
    // The same malformed requests with a good token are refused for what they are.
    for (method, path, body) in &cases[1..5] {
        let res = app.call(method, path, Some(&app.admin), body.clone()).await;
        assert!(
            matches!(res.status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
            "{method} {path}: {} {}",
            res.status,
            res.body
        );
    }
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&member.membership_id),
        "nothing was removed with a bad token"
    );
}

async fn a_revoked_token_removes_nobody(app: TestApp) {
    let org = app.org.clone();
    let member = app.add_member(&org, "member").await;
    let owner = &app.owner.user_id;
    let created = app
        .post(
            &format!("/v1/users/{owner}/tokens"),
            &app.admin,
            json!({"name": "laptop"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let token = created["token"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    app.delete(&format!("/v1/users/{owner}/tokens/{id}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let res = app
        .delete(
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                member.membership_id
            ),
            token,
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&member.membership_id)
    );
}

/// Instance admin keys are listed (without secrets) and revoked by an instance admin; a
/// revoked key fails at its next request; a token an admin key mints names that key.
async fn admin_keys_are_listed_and_revoked_and_name_what_they_mint(app: TestApp) {
    let second = roster_core::Roster::new(app.store.clone())
        .create_admin_key("leaked")
        .await
        .unwrap();
    let second_bearer = second.bearer();
    let listed = app
        .get("/v1/admin-keys", &app.admin)
        .await
        .expect(StatusCode::OK);
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&second.token.id.to_string().as_str()));
    assert!(!listed.to_string().contains(second.secret.expose()));

    let minted = app
        .post(
            &format!("/v1/users/{}/tokens", app.owner.user_id),
            &second_bearer,
            json!({"name": "laptop"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(minted["created_by_key"], second.token.id.to_string());
    assert_eq!(
        minted["token"], minted["token_value"],
        "one secret, two names"
    );

    let member = app.add_member(&app.org, "admin").await;
    let res = app.get("/v1/admin-keys", &member.token).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    let res = app
        .delete(
            &format!("/v1/admin-keys/{}", second.token.id),
            &member.token,
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);

    let revoked = app
        .delete(&format!("/v1/admin-keys/{}", second.token.id), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(revoked["name"], "leaked");
    let res = app.get("/v1/organizations", &second_bearer).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    let res = app
        .delete(&format!("/v1/admin-keys/{}", second.token.id), &app.admin)
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    let res = app
        .delete(
            &format!("/v1/admin-keys/{}", member_token_id(&member.token)),
            &app.admin,
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::NOT_FOUND,
        "a user token is no admin key: {}",
        res.body
    );
}

/// The id part of a bearer token `rst_<id>_<secret>`.
fn member_token_id(token: &str) -> String {
    let (id, _) = token.trim_start_matches("rst_").split_once('_').unwrap();
    uuid::Uuid::parse_str(id).map_or_else(|_| id.to_owned(), |u| u.to_string())
}

/// After `FAILURES_PER_TOKEN` failures naming one token id, that id is refused with 429 on
/// every mount, in the mount's envelope and with `Retry-After`, even with its right secret (the
/// refusal comes before any read); other tokens are served as before.
async fn repeated_failures_naming_one_token_are_refused_with_429_on_every_mount(app: TestApp) {
    let other = app.add_member(&app.org, "admin").await;
    let org = &app.org;
    let slug = app.slug(org).await;
    let wrong = with_wrong_secret(&app.admin);
    let own = format!("/v1/organizations/{org}");
    for _ in 0..roster_http::auth_limit::FAILURES_PER_TOKEN {
        assert_eq!(app.get(&own, &wrong).await.status, StatusCode::UNAUTHORIZED);
    }
    let mounts = [
        (own.clone(), "/error/code", "too_many_requests"),
        (
            format!("/infisical/api/v2/organizations/{org}/memberships"),
            "/error",
            "RateLimitExceeded",
        ),
        (
            format!("/clerk/v1/organizations/{org}/memberships"),
            "/errors/0/code",
            "too_many_requests",
        ),
        (
            format!("/planetscale/v1/organizations/{slug}/members"),
            "/code",
            "rate_limited",
        ),
        (
            format!("/scim/v2/organizations/{org}/Users"),
            "/status",
            "429",
        ),
    ];
    for (path, pointer, value) in mounts {
        for token in [&wrong, &app.admin] {
            let res = app.get(&path, token).await;
            assert_eq!(
                res.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{path}: {}",
                res.body
            );
            let said = res.body.pointer(pointer).and_then(|v| v.as_str());
            assert_eq!(said, Some(value), "{path}: {}", res.body);
            let retry: u64 = res.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "{path}: Retry-After {retry}");
        }
    }
    // The refusal is the token id's, not everyone's.
    assert_eq!(app.get(&own, &other.token).await.status, StatusCode::OK);
}

/// A deactivated member is suspended from the organization, their own membership included:
/// leaving is answered as for an organization they cannot see, and changes nothing; once
/// reactivated, they may leave.
async fn a_deactivated_member_cannot_leave_until_reactivated(app: TestApp) {
    let org = app.org.clone();
    let member = app.add_member(&org, "member").await;
    let membership = format!(
        "/v1/organizations/{org}/memberships/{}",
        member.membership_id
    );
    let leave = format!("/v1/organizations/{org}/leave");
    app.patch(&membership, &app.admin, json!({"is_active": false}))
        .await
        .expect(StatusCode::OK);
    let res = app.post(&leave, &member.token, json!({})).await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{}",
        res.body
    );
    let kept = app
        .get(&membership, &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        kept["is_active"], false,
        "the membership stays, deactivated"
    );
    assert!(app.audited(&org, "membership.left").await.is_empty());

    app.patch(&membership, &app.admin, json!({"is_active": true}))
        .await
        .expect(StatusCode::OK);
    app.post(&leave, &member.token, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        app.get(&membership, &app.admin).await.status,
        StatusCode::NOT_FOUND
    );
}

/// A service token made with no permission is answered as one that cannot see its own
/// organization: 404 (never 403, which would tell what exists), and nothing changes.
async fn a_token_holding_no_permission_sees_nothing_of_its_organization(app: TestApp) {
    let org = app.org.clone();
    let token = app.new_service_token(&org, &app.owner.token, &[]).await;
    let project = app.project_with(&org, "web", &[]).await;
    for (method, path) in [
        ("GET", format!("/v1/organizations/{org}")),
        ("GET", format!("/v1/projects/{project}")),
        ("DELETE", format!("/v1/projects/{project}")),
        (
            "DELETE",
            format!(
                "/v1/organizations/{org}/memberships/{}",
                app.owner.membership_id
            ),
        ),
    ] {
        let res = app.call(method, &path, Some(&token), None).await;
        assert_eq!(
            (res.status, res.code()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method} {path}: {}",
            res.body
        );
    }
    app.get(&format!("/v1/projects/{project}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(app.memberships(&org).await.len(), 1);
}

on_both_backends!(
    a_deactivated_member_cannot_leave_until_reactivated,
    a_token_holding_no_permission_sees_nothing_of_its_organization,
    repeated_failures_naming_one_token_are_refused_with_429_on_every_mount,
    admin_keys_are_listed_and_revoked_and_name_what_they_mint,
    missing_or_bad_credentials_get_401_in_the_envelope,
    the_same_key_authenticates_in_planetscale_form,
    a_member_without_the_permission_gets_403_and_nothing_changes,
    a_token_of_one_organization_gets_not_found_for_another_by_any_path,
    a_removed_members_token_is_refused_at_its_very_next_request,
    secrets_are_shown_once_and_stored_only_as_hashes,
    a_service_token_acts_only_within_its_accesses,
    every_removal_route_answers_a_bad_token_with_401_before_any_other_error,
    a_revoked_token_removes_nobody,
);
