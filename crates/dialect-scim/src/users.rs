//! `/Users`: the organization's members. A member's `id` is their membership's id.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use roster_core::Actor;
use roster_core::ids::{MembershipId, OrganizationId};
use roster_core::model::{MemberRef, MemberView, MembershipFilter, Page, RemovalOptions};
use roster_core::service::{MembershipPatch, ProvisionedMember};
use roster_http::AppState;
use roster_http::request_id::context;
use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::extract::{Auth, Body, Path, Query};
use crate::filter::{Filter, Op};
use crate::list::ListQuery;
use crate::wire::{self, Base, PATCH_SCHEMA, PatchRequest};
use crate::{organization_id, scim_json};

/// The membership a path's `{id}` names (an id that is none names nobody: 404).
fn membership_id(id: &str) -> Result<MembershipId, ScimError> {
    id.parse()
        .map_err(|_| ScimError::not_found(format!("no user {id}")))
}

/// The member `id`, who must be a user (an invitation is not a SCIM User).
async fn member(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    id: MembershipId,
) -> Result<MemberView, ScimError> {
    let view = s.roster.member(a, org, MemberRef::Membership(id)).await?;
    if view.user.is_none() {
        return Err(ScimError::not_found(format!("no user {id}")));
    }
    Ok(view)
}

pub async fn list(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(named): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let found = search(&s, &a, &named, &q, &headers).await?;
    Ok(scim_json(StatusCode::OK, &found))
}

/// The `ListResponse` of the members `q` asks for (a GET's query, or a `.search` body).
pub async fn search(
    s: &AppState,
    a: &Actor,
    named: &str,
    q: &ListQuery,
    headers: &HeaderMap,
) -> Result<Value, ScimError> {
    let org = organization_id(s, a, named).await?;
    let filter = q.filter()?;
    let (start, count) = (q.start(), q.count());
    let base = Base::new(headers, named);
    let mut core_filter = MembershipFilter {
        users_only: true,
        ..Default::default()
    };
    // What a filter requires of the email or the external id is read through the store's
    // indexes; a filter that is only that is answered by the store alone.
    let required = |paths: &[&[&str]]| {
        filter.as_ref().and_then(|f| {
            paths
                .iter()
                .find_map(|p| f.required_eq(p).and_then(Value::as_str))
                .map(str::to_owned)
        })
    };
    let user_name = required(&[&["userName"]]);
    let email = required(&[&["emails", "value"]]);
    let external_id = required(&[&["externalId"]]);
    core_filter.directory_user_names.extend(user_name.clone());
    core_filter.emails.extend(email.clone());
    core_filter.external_ids.extend(external_id.clone());
    let exact = match &filter {
        None => true,
        Some(Filter::Compare { op: Op::Eq, .. }) => {
            user_name.is_some() || email.is_some() || external_id.is_some()
        }
        Some(_) => false,
    };
    if exact {
        // The store does all of it: count, and read the page.
        let total = s.roster.count_members(a, org, &core_filter).await?;
        let total = usize::try_from(total).unwrap_or(0);
        let page = if count == 0 || start > total {
            Vec::new()
        } else {
            let page = Page {
                after: None,
                offset: (start - 1) as u64,
                limit: count as u32,
                descending: false,
            };
            s.roster
                .list_members(a, org, &core_filter, page)
                .await?
                .items
                .iter()
                .map(|v| wire::user(v, &base))
                .collect()
        };
        return Ok(q.list_response(total, page));
    }
    // Read every candidate, and keep those the whole filter matches.
    let mut matching = Vec::new();
    let mut after = None;
    loop {
        let page = Page {
            after,
            offset: 0,
            limit: Page::MAX_LIMIT,
            descending: false,
        };
        let read = s.roster.list_members(a, org, &core_filter, page).await?;
        for view in &read.items {
            let resource = wire::user(view, &base);
            if filter.as_ref().is_none_or(|f| f.matches(&resource)) {
                matching.push(resource);
            }
        }
        match read.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(q.page_of(matching))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((named, id)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    let view = member(&s, &a, org, membership_id(&id)?).await?;
    let resource = wire::user(&view, &Base::new(&headers, &named));
    Ok(scim_json(StatusCode::OK, &q.shape(resource)))
}

/// POST: provisions a member, making the user if the email is new (an existing user's
/// profile stays theirs). 201 with `Location`; already a member: 409 `uniqueness`.
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(named): Path<String>,
    headers: HeaderMap,
    Body(body): Body<Map<String, Value>>,
) -> Result<Response, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    let field = |name: &str| wire::attribute(&body, name);
    let text = wire::text;
    let user_name = text(field("userName"), "userName")?
        .ok_or_else(|| ScimError::bad_request("invalidValue", "userName is required"))?;
    // The email is the primary of `emails` (or the first), else the userName itself; a
    // userName that is not the email is kept as the member's directory userName.
    let email = match field("emails").and_then(wire::primary_email) {
        Some(email) => email,
        None => user_name.clone(),
    };
    let directory_user_name = (!user_name.eq_ignore_ascii_case(&email)).then_some(user_name);
    let name = field("name");
    let input = ProvisionedMember {
        email,
        directory_user_name,
        first_name: text(name.and_then(|n| n.get("givenName")), "name.givenName")?,
        last_name: text(name.and_then(|n| n.get("familyName")), "name.familyName")?,
        external_id: text(field("externalId"), "externalId")?,
        role_key: match field("roles") {
            None | Some(Value::Null) => roster_core::model::ROLE_MEMBER.to_owned(),
            Some(roles) => role_of(roles)?,
        },
        is_active: match field("active") {
            None | Some(Value::Null) => true,
            Some(v) => wire::boolean(v).ok_or_else(|| {
                ScimError::bad_request(
                    "invalidValue",
                    format!("active must be true or false, not {v}"),
                )
            })?,
        },
    };
    let view = s
        .roster
        .provision_member(&a, org, input, &context())
        .await?;
    let resource = wire::user(&view, &Base::new(&headers, &named));
    let mut res = scim_json(StatusCode::CREATED, &resource);
    if let Some(location) = resource["meta"]["location"]
        .as_str()
        .and_then(|l| axum::http::HeaderValue::from_str(l).ok())
    {
        res.headers_mut()
            .insert(axum::http::header::LOCATION, location);
    }
    Ok(res)
}

