//! Membership events: each committed change writes its events in its own transaction, a
//! refused or failed one writes none, and the organization's events list reads them back.

use std::sync::Arc;

use axum::http::StatusCode;
use roster_core::events::{EventFilter, EventType};
use roster_core::ids::OrganizationId;
use roster_core::model::Page;
use serde_json::{Value, json};

use crate::harness::TestApp;

/// Every event of `org`, oldest first, read a page of two at a time through the API.
async fn events(app: &TestApp, org: &str) -> Vec<Value> {
    let (mut all, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let after = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = app
            .get(
                &format!("/v1/organizations/{org}/events?limit=2{after}"),
                &app.admin,
            )
            .await
            .expect(StatusCode::OK);
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

/// (type, object id) of each event.
fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["data"]["object"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The events written since `before` events were there.
async fn new_events(app: &TestApp, org: &str, before: usize) -> Vec<(String, String)> {
    kinds(&events(app, org).await[before..])
}

fn ev(kind: &str, id: &str) -> (String, String) {
    (kind.to_owned(), id.to_owned())
}

async fn each_membership_change_writes_its_event_and_a_refused_one_writes_none(app: TestApp) {
    let first_admin = app.new_user("first@example.com").await;
    let created = app
        .post(
            "/v1/organizations",
            &app.admin,
            json!({"name": "Events", "created_by": first_admin}),
        )
        .await
        .expect(StatusCode::CREATED);
    let org = created["id"].as_str().unwrap().to_owned();
    let all = events(&app, &org).await;
    let first_membership = app.membership_ids(&org).await.remove(0);
    assert_eq!(
        kinds(&all),
        [
            ev("organization.created", &org),
            ev("membership.created", &first_membership)
        ]
    );
    let e = &all[1];
    assert_eq!(e["data"]["object"]["user_id"], json!(first_admin));
    assert_eq!(e["data"]["object"]["role"], "admin");
    assert_eq!(e["data"]["organization_id"], json!(org));
    assert_eq!(e["data"]["actor"]["kind"], "admin_key");
    assert!(e["data"]["request_id"].is_string());
    assert!(e["data"].get("cascade").is_none());
    assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));

    // Added, invited, accepted: created each time.
    let n = all.len();
    let member = app.add_member(&org, "member").await;
    let invited = app.invite(&org, "invitee@example.com").await;
    let invitation = invited["id"].as_str().unwrap().to_owned();
    let invitee = app.new_user("invitee@example.com").await;
    let invitee_token = app.token_for(&invitee).await;
    app.post(
        &format!("/v1/organizations/{org}/memberships/{invitation}/accept"),
        &invitee_token,
        json!({}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        new_events(&app, &org, n).await,
        [
            ev("membership.created", &member.membership_id),
            ev("membership.created", &invitation),
            ev("membership.created", &invitation),
        ]
    );
    let all = events(&app, &org).await;
    assert_eq!(all[n + 1]["data"]["object"]["user_id"], Value::Null);
    assert_eq!(all[n + 2]["data"]["object"]["user_id"], json!(invitee));

    // Updated when something changed; a patch that changes nothing writes nothing.
    let n = all.len();
    let path = format!(
        "/v1/organizations/{org}/memberships/{}",
        member.membership_id
    );
    for role in ["admin", "admin"] {
        app.patch(&path, &app.admin, json!({"role": role}))
            .await
            .expect(StatusCode::OK);
    }
    app.patch(
        &format!("/v1/organizations/{org}"),
        &app.admin,
        json!({"name": "Events Ltd"}),
    )
    .await
    .expect(StatusCode::OK);
    app.patch(
        &format!("/v1/users/{}", member.user_id),
        &app.admin,
        json!({"first_name": "Ada"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        new_events(&app, &org, n).await,
        [
            ev("membership.updated", &member.membership_id),
            ev("organization.updated", &org),
            ev("user.updated", &member.user_id),
        ]
    );
    let all = events(&app, &org).await;
    assert_eq!(all[n]["data"]["object"]["role"], "admin");
    assert_eq!(all[n + 1]["data"]["object"]["name"], "Events Ltd");
    assert_eq!(all[n + 2]["data"]["object"]["first_name"], "Ada");

    // Refused: a plain member removing or demoting an admin, and the deactivation of the last
    // active admin. No event.
    let n = all.len();
    let plain = app.add_member(&org, "member").await;
    let n = n + 1;
    for res in [
        app.delete(&path, &plain.token).await,
        app.patch(
            &format!("/v1/organizations/{org}/memberships/{first_membership}"),
            &plain.token,
            json!({"role": "member"}),
        )
        .await,
    ] {
        assert!(res.status.is_client_error(), "{:?}", res.body);
    }
    app.patch(&path, &app.admin, json!({"role": "member"}))
        .await
        .expect(StatusCode::OK);
    let refused = app
        .patch(
            &format!("/v1/organizations/{org}/memberships/{first_membership}"),
            &app.admin,
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(
        new_events(&app, &org, n).await,
        [ev("membership.updated", &member.membership_id)],
        "the refusals wrote nothing"
    );
}

async fn removals_write_one_removed_event_each_with_what_the_cascade_took(app: TestApp) {
    let org = app.new_org("Removals").await;
    let members = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let project = app
        .project_with(&org, "vault", &[&members[0], &members[1]])
        .await;
    let n = events(&app, &org).await.len();
    let bulk = format!("/v1/organizations/{org}/memberships/bulk-remove");

    // A bulk with one id that names nothing removes nothing and writes nothing.
    let unknown = uuid::Uuid::now_v7().to_string();
    app.post(
        &bulk,
        &app.admin,
        json!({"membership_ids": [members[0].membership_id, unknown]}),
    )
    .await
    .expect(StatusCode::NOT_FOUND);
    assert_eq!(events(&app, &org).await.len(), n);

    // A bulk of two: two events, each with its own member's share of the cascade.
    app.post(
        &bulk,
        &app.admin,
        json!({"membership_ids": [members[0].membership_id, members[2].membership_id]}),
    )
    .await
    .expect(StatusCode::OK);
    // One removed alone, one leaving.
    app.remove_member(&org, &members[1].membership_id).await;
    app.post(
        &format!("/v1/organizations/{org}/leave"),
        &members[3].token,
        json!({}),
    )
    .await
    .expect(StatusCode::OK);
    let all = events(&app, &org).await;
    assert_eq!(
        kinds(&all[n..]),
        [
            ev("membership.removed", &members[0].membership_id),
            ev("membership.removed", &members[2].membership_id),
            ev("membership.removed", &members[1].membership_id),
            ev("membership.removed", &members[3].membership_id),
        ]
    );
    let cascade = |i: usize| &all[n + i]["data"]["cascade"];
    let in_project = |c: &Value| {
        let pms = c["project_memberships"].as_array().unwrap();
        pms.iter()
            .map(|p| p["project_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(in_project(cascade(0)), [project.as_str()]);
    assert_eq!(in_project(cascade(1)), Vec::<String>::new());
    assert_eq!(in_project(cascade(2)), [project.as_str()]);
    assert_eq!(cascade(0)["passwords"], json!([]));
    assert_eq!(
        all[n + 3]["data"]["actor"],
        json!({"kind": "user", "id": members[3].user_id})
    );
    assert_eq!(
        all[n]["data"]["object"]["user_id"],
        json!(members[0].user_id)
    );
}

/// Removals that group commit runs together in one transaction each keep their own events;
/// those refused in the same batch write none.
async fn removals_sharing_a_transaction_write_exactly_their_own_events(app: TestApp) {
    let app = Arc::new(app);
    let org = app.new_org("Batched").await;
    let ids = app.add_users_as_members(&org, "member", 24).await;
    let n = events(&app, &org).await.len();
    let unknown: Vec<String> = (0..8).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let tasks: Vec<_> = ids
        .iter()
        .chain(&unknown)
        .map(|id| {
            let (app, path) = (
                app.clone(),
                format!("/v1/organizations/{org}/memberships/{id}"),
            );
            let id = id.clone();
            tokio::spawn(async move { (id, app.delete(&path, &app.admin).await.status) })
        })
        .collect();
    for task in tasks {
        let (id, status) = task.await.unwrap();
        let expected = if ids.contains(&id) {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(status, expected, "{id}");
    }
    let mut removed: Vec<String> = kinds(&events(&app, &org).await[n..])
        .into_iter()
        .map(|(kind, id)| {
            assert_eq!(kind, "membership.removed");
            id
        })
        .collect();
    removed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        removed, expected,
        "one event per removal, none for the refused"
    );
}

async fn identity_and_user_lifecycles_write_their_events(app: TestApp) {
    let org = app.new_org("Machines").await;
    let project = app.project_with(&org, "ci", &[]).await;
    let identity = app.new_identity(&org, "deployer").await;
    let n = events(&app, &org).await.len();
    let ipm = app.add_identity_to_project(&project, &identity).await;
    app.delete(
        &format!("/v1/projects/{project}/identity-memberships/{identity}"),
        &app.admin,
    )
    .await
    .expect(StatusCode::OK);
    // Back in the project, it leaves it again when the identity is deleted, and another
    // identity when its project is.
    let again = app.add_identity_to_project(&project, &identity).await;
    app.delete(&format!("/v1/identities/{identity}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let other = app.new_identity(&org, "builder").await;
    let builds = app.add_identity_to_project(&project, &other).await;
    app.delete(&format!("/v1/projects/{project}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let member = app.add_member(&org, "member").await;
    app.delete(&format!("/v1/users/{}", member.user_id), &app.admin)
        .await
        .expect(StatusCode::OK);
    let all = events(&app, &org).await;
    assert_eq!(
        kinds(&all[n..]),
        [
            ev("identity_membership.created", &ipm),
            ev("identity_membership.removed", &ipm),
            ev("identity_membership.created", &again),
            ev("identity_membership.removed", &again),
            ev("identity_membership.created", &builds),
            ev("identity_membership.removed", &builds),
            ev("membership.created", &member.membership_id),
            ev("membership.removed", &member.membership_id),
            ev("user.deleted", &member.user_id),
        ]
    );
    assert_eq!(all[n]["data"]["object"]["identity_id"], json!(identity));

    // An organization's deletion is its last event, kept after the organization is gone.
    app.delete(&format!("/v1/organizations/{org}"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let mut s = app.store.read().await.unwrap();
    let stored = s
        .list_events(
            org.parse::<OrganizationId>().unwrap(),
            &EventFilter::default(),
            Page {
                limit: 500,
                ..Page::default()
            },
        )
        .await
        .unwrap();
    let last = stored.last().unwrap();
    assert_eq!(last.event_type, EventType::OrganizationDeleted);
    assert_eq!(stored.len(), all.len() + 1);
}

async fn the_events_list_filters_by_type_pages_both_ways_and_needs_its_permission(app: TestApp) {
    let org = app.new_org("Listing").await;
    let members = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    for m in &members {
        app.remove_member(&org, &m.membership_id).await;
    }
    let removed = app
        .get(
            &format!("/v1/organizations/{org}/events?type=membership.removed"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        kinds(removed["data"].as_array().unwrap()),
        [
            ev("membership.removed", &members[0].membership_id),
            ev("membership.removed", &members[1].membership_id),
        ]
    );
    let newest = app
        .get(
            &format!("/v1/organizations/{org}/events?order=desc&limit=1"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        kinds(newest["data"].as_array().unwrap()),
        [ev("membership.removed", &members[1].membership_id)]
    );
    let older = app
        .get(
            &format!(
                "/v1/organizations/{org}/events?order=desc&limit=1&cursor={}",
                newest["next_cursor"].as_str().unwrap()
            ),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        kinds(older["data"].as_array().unwrap()),
        [ev("membership.removed", &members[0].membership_id)]
    );
    let bad = app
        .get(
            &format!("/v1/organizations/{org}/events?type=membership.deleted"),
            &app.admin,
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );

    // A plain member may not read them; a role with events:read may, without private metadata.
    let plain = app.add_member(&org, "member").await;
    let res = app
        .get(&format!("/v1/organizations/{org}/events"), &plain.token)
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    app.post(
        &format!("/v1/organizations/{org}/roles"),
        &app.admin,
        json!({"key": "watcher", "name": "Watcher", "permissions": ["events:read"]}),
    )
    .await
    .expect(StatusCode::CREATED);
    let watcher = app.add_member(&org, "watcher").await;
    app.patch(
        &format!("/v1/organizations/{org}"),
        &app.admin,
        json!({"private_metadata": {"plan": "secret-plan"}}),
    )
    .await
    .expect(StatusCode::OK);
    let seen = app
        .get(
            &format!("/v1/organizations/{org}/events?type=organization.updated"),
            &watcher.token,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        seen["data"][0]["data"]["object"]["private_metadata"],
        json!({})
    );
    let admin_seen = app
        .get(
            &format!("/v1/organizations/{org}/events?type=organization.updated"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        admin_seen["data"][0]["data"]["object"]["private_metadata"],
        json!({"plan": "secret-plan"})
    );
}

on_both_backends!(
    each_membership_change_writes_its_event_and_a_refused_one_writes_none,
    removals_write_one_removed_event_each_with_what_the_cascade_took,
    removals_sharing_a_transaction_write_exactly_their_own_events,
    identity_and_user_lifecycles_write_their_events,
    the_events_list_filters_by_type_pages_both_ways_and_needs_its_permission,
);
