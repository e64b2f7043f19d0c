//! The audit trail as an offboarding admin reads it: what each change changed, filters and
//! both orders, and the instance-wide log of what belongs to no organization.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestApp;

/// Every event a query gives, walking its pages.
async fn all_events(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let (mut events, mut cursor) = (Vec::new(), None::<String>);
    let joiner = if path.contains('?') { '&' } else { '?' };
    loop {
        let after = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = app
            .get(&format!("{path}{joiner}limit=2{after}"), token)
            .await
            .expect(StatusCode::OK);
        events.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return events,
        }
    }
}

fn ids(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["id"].as_str().unwrap()).collect()
}

/// Updates record what they changed and nothing else (never private metadata's values); an
/// invitation records its address.
async fn audit_events_record_what_changed(app: TestApp) {
    let org = app.org.clone();
    app.patch(
        &format!("/v1/organizations/{org}"),
        &app.admin,
        json!({"name": "Acme Ltd", "admin_delete_enabled": true,
               "private_metadata": {"secret": "s3cr3t-value"}}),
    )
    .await
    .expect(StatusCode::OK);
    let updated = all_events(
        &app,
        &format!("/v1/organizations/{org}/audit-events?action=organization.updated"),
        &app.admin,
    )
    .await;
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0]["details"],
        json!({"name": {"from": "Acme", "to": "Acme Ltd"}, "private_metadata": {"changed": true}}),
        "admin_delete_enabled was already true: not named"
    );
    assert!(!updated[0].to_string().contains("s3cr3t-value"));

    let member = app.add_member(&org, "member").await;
    app.patch(
        &format!(
            "/v1/organizations/{org}/memberships/{}",
            member.membership_id
        ),
        &app.admin,
        json!({"role": "admin", "is_active": true}),
    )
    .await
    .expect(StatusCode::OK);
    let changed = all_events(
        &app,
        &format!(
            "/v1/organizations/{org}/audit-events?action=membership.updated&target_id={}",
            member.membership_id
        ),
        &app.admin,
    )
    .await;
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0]["details"],
        json!({"role": {"from": "member", "to": "admin"}})
    );

    let invited = app.invite(&org, "gina@example.com").await;
    let events = all_events(
        &app,
        &format!("/v1/organizations/{org}/audit-events?action=membership.invited"),
        &app.admin,
    )
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["target_id"], invited["id"]);
    assert_eq!(events[0]["details"]["invite_email"], "gina@example.com");
}

/// The log pages oldest first or newest first (`order=desc`), the same events each way, and
/// filters by action, actor, target and time.
async fn the_audit_log_is_filtered_and_read_in_either_order(app: TestApp) {
    let org = app.org.clone();
    let admin = app.add_member(&org, "admin").await;
    let mut removed = Vec::new();
    for _ in 0..3 {
        let m = app.add_member(&org, "member").await;
        app.delete(
            &format!("/v1/organizations/{org}/memberships/{}", m.membership_id),
            &admin.token,
        )
        .await
        .expect(StatusCode::OK);
        removed.push(m.membership_id);
    }
    let base = format!("/v1/organizations/{org}/audit-events");
    let oldest_first = all_events(&app, &base, &app.admin).await;
    let mut newest_first = all_events(&app, &format!("{base}?order=desc"), &app.admin).await;
    assert!(oldest_first.len() > 6);
    newest_first.reverse();
    assert_eq!(ids(&oldest_first), ids(&newest_first));

    let by_admin = all_events(
        &app,
        &format!(
            "{base}?action=membership.removed&actor_id={}",
            admin.user_id
        ),
        &app.admin,
    )
    .await;
    let targets: Vec<&str> = by_admin
        .iter()
        .map(|e| e["target_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        removed.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let by_owner = all_events(
        &app,
        &format!(
            "{base}?action=membership.removed&actor_id={}",
            app.owner.user_id
        ),
        &app.admin,
    )
    .await;
    assert!(by_owner.is_empty());

    let last = &oldest_first[oldest_first.len() - 1];
    let at = last["created_at"].as_str().unwrap();
    let since = all_events(&app, &format!("{base}?since={at}"), &app.admin).await;
    assert!(ids(&since).contains(&last["id"].as_str().unwrap()));
    let until = all_events(&app, &format!("{base}?until={at}"), &app.admin).await;
    assert!(!ids(&until).contains(&last["id"].as_str().unwrap()));
    assert_eq!(
        since.len() + until.len(),
        oldest_first.len(),
        "the two ranges part the log"
    );

    for bad in [
        "order=sideways",
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
    ] {
        let res = app.get(&format!("{base}?{bad}"), &app.admin).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}: {}", res.body);
    }
}

