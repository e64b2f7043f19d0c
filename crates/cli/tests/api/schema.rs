//! Checks JSON against the response schemas of the vendor OpenAPI documents in
//! `tests/specs/` (their sources are in the README there), with the `jsonschema` crate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// A document of `tests/specs/` by its file name, parsed once per test run (the PlanetScale
/// spec is 2.4 MB).
pub fn document(relative: &str) -> &'static Value {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static Value>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache.entry(relative.to_owned()).or_insert_with(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/specs")
            .join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        Box::leak(Box::new(
            serde_json::from_str(&text).expect("the document is JSON"),
        ))
    })
}

/// The declared `status` response of `method path` in a document of `tests/specs/`.
pub fn response(relative: &str, path: &str, method: &str, status: u16) -> &'static Value {
    let response = &document(relative)["paths"][path][method]["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{relative} declares no {status} response for {method} {path}"
    );
    response
}

/// The JSON schema of `method path`'s `status` response in a seed document.
pub fn response_schema(file: &str, path: &str, method: &str, status: u16) -> Value {
    response(file, path, method, status)["content"]["application/json"]["schema"].clone()
}

/// Validates `value` against `schema` with `jsonschema` (draft 2020-12, formats checked), the
/// OpenAPI 3.0 schema first read as JSON Schema (`as_json_schema`); on failure, says where and
/// why.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&as_json_schema(schema))
        .map_err(|e| format!("the schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes `null` among the allowed
/// types (and values, where an `enum` lists them), the one 3.0 keyword JSON Schema lacks that
/// the vendors' documents use.
fn as_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "nullable")
                .map(|(k, v)| (k.clone(), as_json_schema(v)))
                .collect();
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = out.get("type") {
                    let t = t.clone();
                    out.insert("type".into(), serde_json::json!([t, "null"]));
                }
                if let Some(Value::Array(options)) = out.get_mut("enum") {
                    options.push(Value::Null);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(as_json_schema).collect()),
        other => other.clone(),
    }
}

/// Asserts that a response matches its seed schema.
#[track_caller]
pub fn assert_matches(file: &str, path: &str, method: &str, status: u16, body: &Value) {
    let schema = response_schema(file, path, method, status);
    if let Err(e) = validate(&schema, body) {
        panic!("{method} {path} {status} does not match {file}: {e}\nbody: {body}");
    }
}

#[test]
fn the_schema_checker_refuses_what_the_seed_forbids() {
    let schema = response_schema(
        "infisical-delete-org-membership.json",
        "/api/v2/organizations/{organizationId}/memberships/{membershipId}",
        "delete",
        200,
    );
    let good = serde_json::json!({"membership": {"id": "0193a3f4-0000-7000-8000-000000000000", "role": "member",
        "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
        "orgId": "0193a3f4-0000-7000-8000-000000000001", "userId": null}});
    assert_eq!(validate(&schema, &good), Ok(()));
    let mut extra = good.clone();
    extra["membership"]["surprise"] = Value::Bool(true);
    assert!(
        validate(&schema, &extra).is_err(),
        "additionalProperties: false"
    );
    let mut missing = good.clone();
    missing["membership"]
        .as_object_mut()
        .unwrap()
        .remove("orgId");
    assert!(validate(&schema, &missing).is_err(), "required");
    let mut bad_id = good.clone();
    bad_id["membership"]["id"] = Value::String("42".into());
    assert!(validate(&schema, &bad_id).is_err(), "format: uuid");
    let mut bad_time = good;
    bad_time["membership"]["createdAt"] = Value::String("yesterday".into());
    assert!(validate(&schema, &bad_time).is_err(), "format: date-time");
    let err = response_schema(
        "infisical-delete-org-membership.json",
        "/api/v2/organizations/{organizationId}/memberships/{membershipId}",
        "delete",
        404,
    );
    let wrong_status =
        serde_json::json!({"reqId": "r", "statusCode": 400, "message": "m", "error": "NotFound"});
    assert!(validate(&err, &wrong_status).is_err(), "enum");
}
