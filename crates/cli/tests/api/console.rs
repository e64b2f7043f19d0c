//! The web console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `.ci/run`) driven by Selenium (PyPI, pinned; `./test`
//! installs it), against the app on a real listener: sign in, find a member by email, see the
//! receipt, remove them, see them gone and the audit event; markup in a name stays text.
//! `ROSTER_CONSOLE_SCREENSHOTS=DIR` saves the main pages there (`docs/console/`'s pictures).

use std::path::PathBuf;
use std::process::Command;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestApp;

async fn the_console_removes_a_member_after_showing_the_receipt(app: TestApp) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let python = dir.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "Selenium is not installed (./test installs it)"
    );
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            std::path::Path::new(tool).is_file(),
            "{tool} is missing: apt-get install chromium chromium-driver (.ci/run does)"
        );
    }
    let org = app.org.clone();
    let leaver = app.add_member(&org, "member").await;
    app.project_with(&org, "vault", &[&leaver]).await;
    let email = app
        .get(&format!("/v1/users/{}", leaver.user_id), &app.admin)
        .await
        .expect(StatusCode::OK)["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let marked = app
        .post(
            "/v1/users",
            &app.admin,
            json!({"email": "markup@example.com", "first_name": "<script>alert(1)</script>"}),
        )
        .await
        .expect(StatusCode::CREATED);
    app.make_member(&org, marked["id"].as_str().unwrap(), "member")
        .await;
    let token = app.owner.token.clone();
    let script = dir.join("check.py");
    let shots = std::env::var("ROSTER_CONSOLE_SCREENSHOTS").ok();
    let (org_id, who) = (org.clone(), email.clone());
    let out = app
        .run_tool_against(move |addr| {
            let mut c = Command::new(python);
            c.arg(script)
                .arg(format!("http://{addr}"))
                .arg(token)
                .arg(org_id)
                .arg(who)
                .env("SE_OFFLINE", "true");
            if let Some(dir) = shots {
                c.arg(dir);
            }
            c
        })
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name} in {stdout}"))
            .clone()
    };
    assert_eq!(
        step("signed_in")["token_in_url"],
        false,
        "the token is not in a URL"
    );
    assert_eq!(
        step("escaped"),
        json!({"step": "escaped", "shown_as_text": true, "alerted": false})
    );
    let receipt = step("receipt")["text"].as_str().unwrap().to_owned();
    assert!(
        receipt.contains("This will remove 1 member") && receipt.contains("1 project memberships"),
        "{receipt}"
    );
    assert!(receipt.contains(&email), "{receipt}");
    assert_eq!(step("removed")["still_listed"], 0);
    step("audited");
    assert!(
        !app.membership_ids(&org)
            .await
            .contains(&leaver.membership_id)
    );
    assert_eq!(
        app.audited(&org, "membership.removed").await,
        vec![leaver.membership_id.clone()]
    );
}

/// The console's pages and files carry a policy that lets nothing but roster's own run.
async fn the_console_is_served_with_a_strict_policy(app: TestApp) {
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let r = app.call("GET", path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        let policy = r.headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(r.headers["x-frame-options"], "DENY");
    }
    let page = app.call("GET", "/console", None, None).await;
    let html = page.body.as_str().unwrap();
    assert!(!html.contains("<script>"), "no inline script: {html}");
    assert!(
        !html.contains("http:") && !html.contains("https:"),
        "nothing from elsewhere"
    );
    let script = app.call("GET", "/console/console.js", None, None).await;
    let js = script.body.as_str().unwrap();
    assert!(!js.contains("innerHTML"), "values go on the page as text");
    assert!(js.contains("sessionStorage") && !js.contains("localStorage"));
}

on_both_backends!(the_console_is_served_with_a_strict_policy);

mod in_a_browser {
    use super::*;

    on_both_backends!(needs_tool; the_console_removes_a_member_after_showing_the_receipt);
}
