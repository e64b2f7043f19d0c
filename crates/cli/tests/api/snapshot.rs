//! JSON snapshots: a response's exact shape, committed under `tests/api/snapshots/`, so that a
//! changed shape is a visible diff. Values that differ on every run (ids, timestamps, request
//! ids) are replaced by placeholders first. A missing snapshot is written (and, under CI, is a
//! failure); `UPDATE_SNAPSHOTS=1` rewrites them.

use std::path::PathBuf;

use serde_json::Value;

fn normalize(v: &Value, key: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalize(v, k)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalize(v, key)).collect()),
        Value::Number(_) if key.ends_with("_at") => Value::String("<timestamp>".into()),
        Value::String(s) if key == "clerk_trace_id" || key == "request_id" || key == "reqId" => {
            Value::String(if s.is_empty() {
                String::new()
            } else {
                "<request id>".into()
            })
        }
        Value::String(s) => match s.split_once('_') {
            Some((prefix, rest))
                if ["org", "user", "orgmem", "idn"].contains(&prefix)
                    && rest.len() == 22
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Value::String(format!("<{prefix} id>"))
            }
            _ => v.clone(),
        },
        _ => v.clone(),
    }
}

#[track_caller]
pub fn assert_snapshot(name: &str, value: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/snapshots")
        .join(format!("{name}.json"));
    let actual = serde_json::to_string_pretty(&normalize(value, "")).unwrap() + "\n";
    let update = std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
    match std::fs::read_to_string(&path) {
        Ok(expected) if !update => {
            assert_eq!(
                actual, expected,
                "snapshot {name} changed (UPDATE_SNAPSHOTS=1 to accept)"
            );
        }
        Ok(_) => std::fs::write(&path, actual).unwrap(),
        Err(_) => {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &actual).unwrap();
            assert!(
                std::env::var("CI").is_err(),
                "snapshot {name} was missing (written now); commit it"
            );
        }
    }
}
