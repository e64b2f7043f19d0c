//! The cross-tenant matrix, generated from the routers: every route of every mount
//! (`roster::api_paths`, the templates each surface built its router with), with every method,
//! asked by a token with no standing over the resources the path names, gets the answer it
//! would get for resources that do not exist, and changes nothing. The askers: another
//! organization's admin, service token and machine identity (naming this organization's
//! resources, or their own organization with this one's resources below it); and in this
//! organization a removed member, a deactivated admin, an expired and a revoked token, and a
//! service token holding no permission.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestApp;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// What a path parameter names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Organization,
    Slug,
    User,
    Membership,
    FormerMember,
    Role,
    Project,
    ProjectMembership,
    Identity,
    ServiceToken,
    UserToken,
    Password,
    Endpoint,
    Delivery,
    /// Not an organization's: the same on both sides (a SCIM schema's name).
    Fixed(&'static str),
}

impl Kind {
    /// What the parameter `name`, right after the path segment `after`, names. A parameter
    /// nobody has classified fails the test: a new route must say what it names.
    fn of(name: &str, after: &str) -> Kind {
        match (name, after) {
            ("organization_id", _) => Kind::Organization,
            ("organization", _) => Kind::Slug,
            ("membership_id", "former-members") => Kind::FormerMember,
            ("membership_id", _) => Kind::Membership,
            ("user_id", _) => Kind::User,
            ("role_id", _) => Kind::Role,
            ("project_id", _) => Kind::Project,
            ("project_membership_id", _) => Kind::ProjectMembership,
            ("identity_id", _) => Kind::Identity,
            ("token_id", "service-tokens") => Kind::ServiceToken,
            ("token_id", "tokens" | "admin-keys") => Kind::UserToken,
            ("password_id", _) => Kind::Password,
            ("endpoint_id", _) => Kind::Endpoint,
            ("delivery_id", _) => Kind::Delivery,
            // PlanetScale names a member by its user.
            ("id", "members") => Kind::User,
            ("id", "service-tokens") => Kind::ServiceToken,
            // SCIM: a User is a membership, a Group a project.
            ("id", "Users") => Kind::Membership,
            ("id", "Groups") => Kind::Project,
            ("id", "ResourceTypes") => Kind::Fixed("User"),
            ("id", "Schemas") => Kind::Fixed("urn:ietf:params:scim:schemas:core:2.0:User"),
            _ => panic!("the path parameter {{{name}}} after `{after}` names nothing known here"),
        }
    }

    fn within_organization(self) -> bool {
        !matches!(self, Kind::Organization | Kind::Slug | Kind::Fixed(_))
    }
}

/// One organization's resources, of every kind a path can name.
#[derive(Clone, Debug)]
struct Resources(BTreeMap<Kind, String>);

impl Resources {
    /// Resources that do not exist.
    fn missing() -> Self {
        let fresh = || uuid::Uuid::now_v7().to_string();
        let mut m: BTreeMap<Kind, String> = [
            Kind::Organization,
            Kind::User,
            Kind::Membership,
            Kind::FormerMember,
            Kind::Role,
            Kind::Project,
            Kind::ProjectMembership,
            Kind::Identity,
            Kind::ServiceToken,
            Kind::UserToken,
            Kind::Password,
            Kind::Endpoint,
            Kind::Delivery,
        ]
        .into_iter()
        .map(|k| (k, fresh()))
        .collect();
        m.insert(Kind::Slug, "no-such-organization".to_owned());
        Resources(m)
    }

    /// These resources, but the organization `org`'s own identity (its id and slug).
    fn below(&self, org: &Resources) -> Self {
        let mut m = self.0.clone();
        for k in [Kind::Organization, Kind::Slug] {
            m.insert(k, org.0[&k].clone());
        }
        Resources(m)
    }

    /// The value of `kind` as the mount under `prefix` spells it.
    fn spelled(&self, kind: Kind, prefix: &str) -> String {
        if let Kind::Fixed(v) = kind {
            return v.to_owned();
        }
        let value = self.0[&kind].clone();
        let clerk = match kind {
            Kind::Organization => Some("org"),
            Kind::User => Some("user"),
            _ => None,
        };
        match clerk {
            Some(p) if prefix == "/clerk" => {
                roster_dialect_clerk::ids::encode(p, value.parse().unwrap())
            }
            _ => value,
        }
    }
}

