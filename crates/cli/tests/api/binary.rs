//! The `roster` binary itself: the CLI contract of bootstrap, serving on a real listener,
//! graceful shutdown on SIGTERM, and secrets kept out of the logs.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_roster");

fn roster(args: &[&str], database: &str) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("ROSTER_DATABASE_URL", database)
        .env("RUST_LOG", "debug")
        .output()
        .expect("run roster")
}

/// One HTTP/1.1 request over a fresh connection; returns the status and the body.
async fn http(addr: &str, method: &str, path: &str, auth: &str) -> (u16, String) {
    exchange(addr, method, path, auth, "").await
}

/// `http` with a JSON body; the answer's body read as JSON (null if it is not).
async fn http_json(addr: &str, method: &str, path: &str, auth: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let headed = format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, answer) = exchange(addr, method, path, auth, &headed).await;
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

/// Sends the request line, the host and authorization headers, then `rest` (more headers
/// and a body, or nothing); returns the status and the body.
async fn exchange(addr: &str, method: &str, path: &str, auth: &str, rest: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let rest = if rest.is_empty() { "\r\n" } else { rest };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: {auth}\r\nconnection: close\r\n{rest}"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        raw.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

/// A SQLite database in a directory of its own, removed with the directory when dropped
/// (a failing test included).
struct TempSqlite {
    dir: std::path::PathBuf,
    url: String,
}

impl TempSqlite {
    fn new() -> TempSqlite {
        let dir =
            std::env::temp_dir().join(format!("roster-bin-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/roster.db", dir.display());
        TempSqlite { dir, url }
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `roster serve` on port 0 and reads the bound address from its log.
fn serve(database: &str) -> (Child, String, std::thread::JoinHandle<String>) {
    serve_with(database, &[])
}

/// `serve`, with more arguments.
fn serve_with(database: &str, more: &[&str]) -> (Child, String, std::thread::JoinHandle<String>) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .args(more)
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn roster serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let addr = loop {
        let mut line = String::new();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "roster serve exited early:\n{log}"
        );
        log.push_str(&line);
        if line.contains("roster listening") {
            let at = line.find("address=").expect("address in the log line") + "address=".len();
            break line[at..].split_whitespace().next().unwrap().to_owned();
        }
    };
    let rest = std::thread::spawn(move || {
        let mut more = String::new();
        let _ = lines.read_to_string(&mut more);
        log + &more
    });
    (child, addr, rest)
}

async fn exercise(database: &str) {
    let out = roster(
        &[
            "bootstrap",
            "--org",
            "Initech",
            "--email",
            "peter@example.com",
        ],
        database,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boot: Value =
        serde_json::from_slice(&out.stdout).expect("exactly one JSON object on stdout");
    for key in [
        "organization_id",
        "organization_slug",
        "user_id",
        "membership_id",
        "token",
        "token_id",
        "token_secret",
    ] {
        assert!(boot[key].is_string(), "bootstrap prints {key}");
    }
    let mut secrets = vec![boot["token_secret"].as_str().unwrap().to_owned()];
    let again = roster(
        &[
            "bootstrap",
            "--org",
            "Initech",
            "--email",
            "peter@example.com",
        ],
        database,
    );
    assert!(
        !again.status.success(),
        "a second bootstrap of the same organization is refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let (mut child, addr, log) = serve(database);
    let token = boot["token"].as_str().unwrap();
    let org = boot["organization_id"].as_str().unwrap();
    let (status, _) = http(
        &addr,
        "GET",
        &format!("/v1/organizations/{org}"),
        &format!("Bearer {token}"),
    )
    .await;
    assert_eq!(status, 200);
    let pair = format!(
        "{}:{}",
        boot["token_id"].as_str().unwrap(),
        boot["token_secret"].as_str().unwrap()
    );
    let (status, _) = http(
        &addr,
        "GET",
        &format!("/v1/organizations/{org}/memberships"),
        &pair,
    )
    .await;
    assert_eq!(status, 200, "the same key in PlanetScale's form");
    let (status, body) = http(
        &addr,
        "POST",
        &format!("/v1/users/{}/tokens", boot["user_id"].as_str().unwrap()),
        &format!("Bearer {token}"),
    )
    .await;
    assert_eq!(status, 400, "no body: {body}");
    let (status, _) = http(&addr, "GET", "/readyz", "none").await;
    assert_eq!(status, 200);
    let members = format!("/v1/organizations/{org}/memberships");
    let (status, _) = http(
        &addr,
        "GET",
        &format!("{members}?email=leaver-7%40example.com"),
        &format!("Bearer {token}"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http(
        &addr,
        "GET",
        &format!("/v1/organizations/{org}"),
        &format!("Bearer {}x", &token[..token.len() - 1]),
    )
    .await;
    assert_eq!(status, 401);
    secrets.push(token.to_owned());

    let status = stop_with_sigterm(&mut child);
    assert!(status.success(), "a clean exit on SIGTERM");
    let log = log.join().unwrap();
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        log.contains(&format!("path={members}")),
        "a request's lines carry its path: {log}"
    );
    assert!(
        !log.contains("leaver-7"),
        "the query string was logged: {log}"
    );
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "a secret reached the log");
    }
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&secrets[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_bootstraps_serves_and_stops_cleanly_on_sqlite() {
    let sqlite = TempSqlite::new();
    let database = sqlite.url.clone();
    exercise(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_bootstraps_serves_and_stops_cleanly_on_postgres() {
    let (url, _dropped) = crate::harness::new_postgres_database("roster_bin").await;
    exercise(&url).await;
}

#[test]
fn a_database_url_of_an_unknown_kind_is_a_clear_error() {
    let out = roster(&["migrate"], "mysql://localhost/roster");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sqlite:// or postgres://"));
}

fn says_what_it_migrated(database: &str) {
    let first = roster(&["migrate"], database);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr),
    );
    assert!(first.status.success(), "{stderr}");
    assert!(
        stdout.contains("applied") && stdout.contains("0001 initial"),
        "a new database is told what was applied: {stdout}"
    );
    let again = roster(&["migrate"], database);
    let again_out = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success());
    assert!(
        again_out.contains("no pending migrations") && !again_out.contains("applied"),
        "{again_out}"
    );
    let boot = roster(
        &[
            "bootstrap",
            "--org",
            "Initech",
            "--email",
            "peter@example.com",
        ],
        database,
    );
    let boot_log = String::from_utf8_lossy(&boot.stderr);
    assert!(boot.status.success(), "{boot_log}");
    assert!(
        !boot_log.to_lowercase().contains("notice") && !boot_log.contains("already exists"),
        "a driver notice reached the log: {boot_log}"
    );

    // Admin keys: listed (never their secrets) and revoked from the command line.
    let boot: Value = serde_json::from_slice(&boot.stdout).unwrap();
    let second: Value =
        serde_json::from_slice(&roster(&["admin-key", "--name", "ci"], database).stdout).unwrap();
    let listed = |db: &str| {
        let out = roster(&["admin-key", "list"], db);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let before = listed(database);
    for key in [&boot, &second] {
        assert!(
            before.contains(key["token_id"].as_str().unwrap()),
            "{before}"
        );
        assert!(
            !before.contains(key["token_secret"].as_str().unwrap()),
            "{before}"
        );
    }
    let revoked = roster(
        &["admin-key", "revoke", second["token_id"].as_str().unwrap()],
        database,
    );
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let after = listed(database);
    assert!(
        after.contains(boot["token_id"].as_str().unwrap()),
        "{after}"
    );
    assert!(
        !after.contains(second["token_id"].as_str().unwrap()),
        "{after}"
    );
}

#[test]
fn migrate_says_what_it_applied_and_then_that_nothing_is_pending_on_sqlite() {
    let sqlite = TempSqlite::new();
    says_what_it_migrated(&sqlite.url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_says_what_it_applied_and_then_that_nothing_is_pending_on_postgres() {
    let (url, _dropped) = crate::harness::new_postgres_database("roster_mig").await;
    tokio::task::spawn_blocking(move || says_what_it_migrated(&url))
        .await
        .unwrap();
}

#[test]
fn a_database_that_cannot_be_reached_is_named_at_start_up() {
    let missing_dir = std::env::temp_dir()
        .join(format!("roster-none-{}", uuid::Uuid::now_v7().simple()))
        .join("roster.db");
    let pg = crate::harness::postgres_url();
    let base = pg.rsplit_once('/').unwrap().0;
    for (database, says) in [
        (
            "postgres://postgres@127.0.0.1:1/roster".to_owned(),
            "connection refused",
        ),
        (
            format!("{base}/roster_no_such_database"),
            "database does not exist",
        ),
        (
            format!("sqlite://{}", missing_dir.display()),
            "cannot open the SQLite database",
        ),
    ] {
        for command in ["serve", "migrate"] {
            let args: &[&str] = match command {
                "serve" => &["serve", "--listen", "127.0.0.1:0"],
                _ => &["migrate"],
            };
            let out = roster(args, &database);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{command} on {database} exits non-zero"
            );
            assert!(
                stderr.contains(says) && !stderr.contains("internal error"),
                "{command} on {database}: {stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_says_why_the_database_went_away_while_serving() {
    let app = crate::harness::TestApp::postgres().await;
    assert_eq!(app.get("/readyz", "none").await.status, 200);
    let roster::Database::Postgres(url) = &app.database else {
        unreachable!("a PostgreSQL app")
    };
    let (admin_url, name) = (
        crate::harness::postgres_url(),
        url.rsplit_once('/').unwrap().1,
    );
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    let ready = app.get("/readyz", "none").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    let reason = ready.body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("database does not exist"), "{}", ready.body);
}

/// What a webhook receiver got: each request's `webhook-id`, and the status it answered.
type Deliveries = std::sync::Arc<std::sync::Mutex<Vec<(String, u16)>>>;

/// A receiver on 127.0.0.1 answering 503 to its first `failures` requests, then 200.
async fn receiver(failures: usize) -> (String, Deliveries) {
    receiver_answering_after(failures, Duration::ZERO).await
}

/// `receiver`, each answer given `delay` after the request is counted.
async fn receiver_answering_after(failures: usize, delay: Duration) -> (String, Deliveries) {
    let got: Deliveries = Default::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let status = {
                    let mut seen = seen.lock().unwrap();
                    let status = if seen.len() < failures { 503 } else { 200 };
                    let id = headers["webhook-id"].to_str().unwrap().to_owned();
                    seen.push((id, status));
                    status
                };
                tokio::time::sleep(delay).await;
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Waits (up to 20 s) until `got` holds `n` requests.
async fn until_received(got: &Deliveries, n: usize) -> Vec<(String, u16)> {
    for _ in 0..400 {
        let now = got.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} deliveries expected: {:?}", got.lock().unwrap());
}

/// Bootstraps `database` with an organization named `org`: its id and the admin key's
/// `Authorization` header.
fn bootstrapped(database: &str, org: &str) -> (String, String) {
    let email = format!("{}@example.com", org.to_lowercase());
    let out = roster(&["bootstrap", "--org", org, "--email", &email], database);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boot: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        boot["organization_id"].as_str().unwrap().to_owned(),
        format!("Bearer {}", boot["token"].as_str().unwrap()),
    )
}

/// Over HTTP: an endpoint of `org` sending `membership.removed` to `url`; the endpoint.
async fn removal_endpoint(addr: &str, auth: &str, org: &str, url: &str) -> Value {
    let (status, endpoint) = http_json(
        addr,
        "POST",
        &format!("/v1/organizations/{org}/webhook-endpoints"),
        auth,
        &serde_json::json!({"url": url, "events": ["membership.removed"]}),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    endpoint
}

/// Over HTTP: a new user `email` made a member of `org`; the removal's path.
async fn new_member(addr: &str, auth: &str, org: &str, email: &str) -> String {
    let (status, user) = http_json(
        addr,
        "POST",
        "/v1/users",
        auth,
        &serde_json::json!({"email": email}),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let (status, m) = http_json(
        addr,
        "POST",
        &format!("/v1/organizations/{org}/memberships"),
        auth,
        &serde_json::json!({"user_id": user["id"], "role": "member"}),
    )
    .await;
    assert_eq!(status, 201, "{m}");
    format!(
        "/v1/organizations/{org}/memberships/{}",
        m["id"].as_str().unwrap()
    )
}

/// Sends SIGTERM and waits (up to 10 s) for the process to exit; how it exited.
fn stop_with_sigterm(child: &mut Child) -> std::process::ExitStatus {
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("roster serve did not stop on SIGTERM");
}

/// An event whose delivery is still pending when the process is killed (SIGKILL: no shutdown
/// at all) is delivered after a restart, with the same id; so is one committed just before.
async fn pending_deliveries_survive_a_kill(database: &str) {
    let (org, auth) = bootstrapped(database, "Crash");
    // An attempt cut off by the kill is claimed again after twice the timeout and 5 s.
    let args = [
        "--allow-private-webhook-urls",
        "--webhook-retry-schedule",
        "2s,2s,2s",
        "--webhook-timeout",
        "1s",
    ];
    let (mut child, addr, _log) = serve_with(database, &args);
    let (url, got) = receiver(1).await;
    removal_endpoint(&addr, &auth, &org, &url).await;
    let mut removed = Vec::new();
    for i in 0..2 {
        removed.push(new_member(&addr, &auth, &org, &format!("leaver{i}@example.com")).await);
    }
    let remove = |path: &str| {
        let (addr, auth, path) = (addr.clone(), auth.clone(), path.to_owned());
        async move { http(&addr, "DELETE", &path, &auth).await.0 }
    };
    // The first removal's delivery fails once and waits 2 s for its next attempt ...
    assert_eq!(remove(&removed[0]).await, 200);
    let first = until_received(&got, 1).await;
    assert_eq!(first[0].1, 503);
    // ... the second is committed, and the process dies at once.
    assert_eq!(remove(&removed[1]).await, 200);
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, _addr, _log) = serve_with(database, &args);
    let got = until_received(&got, 3).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let delivered: std::collections::HashSet<&str> = got
        .iter()
        .filter(|(_, status)| *status == 200)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(delivered.len(), 2, "both events delivered: {got:?}");
    assert!(delivered.contains(first[0].0.as_str()), "the same id again");
}

/// SIGTERM lets an attempt under way finish and be recorded before the process exits: after
/// a restart it is not sent again.
async fn an_attempt_under_way_at_sigterm_finishes_and_is_recorded(database: &str) {
    let (org, auth) = bootstrapped(database, "Term");
    let args = ["--allow-private-webhook-urls"];
    let (mut child, addr, _log) = serve_with(database, &args);
    let (url, got) = receiver_answering_after(0, Duration::from_millis(1500)).await;
    let endpoint = removal_endpoint(&addr, &auth, &org, &url).await;
    let path = new_member(&addr, &auth, &org, "leaver@example.com").await;
    assert_eq!(http(&addr, "DELETE", &path, &auth).await.0, 200);
    until_received(&got, 1).await;
    // The receiver holds its answer for 1.5 s: the attempt is under way.
    assert!(stop_with_sigterm(&mut child).success());

    let (mut child, addr, _log) = serve_with(database, &args);
    let deliveries = format!(
        "/v1/organizations/{org}/webhook-endpoints/{}/deliveries",
        endpoint["id"].as_str().unwrap()
    );
    let (status, attempts) = http(&addr, "GET", &deliveries, &auth).await;
    assert_eq!(status, 200);
    let attempts: Value = serde_json::from_str(&attempts).unwrap();
    assert_eq!(attempts["data"].as_array().unwrap().len(), 1, "{attempts}");
    assert_eq!(attempts["data"][0]["status_code"], 200);
    assert_eq!(attempts["data"][0]["delivery_state"], "succeeded");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(got.lock().unwrap().len(), 1, "not sent again");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_under_way_at_sigterm_is_recorded_on_sqlite() {
    let sqlite = TempSqlite::new();
    an_attempt_under_way_at_sigterm_finishes_and_is_recorded(&sqlite.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_under_way_at_sigterm_is_recorded_on_postgres() {
    let (url, _dropped) = crate::harness::new_postgres_database("roster_term").await;
    an_attempt_under_way_at_sigterm_finishes_and_is_recorded(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_webhook_deliveries_survive_a_kill_on_sqlite() {
    let sqlite = TempSqlite::new();
    pending_deliveries_survive_a_kill(&sqlite.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_webhook_deliveries_survive_a_kill_on_postgres() {
    let (url, _dropped) = crate::harness::new_postgres_database("roster_kill").await;
    pending_deliveries_survive_a_kill(&url).await;
}

/// Reads what the server sends until it closes the connection (or `within` passes, a
/// failure): what it sent, and how long after `since` it closed.
async fn until_closed(
    s: &mut tokio::net::TcpStream,
    since: std::time::Instant,
    within: Duration,
) -> (String, Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(since.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&got).into_owned(), since.elapsed());
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {within:?}; it sent {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

// The timeouts are the transport's, the same whatever the database: shown on SQLite alone.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_slow_headers_are_closed_after_the_header_read_timeout() {
    let sqlite = TempSqlite::new();
    let database = sqlite.url.clone();
    let (mut child, addr, _log) = serve_with(&database, &["--header-read-timeout", "1s"]);
    let started = std::time::Instant::now();

    // A connection that sends nothing.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // One that sends its headers a byte at a time and never ends them.
    let mut dripping = tokio::net::TcpStream::connect(&addr).await.unwrap();
    dripping
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: roster\r\nx-slow: ")
        .await
        .unwrap();
    let drip = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if dripping.write_all(b"a").await.is_err() {
                break;
            }
        }
        dripping
    });
    // One kept alive after an answered request, then left idle.
    let mut kept = tokio::net::TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: roster\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 1024];
    let n = kept.read(&mut answer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    let answered = std::time::Instant::now();

    // Others are served meanwhile.
    let (status, _) = http(&addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200);

    let (sent, idle_for) = until_closed(&mut idle, started, Duration::from_secs(8)).await;
    assert_eq!(
        sent, "",
        "nothing is sent to a connection that asked nothing"
    );
    assert!(
        idle_for >= Duration::from_millis(900),
        "closed after {idle_for:?}"
    );
    let (_, kept_for) = until_closed(&mut kept, answered, Duration::from_secs(8)).await;
    assert!(
        kept_for >= Duration::from_millis(900),
        "closed after {kept_for:?}"
    );
    let mut dripping = drip.await.unwrap();
    let (_, dripped_for) = until_closed(&mut dripping, started, Duration::from_secs(11)).await;
    assert!(
        dripped_for < Duration::from_secs(8),
        "a client dripping its headers was kept {dripped_for:?}"
    );

    assert!(stop_with_sigterm(&mut child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_still_arriving_after_the_body_read_timeout_is_refused_with_408() {
    let sqlite = TempSqlite::new();
    let database = sqlite.url.clone();
    let (org, auth) = bootstrapped(&database, "Slow");
    let (mut child, addr, _log) = serve_with(&database, &["--body-read-timeout", "1s"]);
    let members = format!("/v1/organizations/{org}/memberships");
    let (_, before) = http(&addr, "GET", &members, &auth).await;

    // On the native API and on a vendor mount, each in its own envelope.
    let mounts = [
        (
            format!("POST /v1/organizations/{org}/memberships/bulk-remove"),
            "\"code\":\"request_timeout\"",
        ),
        (
            format!("DELETE /infisical/api/v2/organizations/{org}/memberships"),
            "\"error\":\"RequestTimeout\"",
        ),
    ];
    for (request, envelope) in mounts {
        let started = std::time::Instant::now();
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "{request} HTTP/1.1\r\nhost: roster\r\nauthorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"membershipIds\": ["
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let (answer, after) = until_closed(&mut s, started, Duration::from_secs(8)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains(envelope), "{answer}");
        assert!(
            after >= Duration::from_millis(900),
            "answered after {after:?}"
        );
    }

    // Nothing was removed.
    let (_, after) = http(&addr, "GET", &members, &auth).await;
    assert_eq!(before, after);
    assert!(stop_with_sigterm(&mut child).success());
}

/// A TCP relay to the test PostgreSQL server, on a port of its own, that can be cut (its
/// listener closed and every relayed connection dropped, as when the server goes down) and
/// opened again on the same port.
/// With `--max-connections 2`, a third connection waits in the listener's queue, its request
/// unanswered, while two are open, and is served as soon as one of them closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_the_cap_waits_until_one_closes() {
    let sqlite = TempSqlite::new();
    let (mut child, addr, _log) = serve_with(&sqlite.url, &["--max-connections", "2"]);
    let first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Both accepted before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: roster\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut answer)).await;
    assert!(early.is_err(), "a third connection was served: {early:?}");

    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut answer))
        .await
        .expect("served once a connection closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(stop_with_sigterm(&mut child).success());
}

struct Relay {
    port: u16,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn open() -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut relay = Relay {
            port,
            running: None,
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        self.running = Some(tokio::spawn(async move {
            let mut relayed = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                relayed.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// The server "goes down": connections refused, those open cut.
    async fn cut(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
            let _ = running.await;
        }
    }

    /// The server "comes back" on the same port.
    async fn reopen(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_fast_with_503_while_postgres_is_down_and_recover_when_it_returns() {
    let (url, _dropped) = crate::harness::new_postgres_database("roster_down").await;
    let (org, auth) = bootstrapped(&url, "Down");
    let mut relay = Relay::open().await;
    let name = url.rsplit_once('/').unwrap().1;
    let relayed = format!("postgres://postgres@127.0.0.1:{}/{name}", relay.port);
    let (mut child, addr, _log) = serve(&relayed);
    let path = format!("/v1/organizations/{org}/memberships");
    assert_eq!(http(&addr, "GET", &path, &auth).await.0, 200);

    relay.cut().await;
    // Each request is answered, at once and with 503 in the envelope, not after the pool's
    // 30 s wait for a connection.
    for _ in 0..5 {
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            http(&addr, "GET", &path, &auth).await
        })
        .await
        .expect("a request while the database is down must be answered within 5 s");
        assert_eq!(answered.0, 503, "{}", answered.1);
        assert!(
            answered.1.contains("\"code\":\"unavailable\""),
            "{}",
            answered.1
        );
    }

    relay.reopen().await;
    let mut recovered = false;
    for _ in 0..50 {
        if http(&addr, "GET", &path, &auth).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "the service came back by itself once the database did"
    );
    relay.cut().await;
    let _ = child.kill();
    let _ = child.wait();
}

/// The listener's accept queue, as the kernel reports it (`ss`'s Send-Q of a listening
/// socket): tokio's own 1,024 overflowed under a burst of 2,200 connects, and the kernel
/// dropped the handshakes that did not fit, silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_queues_bursts_of_connections_up_to_the_kernels_limit() {
    let sqlite = TempSqlite::new();
    let (mut child, addr, _log) = serve(&sqlite.url);
    let port = addr.rsplit_once(':').unwrap().1;
    let out = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss, from iproute2 (.ci/run installs it)");
    let listing = String::from_utf8_lossy(&out.stdout);
    let queue: u32 = listing
        .split_whitespace()
        .nth(2)
        .and_then(|q| q.parse().ok())
        .unwrap_or_else(|| panic!("no listening socket on {port}: {listing:?}"));
    let most: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(queue, most.min(4096), "{listing}");
    assert!(stop_with_sigterm(&mut child).success());
}

/// After `FAILURES_PER_ADDRESS` failed authentications from one address (each with a token id
/// of its own, so that no token's limit is reached), that address is refused with 429 even
/// with a good token; the limit is the address's, counted by the binary's own listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_are_refused_with_429() {
    let sqlite = TempSqlite::new();
    let database = sqlite.url.clone();
    let (org, auth) = bootstrapped(&database, "Limited");
    let (mut child, addr, _log) = serve(&database);
    let path = format!("/v1/organizations/{org}");
    assert_eq!(http(&addr, "GET", &path, &auth).await.0, 200);
    for _ in 0..roster_http::auth_limit::FAILURES_PER_ADDRESS {
        let guess = format!(
            "Bearer rst_{}_{}",
            uuid::Uuid::now_v7().simple(),
            "0".repeat(64)
        );
        assert_eq!(http(&addr, "GET", &path, &guess).await.0, 401);
    }
    let (status, body) = http(&addr, "GET", &path, &auth).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("\"code\":\"too_many_requests\""), "{body}");
    // A request without credentials is not refused by the limit (it cannot authenticate).
    assert_eq!(http(&addr, "GET", "/healthz", "").await.0, 200);
    assert!(stop_with_sigterm(&mut child).success());
}

/// A SIGTERM sent the moment the server says it is listening (a service manager stopping it
/// at once) starts a graceful shutdown: the handler is in place before the log line, so the
/// signal's default action never ends the process. Ten times, as the window was short.
#[test]
fn a_sigterm_right_after_listening_stops_the_server_gracefully() {
    let sqlite = TempSqlite::new();
    let database = sqlite.url.clone();
    for _ in 0..10 {
        let (mut child, _addr, log) = serve(&database);
        let stopped = stop_with_sigterm(&mut child);
        assert!(stopped.success(), "{stopped}: {}", log.join().unwrap());
    }
}