/// What belongs to no organization (users, their tokens, admin keys) is in the instance-wide
/// log, for instance admins only.
async fn the_instance_log_shows_what_belongs_to_no_organization(app: TestApp) {
    let user = app.new_user("hank@example.com").await;
    app.token_for(&user).await;
    let key = roster_core::Roster::new(app.store.clone())
        .create_admin_key("spare")
        .await
        .unwrap();
    app.delete(&format!("/v1/admin-keys/{}", key.token.id), &app.admin)
        .await
        .expect(StatusCode::OK);
    let events = all_events(&app, "/v1/audit-events?order=desc", &app.admin).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "user.created",
        "user_token.created",
        "admin_key.created",
        "admin_key.revoked",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert_eq!(actions[0], "admin_key.revoked", "newest first");
    assert!(
        actions.contains(&"organization.created"),
        "organizations' events are there too"
    );
    let created = all_events(
        &app,
        &format!("/v1/audit-events?action=user.created&target_id={user}"),
        &app.admin,
    )
    .await;
    assert_eq!(created.len(), 1);
    assert!(created[0]["organization_id"].is_null());

    let res = app.get("/v1/audit-events", &app.owner.token).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
}

/// A removal's audit event names what its cascade deleted of that member's: project
/// memberships, and the passwords and service tokens asked to go with them. Both a plain removal
/// (decided with others in memory) and one with credential deletion (run on its own) say it.
async fn a_removal_is_audited_with_what_its_cascade_deleted(app: TestApp) {
    let org = app.org.clone();
    let plain = app.add_member(&org, "member").await;
    let purged = app.add_member(&org, "admin").await;
    let web = app.project_with(&org, "Web", &[&plain, &purged]).await;
    let api = app.project_with(&org, "Api", &[&purged]).await;
    let password = app
        .post(
            &format!("/v1/organizations/{org}/passwords"),
            &purged.token,
            json!({"name": "db"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let token = app
        .post(
            &format!("/v1/organizations/{org}/service-tokens"),
            &purged.token,
            json!({"permissions": ["members:read"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    let pm_of = |pid: &str, user: &str| {
        let app = &app;
        let (pid, user) = (pid.to_owned(), user.to_owned());
        async move {
            let list = app
                .get(&format!("/v1/projects/{pid}/memberships"), &app.admin)
                .await
                .expect(StatusCode::OK);
            let pm = list["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|pm| pm["user_id"] == json!(user))
                .unwrap()
                .clone();
            json!({"id": pm["id"], "project_id": pid})
        }
    };
    let plain_in_web = pm_of(&web, &plain.user_id).await;
    let mut purged_in = vec![
        pm_of(&web, &purged.user_id).await,
        pm_of(&api, &purged.user_id).await,
    ];
    purged_in.sort_by_key(|pm| pm["id"].as_str().unwrap().to_owned());

    let member_path = |m: &str| format!("/v1/organizations/{org}/memberships/{m}");
    app.delete(&member_path(&plain.membership_id), &app.owner.token)
        .await
        .expect(StatusCode::OK);
    app.call(
        "DELETE",
        &member_path(&purged.membership_id),
        Some(&app.owner.token),
        Some(json!({"delete_passwords": true, "delete_service_tokens": true})),
    )
    .await
    .expect(StatusCode::OK);

    let cascade_of = |m: &str| {
        let path =
            format!("/v1/organizations/{org}/audit-events?action=membership.removed&target_id={m}");
        let app = &app;
        async move {
            let events = all_events(app, &path, &app.admin).await;
            assert_eq!(events.len(), 1, "{events:?}");
            events[0]["details"]["cascade"].clone()
        }
    };
    assert_eq!(
        cascade_of(&plain.membership_id).await,
        json!({"project_memberships": [plain_in_web], "passwords": [], "service_tokens": []})
    );
    assert_eq!(
        cascade_of(&purged.membership_id).await,
        json!({"project_memberships": purged_in,
               "passwords": [password["id"]], "service_tokens": [token["id"]]})
    );
}

on_both_backends!(
    a_removal_is_audited_with_what_its_cascade_deleted,
    audit_events_record_what_changed,
    the_audit_log_is_filtered_and_read_in_either_order,
    the_instance_log_shows_what_belongs_to_no_organization,
);
