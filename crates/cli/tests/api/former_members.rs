//! Former members: every removal, through any mount, keeps a record of what it removed, in its
//! own transaction; reinstating brings the membership back under its old id with its role and
//! its project memberships; records are purged on demand, when their window closes, and with
//! the person.

use std::time::Duration;

use axum::http::StatusCode;
use roster_core::Roster;
use serde_json::{Value, json};

use crate::harness::TestApp;

fn former(org: &str) -> String {
    format!("/v1/organizations/{org}/former-members")
}

/// The path of `membership_id`'s record in `org`.
fn record_path(org: &str, membership_id: &str) -> String {
    format!("{}/{membership_id}", former(org))
}

async fn a_removal_through_each_mount_leaves_a_former_member_who_comes_back_whole(app: TestApp) {
    let org = app.org.clone();
    let slug = app.slug(&org).await;
    let clerk_org = roster_dialect_clerk::ids::encode("org", org.parse().unwrap());
    for mount in ["native", "infisical", "clerk", "planetscale"] {
        let member = app.add_member(&org, "admin").await;
        let project = app.project_with(&org, mount, &[&member]).await;
        let path = match mount {
            "native" => format!(
                "/v1/organizations/{org}/memberships/{}",
                member.membership_id
            ),
            "infisical" => format!(
                "/infisical/api/v2/organizations/{org}/memberships/{}",
                member.membership_id
            ),
            "clerk" => format!(
                "/clerk/v1/organizations/{clerk_org}/memberships/{}",
                roster_dialect_clerk::ids::encode("user", member.user_id.parse().unwrap())
            ),
            _ => format!(
                "/planetscale/v1/organizations/{slug}/members/{}",
                member.user_id
            ),
        };
        let res = app.delete(&path, &app.owner.token).await;
        assert!(
            res.status.is_success(),
            "{mount}: {} {}",
            res.status,
            res.body
        );
        assert_eq!(
            app.get(&format!("/v1/organizations/{org}"), &member.token)
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{mount}: removed, their token no longer sees the organization"
        );

        let record = app
            .get(&record_path(&org, &member.membership_id), &app.admin)
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            record["membership"]["user_id"],
            json!(member.user_id),
            "{mount}"
        );
        assert_eq!(record["membership"]["role"], "admin");
        assert_eq!(
            record["project_memberships"][0]["project_id"],
            json!(project)
        );
        assert_eq!(record["project_memberships"][0]["role"], "member");
        assert_eq!(record["removed_by"]["id"], json!(app.owner.user_id));

        let back = app
            .post(
                &format!("{}/reinstate", record_path(&org, &member.membership_id)),
                &app.admin,
                json!({}),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            back["membership"]["id"],
            json!(member.membership_id),
            "{mount}"
        );
        assert_eq!(back["membership"]["role"], "admin");
        assert_eq!(back["role_fell_back"], json!(false));
        assert_eq!(back["project_memberships"][0]["project_id"], json!(project));
        // Their token works at once, and the record is gone.
        app.get(&format!("/v1/organizations/{org}"), &member.token)
            .await
            .expect(StatusCode::OK);
        let members = app
            .get(&format!("/v1/projects/{project}/memberships"), &app.admin)
            .await
            .expect(StatusCode::OK);
        assert_eq!(members["data"][0]["user_id"], json!(member.user_id));
        app.get(&record_path(&org, &member.membership_id), &app.admin)
            .await
            .expect(StatusCode::NOT_FOUND);
    }
    let created = app.audited(&org, "membership.reinstated").await;
    assert_eq!(created.len(), 4);
}