/// A route template: its mount's prefix and its parameters' kinds.
struct Route {
    template: String,
    prefix: &'static str,
    params: Vec<(String, Kind)>,
}

impl Route {
    /// The route at `path` below the mount at `prefix`.
    fn parse(prefix: &'static str, path: &str) -> Route {
        let template = format!("{prefix}{path}");
        let segments: Vec<&str> = template.split('/').collect();
        let params = segments
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let name = s.strip_prefix('{')?.strip_suffix('}')?;
                let after = if i == 0 { "" } else { segments[i - 1] };
                Some((name.to_owned(), Kind::of(name, after)))
            })
            .collect();
        Route {
            template,
            prefix,
            params,
        }
    }

    fn path(&self, with: &Resources) -> String {
        let mut path = self.template.clone();
        for (name, kind) in &self.params {
            path = path.replace(&format!("{{{name}}}"), &with.spelled(*kind, self.prefix));
        }
        path
    }

    /// A body that the route would take for real resources, naming `with`'s where it names any.
    fn body(&self, method: &str, with: &Resources) -> Option<Value> {
        if matches!(method, "GET" | "DELETE") && !self.template.ends_with("/memberships") {
            return None;
        }
        let t = self.template.as_str();
        let user = with.spelled(Kind::User, self.prefix);
        let body = match (self.prefix, method) {
            ("/scim/v2", "POST") if t.ends_with(".search") => json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
            ("/scim/v2", "POST" | "PUT") if t.contains("/Groups") => json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Renamed",
                "members": [{"value": with.0[&Kind::Membership]}]}),
            ("/scim/v2", "POST" | "PUT") => json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "renamed@example.com", "active": true}),
            ("/scim/v2", "PATCH") => json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]}),
            ("/clerk", "POST") => json!({"user_id": user, "role": "org:member"}),
            ("/clerk", _) if t.ends_with("/metadata") => {
                json!({"public_metadata": {"taken": true}})
            }
            ("/clerk", _) if t.contains("/memberships/") => json!({"role": "org:admin"}),
            ("/clerk", _) => json!({"name": "Taken", "first_name": "Taken"}),
            ("/infisical", "DELETE") => json!({"membershipIds": [with.0[&Kind::Membership]]}),
            ("/infisical", _) => json!({"role": "admin"}),
            ("/planetscale", _) if t.ends_with("/access") => {
                json!({"database": "db", "access": ["read_branch"]})
            }
            ("/planetscale", _) => json!({"role": "admin", "name": "taken"}),
            (_, "POST") if t.ends_with("/bulk-remove") => {
                json!({"membership_ids": [with.0[&Kind::Membership]]})
            }
            (_, "POST") if t.ends_with("/projects/{project_id}/memberships") => {
                json!({"user_id": with.0[&Kind::User]})
            }
            (_, "POST") if t.ends_with("/identity-memberships") => {
                json!({"identity_id": with.0[&Kind::Identity], "role": "member"})
            }
            (_, "POST") if t.ends_with("/memberships") => {
                json!({"user_id": with.0[&Kind::User], "role": "member"})
            }
            (_, "POST") if t.ends_with("/roles") => {
                json!({"key": "taken", "name": "Taken", "permissions": ["members:read"]})
            }
            (_, "POST") if t.ends_with("/webhook-endpoints") => {
                json!({"url": "https://example.com/hook"})
            }
            (_, "POST") if t.ends_with("/service-tokens") => {
                json!({"permissions": ["members:read"]})
            }
            (_, "POST") if t.ends_with("/identities") => json!({"name": "t", "role": "member"}),
            (_, "POST") if t.ends_with("/tokens") || t.ends_with("/passwords") => {
                json!({"name": "taken"})
            }
            (_, "POST") if t.ends_with("/projects") => json!({"name": "taken"}),
            (_, "PATCH") if t.contains("/memberships/") => json!({"role": "admin"}),
            (_, "PATCH") if t.contains("/webhook-endpoints/") => json!({"disabled": true}),
            (_, "PATCH") if t.starts_with("/v1/users/") => json!({"first_name": "Taken"}),
            (_, "PATCH") => json!({"name": "Taken"}),
            _ => json!({}),
        };
        Some(body)
    }
}

