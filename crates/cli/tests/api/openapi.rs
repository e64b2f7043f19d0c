//! The native API's OpenAPI document against the router that serves it: each parameter is
//! declared where the router takes it, one it does not declare is refused on every route, and
//! the document is valid OpenAPI 3.1 by a validator nobody here wrote.

use std::path::PathBuf;
use std::process::Command;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestApp;

fn document() -> Value {
    serde_json::to_value(roster_native::openapi::document()).unwrap()
}

/// Every operation of the document: (path template, method, its parameters).
fn operations(doc: &Value) -> Vec<(String, String, Vec<Value>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            out.push((path.clone(), method.clone(), params));
        }
    }
    out
}

fn template_names(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn path_parameters_match_their_route_writes_take_a_key_and_the_rest_is_in_the_query() {
    let doc = document();
    let mut queries = 0;
    for (path, method, params) in operations(&doc) {
        let writes = matches!(method.as_str(), "post" | "patch" | "delete");
        let keys = params
            .iter()
            .filter(|p| p["in"] == "header" && p["name"] == "Idempotency-Key")
            .count();
        assert_eq!(
            keys,
            usize::from(writes),
            "{method} {path}: an Idempotency-Key exactly on writes"
        );
        if writes {
            let responses = &doc["paths"][&path][&method]["responses"];
            assert!(
                responses["422"]["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("idempotency_key_reused")),
                "{method} {path}: 422 documented"
            );
        }
        let mut in_path: Vec<String> = Vec::new();
        for p in params.iter().filter(|p| p["in"] != "header") {
            let name = p["name"].as_str().unwrap().to_owned();
            match p["in"].as_str() {
                Some("path") => {
                    assert_eq!(p["required"], true, "{method} {path}: {name}");
                    in_path.push(name);
                }
                Some("query") => {
                    queries += 1;
                    assert_ne!(p["required"], true, "{method} {path}: {name} is optional");
                    if name == "limit" {
                        assert_eq!(p["schema"]["minimum"], 1, "{method} {path}");
                        assert_eq!(p["schema"]["maximum"], 500, "{method} {path}");
                    }
                }
                other => panic!("{method} {path}: {name} is in {other:?}"),
            }
        }
        in_path.sort();
        let mut expected = template_names(&path);
        expected.sort();
        assert_eq!(in_path, expected, "{method} {path}");
    }
    assert!(queries > 20, "the lists declare their query parameters");
}

#[test]
fn every_operation_has_an_id_of_its_own() {
    let doc = document();
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(
                ids.insert(id.clone()),
                "{method} {path}: {id} is not unique"
            );
        }
    }
}

/// Every `$ref` in the document names a schema the document defines (a generator or a fuzzer
/// refuses the document otherwise).
#[test]
fn every_reference_in_the_openapi_document_resolves() {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = document();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} is not defined"
        );
    }
}

/// A value of the parameter's kind, so that the query parses.
fn sample(param: &Value) -> String {
    let name = param["name"].as_str().unwrap();
    let schema = &param["schema"];
    let any_of = schema["oneOf"].as_array().into_iter().flatten();
    if let Some(first) = schema["enum"]
        .as_array()
        .or_else(|| any_of.filter_map(|s| s["enum"].as_array()).next())
        .and_then(|e| e.first())
    {
        return first.as_str().unwrap().to_owned();
    }
    if schema["format"] == "date-time" {
        "2026-01-01T00:00:00Z"
    } else if schema["type"] == "integer" {
        "1"
    } else if name == "cursor" || name.ends_with("_id") {
        "0193a3f4-0000-7000-8000-000000000000"
    } else {
        "x"
    }
    .to_owned()
}

/// Each query parameter the document declares is taken by the route it is declared on (the
/// native routes refuse a parameter they do not know with a 400), and one it does not declare
/// is refused there.
async fn every_declared_query_parameter_is_taken_by_its_route(app: TestApp) {
    let doc = document();
    let mut tried = 0;
    for (path, method, params) in operations(&doc) {
        let query: Vec<&Value> = params.iter().filter(|p| p["in"] == "query").collect();
        if method != "get" || query.is_empty() {
            continue;
        }
        let mut concrete = path.clone();
        for name in template_names(&path) {
            let id = match name.as_str() {
                "organization_id" => app.org.clone(),
                "user_id" => app.owner.user_id.clone(),
                _ => "0193a3f4-0000-7000-8000-000000000000".to_owned(),
            };
            concrete = concrete.replace(&format!("{{{name}}}"), &id);
        }
        for p in query {
            let name = p["name"].as_str().unwrap();
            let url = format!("{concrete}?{name}={}", sample(p));
            let r = app.get(&url, &app.admin).await;
            assert!(
                r.status != 400,
                "GET {url} refuses a parameter its document declares: {}",
                r.body
            );
            tried += 1;
        }
        let r = app
            .get(&format!("{concrete}?not_declared=1"), &app.admin)
            .await;
        assert_eq!(r.status, 400, "GET {concrete}?not_declared=1: {}", r.body);
    }
    assert!(tried > 20, "{tried} parameters tried");
}

