//! Starts the real application over a fresh database and talks to it the way clients do.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use roster::{Database, app_for, open_store};
use roster_core::{Roster, Store};
use serde_json::{Value, json};
use sqlx::Connection;
use tower::ServiceExt;

pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The native error code, for error responses.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }
}

/// A user who is a member of an organization, with a token of their own.
#[derive(Clone, Debug)]
pub struct Member {
    pub user_id: String,
    pub membership_id: String,
    pub token: String,
}

/// A database of a test's own, removed when this is dropped.
pub enum DbGuard {
    Sqlite(PathBuf),
    Postgres { name: String, admin_url: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        match self {
            DbGuard::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            DbGuard::Postgres { name, admin_url } => {
                let (name, url) = (name.clone(), admin_url.clone());
                // Drop runs inside the test's runtime; the clean-up gets a runtime of its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut c)
                            .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub struct TestApp {
    pub router: Router,
    /// Where the test's database is, for tests that reach past the API to break it.
    pub database: Database,
    pub store: Arc<dyn Store>,
    /// The instance admin key from bootstrap.
    pub admin: String,
    /// The bootstrap organization.
    pub org: String,
    /// The bootstrap user, its only admin.
    pub owner: Member,
    _db: DbGuard,
}

impl TestApp {
    pub async fn sqlite() -> Self {
        let path =
            std::env::temp_dir().join(format!("roster-test-{}.db", uuid::Uuid::now_v7().simple()));
        let guard = DbGuard::Sqlite(path.clone());
        let db = Database::Sqlite(path);
        let store = open_store(&db).await.expect("open SQLite");
        Self::start(store, db, guard).await
    }

    pub async fn postgres() -> Self {
        let (url, guard) = new_postgres_database("roster_test").await;
        let db = Database::Postgres(url);
        let store = open_store(&db).await.expect("open PostgreSQL");
        Self::start(store, db, guard).await
    }

    async fn start(store: Arc<dyn Store>, database: Database, guard: DbGuard) -> Self {
        let boot = Roster::new(store.clone())
            .bootstrap("Acme", "owner@example.com")
            .await
            .expect("bootstrap");
        let router = app_for(store.clone());
        let mut app = TestApp {
            router,
            database,
            store,
            admin: boot.admin_key.bearer(),
            org: boot.organization.id.to_string(),
            owner: Member {
                user_id: boot.user.id.to_string(),
                membership_id: boot.membership.id.to_string(),
                token: String::new(),
            },
            _db: guard,
        };
        app.owner.token = app.token_for(&app.owner.user_id.clone()).await;
        app
    }

    /// Runs SQL on the test database behind the application's back (to inject a fault).
    pub async fn sabotage(&self, sql: &str) {
        match &self.database {
            Database::Sqlite(path) => {
                let mut c =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            Database::Postgres(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("infallible router");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    /// Serves the app on a real listener (port 0) while the command made for its address runs
    /// to its end: how the tests drive roster with a tool nobody here wrote. The tool's output.
    pub async fn run_tool_against(
        &self,
        command: impl FnOnce(std::net::SocketAddr) -> std::process::Command + Send + 'static,
    ) -> std::process::Output {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let out =
            tokio::task::spawn_blocking(move || command(addr).output().expect("run the tool"))
                .await
                .unwrap();
        server.abort();
        out
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call("PATCH", path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call("DELETE", path, Some(token), None).await
    }

    /// A new user (through the admin key).
    pub async fn new_user(&self, email: &str) -> String {
        let b = self
            .post("/v1/users", &self.admin, json!({"email": email}))
            .await
            .expect(StatusCode::CREATED);
        b["id"].as_str().unwrap().to_owned()
    }

    /// A token for a user (through the admin key).
    pub async fn token_for(&self, user_id: &str) -> String {
        let b = self
            .post(
                &format!("/v1/users/{user_id}/tokens"),
                &self.admin,
                json!({"name": "test"}),
            )
            .await
            .expect(StatusCode::CREATED);
        b["token"].as_str().unwrap().to_owned()
    }

    /// A new service token of `org` holding `permissions`, made with `by`'s token: its secret.
    pub async fn new_service_token(&self, org: &str, by: &str, permissions: &[&str]) -> String {
        self.post(
            &format!("/v1/organizations/{org}/service-tokens"),
            by,
            json!({ "permissions": permissions }),
        )
        .await
        .expect(StatusCode::CREATED)["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A new user who is a member of `org` with `role`, with a token.
    pub async fn add_member(&self, org: &str, role: &str) -> Member {
        let (user_id, membership_id) = self.add_user_as_member(org, role).await;
        let token = self.token_for(&user_id).await;
        Member {
            user_id,
            membership_id,
            token,
        }
    }

    /// A new user made a member of `org` with `role`, without a token: (user id, membership id).
    pub async fn add_user_as_member(&self, org: &str, role: &str) -> (String, String) {
        let user_id = self
            .new_user(&format!("{}@example.com", uuid::Uuid::now_v7().simple()))
            .await;
        let membership_id = self.make_member(org, &user_id, role).await;
        (user_id, membership_id)
    }

    /// Invites `email` to `org` with the `member` role (through the admin key); the invitation.
    pub async fn invite(&self, org: &str, email: &str) -> Value {
        self.post(
            &format!("/v1/organizations/{org}/memberships"),
            &self.admin,
            json!({ "email": email }),
        )
        .await
        .expect(StatusCode::CREATED)
    }

    /// Removes the membership `membership_id` of `org` (through the admin key); the answer.
    pub async fn remove_member(&self, org: &str, membership_id: &str) -> Value {
        self.delete(
            &format!("/v1/organizations/{org}/memberships/{membership_id}"),
            &self.admin,
        )
        .await
        .expect(StatusCode::OK)
    }

    /// A new machine identity of `org` named `name`, with the `member` role; its id.
    pub async fn new_identity(&self, org: &str, name: &str) -> String {
        self.post(
            &format!("/v1/organizations/{org}/identities"),
            &self.admin,
            json!({"name": name, "role": "member"}),
        )
        .await
        .expect(StatusCode::CREATED)["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The identity `identity` added to `project` as a member; the project membership's id.
    pub async fn add_identity_to_project(&self, project: &str, identity: &str) -> String {
        self.post(
            &format!("/v1/projects/{project}/identity-memberships"),
            &self.admin,
            json!({"identity_id": identity, "role": "member"}),
        )
        .await
        .expect(StatusCode::CREATED)["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The existing user `user_id` made a member of `org` with `role` (through the admin key):
    /// the membership's id.
    pub async fn make_member(&self, org: &str, user_id: &str, role: &str) -> String {
        self.post(
            &format!("/v1/organizations/{org}/memberships"),
            &self.admin,
            json!({"user_id": user_id, "role": role}),
        )
        .await
        .expect(StatusCode::CREATED)["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `n` new users made members of `org` with `role` (no tokens): their membership ids.
    pub async fn add_users_as_members(&self, org: &str, role: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(self.add_user_as_member(org, role).await.1);
        }
        ids
    }

    /// The users in `project` (through the admin key), sorted.
    pub async fn project_users(&self, project: &str) -> Vec<String> {
        let page = self
            .get(&format!("/v1/projects/{project}/memberships"), &self.admin)
            .await
            .expect(StatusCode::OK);
        let mut users: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_id"].as_str().unwrap().to_owned())
            .collect();
        users.sort();
        users
    }

    /// A new project of `org` named `name`, with `members` in it (through the admin key); its id.
    pub async fn project_with(&self, org: &str, name: &str, members: &[&Member]) -> String {
        let project = self
            .post(
                &format!("/v1/organizations/{org}/projects"),
                &self.admin,
                json!({ "name": name }),
            )
            .await
            .expect(StatusCode::CREATED);
        let pid = project["id"].as_str().unwrap().to_owned();
        for m in members {
            self.post(
                &format!("/v1/projects/{pid}/memberships"),
                &self.admin,
                json!({"user_id": m.user_id}),
            )
            .await
            .expect(StatusCode::CREATED);
        }
        pid
    }

    /// A new organization with no member at all, for tests that need its admins to be only
    /// those they add. Only Clerk's contract allows one (QUIRK(clerk): `created_by` optional),
    /// so it is made through the Clerk mount.
    pub async fn empty_org(&self, name: &str) -> String {
        let b = self
            .post(
                "/clerk/v1/organizations",
                &self.admin,
                json!({"name": name}),
            )
            .await
            .expect(StatusCode::OK);
        roster_dialect_clerk::ids::decode("org", b["id"].as_str().unwrap())
            .unwrap()
            .to_string()
    }

    /// A new organization (through the admin key) whose first admin is a new user of its own.
    pub async fn new_org(&self, name: &str) -> String {
        let first_admin = self
            .new_user(&format!(
                "first-admin-{}@example.com",
                uuid::Uuid::now_v7().simple()
            ))
            .await;
        let b = self
            .post(
                "/v1/organizations",
                &self.admin,
                json!({"name": name, "created_by": first_admin}),
            )
            .await
            .expect(StatusCode::CREATED);
        b["id"].as_str().unwrap().to_owned()
    }

    /// The slug of `org` (read through the admin key), as the dialects that name
    /// organizations by slug address it.
    pub async fn slug(&self, org: &str) -> String {
        self.get(&format!("/v1/organizations/{org}"), &self.admin)
            .await
            .expect(StatusCode::OK)["slug"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Every membership of `org`, read through the admin key.
    pub async fn memberships(&self, org: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/organizations/{org}/memberships?limit=500&cursor={c}"),
                None => format!("/v1/organizations/{org}/memberships?limit=500"),
            };
            let b = self.get(&path, &self.admin).await.expect(StatusCode::OK);
            all.extend(b["data"].as_array().unwrap().iter().cloned());
            match b["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
    }

    pub async fn membership_ids(&self, org: &str) -> Vec<String> {
        self.memberships(org)
            .await
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The targets of `org`'s audit events of `action`, in the trail's order.
    pub async fn audited(&self, org: &str, action: &str) -> Vec<String> {
        self.audit_actions(org)
            .await
            .into_iter()
            .filter(|(a, _)| a == action)
            .map(|(_, target)| target)
            .collect()
    }

    /// Every audit event of `org` (each page of them): (action, target id).
    pub async fn audit_actions(&self, org: &str) -> Vec<(String, String)> {
        let (mut events, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let after = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
            let page = self
                .get(
                    &format!("/v1/organizations/{org}/audit-events?limit=500{after}"),
                    &self.admin,
                )
                .await
                .expect(StatusCode::OK);
            events.extend(page["data"].as_array().unwrap().iter().map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["target_id"].as_str().unwrap().to_owned(),
                )
            }));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return events,
            }
        }
    }
}

/// A new PostgreSQL database named after `prefix`: its URL, and the guard that drops it.
/// PostgreSQL is required: a server that cannot be reached fails the test.
pub async fn new_postgres_database(prefix: &str) -> (String, DbGuard) {
    let admin_url = postgres_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required for the API tests and is not reachable at {admin_url}: {e}. \
             Start it, or set ROSTER_TEST_POSTGRES_URL."
        )
    });
    let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = format!(
        "{}/{name}",
        admin_url.rsplit_once('/').expect("URL with a database").0
    );
    (url, DbGuard::Postgres { name, admin_url })
}

pub fn postgres_url() -> String {
    std::env::var("ROSTER_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

/// A bearer token (`rst_<id>_<secret>`) with the same id and a wrong secret.
pub fn with_wrong_secret(token: &str) -> String {
    let (id, _) = token.trim_start_matches("rst_").split_once('_').unwrap();
    format!("rst_{id}_{}", "0".repeat(64))
}

/// The `id` of each object in the JSON array `list` (a list or removal answer's items).
pub fn ids_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}