/// An answer with everything the two requests were meant to differ in taken out: the values
/// of the resources they named, and the request id.
fn normalized(res: &crate::harness::Resp, named: &[String]) -> (StatusCode, String) {
    let mut body = res.body.to_string();
    for value in named {
        body = body.replace(value.as_str(), "<named>");
    }
    for field in ["request_id", "requestId", "reqId", "clerk_trace_id"] {
        if let Some(id) = res
            .body
            .pointer(&format!("/error/{field}"))
            .or(res.body.get(field))
        {
            if let Some(id) = id.as_str().filter(|s| !s.is_empty()) {
                body = body.replace(id, "<request>");
            }
        }
    }
    (res.status, body)
}

/// A token, and which of its questions it asks: the resources it names and their twins that
/// do not exist.
struct Asker {
    what: &'static str,
    /// Its token: one for every question, or one for each route.
    token: Token,
    /// What it names.
    names: Resources,
    /// Whether the twins keep the organization named (one the asker stands in) or name none
    /// at all.
    twin_within: bool,
}

enum Token {
    One(String),
    /// A token that fails to authenticate: a fresh one for each route, so that the failure
    /// limit (10 a minute per token id) never answers in the place of the route.
    FreshPerRoute(Vec<String>),
}

/// Everything the admin key reads of `org`, for a before and after.
async fn state_of(app: &TestApp, org: &str, project: &str, endpoint: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for path in [
        format!("/v1/organizations/{org}"),
        format!("/v1/organizations/{org}/roles"),
        format!("/v1/organizations/{org}/memberships?limit=500"),
        format!("/v1/organizations/{org}/former-members?limit=500"),
        format!("/v1/organizations/{org}/projects?limit=500"),
        format!("/v1/organizations/{org}/identities?limit=500"),
        format!("/v1/organizations/{org}/service-tokens?limit=500"),
        format!("/v1/organizations/{org}/passwords?limit=500"),
        format!("/v1/organizations/{org}/webhook-endpoints?limit=500"),
        format!("/v1/organizations/{org}/webhook-endpoints/{endpoint}/deliveries?limit=500"),
        format!("/v1/organizations/{org}/audit-events?limit=500"),
        format!("/v1/organizations/{org}/events?limit=500"),
        format!("/v1/projects/{project}/memberships?limit=500"),
        format!("/v1/projects/{project}/identity-memberships?limit=500"),
    ] {
        seen.push(app.get(&path, &app.admin).await.expect(StatusCode::OK));
    }
    seen
}