/// A change asked of a member, read from a PUT or a PATCH.
#[derive(Default)]
struct Change {
    active: Option<bool>,
    role: Option<String>,
    /// `Some(None)` clears it.
    external_id: Option<Option<String>>,
    /// `Some(None)`: the userName is the email again.
    directory_user_name: Option<Option<String>>,
}

impl Change {
    /// Reads one attribute's new value. What this mount keeps of the user (`userName`, `name`,
    /// `emails`, `displayName`) is read-only here: the same value again is no change, another
    /// is refused (`mutability`). `strict` is PATCH's rule; a PUT ignores read-only values.
    fn set(
        &mut self,
        attr: &str,
        value: &Value,
        current: &Value,
        strict: bool,
    ) -> Result<(), ScimError> {
        let attr = attr.rsplit_once(':').map_or(attr, |(_, rest)| rest);
        let key = attr.to_ascii_lowercase();
        // Entra ID's `emails[type eq "work"].value`: a member has the one address.
        let key = if key.starts_with("emails[") {
            "emails.value"
        } else {
            key.as_str()
        };
        match key {
            "active" => {
                self.active = Some(wire::boolean(value).ok_or_else(|| {
                    ScimError::bad_request(
                        "invalidValue",
                        format!("active must be true or false, not {value}"),
                    )
                })?);
            }
            "roles" => self.role = Some(role_of(value)?),
            "externalid" => {
                self.external_id = Some(match value {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => {
                        return Err(ScimError::bad_request(
                            "invalidValue",
                            format!("externalId must be a string, not {other}"),
                        ));
                    }
                });
            }
            "username" => {
                let name = value.as_str().ok_or_else(|| {
                    ScimError::bad_request(
                        "invalidValue",
                        format!("userName must be a string, not {value}"),
                    )
                })?;
                let email = current["emails"][0]["value"].as_str().unwrap_or_default();
                self.directory_user_name =
                    Some((!name.eq_ignore_ascii_case(email)).then(|| name.to_owned()));
            }
            "id" | "meta" | "schemas" => {
                if strict {
                    return Err(ScimError::bad_request(
                        "mutability",
                        format!("{attr} is read-only"),
                    ));
                }
            }
            "emails" | "emails.value" => {
                let email = current["emails"][0]["value"].as_str().unwrap_or_default();
                let unchanged = match value {
                    Value::String(address) => address.eq_ignore_ascii_case(email),
                    emails => wire::primary_email(emails)
                        .is_some_and(|address| address.eq_ignore_ascii_case(email)),
                };
                if strict && !unchanged {
                    return Err(ScimError::bad_request(
                        "mutability",
                        "emails is immutable: a member's address is set when they are provisioned",
                    ));
                }
            }
            "name" | "name.givenname" | "name.familyname" | "name.formatted" | "displayname" => {
                let now = path_value(current, attr);
                if strict && !same(now.as_ref(), value) {
                    return Err(ScimError::bad_request(
                        "mutability",
                        format!("{attr} is read-only here: the user's profile is the instance's"),
                    ));
                }
            }
            _ => {
                return Err(ScimError::bad_request(
                    "invalidPath",
                    format!("{attr} is not an attribute of a User here"),
                ));
            }
        }
        Ok(())
    }
}

/// The value at a dotted path of `resource` (case-insensitively).
fn path_value(resource: &Value, path: &str) -> Option<Value> {
    let mut at = resource;
    for part in path.split('.') {
        at = at
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))?
            .1;
    }
    Some(at.clone())
}

