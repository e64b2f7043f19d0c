//! Checks JSON against the response schemas of the vendor OpenAPI documents in
//! `tests/specs/` (their sources are in the README there). It understands the OpenAPI 3.0 schema keywords those documents
//! use and panics on any other, so that a schema it cannot read never passes by default.

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

/// Validates `value` against `schema`; on failure, says where and why.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "$")
}

/// Asserts that a response matches its seed schema.
#[track_caller]
pub fn assert_matches(file: &str, path: &str, method: &str, status: u16, body: &Value) {
    let schema = response_schema(file, path, method, status);
    if let Err(e) = validate(&schema, body) {
        panic!("{method} {path} {status} does not match {file}: {e}\nbody: {body}");
    }
}

const KNOWN: [&str; 10] = [
    "type",
    "properties",
    "required",
    "additionalProperties",
    "nullable",
    "enum",
    "items",
    "format",
    "default",
    "description",
];

fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let s = schema
        .as_object()
        .ok_or_else(|| format!("{at}: schema is not an object"))?;
    for k in s.keys() {
        assert!(
            KNOWN.contains(&k.as_str()),
            "the schema keyword `{k}` at {at} is not understood by this checker"
        );
    }
    if value.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
        return Ok(());
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options
            .iter()
            .any(|o| o == value || (o.as_f64().is_some() && o.as_f64() == value.as_f64()))
    {
        return Err(format!("{at}: {value} is not one of {options:?}"));
    }
    match s.get("type").and_then(Value::as_str) {
        None => Ok(()),
        Some("object") => {
            let obj = value
                .as_object()
                .ok_or_else(|| format!("{at}: expected an object, got {value}"))?;
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    return Err(format!("{at}: missing required `{r}`"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, v) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => check(ps, v, &format!("{at}.{k}"))?,
                    None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err(format!(
                            "{at}: `{k}` is not allowed (additionalProperties: false)"
                        ));
                    }
                    None => {}
                }
            }
            Ok(())
        }
        Some("array") => {
            let items = value
                .as_array()
                .ok_or_else(|| format!("{at}: expected an array, got {value}"))?;
            match s.get("items") {
                Some(is) => items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, v)| check(is, v, &format!("{at}[{i}]"))),
                None => Ok(()),
            }
        }
        Some("string") => {
            let v = value
                .as_str()
                .ok_or_else(|| format!("{at}: expected a string, got {value}"))?;
            match s.get("format").and_then(Value::as_str) {
                Some("uuid") if uuid::Uuid::parse_str(v).is_err() => {
                    Err(format!("{at}: `{v}` is not a uuid"))
                }
                Some("date-time") if roster_core::Timestamp::parse_rfc3339(v).is_none() => {
                    Err(format!("{at}: `{v}` is not a date-time"))
                }
                _ => Ok(()),
            }
        }
        Some("number") => value
            .is_number()
            .then_some(())
            .ok_or_else(|| format!("{at}: expected a number, got {value}")),
        Some("integer") => (value.is_i64() || value.is_u64())
            .then_some(())
            .ok_or_else(|| format!("{at}: expected an integer, got {value}")),
        Some("boolean") => value
            .is_boolean()
            .then_some(())
            .ok_or_else(|| format!("{at}: expected a boolean, got {value}")),
        Some(other) => panic!("type `{other}` at {at} is not understood by this checker"),
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
