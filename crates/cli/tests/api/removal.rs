//! Removal: single, bulk, leave, identities from projects; guards, cascade, audit.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{TestApp, ids_of};

async fn an_admin_removes_a_member_and_their_project_memberships_go_with_them(app: TestApp) {
    let org = app.org.clone();
    let member = app.add_member(&org, "member").await;
    let pid = app.project_with(&org, "Web", &[&member]).await;

    let before = app
        .get(
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                member.membership_id
            ),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    let res = app
        .delete(
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                member.membership_id
            ),
            &app.owner.token,
        )
        .await;
    let request_id = res.headers["x-request-id"].to_str().unwrap().to_owned();
    let body = res.expect(StatusCode::OK);

    assert_eq!(
        body["removed"],
        json!([before]),
        "the removed row comes back as it was"
    );
    assert_eq!(body["project_memberships_removed"], 1);
    assert!(
        !app.membership_ids(&org)
            .await
            .contains(&member.membership_id)
    );
    let pms = app
        .get(&format!("/v1/projects/{pid}/memberships"), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        pms["data"],
        json!([]),
        "nothing is left pointing at the removed membership"
    );
    let events = app
        .get(
            &format!("/v1/organizations/{org}/audit-events?limit=500"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    let removal = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "membership.removed")
        .expect("an audit event for the removal");
    assert_eq!(removal["target_id"], json!(member.membership_id));
    assert_eq!(removal["request_id"], json!(request_id));
    assert_eq!(removal["actor_id"], json!(app.owner.user_id));
}

async fn removing_the_last_admin_is_refused_and_changes_nothing(app: TestApp) {
    let org = app.org.clone();
    let before = app.memberships(&org).await;
    let res = app
        .delete(
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                app.owner.membership_id
            ),
            &app.admin,
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.code(), "last_admin");
    assert_eq!(
        res.body["error"]["details"]["id"],
        json!(app.owner.membership_id)
    );
    assert_eq!(app.memberships(&org).await, before);
    assert!(
        !app.audit_actions(&org)
            .await
            .iter()
            .any(|(a, _)| a == "membership.removed")
    );
}

async fn demoting_or_deactivating_the_last_admin_is_refused(app: TestApp) {
    let org = app.org.clone();
    let path = format!(
        "/v1/organizations/{org}/memberships/{}",
        app.owner.membership_id
    );
    let res = app
        .patch(&path, &app.admin, json!({"role": "member"}))
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "last_admin")
    );
    let res = app
        .patch(&path, &app.admin, json!({"is_active": false}))
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "last_admin")
    );
    let m = app.get(&path, &app.admin).await.expect(StatusCode::OK);
    assert_eq!(
        (m["role"].as_str(), m["is_active"].as_bool()),
        (Some("admin"), Some(true))
    );
}

async fn a_caller_cannot_remove_themselves_through_the_admin_path_but_can_leave(app: TestApp) {
    let org = app.org.clone();
    let second = app.add_member(&org, "admin").await;
    let res = app
        .delete(
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                second.membership_id
            ),
            &second.token,
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "self_removal")
    );
    assert_eq!(
        res.body["error"]["message"],
        "You cannot remove yourself from an organization"
    );
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&second.membership_id)
    );

    let left = app
        .post(
            &format!("/v1/organizations/{org}/leave"),
            &second.token,
            json!({}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(left["removed"][0]["id"], json!(second.membership_id));
    assert!(
        !app.membership_ids(&org)
            .await
            .contains(&second.membership_id)
    );
    assert!(
        app.audit_actions(&org)
            .await
            .contains(&("membership.left".to_owned(), second.membership_id.clone()))
    );

    let res = app
        .post(
            &format!("/v1/organizations/{org}/leave"),
            &app.owner.token,
            json!({}),
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "last_admin"),
        "the last admin cannot leave"
    );
}

