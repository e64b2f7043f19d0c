//! The Infisical dialect at `/infisical`: the three seed endpoints with every status they
//! declare, each response checked against the seed's schema, and the sibling endpoints.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Resp, TestApp};
use crate::schema::assert_matches;

const SINGLE: (&str, &str) = (
    "infisical-delete-org-membership.json",
    "/api/v2/organizations/{organizationId}/memberships/{membershipId}",
);
const BULK: (&str, &str) = (
    "infisical-bulk-delete-org-memberships.json",
    "/api/v2/organizations/{organizationId}/memberships",
);
const IDENTITY: (&str, &str) = (
    "infisical-delete-project-identity-membership.json",
    "/api/v1/projects/{projectId}/identity-memberships/{identityId}",
);

fn single(org: &str, id: &str) -> String {
    format!("/infisical/api/v2/organizations/{org}/memberships/{id}")
}

fn bulk(org: &str) -> String {
    format!("/infisical/api/v2/organizations/{org}/memberships")
}

fn identity(project: &str, identity: &str) -> String {
    format!("/infisical/api/v1/projects/{project}/identity-memberships/{identity}")
}

/// Asserts the status, the envelope's request id and the seed schema of a response.
#[track_caller]
fn seed(spec: (&str, &str), res: Resp, status: StatusCode) -> Value {
    assert_eq!(res.status, status, "body: {}", res.body);
    assert_matches(spec.0, spec.1, "delete", status.as_u16(), &res.body);
    if !status.is_success() {
        assert_eq!(
            res.body["reqId"].as_str(),
            res.headers["x-request-id"].to_str().ok(),
            "reqId is the request id"
        );
        assert_eq!(res.body["statusCode"], json!(status.as_u16()));
    }
    res.body
}

async fn bulk_delete(app: &TestApp, org: &str, token: Option<&str>, body: Value) -> Resp {
    app.call("DELETE", &bulk(org), token, Some(body)).await
}

