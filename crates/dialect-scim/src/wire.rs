//! SCIM's shapes: a member as a User resource, list responses, PATCH requests, and where a
//! resource is (`meta.location`).

use axum::http::{HeaderMap, header};
use roster_core::model::MemberView;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ScimError;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The base URL of one organization's SCIM service, as the client reached it.
pub struct Base(String);

impl Base {
    pub fn new(headers: &HeaderMap, org: &str) -> Self {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https")
            .unwrap_or("http");
        Base(format!("{scheme}://{host}/scim/v2/organizations/{org}"))
    }

    pub fn at(&self, rest: &str) -> String {
        format!("{}/{rest}", self.0)
    }
}

/// A `ListResponse` of `resources`, from the 1-based `start_index`, of `total` in all.
pub fn list_response(total: usize, start_index: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// A member as a SCIM User: `id` is the membership's id, `userName` the directory's name for
/// them where one was given, else the user's email; `externalId` only where one is set.
pub fn user(view: &MemberView, base: &Base) -> Value {
    let m = &view.membership;
    let (email, given, family) = match &view.user {
        Some(u) => (u.email.clone(), u.first_name.clone(), u.last_name.clone()),
        None => (m.invite_email.clone().unwrap_or_default(), None, None),
    };
    let formatted: Vec<&str> = [given.as_deref(), family.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let formatted = formatted.join(" ");
    let mut name = json!({});
    if let Some(g) = &given {
        name["givenName"] = json!(g);
    }
    if let Some(f) = &family {
        name["familyName"] = json!(f);
    }
    if !formatted.is_empty() {
        name["formatted"] = json!(formatted);
    }
    let mut resource = json!({
        "schemas": [USER_SCHEMA],
        "id": m.id.to_string(),
        "userName": m.directory_user_name.clone().unwrap_or_else(|| email.clone()),
        "name": name,
        "displayName": if formatted.is_empty() { email.clone() } else { formatted },
        "emails": [{"value": email, "type": "work", "primary": true}],
        "active": m.is_active,
        "roles": [{"value": m.role_key}],
        "externalId": m.external_id,
        "meta": {
            "resourceType": "User",
            "created": m.created_at.to_rfc3339(),
            "lastModified": m.updated_at.to_rfc3339(),
            "location": base.at(&format!("Users/{}", m.id)),
        },
    });
    if m.external_id.is_none()
        && let Some(o) = resource.as_object_mut()
    {
        o.remove("externalId");
    }
    resource
}

/// A PATCH request (RFC 7644 §3.5.2).
#[derive(Deserialize)]
pub struct PatchRequest {
    pub schemas: Vec<String>,
    #[serde(rename = "Operations")]
    pub operations: Vec<PatchOperation>,
}

#[derive(Deserialize)]
pub struct PatchOperation {
    /// `add`, `replace` or `remove`, any case (Entra ID sends `Replace`).
    pub op: String,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// The address of `emails` (SCIM's `[{"value", "primary"?}]`): the primary one, or else the
/// first.
pub fn primary_email(emails: &Value) -> Option<String> {
    let items = emails.as_array()?;
    let is_primary = |e: &&Value| e.get("primary").and_then(boolean) == Some(true);
    items
        .iter()
        .find(is_primary)
        .or_else(|| items.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The attribute `name` of a resource's body, whatever its case (SCIM's names are
/// case-insensitive).
pub fn attribute<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// A text attribute's value (absent or null: none); anything but a string is `invalidValue`,
/// naming the attribute.
pub fn text(value: Option<&Value>, name: &str) -> Result<Option<String>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ScimError::bad_request(
            "invalidValue",
            format!("{name} must be a string, not {other}"),
        )),
    }
}

/// `active` as identity providers send it: a boolean, or Entra ID's `"True"` / `"False"`.
pub fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}
