//! The PlanetScale dialect at `/planetscale/v1`: members, removal with the credential cascade,
//! service tokens and their accesses; every response checked against the vendor spec.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Member, Resp, TestApp, with_wrong_secret};
use crate::schema::{document, response, validate};

const SPEC: &str = "planetscale-openapi.json";
const SEED: &str = "planetscale-remove-organization-member.json";

/// Asserts a status the spec declares for the operation, and the body's shape: the spec's
/// schema for a success, `{"code", "message"}` for an error, nothing for a 204.
#[track_caller]
fn spec(path: &str, method: &str, res: Resp, status: StatusCode) -> Value {
    assert_eq!(res.status, status, "{method} {path}: {}", res.body);
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        // Not declared by the spec (it declares no client error but 401/403/404): documented.
        assert_error_envelope(&res.body);
        return res.body;
    }
    let declared = response(SPEC, path, method, status.as_u16());
    if status.is_success() {
        match declared["content"]["application/json"]["schema"].as_object() {
            Some(_) => {
                if let Err(e) = validate(
                    &declared["content"]["application/json"]["schema"],
                    &res.body,
                ) {
                    panic!(
                        "{method} {path} {status} does not match the spec: {e}\nbody: {}",
                        res.body
                    );
                }
            }
            None => assert!(res.body.is_null(), "{status} has no body, got {}", res.body),
        }
    } else {
        assert_error_envelope(&res.body);
    }
    res.body
}

#[track_caller]
fn assert_error_envelope(body: &Value) {
    let o = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"));
    assert!(
        o["code"].is_string() && o["message"].is_string(),
        "{{code, message}}: {body}"
    );
}

fn members(org: &str) -> String {
    format!("/planetscale/v1/organizations/{org}/members")
}

fn member(org: &str, user: &str) -> String {
    format!("/planetscale/v1/organizations/{org}/members/{user}")
}

const MEMBERS: &str = "/organizations/{organization}/members";
const MEMBER: &str = "/organizations/{organization}/members/{id}";
const TOKENS: &str = "/organizations/{organization}/service-tokens";
const TOKEN: &str = "/organizations/{organization}/service-tokens/{id}";