/// Every native route, whatever its method, refuses a query parameter it does not declare
/// with 400 `invalid_input` naming it, before anything runs: `?dry_run=true` on a route without
/// dry runs must not be served as a real request (those with dry runs are tried with another
/// parameter they do not declare).
async fn every_native_route_refuses_a_query_parameter_it_does_not_declare(app: TestApp) {
    let doc = document();
    let member = app.add_member(&app.org, "member").await;
    let audit = format!("/v1/organizations/{}/audit-events?limit=500", app.org);
    let audited_before = app.get(&audit, &app.admin).await.expect(StatusCode::OK);
    let mut tried = 0;
    for (path, method, params) in operations(&doc) {
        let declares_dry_run = params
            .iter()
            .any(|p| p["in"] == "query" && p["name"] == "dry_run");
        let undeclared = if declares_dry_run {
            "confirm"
        } else {
            "dry_run"
        };
        let mut concrete = path.clone();
        for name in template_names(&path) {
            let id = match name.as_str() {
                "organization_id" => app.org.clone(),
                "membership_id" => member.membership_id.clone(),
                "user_id" => member.user_id.clone(),
                _ => "0193a3f4-0000-7000-8000-000000000000".to_owned(),
            };
            concrete = concrete.replace(&format!("{{{name}}}"), &id);
        }
        let body = matches!(method.as_str(), "post" | "patch").then(|| json!({}));
        let url = format!("{concrete}?{undeclared}=true");
        let r = app
            .call(&method.to_uppercase(), &url, Some(&app.admin), body)
            .await;
        assert_eq!(r.status, 400, "{method} {url}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_input", "{method} {url}");
        assert_eq!(
            r.body["error"]["details"]["field"], undeclared,
            "{method} {url}"
        );
        tried += 1;
    }
    assert!(tried > 40, "{tried} operations tried");
    let still = app
        .get(
            &format!(
                "/v1/organizations/{}/memberships/{}",
                app.org, member.membership_id
            ),
            &app.admin,
        )
        .await;
    assert_eq!(
        still.status, 200,
        "the member is still there: {}",
        still.body
    );
    let audited_after = app.get(&audit, &app.admin).await.expect(StatusCode::OK);
    assert_eq!(audited_after, audited_before, "nothing was audited");
}

/// `/docs` browses the document with nothing from another origin: its page, its script and
/// the UI's files are roster's, and its policy allows nothing else.
async fn the_api_reference_is_served_by_roster_alone(app: TestApp) {
    let page = app.call("GET", "/docs", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(
        !policy.contains("script-src") || !policy.contains("unsafe-inline"),
        "{policy}"
    );
    let html = page.body.as_str().unwrap();
    for script in ["/docs/assets/swagger-ui-bundle.js", "/docs/start.js"] {
        assert!(html.contains(&format!("src=\"{script}\"")), "{html}");
    }
    assert!(
        !html.contains("http:") && !html.contains("https:") && !html.contains("\"//"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "no inline script: {html}");
    let start = app.call("GET", "/docs/start.js", None, None).await;
    let start = start.body.as_str().unwrap();
    assert!(
        start.contains("'/openapi.json'") && start.contains("validatorUrl: null"),
        "{start}"
    );
    for asset in [
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    ] {
        let r = app.call("GET", asset, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{asset}");
        assert!(
            r.body.as_str().is_some_and(|b| b.len() > 10_000),
            "{asset} is the UI's file"
        );
    }
}

on_both_backends!(
    the_api_reference_is_served_by_roster_alone,
    every_declared_query_parameter_is_taken_by_its_route,
    every_native_route_refuses_a_query_parameter_it_does_not_declare,
);

/// openapi-spec-validator, from PyPI (`./test` installs it).
#[test]
#[ignore = "needs a pinned test tool: run ./test"]
fn the_document_is_valid_openapi_3_1() {
    let validator = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemathesis/.venv/bin/openapi-spec-validator");
    assert!(
        validator.is_file(),
        "openapi-spec-validator is not installed (./test installs it)"
    );
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let file = std::env::temp_dir().join(format!(
        "roster-openapi-{}.json",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new(&validator).arg(&file).output().unwrap();
    let _ = std::fs::remove_file(&file);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("OK"),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