/// A project with an identity in it; returns (project id, identity id, identity token).
async fn project_with_identity(app: &TestApp) -> (String, String, String) {
    let org = &app.org;
    let p = app
        .post(
            &format!("/v1/organizations/{org}/projects"),
            &app.admin,
            json!({"name": "vault"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let i = app
        .post(
            &format!("/v1/organizations/{org}/identities"),
            &app.admin,
            json!({"name": "deployer", "role": "admin"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let (pid, iid) = (
        p["id"].as_str().unwrap().to_owned(),
        i["id"].as_str().unwrap().to_owned(),
    );
    app.post(
        &format!("/v1/projects/{pid}/identity-memberships"),
        &app.admin,
        json!({"identity_id": iid, "role": "member"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let t = app
        .post(
            &format!("/v1/identities/{iid}/tokens"),
            &app.admin,
            json!({"name": "t"}),
        )
        .await
        .expect(StatusCode::CREATED);
    (pid, iid, t["token"].as_str().unwrap().to_owned())
}

async fn deleting_a_membership_returns_it_with_every_seed_field_and_real_values(app: TestApp) {
    let org = app.org.clone();
    let member = app.add_member(&org, "member").await;
    let pid = app.project_with(&org, "p", &[&member]).await;
    let res = app
        .delete(&single(&org, &member.membership_id), &app.owner.token)
        .await;
    let body = seed(SINGLE, res, StatusCode::OK);
    let m = &body["membership"];
    let keys: Vec<_> = m.as_object().unwrap().keys().cloned().collect();
    for k in [
        "id",
        "role",
        "status",
        "inviteEmail",
        "createdAt",
        "updatedAt",
        "userId",
        "orgId",
        "roleId",
        "projectFavorites",
        "isActive",
        "lastInvitedAt",
        "lastLoginAuthMethod",
        "lastLoginTime",
    ] {
        assert!(keys.contains(&k.to_owned()), "{k} is present");
    }
    assert_eq!(m["id"], json!(member.membership_id));
    assert_eq!(m["role"], "member", "the actual role slug");
    assert_eq!(m["userId"], json!(member.user_id), "the actual user id");
    assert_eq!(m["orgId"], json!(org));
    assert_eq!(
        (m["status"].as_str(), m["isActive"].as_bool()),
        (Some("accepted"), Some(true))
    );
    assert!(
        !app.membership_ids(&org)
            .await
            .contains(&member.membership_id)
    );
    let pms = app
        .get(&format!("/v1/projects/{pid}/memberships"), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(pms["data"], json!([]), "the cascade of DESIGN.md");
}

async fn a_machine_identity_token_deletes_memberships_as_itself(app: TestApp) {
    let (_, _, token) = project_with_identity(&app).await;
    let member = app.add_member(&app.org, "member").await;
    let body = seed(
        SINGLE,
        app.delete(&single(&app.org, &member.membership_id), &token)
            .await,
        StatusCode::OK,
    );
    assert_eq!(
        body["membership"]["id"],
        json!(member.membership_id),
        "never an empty 200"
    );
    assert!(
        !app.membership_ids(&app.org)
            .await
            .contains(&member.membership_id),
        "really removed"
    );
}

async fn bulk_deletion_is_atomic_and_names_the_offending_id(app: TestApp) {
    let org = app.org.clone();
    let a = app.add_member(&org, "member").await.membership_id;
    let b = app.add_member(&org, "member").await.membership_id;
    let other = app.new_org("Elsewhere").await;
    let foreign = app.add_member(&other, "member").await.membership_id;
    let unknown = uuid::Uuid::now_v7().to_string();
    let before = app.memberships(&org).await;
    for bad in [&unknown, &foreign] {
        let res = bulk_delete(
            &app,
            &org,
            Some(&app.owner.token),
            json!({"membershipIds": [a, bad, b]}),
        )
        .await;
        let body = seed(BULK, res, StatusCode::NOT_FOUND);
        assert!(
            body["message"].as_str().unwrap().contains(bad.as_str()),
            "names {bad}: {body}"
        );
        assert_eq!(app.memberships(&org).await, before);
    }
    let res = bulk_delete(
        &app,
        &org,
        Some(&app.owner.token),
        json!({"membershipIds": [a, app.owner.membership_id]}),
    )
    .await;
    let body = seed(BULK, res, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "You cannot remove yourself from an organization"
    );
    assert_eq!(app.memberships(&org).await, before);

    let body = seed(
        BULK,
        bulk_delete(
            &app,
            &org,
            Some(&app.owner.token),
            json!({"membershipIds": [a, b, a]}),
        )
        .await,
        StatusCode::OK,
    );
    let ids: Vec<_> = body["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![a, b], "duplicates once");
    let body = seed(
        BULK,
        bulk_delete(
            &app,
            &org,
            Some(&app.owner.token),
            json!({"membershipIds": []}),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(body["memberships"], json!([]));
}

async fn malformed_requests_get_422_never_500_and_change_nothing(app: TestApp) {
    let org = app.org.clone();
    let member = app.add_member(&org, "member").await;
    let before = app.memberships(&org).await;
    let t = Some(app.owner.token.as_str());
    for body in [
        json!({"membershipIds": [member.membership_id], "force": true}),
        json!({"membershipIds": "all"}),
        json!({"membershipIds": ["not-a-uuid"]}),
        json!({}),
    ] {
        seed(
            BULK,
            bulk_delete(&app, &org, t, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    seed(
        BULK,
        app.call(
            "DELETE",
            &bulk("not-a-uuid"),
            t,
            Some(json!({"membershipIds": []})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    seed(
        SINGLE,
        app.delete(&single(&org, "1234"), &app.owner.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    seed(
        SINGLE,
        app.delete(&single("nope", &member.membership_id), &app.owner.token)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    seed(
        IDENTITY,
        app.delete(&identity("x", "y"), &app.owner.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(app.memberships(&org).await, before);
}

async fn missing_or_bad_tokens_get_401_on_every_seed_endpoint(app: TestApp) {
    let (pid, iid, _) = project_with_identity(&app).await;
    let id = app.owner.membership_id.clone();
    for token in [None, Some("not-a-roster-token")] {
        seed(
            SINGLE,
            app.call("DELETE", &single(&app.org, &id), token, None)
                .await,
            StatusCode::UNAUTHORIZED,
        );
        seed(
            BULK,
            bulk_delete(&app, &app.org, token, json!({"membershipIds": [id]})).await,
            StatusCode::UNAUTHORIZED,
        );
        seed(
            IDENTITY,
            app.call("DELETE", &identity(&pid, &iid), token, None).await,
            StatusCode::UNAUTHORIZED,
        );
    }
    assert_eq!(app.memberships(&app.org).await.len(), 1);
}

async fn a_member_without_the_permission_gets_403_permission_denied(app: TestApp) {
    let (pid, iid, _) = project_with_identity(&app).await;
    let member = app.add_member(&app.org, "member").await;
    let victim = app.add_member(&app.org, "member").await;
    let body = seed(
        SINGLE,
        app.delete(&single(&app.org, &victim.membership_id), &member.token)
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(
        (body["error"].as_str(), body["message"].as_str()),
        (
            Some("PermissionDenied"),
            Some("You are not allowed to delete on member")
        )
    );
    seed(
        BULK,
        bulk_delete(
            &app,
            &app.org,
            Some(&member.token),
            json!({"membershipIds": [victim.membership_id]}),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    seed(
        IDENTITY,
        app.delete(&identity(&pid, &iid), &member.token).await,
        StatusCode::FORBIDDEN,
    );
    assert!(
        app.membership_ids(&app.org)
            .await
            .contains(&victim.membership_id)
    );
    app.get(
        &format!("/v1/projects/{pid}/identity-memberships/{iid}"),
        &app.admin,
    )
    .await
    .expect(StatusCode::OK);
}

async fn unknown_and_foreign_ids_get_404(app: TestApp) {
    let (pid, iid, _) = project_with_identity(&app).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let other = app.new_org("Elsewhere").await;
    let foreign = app.add_member(&other, "member").await.membership_id;
    let others_before = app.memberships(&other).await;
    seed(
        SINGLE,
        app.delete(&single(&app.org, &unknown), &app.owner.token)
            .await,
        StatusCode::NOT_FOUND,
    );
    seed(
        SINGLE,
        app.delete(&single(&app.org, &foreign), &app.owner.token)
            .await,
        StatusCode::NOT_FOUND,
    );
    seed(
        SINGLE,
        app.delete(&single(&other, &foreign), &app.owner.token)
            .await,
        StatusCode::NOT_FOUND,
    );
    seed(
        BULK,
        bulk_delete(
            &app,
            &unknown,
            Some(&app.owner.token),
            json!({"membershipIds": []}),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    seed(
        IDENTITY,
        app.delete(&identity(&unknown, &iid), &app.owner.token)
            .await,
        StatusCode::NOT_FOUND,
    );
    seed(
        IDENTITY,
        app.delete(&identity(&pid, &unknown), &app.owner.token)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(app.memberships(&other).await, others_before);
}

async fn the_rules_refuse_with_400_and_change_nothing(app: TestApp) {
    let (pid, iid, token) = project_with_identity(&app).await;
    let body = seed(
        SINGLE,
        app.delete(
            &single(&app.org, &app.owner.membership_id),
            &app.owner.token,
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(
        body["message"],
        "You cannot remove yourself from an organization"
    );
    let body = seed(
        SINGLE,
        app.delete(&single(&app.org, &app.owner.membership_id), &app.admin)
            .await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(body["details"]["rule"], "last_admin");
    let body = seed(
        IDENTITY,
        app.delete(&identity(&pid, &iid), &token).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(body["message"], "You can't delete your own membership");
    assert_eq!(app.memberships(&app.org).await.len(), 1);
    app.get(
        &format!("/v1/projects/{pid}/identity-memberships/{iid}"),
        &app.admin,
    )
    .await
    .expect(StatusCode::OK);
}

async fn removing_an_identity_from_a_project_answers_the_seed_shape_on_every_twin(app: TestApp) {
    let (pid, iid, _) = project_with_identity(&app).await;
    let body = seed(
        IDENTITY,
        app.delete(&identity(&pid, &iid), &app.owner.token).await,
        StatusCode::OK,
    );
    assert_eq!(body["identityMembership"]["projectId"], json!(pid));
    assert_eq!(body["identityMembership"]["identityId"], json!(iid));
    app.get(&format!("/v1/identities/{iid}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    for twin in [
        format!("/infisical/api/v2/workspace/{pid}/identity-memberships/{iid}"),
        format!("/infisical/api/v1/projects/{pid}/memberships/identities/{iid}"),
    ] {
        app.post(
            &format!("/v1/projects/{pid}/identity-memberships"),
            &app.admin,
            json!({"identity_id": iid}),
        )
        .await
        .expect(StatusCode::CREATED);
        let res = app.delete(&twin, &app.owner.token).await;
        let body = seed(IDENTITY, res, StatusCode::OK);
        assert_eq!(
            body["identityMembership"]["identityId"],
            json!(iid),
            "{twin}"
        );
    }
}

async fn an_internal_fault_is_a_500_with_only_a_request_id_and_rolls_back(app: TestApp) {
    let (pid, iid, _) = project_with_identity(&app).await;
    let member = app.add_member(&app.org, "member").await;
    // The audit write is the last statement of a removal: break it, and the removal before it
    // must be rolled back.
    app.sabotage("ALTER TABLE audit_events RENAME TO audit_events_away")
        .await;
    let body = seed(
        SINGLE,
        app.delete(&single(&app.org, &member.membership_id), &app.owner.token)
            .await,
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    assert_eq!(body["message"], "Something went wrong");
    assert!(
        !body.to_string().contains("audit_events"),
        "no internals leak: {body}"
    );
    seed(
        BULK,
        bulk_delete(
            &app,
            &app.org,
            Some(&app.owner.token),
            json!({"membershipIds": [member.membership_id]}),
        )
        .await,
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    seed(
        IDENTITY,
        app.delete(&identity(&pid, &iid), &app.owner.token).await,
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    app.sabotage("ALTER TABLE audit_events_away RENAME TO audit_events")
        .await;
    assert!(
        app.membership_ids(&app.org)
            .await
            .contains(&member.membership_id),
        "nothing half-done"
    );
    app.get(
        &format!("/v1/projects/{pid}/identity-memberships/{iid}"),
        &app.admin,
    )
    .await
    .expect(StatusCode::OK);
}

async fn unknown_routes_and_framework_rejections_use_the_infisical_envelope(app: TestApp) {
    for (method, path) in [
        ("GET", "/infisical/api/v9/nothing"),
        ("PUT", &*bulk(&app.org)),
    ] {
        let res = app.call(method, path, Some(&app.owner.token), None).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(res.body["error"], "NotFound");
        assert_eq!(
            res.body["reqId"].as_str(),
            res.headers["x-request-id"].to_str().ok()
        );
    }
    let big = json!({"membershipIds": vec!["0".repeat(36); 250_000]});
    let res = bulk_delete(&app, &app.org, Some(&app.owner.token), big).await;
    assert_eq!(
        (res.status, res.body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("PayloadTooLarge"))
    );
}

async fn the_sibling_endpoints_list_get_and_update_memberships(app: TestApp) {
    let org = app.org.clone();
    let member = app.add_member(&org, "member").await;
    let list = app
        .get(
            &format!("/infisical/api/v2/organizations/{org}/memberships"),
            &app.owner.token,
        )
        .await
        .expect(StatusCode::OK);
    let users = list["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    let owner = users
        .iter()
        .find(|u| u["id"] == json!(app.owner.membership_id))
        .unwrap();
    assert_eq!(owner["user"]["email"], "owner@example.com");
    let one = app
        .get(&single(&org, &member.membership_id), &app.owner.token)
        .await
        .expect(StatusCode::OK);
    assert_eq!(one["membership"]["user"]["id"], json!(member.user_id));

    let updated = app
        .patch(
            &single(&org, &member.membership_id),
            &app.owner.token,
            json!({"role": "admin", "isActive": false}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (
            updated["membership"]["role"].as_str(),
            updated["membership"]["isActive"].as_bool()
        ),
        (Some("admin"), Some(false))
    );
    let own = app
        .patch(
            &single(&org, &app.owner.membership_id),
            &app.owner.token,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(
        (own.status, own.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BadRequest"))
    );
    let unknown_field = app
        .patch(
            &single(&org, &member.membership_id),
            &app.owner.token,
            json!({"colour": "red"}),
        )
        .await;
    assert_eq!(
        (unknown_field.status, unknown_field.body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ValidationFailure"))
    );
}

async fn the_sibling_endpoints_manage_project_identity_memberships(app: TestApp) {
    let org = app.org.clone();
    let (pid, iid, _) = project_with_identity(&app).await;
    let second = app
        .post(
            &format!("/v1/organizations/{org}/identities"),
            &app.admin,
            json!({"name": "reader"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let sid = second["id"].as_str().unwrap();
    let created = app
        .post(&identity(&pid, sid), &app.owner.token, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        created["identityMembership"]["roles"][0]["role"], "no-access",
        "the default role"
    );
    let dup = app
        .post(
            &identity(&pid, sid),
            &app.owner.token,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(
        (dup.status, dup.body["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Identity is already a member of the project")
        )
    );

    let got = app
        .get(&identity(&pid, &iid), &app.owner.token)
        .await
        .expect(StatusCode::OK);
    assert_eq!(got["identityMembership"]["roles"][0]["role"], "member");
    let patched = app
        .patch(
            &identity(&pid, sid),
            &app.owner.token,
            json!({"roles": [{"role": "viewer"}]}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["roles"][0]["role"], "viewer");

    let list = app
        .get(
            &format!("/infisical/api/v1/projects/{pid}/identity-memberships?limit=1"),
            &app.owner.token,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (
            list["identityMemberships"].as_array().unwrap().len(),
            list["totalCount"].as_i64()
        ),
        (1, Some(2))
    );
    let rest = app
        .get(
            &format!("/infisical/api/v1/projects/{pid}/identity-memberships?offset=1&limit=5"),
            &app.owner.token,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(rest["identityMemberships"][0]["identityId"], json!(sid));
    let in_org = app
        .get(
            &format!("/infisical/api/v2/organizations/{org}/identity-memberships"),
            &app.owner.token,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(in_org["totalCount"], 2);
    assert_eq!(
        in_org["identityMemberships"][0]["identity"]["name"],
        "deployer"
    );
}

on_both_backends!(
    deleting_a_membership_returns_it_with_every_seed_field_and_real_values,
    a_machine_identity_token_deletes_memberships_as_itself,
    bulk_deletion_is_atomic_and_names_the_offending_id,
    malformed_requests_get_422_never_500_and_change_nothing,
    missing_or_bad_tokens_get_401_on_every_seed_endpoint,
    a_member_without_the_permission_gets_403_permission_denied,
    unknown_and_foreign_ids_get_404,
    the_rules_refuse_with_400_and_change_nothing,
    removing_an_identity_from_a_project_answers_the_seed_shape_on_every_twin,
    an_internal_fault_is_a_500_with_only_a_request_id_and_rolls_back,
    unknown_routes_and_framework_rejections_use_the_infisical_envelope,
    the_sibling_endpoints_list_get_and_update_memberships,
    the_sibling_endpoints_manage_project_identity_memberships,
);
