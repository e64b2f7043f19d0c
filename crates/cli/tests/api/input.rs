//! Bad input gets a clear error in the native envelope, with the right status, and changes
//! nothing.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::harness::TestApp;

async fn malformed_input_is_refused_in_the_envelope_and_changes_nothing(app: TestApp) {
    let org = app.org.clone();
    let before = app.memberships(&org).await;
    let t = app.owner.token.clone();
    let cases = [
        (
            "GET",
            "/v1/organizations/not-a-uuid".to_owned(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "DELETE",
            format!("/v1/organizations/{org}/memberships/1234"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships"),
            Some(json!({"email": "x@example.com", "colour": "blue"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships"),
            Some(json!({"email": 42})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships"),
            Some(json!({"email": "not an email"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships"),
            Some(json!({"email": "x@example.com", "role": "emperor"})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships/bulk-remove"),
            Some(json!({"membership_ids": ["nope"]})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships/bulk-remove"),
            Some(json!({"membership_ids": []})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "POST",
            format!("/v1/organizations/{org}/memberships/bulk-remove"),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "GET",
            format!("/v1/organizations/{org}/memberships?limit=0"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "GET",
            format!("/v1/organizations/{org}/memberships?limit=many"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "GET",
            format!("/v1/organizations/{org}/memberships?cursor=zzz"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "GET",
            format!("/v1/organizations/{org}/memberships?sort=name"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            "GET",
            "/v1/no-such-thing".to_owned(),
            None,
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
        (
            "PUT",
            format!("/v1/organizations/{org}"),
            Some(json!({})),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let res = app.call(method, &path, Some(&t), body).await;
        assert_eq!(
            (res.status, res.code()),
            (status, code),
            "{method} {path}: {}",
            res.body
        );
        let message = res.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{method} {path}: a message says what is wrong"
        );
        assert_eq!(
            res.body["error"]["request_id"].as_str(),
            res.headers["x-request-id"].to_str().ok(),
            "{method} {path}: the body names the request id"
        );
    }
    assert_eq!(app.memberships(&org).await, before);
}

async fn bodies_that_are_not_json_or_too_large_are_refused(app: TestApp) {
    let t = format!("Bearer {}", app.admin);
    let send = |body: Vec<u8>, content_type: Option<&str>, path: &str| {
        let mut req = Request::post(path).header("authorization", &t);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.body(Body::from(body)).unwrap()
    };
    let res = app
        .send(send(
            b"{\"email\": ".to_vec(),
            Some("application/json"),
            "/v1/users",
        ))
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let res = app
        .send(send(
            b"email=a@b.c".to_vec(),
            Some("application/x-www-form-urlencoded"),
            "/v1/users",
        ))
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let big = format!(
        "{{\"email\": \"a@example.com\", \"first_name\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let res = app
        .send(send(
            big.into_bytes(),
            Some("application/json"),
            "/v1/users",
        ))
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert!(
        res.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 1 MiB (1048576 bytes)"),
        "{}",
        res.body
    );
    let users = app
        .get("/v1/users", &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        users["data"].as_array().unwrap().len(),
        1,
        "no user was created"
    );
}

async fn bulk_removal_is_capped_at_one_hundred_thousand_ids(app: TestApp) {
    let org = app.org.clone();
    let ids: Vec<String> = (0..100_001)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let res = app
        .post(
            &format!("/v1/organizations/{org}/memberships/bulk-remove"),
            &app.owner.token,
            json!({"membership_ids": ids}),
        )
        .await;
    assert_eq!(
        (res.status, res.code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    assert!(
        res.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100000")
    );
    assert_eq!(app.memberships(&org).await.len(), 1);
}

/// The bulk route takes up to 8 MiB; a larger body is told that limit, not the 1 MiB of the
/// other routes.
async fn a_bulk_removal_over_its_limit_is_told_the_limit_that_applied(app: TestApp) {
    let org = app.org.clone();
    let path = format!("/v1/organizations/{org}/memberships/bulk-remove");
    let over = json!({"membership_ids": ["0193a3f4-0000-7000-8000-000000000000"], "pad": "x".repeat(9_000_000)});
    let res = app.post(&path, &app.owner.token, over).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.body);
    assert!(
        res.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 8 MiB (8388608 bytes)"),
        "{}",
        res.body
    );
    let under = json!({"membership_ids": ["0193a3f4-0000-7000-8000-000000000000"], "pad": "x".repeat(7_000_000)});
    let res = app.post(&path, &app.owner.token, under).await;
    assert_ne!(
        res.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "7 MB is under the limit"
    );
    assert_eq!(app.memberships(&org).await.len(), 1);
}

/// A JSON array is no body, even where serde would read it field by field, and the message
/// names no Rust type.
async fn only_json_objects_are_bodies(app: TestApp) {
    for body in [
        json!(["arr@example.com", null, null, null, null]),
        json!([]),
    ] {
        let res = app.post("/v1/users", &app.admin, body.clone()).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}: {}", res.body);
        let message = res.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("JSON object"), "{message}");
        assert!(!message.contains("struct"), "{message}");
    }
    let res = app
        .post(
            &format!("/v1/organizations/{}/memberships/bulk-remove", app.org),
            &app.owner.token,
            json!({"membership_ids": ["0193a3f4-0000-7000-8000-000000000000"], "delete_passwords": {"a": 1}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let users = app
        .get("/v1/users", &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        users["data"].as_array().unwrap().len(),
        1,
        "no user was created"
    );
}

on_both_backends!(
    a_bulk_removal_over_its_limit_is_told_the_limit_that_applied,
    only_json_objects_are_bodies,
    malformed_input_is_refused_in_the_envelope_and_changes_nothing,
    bodies_that_are_not_json_or_too_large_are_refused,
    bulk_removal_is_capped_at_one_hundred_thousand_ids,
);
