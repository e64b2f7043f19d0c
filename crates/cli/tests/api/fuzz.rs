//! Fuzzes every operation of the native API with schemathesis, generated from the served
//! `/openapi.json`: no response may be a server error, and every response must match the
//! document (status, schema, content type). Catches both crashes on odd input and a document
//! that drifts from the code.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::TestApp;

fn venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/.venv/bin/schemathesis")
}

async fn every_native_operation_survives_fuzzing_and_matches_its_document(app: TestApp) {
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
                .args([
                    "run",
                    "--experimental=openapi-3.1",
                    &format!("http://{addr}/openapi.json"),
                    "-H",
                    &format!("Authorization: Bearer {token}"),
                    "--checks",
                    "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
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

/// Every operation of PlanetScale's own document that the PlanetScale mount serves
/// (`tests/specs/planetscale-mounted.json`, cut from the vendor's document by
/// `tests/specs/mounted.py`), fuzzed in a real organization: no server error, and every answer
/// as the vendor's document describes it.
async fn every_planetscale_operation_survives_fuzzing_and_matches_the_vendors_document(
    app: TestApp,
) {
    let spec =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/specs/planetscale-mounted.json");
    let organization = app.slug(&app.org).await;
    fuzz_vendor_mount(
        &app,
        spec,
        "/planetscale/v1",
        &[("organization", organization)],
    )
    .await;
}

/// The Clerk mount, the same way, with Clerk's own Backend API document
/// (`tests/specs/clerk-mounted.json`).
async fn every_clerk_operation_survives_fuzzing_and_matches_the_vendors_document(app: TestApp) {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/specs/clerk-mounted.json");
    let organization = roster_dialect_clerk::ids::encode("org", app.org.parse().unwrap());
    fuzz_vendor_mount(
        &app,
        spec,
        "/clerk/v1",
        &[("organization_id", organization)],
    )
    .await;
}

/// The Infisical mount, the same way, with the three operations Infisical's documents
/// describe (`tests/specs/infisical-mounted.json`, from the seeds).
async fn every_infisical_operation_survives_fuzzing_and_matches_the_vendors_document(app: TestApp) {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/specs/infisical-mounted.json");
    let organization = app.org.clone();
    fuzz_vendor_mount(
        &app,
        spec,
        "/infisical",
        &[("organizationId", organization)],
    )
    .await;
}

/// Runs schemathesis with the vendor document `spec` against the mount at `prefix`, as the
/// organization's admin, with the path parameters `set` fixed; fails on what it finds: a
/// server error, or an answer whose body or content type the document does not describe.
/// Not a status the document does not list: vendors document few of their refusals
/// (PlanetScale's lists no 422 for input it refuses, such as `page=0`).
async fn fuzz_vendor_mount(app: &TestApp, spec: PathBuf, prefix: &str, set: &[(&str, String)]) {
    assert!(
        venv().is_file(),
        "schemathesis is not installed (./test installs it)"
    );
    let token = app.owner.token.clone();
    let prefix = prefix.to_owned();
    let set: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let out = app
        .run_tool_against(move |addr| {
            let mut schemathesis = Command::new(venv());
            schemathesis
                .arg("run")
                .arg(&spec)
                .args([
                    "--base-url",
                    &format!("http://{addr}{prefix}"),
                    "-H",
                    &format!("Authorization: Bearer {token}"),
                    "--checks",
                    "not_a_server_error,response_schema_conformance,content_type_conformance",
                    "--hypothesis-max-examples",
                    "20",
                    "--hypothesis-seed",
                    "1",
                    "--no-color",
                ])
                .env("SCHEMATHESIS_TELEMETRY", "false");
            for s in &set {
                schemathesis.args(["--set-path", s]);
            }
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

on_both_backends!(
    needs_tool;
    every_native_operation_survives_fuzzing_and_matches_its_document,
    every_planetscale_operation_survives_fuzzing_and_matches_the_vendors_document,
    every_clerk_operation_survives_fuzzing_and_matches_the_vendors_document,
    every_infisical_operation_survives_fuzzing_and_matches_the_vendors_document,
);