/// Whether `new` is what `now` already is (strings case-insensitively).
fn same(now: Option<&Value>, new: &Value) -> bool {
    match (now, new) {
        (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Some(a), b) => a == b,
        (None, b) => b.is_null(),
    }
}

/// The role key a `roles` value names: `[{"value": "admin"}]` (the primary, or the only one),
/// or `"admin"`.
fn role_of(value: &Value) -> Result<String, ScimError> {
    let refuse = || {
        ScimError::bad_request(
            "invalidValue",
            "roles must name one role: [{\"value\": \"<role key>\"}]",
        )
    };
    let pick = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("value").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    match value {
        Value::Array(items) if items.len() == 1 => pick(&items[0]).ok_or_else(refuse),
        Value::Array(items) => items
            .iter()
            .find(|i| i.get("primary").and_then(wire::boolean) == Some(true))
            .and_then(pick)
            .ok_or_else(refuse),
        other => pick(other).ok_or_else(refuse),
    }
}

/// Applies `change` to the member, and answers with the member as they then are.
async fn apply(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    id: MembershipId,
    change: Change,
    base: &Base,
) -> Result<Response, ScimError> {
    if change.active.is_some()
        || change.role.is_some()
        || change.external_id.is_some()
        || change.directory_user_name.is_some()
    {
        let patch = MembershipPatch {
            role_key: change.role,
            is_active: change.active,
            external_id: change.external_id,
            directory_user_name: change.directory_user_name,
            ..Default::default()
        };
        s.roster
            .update_membership(a, org, MemberRef::Membership(id), patch, &context())
            .await?;
    }
    let view = member(s, a, org, id).await?;
    Ok(scim_json(StatusCode::OK, &wire::user(&view, base)))
}

/// PUT: the User as the identity provider has it. `active` and `roles` are applied (absent:
/// unchanged); `userName` must be the member's; read-only attributes are ignored (RFC 7644
/// §3.5.1).
pub async fn replace(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((named, id)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<Map<String, Value>>,
) -> Result<Response, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    let id = membership_id(&id)?;
    let base = Base::new(&headers, &named);
    let current = wire::user(&member(&s, &a, org, id).await?, &base);
    if !body.keys().any(|k| k == "userName") {
        return Err(ScimError::bad_request(
            "invalidValue",
            "userName is required",
        ));
    }
    let mut change = Change::default();
    for (attr, value) in &body {
        change.set(attr, value, &current, false)?;
    }
    apply(&s, &a, org, id, change, &base).await
}

/// PATCH (RFC 7644 §3.5.2): `add` and `replace` of `active` and `roles`, with a path or with
/// an object of attributes (as Okta and Entra ID send them, `"Replace"` and `"False"`
/// included).
pub async fn patch(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((named, id)): Path<(String, String)>,
    headers: HeaderMap,
    Body(request): Body<PatchRequest>,
) -> Result<Response, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    let id = membership_id(&id)?;
    if !request.schemas.iter().any(|s| s == PATCH_SCHEMA) {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            format!("a PATCH names the schema {PATCH_SCHEMA}"),
        ));
    }
    let base = Base::new(&headers, &named);
    let current = wire::user(&member(&s, &a, org, id).await?, &base);
    let mut change = Change::default();
    for operation in &request.operations {
        let op = operation.op.to_ascii_lowercase();
        match (op.as_str(), &operation.path, &operation.value) {
            ("add" | "replace", Some(path), Some(value)) => {
                change.set(path, value, &current, true)?;
            }
            ("add" | "replace", None, Some(Value::Object(attrs))) => {
                for (attr, value) in attrs {
                    change.set(attr, value, &current, true)?;
                }
            }
            ("add" | "replace", _, _) => {
                return Err(ScimError::bad_request(
                    "invalidValue",
                    format!("{op} needs a value (an object of attributes when there is no path)"),
                ));
            }
            ("remove", None, _) => {
                return Err(ScimError::bad_request("noTarget", "remove needs a path"));
            }
            ("remove", Some(path), _) if path.eq_ignore_ascii_case("externalId") => {
                change.external_id = Some(None);
            }
            ("remove", Some(path), _) => {
                return Err(ScimError::bad_request(
                    "mutability",
                    format!("{path} cannot be removed: a member always has a role and a state"),
                ));
            }
            _ => {
                return Err(ScimError::bad_request(
                    "invalidSyntax",
                    format!(
                        "{} is not a PATCH operation (add, replace, remove)",
                        operation.op
                    ),
                ));
            }
        }
    }
    apply(&s, &a, org, id, change, &base).await
}

/// DELETE: the removal every mount uses (its guards, its cascade, its audit trail and events).
pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((named, id)): Path<(String, String)>,
) -> Result<StatusCode, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    let id = membership_id(&id)?;
    member(&s, &a, org, id).await?;
    s.roster
        .remove_memberships(
            &a,
            org,
            &[MemberRef::Membership(id)],
            RemovalOptions::default(),
            &context(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
