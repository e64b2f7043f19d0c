//! The command-line client: the real `roster` binary against a real server (the app on a
//! listener of port 0), with a config directory of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_roster");

/// The app, served on a real listener while the test runs; its base URL.
struct Served {
    url: String,
    server: tokio::task::JoinHandle<()>,
    config: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.config);
    }
}

async fn serve(app: &TestApp) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let config = std::env::temp_dir().join(format!("roster-cli-{}", uuid::Uuid::now_v7().simple()));
    Served {
        url,
        server,
        config,
    }
}

impl Served {
    /// Runs `roster ARGS` with this test's config directory and no ROSTER_* from outside.
    async fn roster(&self, args: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("XDG_CONFIG_HOME", &self.config)
            .env("HOME", &self.config)
            .env_remove("ROSTER_SERVER")
            .env_remove("ROSTER_TOKEN")
            .env_remove("ROSTER_PROFILE");
        tokio::task::spawn_blocking(move || c.output().expect("run roster"))
            .await
            .unwrap()
    }

    /// `roster login` as `token`.
    async fn login(&self, token: &str) {
        let out = self
            .roster(&["login", "--server", &self.url, "--token", token])
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    }
}

fn said(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn json_of(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", said(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not one JSON document: {}", said(out)))
}

/// The email of a member (through the admin key).
async fn email_of(app: &TestApp, user_id: &str) -> String {
    app.get(&format!("/v1/users/{user_id}"), &app.admin)
        .await
        .expect(StatusCode::OK)["email"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn login_checks_the_token_and_saves_a_private_profile(app: TestApp) {
    let served = serve(&app).await;
    let bad = served
        .roster(&["login", "--server", &served.url, "--token", "rst_nope.nope"])
        .await;
    assert_eq!(bad.status.code(), Some(1), "{}", said(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unauthenticated"),
        "{}",
        said(&bad)
    );
    let profiles = served.config.join("roster/profiles.json");
    assert!(!profiles.exists(), "a refused token is not saved");

    served.login(&app.admin).await;
    let saved: Value = serde_json::from_slice(&std::fs::read(&profiles).unwrap()).unwrap();
    assert_eq!(saved["default"]["server"], served.url.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&profiles).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token is the user's alone");
    }
    // The saved profile is used; the org is named by its slug.
    let orgs = json_of(&served.roster(&["orgs", "list", "--output", "json"]).await);
    let slug = app.slug(&app.org).await;
    assert!(
        orgs["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["slug"] == slug.as_str()),
        "{orgs}"
    );
    let table = served.roster(&["orgs", "list"]).await;
    assert!(
        String::from_utf8_lossy(&table.stdout).starts_with("ID"),
        "{}",
        said(&table)
    );

    // A second profile, and ROSTER_TOKEN over the profile's.
    let member = app.add_member(&app.org, "member").await;
    let out = served
        .roster(&[
            "login",
            "--profile",
            "me",
            "--server",
            &served.url,
            "--token",
            &member.token,
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let mine = json_of(
        &served
            .roster(&["orgs", "list", "--profile", "me", "--output", "json"])
            .await,
    );
    assert_eq!(mine["organizations"].as_array().unwrap().len(), 1, "{mine}");
}

async fn members_are_listed_shown_and_removed_by_each_kind_of_name(app: TestApp) {
    let served = serve(&app).await;
    served.login(&app.admin).await;
    let org = app.new_org("Leavers").await;
    let slug = app.slug(&org).await;
    let [by_id, by_user, by_email, kept] = [
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
        app.add_member(&org, "member").await,
    ];
    let project = app.project_with(&org, "vault", &[&by_id]).await;
    let email = email_of(&app, &by_email.user_id).await;

    let listed = json_of(
        &served
            .roster(&["members", "list", "--org", &slug, "--output", "json"])
            .await,
    );
    assert_eq!(
        listed["members"].as_array().unwrap().len(),
        app.membership_ids(&org).await.len()
    );
    let shown = json_of(
        &served
            .roster(&["members", "show", "--org", &org, &email, "--output", "json"])
            .await,
    );
    assert_eq!(shown["member"]["id"], by_email.membership_id.as_str());

    // Without a terminal to ask on, and without --yes: nothing is removed (a usage error).
    let names = [
        by_id.membership_id.as_str(),
        by_user.user_id.as_str(),
        email.as_str(),
    ];
    let mut args = vec!["members", "remove", "--org", &slug];
    args.extend(names);
    let unasked = served.roster(&args).await;
    assert_eq!(unasked.status.code(), Some(2), "{}", said(&unasked));
    assert!(
        String::from_utf8_lossy(&unasked.stdout)
            .contains("Would remove 3 members, 1 project memberships"),
        "the dry run is shown first: {}",
        said(&unasked)
    );
    let dry = json_of(
        &served
            .roster(&[&args[..], &["--dry-run", "--output", "json"]].concat())
            .await,
    );
    assert_eq!(
        (dry["dry_run"].clone(), dry["members"].clone()),
        (json!(true), json!(3))
    );
    assert_eq!(
        app.membership_ids(&org).await.len(),
        5,
        "nothing removed yet"
    );

    let done = json_of(
        &served
            .roster(&[&args[..], &["--yes", "--output", "json"]].concat())
            .await,
    );
    assert_eq!(
        (done["dry_run"].clone(), done["members"].clone()),
        (json!(false), json!(3))
    );
    assert_eq!(done["project_memberships"], 1);
    let left = app.membership_ids(&org).await;
    assert!(left.contains(&kept.membership_id));
    for gone in [&by_id, &by_user, &by_email] {
        assert!(!left.contains(&gone.membership_id));
    }
    let in_project = app
        .get(&format!("/v1/projects/{project}/memberships"), &app.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(in_project["data"], json!([]));

    // Run again: they are reported as already removed, and that is no error.
    let again = served.roster(&[&args[..], &["--yes"]].concat()).await;
    assert_eq!(again.status.code(), Some(0), "{}", said(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr)
            .matches("was already removed")
            .count(),
        3,
        "{}",
        said(&again)
    );

    // And back.
    let back = served
        .roster(&["members", "reinstate", "--org", &slug, &by_id.membership_id])
        .await;
    assert_eq!(back.status.code(), Some(0), "{}", said(&back));
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&by_id.membership_id)
    );
}

async fn a_refused_removal_exits_1_with_the_servers_words_and_removes_nothing(app: TestApp) {
    let served = serve(&app).await;
    served.login(&app.admin).await;
    let org = app.empty_org("Sole admin").await;
    let admin = app.add_member(&org, "admin").await;
    let out = served
        .roster(&[
            "members",
            "remove",
            "--org",
            &org,
            &admin.membership_id,
            "--yes",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("last_admin"), "{}", said(&out));
    assert!(stderr.contains("request id: req-"), "{}", said(&out));
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&admin.membership_id)
    );
}

/// Writes a leavers' CSV with a header row and `rows`; its path.
fn csv(dir: &Path, rows: &[String]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("leavers-{}.csv", uuid::Uuid::now_v7().simple()));
    let mut text = String::from("name,email,department\n");
    for r in rows {
        text.push_str(&format!("Someone,{r},Engineering\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

async fn a_row_matching_nobody_is_named_by_its_line_and_stops_the_removal(app: TestApp) {
    let served = serve(&app).await;
    served.login(&app.admin).await;
    let org = app.new_org("Typos").await;
    let member = app.add_member(&org, "member").await;
    let email = email_of(&app, &member.user_id).await;
    let file = csv(
        &served.config,
        &[email.clone(), "nobody@example.com".to_owned()],
    );
    let file = file.to_str().unwrap();
    let out = served
        .roster(&[
            "members",
            "remove",
            "--org",
            &org,
            "--from-csv",
            file,
            "--yes",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("line 3: nobody@example.com matches no member"),
        "{}",
        said(&out)
    );
    assert!(
        app.membership_ids(&org)
            .await
            .contains(&member.membership_id)
    );
    let out = served
        .roster(&[
            "members",
            "remove",
            "--org",
            &org,
            "--from-csv",
            file,
            "--yes",
            "--skip-unknown",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        !app.membership_ids(&org)
            .await
            .contains(&member.membership_id)
    );
    let bad = csv(&served.config, &[]);
    std::fs::write(&bad, "name,department\nSomeone,Sales\n").unwrap();
    let out = served
        .roster(&[
            "members",
            "remove",
            "--org",
            &org,
            "--from-csv",
            bad.to_str().unwrap(),
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a CSV without a column to read: {}",
        said(&out)
    );
}

async fn a_leavers_csv_of_ten_thousand_rows_is_removed_in_chunks(app: TestApp) {
    const ROWS: usize = 10_000;
    let served = serve(&app).await;
    served.login(&app.admin).await;
    let org = app.new_org("Big leavers").await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (app, org) = (app.clone(), org.clone());
        tasks.push(tokio::spawn(async move {
            let mut emails = Vec::new();
            for i in (worker..ROWS).step_by(8) {
                let email = format!("leaver-{i}@example.com");
                let user = app.new_user(&email).await;
                app.make_member(&org, &user, "member").await;
                emails.push(email);
            }
            emails
        }));
    }
    let mut emails = Vec::new();
    for t in tasks {
        emails.extend(t.await.unwrap());
    }
    let file = csv(&served.config, &emails);
    let out = served
        .roster(&[
            "members",
            "remove",
            "--org",
            &org,
            "--from-csv",
            file.to_str().unwrap(),
            "--yes",
            "--output",
            "json",
        ])
        .await;
    let done = json_of(&out);
    assert_eq!(done["members"], ROWS);
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains(&format!("removed {ROWS} of {ROWS}")),
        "plain progress lines off a terminal: {progress}"
    );
    assert_eq!(
        app.membership_ids(&org).await.len(),
        1,
        "only the admin is left"
    );
    assert_eq!(
        app.audited(&org, "membership.removed").await.len(),
        ROWS,
        "each removed once"
    );
    // A list long enough to be read whole, run again: each is already removed, no error.
    let again = csv(&served.config, &emails[..25]);
    let out = served
        .roster(&[
            "members",
            "remove",
            "--org",
            &org,
            "--from-csv",
            again.to_str().unwrap(),
            "--yes",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("was already removed")
            .count(),
        25,
        "{}",
        said(&out)
    );
}

async fn a_server_that_is_down_is_a_clear_error(app: TestApp) {
    let served = serve(&app).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let out = served
        .roster(&["orgs", "list", "--server", &down, "--token", &app.admin])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("cannot reach the server at {down}")),
        "{}",
        said(&out)
    );
    let nothing = served.roster(&["orgs", "list"]).await;
    assert_eq!(
        nothing.status.code(),
        Some(2),
        "no profile, no server: {}",
        said(&nothing)
    );
}

async fn projects_are_listed_and_an_identity_is_removed_after_its_dry_run(app: TestApp) {
    let served = serve(&app).await;
    served.login(&app.admin).await;
    let org = app.new_org("Machines").await;
    let member = app.add_member(&org, "member").await;
    let project = app.project_with(&org, "deploys", &[&member]).await;
    let identity = app.new_identity(&org, "deployer").await;
    app.add_identity_to_project(&project, &identity).await;
    let listed = json_of(
        &served
            .roster(&["projects", "list", "--org", &org, "--output", "json"])
            .await,
    );
    assert_eq!(listed["projects"][0]["id"], project.as_str());
    let inside = json_of(
        &served
            .roster(&["projects", "members", &project, "--output", "json"])
            .await,
    );
    assert_eq!(inside["members"][0]["user_id"], member.user_id.as_str());
    assert_eq!(inside["identities"][0]["identity_id"], identity.as_str());

    let unasked = served
        .roster(&["projects", "remove-identity", &project, &identity])
        .await;
    assert_eq!(unasked.status.code(), Some(2), "{}", said(&unasked));
    assert!(
        String::from_utf8_lossy(&unasked.stdout).contains("Would remove 1 identity membership"),
        "{}",
        said(&unasked)
    );
    let done = json_of(
        &served
            .roster(&[
                "identities",
                "remove",
                "--project",
                &project,
                &identity,
                "--yes",
                "--output",
                "json",
            ])
            .await,
    );
    assert_eq!(done["dry_run"], false);
    assert_eq!(done["removed"][0]["identity_id"], identity.as_str());
    let after = app
        .get(
            &format!("/v1/projects/{project}/identity-memberships"),
            &app.admin,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(after["data"], json!([]));
}

async fn the_audit_log_is_listed_and_followed(app: TestApp) {
    let served = serve(&app).await;
    served.login(&app.admin).await;
    let org = app.new_org("Watched").await;
    let first = app.add_member(&org, "member").await;
    app.remove_member(&org, &first.membership_id).await;
    let listed = json_of(
        &served
            .roster(&[
                "audit",
                "list",
                "--org",
                &org,
                "--action",
                "membership.removed",
                "--output",
                "json",
            ])
            .await,
    );
    let events = listed["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{listed}");
    assert_eq!(events[0]["target_id"], first.membership_id.as_str());

    // Following: the next removal is printed as it is written.
    let mut follower = std::process::Command::new(BIN)
        .args([
            "audit",
            "list",
            "--org",
            &org,
            "--action",
            "membership.removed",
            "--follow",
            "--output",
            "json",
        ])
        .env("XDG_CONFIG_HOME", &served.config)
        .env("HOME", &served.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next = |timeout: std::time::Duration| -> Value {
        let line = received
            .recv_timeout(timeout)
            .expect("a line from the follower");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    };
    let history = tokio::task::block_in_place(|| next(std::time::Duration::from_secs(10)));
    assert_eq!(
        history["target_id"],
        first.membership_id.as_str(),
        "the history first"
    );
    let second = app.add_member(&org, "member").await;
    app.remove_member(&org, &second.membership_id).await;
    let new = tokio::task::block_in_place(|| next(std::time::Duration::from_secs(10)));
    assert_eq!(new["target_id"], second.membership_id.as_str());
    follower.kill().unwrap();
    let _ = follower.wait();
}

on_both_backends!(
    projects_are_listed_and_an_identity_is_removed_after_its_dry_run,
    the_audit_log_is_listed_and_followed,
    login_checks_the_token_and_saves_a_private_profile,
    members_are_listed_shown_and_removed_by_each_kind_of_name,
    a_refused_removal_exits_1_with_the_servers_words_and_removes_nothing,
    a_row_matching_nobody_is_named_by_its_line_and_stops_the_removal,
    a_leavers_csv_of_ten_thousand_rows_is_removed_in_chunks,
    a_server_that_is_down_is_a_clear_error,
);

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("members") && script.contains("from-csv"),
            "{shell}"
        );
    }
    let wrong = Command::new(BIN)
        .args(["completions", "cmd"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "a usage error");
}