async fn a_reinstatement_is_refused_when_the_user_is_back_and_falls_back_to_member(app: TestApp) {
    let org = app.new_org("Refusals").await;
    let member = app.add_member(&org, "member").await;
    let remove = |m: String| {
        let app = &app;
        let org = org.clone();
        async move {
            app.delete(
                &format!("/v1/organizations/{org}/memberships/{m}"),
                &app.admin,
            )
            .await
            .expect(StatusCode::OK)
        }
    };
    remove(member.membership_id.clone()).await;
    // Added again meanwhile: the old membership cannot come back beside the new one.
    let again = app.make_member(&org, &member.user_id, "member").await;
    let res = app
        .post(
            &format!("{}/reinstate", record_path(&org, &member.membership_id)),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::CONFLICT, "already_a_member")
    );
    remove(again).await;

    // A role deleted meanwhile: back as member, and the answer says so.
    app.post(
        &format!("/v1/organizations/{org}/roles"),
        &app.admin,
        json!({"key": "auditor", "name": "Auditor", "permissions": ["audit:read"]}),
    )
    .await
    .expect(StatusCode::CREATED);
    let auditor = app.add_member(&org, "auditor").await;
    remove(auditor.membership_id.clone()).await;
    let roles = app
        .get(&format!("/v1/organizations/{org}/roles"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let role_id = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "auditor")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(
        &format!("/v1/organizations/{org}/roles/{role_id}"),
        &app.admin,
    )
    .await
    .expect(StatusCode::OK);
    let back = app
        .post(
            &format!("{}/reinstate", record_path(&org, &auditor.membership_id)),
            &app.admin,
            json!({}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(back["membership"]["role"], "member");
    assert_eq!(back["role_fell_back"], json!(true));

    // A plain member may not reinstate anyone.
    let other = app.add_member(&org, "member").await;
    remove(other.membership_id.clone()).await;
    let res = app
        .post(
            &format!("{}/reinstate", record_path(&org, &other.membership_id)),
            &auditor.token,
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

async fn records_are_listed_purged_and_gone_with_the_person_or_their_window(app: TestApp) {
    let org = app.new_org("Purges").await;
    let [a, b, c] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    app.post(
        &format!("/v1/organizations/{org}/memberships/bulk-remove"),
        &app.admin,
        json!({"membership_ids": [a.membership_id, b.membership_id, c.membership_id]}),
    )
    .await
    .expect(StatusCode::OK);
    let ids = |list: &Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["membership"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = app
        .get(&former(&org), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&all).len(), 3);
    let by_user = app
        .get(
            &format!("{}?user_id={}", former(&org), b.user_id),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&by_user), [b.membership_id.as_str()]);
    let email = app
        .get(&format!("/v1/users/{}", c.user_id), &app.admin)
        .await
        .expect(StatusCode::OK)["email"]
        .as_str()
        .unwrap()
        .to_uppercase();
    let by_email = app
        .get(&format!("{}?email={email}", former(&org)), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&by_email), [c.membership_id.as_str()]);

    // Purged by hand.
    app.delete(&record_path(&org, &a.membership_id), &app.admin)
        .await
        .expect(StatusCode::OK);
    // Gone with the person.
    app.delete(&format!("/v1/users/{}", b.user_id), &app.admin)
        .await
        .expect(StatusCode::OK);
    let left = app
        .get(&former(&org), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&left), [c.membership_id.as_str()]);

    // Past its window: purged by the server's sweep.
    app.sabotage("UPDATE former_members SET expires_at = 0")
        .await;
    let purged = Roster::new(app.store.clone())
        .purge_expired_former_members()
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let none = app
        .get(&former(&org), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&none), Vec::<String>::new());
}

/// A dry run keeps no record; a retention set on the server is the window a record gets, and
/// a retention of zero keeps none.
async fn a_record_is_kept_for_the_retention_the_server_was_given(mut app: TestApp) {
    let org = app.new_org("Window").await;
    let member = app.add_member(&org, "member").await;
    let path = format!(
        "/v1/organizations/{org}/memberships/{}",
        member.membership_id
    );
    app.delete(&format!("{path}?dry_run=true"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let none = app
        .get(&former(&org), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(none["data"], json!([]), "a dry run keeps nothing");
    let roster = Roster::new(app.store.clone())
        .with_former_member_retention(Duration::from_secs(7 * 24 * 3600));
    app.router = roster::app_over(roster);
    app.delete(&path, &app.admin).await.expect(StatusCode::OK);
    let record = app
        .get(&record_path(&org, &member.membership_id), &app.admin)
        .await
        .expect(StatusCode::OK);
    let at = |field: &str| {
        roster_core::Timestamp::parse_rfc3339(record[field].as_str().unwrap())
            .unwrap()
            .millis()
    };
    assert_eq!(at("expires_at") - at("removed_at"), 7 * 24 * 3600 * 1000);

    // A retention of zero keeps none.
    let other = app.add_member(&org, "member").await;
    app.router = roster::app_over(
        Roster::new(app.store.clone()).with_former_member_retention(Duration::ZERO),
    );
    app.remove_member(&org, &other.membership_id).await;
    app.get(&record_path(&org, &other.membership_id), &app.admin)
        .await
        .expect(StatusCode::NOT_FOUND);
}

/// A record names its removal's event, which holds its details; a record written before
/// records did so keeps a copy of its own, and reads as it was written.
async fn a_record_is_read_from_its_removal_event_or_from_its_own_older_copy(app: TestApp) {
    let org = app.new_org("Older records").await;
    let member = app.add_member(&org, "member").await;
    app.project_with(&org, "Kept", &[&member]).await;
    app.remove_member(&org, &member.membership_id).await;
    let (org_id, id) = (org.parse().unwrap(), member.membership_id.parse().unwrap());
    let read = || async {
        let mut s = app.store.read().await.unwrap();
        s.former_member(org_id, id).await.unwrap().unwrap()
    };
    let named = read().await;
    let event = named.removal_event.expect("a new record names its event");
    assert_eq!(named.membership.id, id);
    assert_eq!(
        named.project_memberships.len(),
        1,
        "the cascade, read from the event"
    );
    let events = app
        .get(
            &format!("/v1/organizations/{org}/events?type=membership.removed"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(events["data"][0]["id"], json!(event.to_string()));

    let older = roster_core::model::FormerMember {
        removal_event: None,
        ..named.clone()
    };
    let mut tx = app.store.begin().await.unwrap();
    tx.delete_former_member(org_id, id).await.unwrap();
    tx.insert_removal_records(&[], std::slice::from_ref(&older), &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(read().await, older, "the older record's own copy");
    let shown = app
        .get(&record_path(&org, &member.membership_id), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(shown["membership"]["role"], json!("member"), "{shown}");
}

on_both_backends!(
    a_record_is_read_from_its_removal_event_or_from_its_own_older_copy,
    a_removal_through_each_mount_leaves_a_former_member_who_comes_back_whole,
    a_reinstatement_is_refused_when_the_user_is_back_and_falls_back_to_member,
    records_are_listed_purged_and_gone_with_the_person_or_their_window,
    a_record_is_kept_for_the_retention_the_server_was_given,
);
