//! Fuzzes roster with schemathesis. The native API: every operation of the served
//! `/openapi.json`, whose every answer must match the document (status, schema, content type).
//! The vendor mounts: every operation of the vendor's own document that the mount serves
//! (`tests/specs/*-mounted.json`, cut by `tests/specs/mounted.py`), in a real organization,
//! whose answers must match the document's schemas and content types. No answer may be a
//! server error. Catches both crashes on odd input and answers that drift from a document.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use crate::harness::TestApp;

fn venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/.venv/bin/schemathesis")
}

/// Runs schemathesis against the app as the organization's admin, with `args(address)` naming
/// the schema and what to check; fails on what it finds.
async fn schemathesis(
    app: &TestApp,
    args: impl FnOnce(SocketAddr) -> Vec<String> + Send + 'static,
) {
    assert!(
        venv().is_file(),
        "schemathesis is not installed: python3 -m venv crates/cli/tests/schemathesis/.venv && \
         crates/cli/tests/schemathesis/.venv/bin/pip install -r crates/cli/tests/schemathesis/requirements.txt (./test does)"
    );
    let token = app.owner.token.clone();
    let out = app
        .run_tool_against(move |addr| {
            let mut schemathesis = Command::new(venv());
            schemathesis
                .arg("run")
                .args(args(addr))
                .args([
                    "-H",
                    &format!("Authorization: Bearer {token}"),
                    "--hypothesis-max-examples",
                    "20",
                    "--hypothesis-seed",
                    "1",
                    "--no-color",
                ])
                .env("SCHEMATHESIS_TELEMETRY", "false");
            schemathesis
        })
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed"), "{stdout}");
}

async fn every_native_operation_survives_fuzzing_and_matches_its_document(app: TestApp) {
    schemathesis(&app, |addr| {
        vec![
            format!("http://{addr}/openapi.json"),
            "--experimental=openapi-3.1".into(),
            "--checks".into(),
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance".into(),
        ]
    })
    .await;
}

/// Every operation of PlanetScale's own document that the PlanetScale mount serves.
async fn every_planetscale_operation_survives_fuzzing_and_matches_the_vendors_document(
    app: TestApp,
) {
    let organization = app.slug(&app.org).await;
    fuzz_vendor_mount(
        &app,
        "planetscale",
        "/planetscale/v1",
        ("organization", organization),
    )
    .await;
}

/// Every operation of Clerk's own Backend API document that the Clerk mount serves.
async fn every_clerk_operation_survives_fuzzing_and_matches_the_vendors_document(app: TestApp) {
    let organization = roster_dialect_clerk::ids::encode("org", app.org.parse().unwrap());
    fuzz_vendor_mount(
        &app,
        "clerk",
        "/clerk/v1",
        ("organization_id", organization),
    )
    .await;
}

/// The three operations Infisical's documents (the seeds) describe.
async fn every_infisical_operation_survives_fuzzing_and_matches_the_vendors_document(app: TestApp) {
    let organization = app.org.clone();
    fuzz_vendor_mount(
        &app,
        "infisical",
        "/infisical",
        ("organizationId", organization),
    )
    .await;
}

/// Fuzzes the mount at `prefix` with `tests/specs/{vendor}-mounted.json`, its path parameter
/// `organization.0` set to the app's organization as the vendor names it (`organization.1`),
/// so that the requests reach real data. Checked: no server
/// error, and every answer's body and content type as the document describes. Not a status
/// the document does not list: vendors document few of their refusals (PlanetScale's lists no
/// 422 for input it refuses, such as `page=0`).
async fn fuzz_vendor_mount(
    app: &TestApp,
    vendor: &str,
    prefix: &str,
    organization: (&str, String),
) {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/specs/{vendor}-mounted.json"))
        .display()
        .to_string();
    let prefix = prefix.to_owned();
    let set = format!("{}={}", organization.0, organization.1);
    schemathesis(app, move |addr| {
        vec![
            spec,
            "--base-url".into(),
            format!("http://{addr}{prefix}"),
            "--set-path".into(),
            set,
            "--checks".into(),
            "not_a_server_error,response_schema_conformance,content_type_conformance".into(),
        ]
    })
    .await;
}

on_both_backends!(
    needs_tool;
    every_native_operation_survives_fuzzing_and_matches_its_document,
    every_planetscale_operation_survives_fuzzing_and_matches_the_vendors_document,
    every_clerk_operation_survives_fuzzing_and_matches_the_vendors_document,
    every_infisical_operation_survives_fuzzing_and_matches_the_vendors_document,
);