/// A service token of the owner's with these PlanetScale accesses, in `id:secret` form.
async fn service_token(app: &TestApp, slug: &str, accesses: &[&str]) -> (String, String) {
    let created = app
        .post(
            &format!("/planetscale/v1/organizations/{slug}/service-tokens"),
            &app.owner.token,
            json!({"name": "ci"}),
        )
        .await;
    let created = spec(TOKENS, "post", created, StatusCode::OK);
    let id = created["id"].as_str().unwrap().to_owned();
    let granted = app
        .post(
            &format!("/planetscale/v1/organizations/{slug}/service-tokens/{id}/access"),
            &app.owner.token,
            json!({"database": "", "access": accesses}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        granted["data"].as_array().unwrap().len(),
        accesses.len(),
        "{granted}"
    );
    (
        id.clone(),
        format!("{id}:{}", created["token"].as_str().unwrap()),
    )
}

async fn call_with(
    app: &TestApp,
    method: &str,
    path: &str,
    authorization: &str,
    body: Option<Value>,
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", authorization);
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    app.send(req.body(body).unwrap()).await
}

async fn listing_members_pages_and_searches_in_the_vendor_envelope(app: TestApp) {
    let slug = app.slug(&app.org).await;
    let mut added = Vec::new();
    for _ in 0..4 {
        added.push(app.add_member(&app.org, "member").await);
    }
    app.invite(&app.org, "pending@example.com").await;
    let page1 = spec(
        MEMBERS,
        "get",
        app.get(&format!("{}?per_page=2", members(&slug)), &app.owner.token)
            .await,
        StatusCode::OK,
    );
    assert_eq!(
        (
            page1["type"].as_str(),
            page1["total_count"].as_i64(),
            page1["total_pages"].as_i64()
        ),
        (Some("list"), Some(5), Some(3)),
        "invitations are not members"
    );
    assert_eq!(
        (page1["next_page"].as_i64(), page1["prev_page"].as_i64()),
        (Some(2), None)
    );
    let page3 = spec(
        MEMBERS,
        "get",
        app.get(
            &format!("{}?per_page=2&page=3", members(&slug)),
            &app.owner.token,
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        (
            page3["data"].as_array().unwrap().len(),
            page3["next_page"].as_i64()
        ),
        (1, None)
    );
    assert_eq!(
        page3["prev_page_url"],
        json!(format!(
            "/planetscale/v1/organizations/{slug}/members?page=2&per_page=2"
        ))
    );
    let found = spec(
        MEMBERS,
        "get",
        app.get(
            &format!("{}?q=OWNER@example", members(&slug)),
            &app.owner.token,
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(found["total_count"], 1);
    assert_eq!(found["data"][0]["user"]["id"], json!(app.owner.user_id));
    assert_eq!(found["data"][0]["role"], "admin");
    let res = app
        .get(
            &format!("{}?per_page=101", members(&slug)),
            &app.owner.token,
        )
        .await;
    spec(MEMBERS, "get", res, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_member_is_read_and_updated_by_user_id(app: TestApp) {
    let slug = app.slug(&app.org).await;
    let m = app.add_member(&app.org, "member").await;
    let got = spec(
        MEMBER,
        "get",
        app.get(&member(&slug, &m.user_id), &app.owner.token).await,
        StatusCode::OK,
    );
    assert_eq!(
        (got["id"].as_str(), got["user"]["id"].as_str()),
        (Some(m.membership_id.as_str()), Some(m.user_id.as_str()))
    );
    let up = spec(
        MEMBER,
        "patch",
        app.patch(
            &member(&slug, &m.user_id),
            &app.owner.token,
            json!({"role": "admin"}),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(up["role"], "admin");
    let own = app
        .patch(
            &member(&slug, &app.owner.user_id),
            &app.owner.token,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(
        spec(MEMBER, "patch", own, StatusCode::FORBIDDEN)["code"],
        "unauthorized"
    );
    let bad = app
        .patch(
            &member(&slug, &m.user_id),
            &app.owner.token,
            json!({"role": "emperor"}),
        )
        .await;
    assert_eq!(
        spec(MEMBER, "patch", bad, StatusCode::UNPROCESSABLE_ENTITY)["code"],
        "unprocessable"
    );
    for missing in [
        uuid::Uuid::now_v7().to_string(),
        "ada@example.com".to_owned(),
    ] {
        let res = app.get(&member(&slug, &missing), &app.owner.token).await;
        assert_eq!(
            spec(MEMBER, "get", res, StatusCode::NOT_FOUND),
            json!({"code": "not_found", "message": "Not Found"})
        );
    }
}

async fn removing_a_member_answers_204_and_cascades_only_when_asked(app: TestApp) {
    let slug = app.slug(&app.org).await;
    let org = app.org.clone();
    let keep = app.add_member(&org, "admin").await;
    let by_query = app.add_member(&org, "admin").await;
    let by_body = app.add_member(&org, "admin").await;
    let bystander = app.add_member(&org, "admin").await;
    for m in [&keep, &by_query, &by_body, &bystander] {
        app.post(
            &format!("/v1/organizations/{org}/passwords"),
            &m.token,
            json!({"name": "main"}),
        )
        .await
        .expect(StatusCode::CREATED);
        app.post(
            &format!("/planetscale/v1/organizations/{slug}/service-tokens"),
            &m.token,
            json!({}),
        )
        .await
        .expect(StatusCode::OK);
    }

    let res = app
        .delete(
            &format!(
                "{}?delete_passwords=false&delete_service_tokens=false",
                member(&slug, &keep.user_id)
            ),
            &app.owner.token,
        )
        .await;
    spec(MEMBER, "delete", res, StatusCode::NO_CONTENT);
    assert_eq!(
        creds(&app, &keep).await,
        (1, 1),
        "a false flag is the same as an absent one"
    );

    let res = app
        .delete(
            &format!(
                "{}?delete_passwords=true&delete_service_tokens=true",
                member(&slug, &by_query.user_id)
            ),
            &app.owner.token,
        )
        .await;
    let seed_declared = &document(SEED)["paths"][MEMBER]["delete"]["responses"]["204"];
    assert!(
        seed_declared.is_object() && res.body.is_null(),
        "the seed's 204, no body"
    );
    spec(MEMBER, "delete", res, StatusCode::NO_CONTENT);
    assert_eq!(creds(&app, &by_query).await, (0, 0));

    let res = app
        .call(
            "DELETE",
            &member(&slug, &by_body.user_id),
            Some(&app.owner.token),
            Some(json!({"delete_passwords": true})),
        )
        .await;
    spec(MEMBER, "delete", res, StatusCode::NO_CONTENT);
    assert_eq!(
        creds(&app, &by_body).await,
        (0, 1),
        "older clients' JSON body, one flag"
    );

    assert_eq!(
        creds(&app, &bystander).await,
        (1, 1),
        "nobody else's credentials"
    );
    let left: Vec<_> = app
        .memberships(&org)
        .await
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !left.contains(&keep.user_id)
            && !left.contains(&by_query.user_id)
            && !left.contains(&by_body.user_id)
    );
    assert!(left.contains(&bystander.user_id));
    let bad = app
        .call(
            "DELETE",
            &member(&slug, &bystander.user_id),
            Some(&app.owner.token),
            Some(json!({"delete_everything": true})),
        )
        .await;
    spec(MEMBER, "delete", bad, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&bystander.membership_id),
        "a refused removal changes nothing"
    );
}

/// (passwords, service tokens) the member owns in the bootstrap organization.
async fn creds(app: &TestApp, m: &Member) -> (usize, usize) {
    let org = &app.org;
    let pw = app
        .get(&format!("/v1/organizations/{org}/passwords"), &app.admin)
        .await
        .expect(StatusCode::OK);
    let st = app
        .get(
            &format!("/v1/organizations/{org}/service-tokens"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    let n = |v: &Value, f: &str| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x[f] == json!(m.user_id))
            .count()
    };
    (n(&pw, "user_id"), n(&st, "created_by"))
}

async fn the_removal_rules_refuse_and_change_nothing(app: TestApp) {
    let slug = app.slug(&app.org).await;
    let org = app.org.clone();
    let res = app
        .delete(&member(&slug, &app.owner.user_id), &app.owner.token)
        .await;
    let body = spec(MEMBER, "delete", res, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(body["message"], "Cannot leave your only organization");
    let res = app
        .delete(&member(&slug, &app.owner.user_id), &app.admin)
        .await;
    assert_eq!(
        spec(MEMBER, "delete", res, StatusCode::FORBIDDEN)["message"],
        "Cannot remove the last admin of an organization"
    );

    let plain = app.add_member(&org, "member").await;
    let other = app.add_member(&org, "member").await;
    let res = app
        .delete(&member(&slug, &other.user_id), &plain.token)
        .await;
    assert_eq!(
        spec(MEMBER, "delete", res, StatusCode::FORBIDDEN)["code"],
        "unauthorized",
        "only admins remove others"
    );
    let res = app
        .delete(
            &format!("{}?delete_passwords=true", member(&slug, &plain.user_id)),
            &plain.token,
        )
        .await;
    spec(MEMBER, "delete", res, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .delete(&member(&slug, &plain.user_id), &plain.token)
        .await;
    assert_eq!(
        spec(MEMBER, "delete", res, StatusCode::FORBIDDEN)["message"],
        "Cannot leave your only organization"
    );
    assert_eq!(app.memberships(&org).await.len(), 3, "nothing changed");

    let second = app.new_org("Second Org").await;
    app.post(
        &format!("/v1/organizations/{second}/memberships"),
        &app.admin,
        json!({"user_id": plain.user_id}),
    )
    .await
    .expect(StatusCode::CREATED);
    spec(
        MEMBER,
        "delete",
        app.delete(&member(&slug, &plain.user_id), &plain.token)
            .await,
        StatusCode::NO_CONTENT,
    );
    assert!(
        !app.membership_ids(&org)
            .await
            .contains(&plain.membership_id),
        "any member may leave"
    );
}

/// A removal reads the slug before it knows who is asking (the token is verified in the
/// removal's transaction), so every answer below is pinned: each must still be the one the
/// caller's own standing decides, whatever the slug and the id name.
async fn a_removal_answers_as_the_caller_stands_whatever_the_slug_names(app: TestApp) {
    let slug = app.slug(&app.org).await;
    let org = app.org.clone();
    let victim = app.add_member(&org, "member").await;
    let wrong_secret = with_wrong_secret(&app.owner.token);
    for path in [
        member(&slug, &victim.user_id),
        member("no-such-org", &victim.user_id),
        member(&slug, "not-a-user-id"),
        format!("{}?delete_passwords=maybe", member(&slug, &victim.user_id)),
    ] {
        let res = app.delete(&path, &wrong_secret).await;
        assert_eq!(
            (res.status, res.body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "DELETE {path} with a wrong secret: {}",
            res.body
        );
    }

    // An admin elsewhere cannot see this organization: the same 404 as for a slug naming nothing.
    let elsewhere = app.new_org("Elsewhere").await;
    let outsider = app.add_member(&elsewhere, "admin").await;
    for path in [
        member(&slug, &victim.user_id),
        member("no-such-org", &victim.user_id),
    ] {
        let res = app.delete(&path, &outsider.token).await;
        assert_eq!(
            (res.status, res.body),
            (
                StatusCode::NOT_FOUND,
                json!({"code": "not_found", "message": "Not Found"})
            ),
            "DELETE {path} by an admin of another organization"
        );
    }
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&victim.membership_id),
        "refused removals removed nothing"
    );
    assert!(app.audited(&org, "membership.removed").await.is_empty());

    spec(
        MEMBER,
        "delete",
        app.delete(&member(&slug, &victim.user_id), &app.owner.token)
            .await,
        StatusCode::NO_CONTENT,
    );
    assert!(
        !app.membership_ids(&org)
            .await
            .contains(&victim.membership_id)
    );
    assert_eq!(
        app.audited(&org, "membership.removed").await,
        vec![victim.membership_id.clone()],
        "the removal is recorded once"
    );
}

/// A removal names its organization by slug, and the server keeps the id it last read for a
/// slug so that the removal queues without reading it again. A slug moved to another
/// organization must name that one at once: the old id kept for it must not be used.
async fn a_slug_names_the_organization_that_has_it_now(app: TestApp) {
    let (org, slug) = (app.org.clone(), app.slug(&app.org).await);
    let first = app.add_member(&org, "member").await;
    // Read and kept: the slug names `org`.
    spec(
        MEMBER,
        "delete",
        app.delete(&member(&slug, &first.user_id), &app.owner.token)
            .await,
        StatusCode::NO_CONTENT,
    );

    // The slug moves to another organization, of which the owner is also an admin, and a user
    // is a member of both (after a request named the first by its old slug).
    let renamed = format!("renamed-{}", uuid::Uuid::now_v7().simple());
    let rename = |org: String, slug: String| {
        let app = &app;
        async move {
            app.patch(
                &format!("/v1/organizations/{org}"),
                &app.admin,
                json!({ "slug": slug }),
            )
            .await
            .expect(StatusCode::OK);
        }
    };
    rename(org.clone(), renamed.clone()).await;
    let (both, in_org) = app.add_user_as_member(&org, "member").await;
    // Named by its old slug, which names nothing now: not found, and nothing removed.
    let res = app.delete(&member(&slug, &both), &app.owner.token).await;
    assert_eq!(
        (res.status, res.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{}",
        res.body
    );
    assert!(app.membership_ids(&org).await.contains(&in_org));

    let other = app.new_org("Other").await;
    rename(other.clone(), slug.clone()).await;
    app.make_member(&other, &app.owner.user_id, "admin").await;
    let in_other = app.make_member(&other, &both, "member").await;

    spec(
        MEMBER,
        "delete",
        app.delete(&member(&slug, &both), &app.owner.token).await,
        StatusCode::NO_CONTENT,
    );
    assert!(
        !app.membership_ids(&other).await.contains(&in_other),
        "removed from the organization the slug names now"
    );
    assert!(
        app.membership_ids(&org).await.contains(&in_org),
        "not from the one it named before"
    );
    assert_eq!(
        (
            app.audited(&other, "membership.removed").await,
            app.audited(&org, "membership.removed").await
        ),
        (vec![in_other.clone()], vec![first.membership_id.clone()]),
        "each removal recorded in its own organization"
    );

    // The new slug names the first organization.
    spec(
        MEMBER,
        "delete",
        app.delete(&member(&renamed, &both), &app.owner.token).await,
        StatusCode::NO_CONTENT,
    );
    assert!(!app.membership_ids(&org).await.contains(&in_org));
}

async fn service_tokens_authenticate_and_need_their_accesses(app: TestApp) {
    let slug = app.slug(&app.org).await;
    let victim = app.add_member(&app.org, "member").await;
    let (_, reader) = service_token(&app, &slug, &["read_organization"]).await;
    let (_, writer) = service_token(&app, &slug, &["write_organization"]).await;
    let list = call_with(&app, "GET", &members(&slug), &reader, None).await;
    spec(MEMBERS, "get", list, StatusCode::OK);
    let res = call_with(
        &app,
        "DELETE",
        &member(&slug, &victim.user_id),
        &reader,
        None,
    )
    .await;
    assert_eq!(
        spec(MEMBER, "delete", res, StatusCode::NOT_FOUND),
        json!({"code": "not_found", "message": "Not Found"})
    );
    assert!(
        app.membership_ids(&app.org)
            .await
            .contains(&victim.membership_id)
    );
    let res = call_with(&app, "GET", &members(&slug), &writer, None).await;
    spec(MEMBERS, "get", res, StatusCode::NOT_FOUND);
    let res = call_with(
        &app,
        "DELETE",
        &member(&slug, &victim.user_id),
        &writer,
        None,
    )
    .await;
    spec(MEMBER, "delete", res, StatusCode::NO_CONTENT);
    assert!(
        !app.membership_ids(&app.org)
            .await
            .contains(&victim.membership_id)
    );

    for bad in ["", "nonsense", &format!("{}:wrong", uuid::Uuid::now_v7())] {
        let res = call_with(&app, "GET", &members(&slug), bad, None).await;
        assert_eq!(
            spec(MEMBERS, "get", res, StatusCode::UNAUTHORIZED)["code"],
            "unauthorized"
        );
    }
    let other = app.new_org("Other Org").await;
    let other_slug = app.slug(&other).await;
    let res = call_with(&app, "GET", &members(&other_slug), &reader, None).await;
    spec(MEMBERS, "get", res, StatusCode::NOT_FOUND);
}

async fn service_tokens_are_created_shown_once_listed_and_deleted(app: TestApp) {
    let slug = app.slug(&app.org).await;
    let (id, pair) =
        service_token(&app, &slug, &["read_organization", "read_service_tokens"]).await;
    let secret = pair.split_once(':').unwrap().1.to_owned();
    let list = spec(
        TOKENS,
        "get",
        app.get(
            &format!("/planetscale/v1/organizations/{slug}/service-tokens"),
            &app.owner.token,
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(list["total_count"], 1);
    // The body is optional in PlanetScale's document: an empty object, or none at all.
    for body in [Some(json!({})), None] {
        app.call(
            "POST",
            &format!("/planetscale/v1/organizations/{slug}/service-tokens"),
            Some(&app.owner.token),
            body,
        )
        .await
        .expect(StatusCode::OK);
    }
    let page2 = app
        .get(
            &format!("/planetscale/v1/organizations/{slug}/service-tokens?page=2&per_page=2"),
            &app.owner.token,
        )
        .await;
    let page2 = spec(TOKENS, "get", page2, StatusCode::OK);
    assert_eq!(
        (
            page2["total_count"].as_i64(),
            page2["data"].as_array().unwrap().len(),
            page2["next_page"].as_i64()
        ),
        (Some(3), 1, None)
    );
    let got = spec(
        TOKEN,
        "get",
        app.get(
            &format!("/planetscale/v1/organizations/{slug}/service-tokens/{id}"),
            &app.owner.token,
        )
        .await,
        StatusCode::OK,
    );
    let accesses: Vec<_> = got["service_token_accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["access"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accesses, ["read_organization", "read_service_tokens"]);
    assert_eq!(got["actor_id"], json!(app.owner.user_id));
    for body in [&list, &got] {
        assert!(!body.to_string().contains(&secret), "shown once");
    }
    let access = format!("/planetscale/v1/organizations/{slug}/service-tokens/{id}/access");
    let after = app
        .call(
            "DELETE",
            &access,
            Some(&app.owner.token),
            Some(json!({"access": ["read_service_tokens"]})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(after["data"].as_array().unwrap().len(), 1);
    let unknown = app
        .post(&access, &app.owner.token, json!({"access": ["fly"]}))
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);

    let member = app.add_member(&app.org, "member").await;
    let res = app
        .post(
            &format!("/planetscale/v1/organizations/{slug}/service-tokens"),
            &member.token,
            json!({}),
        )
        .await;
    spec(TOKENS, "post", res, StatusCode::FORBIDDEN);

    let res = app
        .delete(
            &format!("/planetscale/v1/organizations/{slug}/service-tokens/{id}"),
            &app.owner.token,
        )
        .await;
    spec(TOKEN, "delete", res, StatusCode::NO_CONTENT);
    let res = call_with(&app, "GET", &members(&slug), &pair, None).await;
    assert_eq!(
        res.status,
        StatusCode::UNAUTHORIZED,
        "a deleted token stops working"
    );
}

async fn every_failure_uses_the_vendor_envelope(app: TestApp) {
    let slug = app.slug(&app.org).await;
    for (method, path) in [
        ("GET", "/planetscale/v1/nothing".to_owned()),
        ("PUT", members(&slug)),
        ("GET", members("no-such-org")),
    ] {
        let res = app.call(method, &path, Some(&app.owner.token), None).await;
        assert_eq!(
            (res.status, res.body.clone()),
            (
                StatusCode::NOT_FOUND,
                json!({"code": "not_found", "message": "Not Found"})
            ),
            "{method} {path}"
        );
    }
    let res = app
        .send(
            Request::patch(member(&slug, &app.owner.user_id))
                .header("authorization", format!("Bearer {}", app.owner.token))
                .header("content-type", "application/json")
                .body(Body::from("{role"))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (res.status, res.body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unprocessable"))
    );
}

on_both_backends!(
    listing_members_pages_and_searches_in_the_vendor_envelope,
    a_member_is_read_and_updated_by_user_id,
    removing_a_member_answers_204_and_cascades_only_when_asked,
    the_removal_rules_refuse_and_change_nothing,
    a_removal_answers_as_the_caller_stands_whatever_the_slug_names,
    a_slug_names_the_organization_that_has_it_now,
    service_tokens_authenticate_and_need_their_accesses,
    service_tokens_are_created_shown_once_listed_and_deleted,
    every_failure_uses_the_vendor_envelope,
);
