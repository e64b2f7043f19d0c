//! What an organization's data shows and to whom: members found by email, private metadata
//! kept from plain members, metadata within its size, one invitation per address, and the
//! invariant that an organization always has an admin.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::TestApp;

/// The native membership list carries each member's email and name, and `?email=` finds one
/// member by address whatever its case.
async fn the_membership_list_shows_email_and_name_and_filters_by_email(app: TestApp) {
    let org = app.org.clone();
    let bob = app
        .post(
            "/v1/users",
            &app.admin,
            json!({"email": "bob@example.com", "first_name": "Bob", "last_name": "Builder"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let bob_membership = app
        .make_member(&org, bob["id"].as_str().unwrap(), "member")
        .await;
    app.post(
        &format!("/v1/organizations/{org}/memberships"),
        &app.admin,
        json!({"email": "carol@example.com"}),
    )
    .await
    .expect(StatusCode::CREATED);

    let list = app
        .get(&format!("/v1/organizations/{org}/memberships"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let rows = list["data"].as_array().unwrap();
    let bob_row = rows
        .iter()
        .find(|r| r["id"] == bob_membership.as_str())
        .unwrap();
    assert_eq!(bob_row["email"], "bob@example.com");
    assert_eq!(bob_row["first_name"], "Bob");
    assert_eq!(bob_row["last_name"], "Builder");
    assert_eq!(
        bob_row["role"], "member",
        "the membership's own fields stay"
    );
    let invited = rows.iter().find(|r| r["status"] == "invited").unwrap();
    assert_eq!(invited["email"], "carol@example.com");
    assert!(invited["first_name"].is_null());

    let found = app
        .get(
            &format!("/v1/organizations/{org}/memberships?email=BOB@example.com"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    let found = found["data"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], bob_membership.as_str());
    let none = app
        .get(
            &format!("/v1/organizations/{org}/memberships?email=nobody@example.com"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert!(none["data"].as_array().unwrap().is_empty());
}

on_both_backends!(the_membership_list_shows_email_and_name_and_filters_by_email);