async fn bulk_removal_is_all_or_nothing_and_names_the_offending_id(app: TestApp) {
    let org = app.org.clone();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.add_member(&org, "member").await.membership_id);
    }
    let other_org = app.new_org("Other").await;
    let foreign = app.add_member(&other_org, "member").await.membership_id;
    let unknown = uuid::Uuid::now_v7().to_string();
    let path = format!("/v1/organizations/{org}/memberships/bulk-remove");
    let before = app.memberships(&org).await;

    for offending in [&unknown, &foreign] {
        let mut batch = ids.clone();
        batch.insert(1, offending.clone());
        let res = app
            .post(&path, &app.owner.token, json!({"membership_ids": batch}))
            .await;
        assert_eq!(
            (res.status, res.code()),
            (StatusCode::NOT_FOUND, "not_found")
        );
        assert_eq!(res.body["error"]["details"]["id"], json!(offending));
        assert_eq!(app.memberships(&org).await, before, "nothing was removed");
    }

    // Every id that names nothing is named at once (up to 100, with the count), in request
    // order, so that a leavers' list is cleaned in one round trip.
    let mut batch = ids.clone();
    batch.insert(0, foreign.clone());
    batch.push(unknown.clone());
    batch.push(foreign.clone());
    let res = app
        .post(&path, &app.owner.token, json!({"membership_ids": batch}))
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    assert_eq!(
        res.body["error"]["details"]["ids"],
        json!([foreign, unknown])
    );
    assert_eq!(res.body["error"]["details"]["count"], 2);
    let many: Vec<String> = (0..150).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let res = app
        .post(&path, &app.owner.token, json!({"membership_ids": many}))
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    assert_eq!(res.body["error"]["details"]["ids"], json!(many[..100]));
    assert_eq!(res.body["error"]["details"]["count"], 150);
    assert_eq!(app.memberships(&org).await, before, "nothing was removed");

    let mut batch = ids.clone();
    batch.push(app.owner.membership_id.clone());
    let res = app
        .post(&path, &app.owner.token, json!({"membership_ids": batch}))
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "self_removal")
    );
    assert_eq!(
        app.memberships(&org).await,
        before,
        "one rule broken, nothing removed"
    );

    let mut batch = ids.clone();
    batch.push(ids[0].clone());
    let body = app
        .post(&path, &app.owner.token, json!({"membership_ids": batch}))
        .await
        .expect(StatusCode::OK);
    let removed: Vec<_> = body["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        removed, ids,
        "duplicates are removed once, in request order"
    );
    assert_eq!(
        app.membership_ids(&org).await,
        vec![app.owner.membership_id.clone()]
    );
    let events = app.audit_actions(&org).await;
    assert_eq!(
        events
            .iter()
            .filter(|(a, _)| a == "membership.removed")
            .count(),
        3,
        "one audit event per removed membership"
    );
}

async fn bulk_removal_of_every_admin_is_refused(app: TestApp) {
    let org = app.empty_org("Admins").await;
    let a = app.add_member(&org, "admin").await;
    let b = app.add_member(&org, "admin").await;
    let res = app
        .post(
            &format!("/v1/organizations/{org}/memberships/bulk-remove"),
            &app.admin,
            json!({"membership_ids": [a.membership_id, b.membership_id]}),
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "last_admin")
    );
    // Every admin the removal would take is named, so the list is mended in one round trip.
    assert_eq!(
        res.body["error"]["details"]["ids"],
        json!([a.membership_id, b.membership_id])
    );
    assert_eq!(res.body["error"]["details"]["id"], json!(a.membership_id));
    assert_eq!(app.memberships(&org).await.len(), 2);
}