/// An organization with one of everything a path can name, through the admin key: (its
/// resources, an admin member's user id).
async fn furnished(app: &TestApp, name: &str) -> (Resources, String) {
    let org = app.new_org(name).await;
    let endpoint = created(
        app,
        &format!("/v1/organizations/{org}/webhook-endpoints"),
        &app.admin,
        json!({"url": "https://example.com/hook"}),
    )
    .await;
    let member = app.add_member(&org, "member").await;
    let admin = app.add_member(&org, "admin").await;
    let gone = app.add_member(&org, "member").await;
    app.remove_member(&org, &gone.membership_id).await;
    let role = created(
        app,
        &format!("/v1/organizations/{org}/roles"),
        &app.admin,
        json!({"key": "auditor", "name": "Auditor", "permissions": ["members:read"]}),
    )
    .await;
    let project = app.project_with(&org, "web", &[&member]).await;
    let project_membership = id_of(
        &app.get(&format!("/v1/projects/{project}/memberships"), &app.admin)
            .await
            .expect(StatusCode::OK)["data"][0],
    );
    let identity = app.new_identity(&org, "ci").await;
    app.add_identity_to_project(&project, &identity).await;
    let service_token = created(
        app,
        &format!("/v1/organizations/{org}/service-tokens"),
        &admin.token,
        json!({"permissions": ["members:read"]}),
    )
    .await;
    let password = created(
        app,
        &format!("/v1/organizations/{org}/passwords"),
        &admin.token,
        json!({"name": "db"}),
    )
    .await;
    let user_token = app
        .get(&format!("/v1/users/{}/tokens", member.user_id), &app.admin)
        .await
        .expect(StatusCode::OK)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivery = app
        .get(&format!("/v1/organizations/{org}/events"), &app.admin)
        .await
        .expect(StatusCode::OK)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resources = Resources(BTreeMap::from([
        (Kind::Slug, app.slug(&org).await),
        (Kind::Organization, org),
        (Kind::User, member.user_id),
        (Kind::Membership, member.membership_id),
        (Kind::FormerMember, gone.membership_id),
        (Kind::Role, role),
        (Kind::Project, project),
        (Kind::ProjectMembership, project_membership),
        (Kind::Identity, identity),
        (Kind::ServiceToken, service_token),
        (Kind::UserToken, user_token),
        (Kind::Password, password),
        (Kind::Endpoint, endpoint),
        (Kind::Delivery, delivery),
    ]));
    (resources, admin.user_id)
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// The id of what `POST path` with `body`, by `by`, created.
async fn created(app: &TestApp, path: &str, by: &str, body: Value) -> String {
    id_of(&app.post(path, by, body).await.expect(StatusCode::CREATED))
}

/// Every route of every mount, every method, every asker: the answer for the resources named
/// is the answer for their twins that do not exist, and neither organization changes.
async fn no_token_without_standing_tells_a_resource_from_a_missing_one_on_any_route(app: TestApp) {
    let routes: Vec<Route> = roster::api_paths()
        .into_iter()
        .map(|(prefix, path)| Route::parse(prefix, path))
        .filter(|r| !r.params.is_empty())
        .collect();
    assert!(routes.len() > 60, "{} routes with parameters", routes.len());

    let (ours, our_admin) = furnished(&app, "Ours").await;
    let (theirs, their_admin) = furnished(&app, "Theirs").await;
    let their_org = theirs.0[&Kind::Organization].clone();
    let our_org = ours.0[&Kind::Organization].clone();

    // Their askers: an admin, a service token with every permission, an admin identity.
    let their_admin_token = app.token_for(&their_admin).await;
    let every_permission: Vec<&str> = roster_core::permissions::Permission::ALL
        .iter()
        .map(|p| p.key())
        .collect();
    let their_service_token = app
        .new_service_token(&their_org, &their_admin_token, &every_permission)
        .await;
    let their_identity = created(
        &app,
        &format!("/v1/organizations/{their_org}/identities"),
        &app.admin,
        json!({"name": "robot", "role": "admin"}),
    )
    .await;
    let their_identity_token = app
        .post(
            &format!("/v1/identities/{their_identity}/tokens"),
            &app.admin,
            json!({"name": "t"}),
        )
        .await
        .expect(StatusCode::CREATED)["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Ours who lost their standing, and a service token holding no permission.
    let removed = app.add_member(&our_org, "admin").await;
    app.remove_member(&our_org, &removed.membership_id).await;
    let deactivated = app.add_member(&our_org, "admin").await;
    app.patch(
        &format!(
            "/v1/organizations/{our_org}/memberships/{}",
            deactivated.membership_id
        ),
        &app.admin,
        json!({"is_active": false}),
    )
    .await
    .expect(StatusCode::OK);
    let powerless = app
        .new_service_token(&our_org, &app.token_for(&our_admin).await, &[])
        .await;
    let mut expired = Vec::new();
    let mut revoked = Vec::new();
    for _ in &routes {
        let token = app
            .post(
                &format!("/v1/users/{our_admin}/tokens"),
                &app.admin,
                json!({"name": "short", "ttl": 1}),
            )
            .await
            .expect(StatusCode::CREATED);
        expired.push(token["token"].as_str().unwrap().to_owned());
        let token = app
            .post(
                &format!("/v1/users/{our_admin}/tokens"),
                &app.admin,
                json!({"name": "revoked"}),
            )
            .await
            .expect(StatusCode::CREATED);
        app.delete(
            &format!("/v1/users/{our_admin}/tokens/{}", id_of(&token)),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
        revoked.push(token["token"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let mut askers = Vec::new();
    for (what, token) in [
        ("another organization's admin", their_admin_token),
        ("another organization's service token", their_service_token),
        ("another organization's identity", their_identity_token),
    ] {
        askers.push(Asker {
            what,
            token: Token::One(token.clone()),
            names: ours.clone(),
            twin_within: false,
        });
        // Their own organization, with ours' resources below it.
        askers.push(Asker {
            what,
            token: Token::One(token),
            names: ours.below(&theirs),
            twin_within: true,
        });
    }
    askers.extend([
        Asker {
            what: "a removed member",
            token: Token::One(removed.token),
            names: ours.clone(),
            twin_within: false,
        },
        Asker {
            what: "a deactivated admin",
            token: Token::One(deactivated.token),
            names: ours.clone(),
            twin_within: false,
        },
        Asker {
            what: "an expired token",
            token: Token::FreshPerRoute(expired),
            names: ours.clone(),
            twin_within: false,
        },
        Asker {
            what: "a revoked token",
            token: Token::FreshPerRoute(revoked),
            names: ours.clone(),
            twin_within: false,
        },
        Asker {
            what: "a service token holding no permission",
            token: Token::One(powerless),
            names: ours.clone(),
            twin_within: true,
        },
    ]);

    let project = ours.0[&Kind::Project].clone();
    let endpoint = ours.0[&Kind::Endpoint].clone();
    let their_project = theirs.0[&Kind::Project].clone();
    let their_endpoint = theirs.0[&Kind::Endpoint].clone();
    let before = (
        state_of(&app, &our_org, &project, &endpoint).await,
        state_of(&app, &their_org, &their_project, &their_endpoint).await,
    );

    let mut asked = 0;
    let mut differences = Vec::new();
    for asker in &askers {
        for (i, route) in routes.iter().enumerate() {
            // Naming their own organization only: nothing of ours to ask about.
            if asker.twin_within && !route.params.iter().any(|(_, k)| k.within_organization()) {
                continue;
            }
            let token = match &asker.token {
                Token::One(t) => t.as_str(),
                Token::FreshPerRoute(tokens) => tokens[i].as_str(),
            };
            let twin = if asker.twin_within {
                Resources::missing().below(&asker.names)
            } else {
                Resources::missing()
            };
            let spelled = |with: &Resources| -> Vec<String> {
                route
                    .params
                    .iter()
                    .filter(|(_, k)| !matches!(k, Kind::Fixed(_)))
                    .map(|(_, k)| with.spelled(*k, route.prefix))
                    .chain(with.0.values().cloned())
                    .collect()
            };
            for method in METHODS {
                let real = app
                    .call(
                        method,
                        &route.path(&asker.names),
                        Some(token),
                        route.body(method, &asker.names),
                    )
                    .await;
                let missing = app
                    .call(
                        method,
                        &route.path(&twin),
                        Some(token),
                        route.body(method, &twin),
                    )
                    .await;
                asked += 1;
                let real = normalized(&real, &spelled(&asker.names));
                let missing = normalized(&missing, &spelled(&twin));
                if real != missing {
                    differences.push(format!(
                        "{} ({}): {method} {}\n  named:   {} {}\n  missing: {} {}",
                        asker.what,
                        if asker.twin_within { "within" } else { "whole" },
                        route.template,
                        real.0,
                        real.1,
                        missing.0,
                        missing.1
                    ));
                }
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {asked} answers tell a resource from a missing one:\n{}",
        differences.len(),
        differences.join("\n")
    );
    let after = (
        state_of(&app, &our_org, &project, &endpoint).await,
        state_of(&app, &their_org, &their_project, &their_endpoint).await,
    );
    assert!(after.0 == before.0, "our organization changed");
    assert!(after.1 == before.1, "their organization changed");
}

on_both_backends!(no_token_without_standing_tells_a_resource_from_a_missing_one_on_any_route);