async fn credentials_of_a_removed_member_are_deleted_only_when_asked(app: TestApp) {
    let org = app.org.clone();
    let keep = app.add_member(&org, "admin").await;
    let purge = app.add_member(&org, "admin").await;
    let bystander = app.add_member(&org, "admin").await;
    for m in [&keep, &purge, &bystander] {
        app.post(
            &format!("/v1/organizations/{org}/passwords"),
            &m.token,
            json!({"name": "db"}),
        )
        .await
        .expect(StatusCode::CREATED);
        app.post(
            &format!("/v1/organizations/{org}/service-tokens"),
            &m.token,
            json!({"permissions": ["members:read"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    let owned = |list: &serde_json::Value, user: &str, field: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x[field] == json!(user))
            .count()
    };

    let body = app
        .delete(
            &format!("/v1/organizations/{org}/memberships/{}", keep.membership_id),
            &app.owner.token,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (
            body["passwords_deleted"].as_u64(),
            body["service_tokens_deleted"].as_u64()
        ),
        (Some(0), Some(0))
    );

    let res = app
        .call(
            "DELETE",
            &format!(
                "/v1/organizations/{org}/memberships/{}",
                purge.membership_id
            ),
            Some(&app.owner.token),
            Some(json!({"delete_passwords": true, "delete_service_tokens": true})),
        )
        .await;
    let body = res.expect(StatusCode::OK);
    assert_eq!(
        (
            body["passwords_deleted"].as_u64(),
            body["service_tokens_deleted"].as_u64()
        ),
        (Some(1), Some(1))
    );

    let passwords = app
        .get(&format!("/v1/organizations/{org}/passwords"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let tokens = app
        .get(
            &format!("/v1/organizations/{org}/service-tokens"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        owned(&passwords, &keep.user_id, "user_id"),
        1,
        "not asked: kept"
    );
    assert_eq!(
        owned(&tokens, &keep.user_id, "created_by"),
        1,
        "not asked: kept"
    );
    assert_eq!(owned(&passwords, &purge.user_id, "user_id"), 0);
    assert_eq!(owned(&tokens, &purge.user_id, "created_by"), 0);
    assert_eq!(
        owned(&passwords, &bystander.user_id, "user_id"),
        1,
        "nobody else's credentials"
    );
    assert_eq!(
        owned(&tokens, &bystander.user_id, "created_by"),
        1,
        "nobody else's credentials"
    );
}

async fn removing_an_identity_from_a_project_removes_only_that_membership(app: TestApp) {
    let org = app.org.clone();
    let identity = app
        .post(
            &format!("/v1/organizations/{org}/identities"),
            &app.admin,
            json!({"name": "ci", "role": "admin"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let iid = identity["id"].as_str().unwrap();
    let mut projects = Vec::new();
    for name in ["api", "web"] {
        let p = app
            .post(
                &format!("/v1/organizations/{org}/projects"),
                &app.admin,
                json!({"name": name}),
            )
            .await
            .expect(StatusCode::CREATED);
        let pid = p["id"].as_str().unwrap().to_owned();
        app.post(
            &format!("/v1/projects/{pid}/identity-memberships"),
            &app.admin,
            json!({"identity_id": iid, "role": "member"}),
        )
        .await
        .expect(StatusCode::CREATED);
        projects.push(pid);
    }
    let token = app
        .post(
            &format!("/v1/identities/{iid}/tokens"),
            &app.admin,
            json!({"name": "ci"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let token = token["token"].as_str().unwrap();

    let res = app
        .delete(
            &format!("/v1/projects/{}/identity-memberships/{iid}", projects[0]),
            token,
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "self_removal"),
        "an identity cannot remove itself"
    );

    let removed = app
        .delete(
            &format!("/v1/projects/{}/identity-memberships/{iid}", projects[0]),
            &app.owner.token,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(removed["identity_id"], json!(iid));
    assert_eq!(removed["project_id"], json!(projects[0]));
    app.get(
        &format!("/v1/projects/{}/identity-memberships/{iid}", projects[0]),
        &app.admin,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
    app.get(
        &format!("/v1/projects/{}/identity-memberships/{iid}", projects[1]),
        &app.admin,
    )
    .await
    .expect(StatusCode::OK);
    app.get(&format!("/v1/identities/{iid}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    app.get(&format!("/v1/organizations/{org}"), token)
        .await
        .expect(StatusCode::OK);
    let again = app
        .delete(
            &format!("/v1/projects/{}/identity-memberships/{iid}", projects[0]),
            &app.owner.token,
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

async fn an_identity_token_removes_members_as_itself(app: TestApp) {
    let org = app.org.clone();
    let identity = app
        .post(
            &format!("/v1/organizations/{org}/identities"),
            &app.admin,
            json!({"name": "bot", "role": "admin"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let iid = identity["id"].as_str().unwrap();
    let token = app
        .post(
            &format!("/v1/identities/{iid}/tokens"),
            &app.admin,
            json!({"name": "bot"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let member = app.add_member(&org, "member").await;
    app.delete(
        &format!(
            "/v1/organizations/{org}/memberships/{}",
            member.membership_id
        ),
        token["token"].as_str().unwrap(),
    )
    .await
    .expect(StatusCode::OK);
    assert!(
        !app.membership_ids(&org)
            .await
            .contains(&member.membership_id),
        "really removed"
    );
    let events = app
        .get(
            &format!("/v1/organizations/{org}/audit-events?limit=500"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    let e = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "membership.removed")
        .unwrap();
    assert_eq!(
        (e["actor_kind"].as_str(), e["actor_id"].as_str()),
        (Some("identity"), Some(iid))
    );
}

async fn a_deleted_user_leaves_every_organization_but_not_as_a_last_admin(app: TestApp) {
    let other = app.empty_org("Second").await;
    let user = app.add_member(&app.org, "member").await;
    app.make_member(&other, &user.user_id, "admin").await;
    let res = app
        .delete(&format!("/v1/users/{}", user.user_id), &app.admin)
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "last_admin")
    );
    assert_eq!(app.memberships(&other).await.len(), 1);

    app.add_member(&other, "admin").await;
    app.delete(&format!("/v1/users/{}", user.user_id), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(app.memberships(&app.org).await.len(), 1);
    assert_eq!(app.memberships(&other).await.len(), 1);
    let res = app
        .get(&format!("/v1/organizations/{}", app.org), &user.token)
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNAUTHORIZED,
        "the deleted user's tokens went with them"
    );
}

/// More members than one part of a written-in-parts answer (`roster_http::json_parts`), through
/// the native and the Infisical bulk removal: each answer lists every removed member, in the
/// order asked, and the member count follows.
async fn a_bulk_removal_answered_in_parts_lists_every_removed_member_in_order(app: TestApp) {
    let org = app.new_org("Many").await;
    let parts = 2 * (roster_http::json_parts::ITEMS_A_PART + 3);
    let mut ids = app.add_users_as_members(&org, "member", parts).await;
    // Not the order they were made in: the answer follows the request.
    ids.reverse();
    let (native, infisical) = ids.split_at(ids.len() / 2);

    let body = app
        .post(
            &format!("/v1/organizations/{org}/memberships/bulk-remove"),
            &app.admin,
            json!({"membership_ids": native}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids_of(&body["removed"]), native);
    assert_eq!(body["project_memberships_removed"], json!(0));

    let res = app
        .call(
            "DELETE",
            &format!("/infisical/api/v2/organizations/{org}/memberships"),
            Some(&app.admin),
            Some(json!({"membershipIds": infisical})),
        )
        .await;
    let body = res.expect(StatusCode::OK);
    assert_eq!(ids_of(&body["memberships"]), infisical);
    assert!(
        app.memberships(&org).await.iter().all(|m| {
            let id = m["id"].as_str().unwrap();
            !ids.iter().any(|i| i == id)
        }),
        "every named member is gone"
    );
}

/// A large removal reads its targets a thousand at a time: a membership named again in another
/// thousand than its first is read twice, and must still be removed, answered and recorded
/// once, where it was first named.
async fn a_membership_named_twice_a_thousand_ids_apart_is_removed_once(app: TestApp) {
    let org = app.empty_org("Named twice").await;
    let ids = app.add_users_as_members(&org, "member", 1_005).await;
    let mut named = ids.clone();
    named.extend([ids[0].clone(), ids[3].clone(), ids[1_004].clone()]);
    let body = app
        .post(
            &format!("/v1/organizations/{org}/memberships/bulk-remove"),
            &app.admin,
            json!({"membership_ids": named}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids_of(&body["removed"]), ids);
    assert!(app.memberships(&org).await.is_empty());
    // Every page of the audit trail: one event a removed membership.
    let mut recorded = app.audited(&org, "membership.removed").await;
    recorded.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(recorded, expected);
}

on_both_backends!(
    a_membership_named_twice_a_thousand_ids_apart_is_removed_once,
    a_bulk_removal_answered_in_parts_lists_every_removed_member_in_order,
    an_admin_removes_a_member_and_their_project_memberships_go_with_them,
    removing_the_last_admin_is_refused_and_changes_nothing,
    demoting_or_deactivating_the_last_admin_is_refused,
    a_caller_cannot_remove_themselves_through_the_admin_path_but_can_leave,
    bulk_removal_is_all_or_nothing_and_names_the_offending_id,
    bulk_removal_of_every_admin_is_refused,
    credentials_of_a_removed_member_are_deleted_only_when_asked,
    removing_an_identity_from_a_project_removes_only_that_membership,
    an_identity_token_removes_members_as_itself,
    a_deleted_user_leaves_every_organization_but_not_as_a_last_admin,
);
