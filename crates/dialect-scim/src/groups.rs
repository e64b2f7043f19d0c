//! `/Groups`: the organization's projects. A group's `members` are the project's users, each
//! named by their SCIM User id (the organization membership's id).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use roster_core::ids::{MembershipId, OrganizationId, ProjectId, UserId};
use roster_core::model::{Membership, MembershipFilter, Page, Project};
use roster_core::service::{NewProject, ProjectMembersChange, ProjectWithMembers};
use roster_core::{Actor, CoreError};
use roster_http::AppState;
use roster_http::request_id::context;
use serde_json::{Map, Value, json};

use crate::error::ScimError;
use crate::extract::{Auth, Body, Path, Query};
use crate::filter::Filter;
use crate::list::ListQuery;
use crate::wire::{self, Base, GROUP_SCHEMA, PATCH_SCHEMA, PatchRequest};
use crate::{organization_id, scim_json};

/// The project a path's `{id}` names, in organization `org` (any other: 404).
async fn group(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    id: &str,
) -> Result<ProjectWithMembers, ScimError> {
    let missing = || ScimError::not_found(format!("no group {id}"));
    let project: ProjectId = id.parse().map_err(|_| missing())?;
    let found = s.roster.project_with_members(a, project).await?;
    if found.project.organization_id != org {
        return Err(missing());
    }
    Ok(found)
}

/// The memberships of `org` that `filter` matches, read a chunk of ids at a time: `chunk`
/// makes the filter of each.
async fn memberships_in_chunks<I: Copy>(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    ids: &[I],
    chunk: impl Fn(Vec<I>) -> MembershipFilter,
) -> Result<Vec<Membership>, ScimError> {
    let mut found = Vec::with_capacity(ids.len());
    for ids in ids.chunks(1000) {
        let page = Page {
            after: None,
            offset: 0,
            limit: Page::MAX_LIMIT,
            descending: false,
        };
        let filter = chunk(ids.to_vec());
        found.extend(
            s.roster
                .list_memberships(a, org, &filter, page)
                .await?
                .items,
        );
    }
    Ok(found)
}

/// The organization memberships (SCIM User ids) of `users`.
async fn memberships_of(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    users: Vec<UserId>,
) -> Result<HashMap<UserId, MembershipId>, ScimError> {
    let found = memberships_in_chunks(s, a, org, &users, |user_ids| MembershipFilter {
        user_ids,
        users_only: true,
        ..Default::default()
    })
    .await?;
    Ok(found
        .into_iter()
        .filter_map(|m| Some((m.user_id?, m.id)))
        .collect())
}

/// A project as a SCIM Group, without its members.
fn render_project(project: &Project, base: &Base) -> Value {
    let mut resource = json!({
        "schemas": [GROUP_SCHEMA],
        "id": project.id.to_string(),
        "displayName": project.name,
        "externalId": project.external_id,
        "meta": {
            "resourceType": "Group",
            "created": project.created_at.to_rfc3339(),
            "lastModified": project.updated_at.to_rfc3339(),
            "location": base.at(&format!("Groups/{}", project.id)),
        },
    });
    if project.external_id.is_none()
        && let Some(o) = resource.as_object_mut()
    {
        o.remove("externalId");
    }
    resource
}

/// A project as a SCIM Group, with its `members` if `with_members`.
async fn render(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    g: &ProjectWithMembers,
    base: &Base,
    with_members: bool,
) -> Result<Value, ScimError> {
    let mut resource = render_project(&g.project, base);
    if with_members {
        let users = g.members.iter().map(|m| m.user_id).collect();
        let memberships = memberships_of(s, a, org, users).await?;
        let members: Vec<Value> = g
            .members
            .iter()
            .filter_map(|m| memberships.get(&m.user_id))
            .map(|id| json!({"value": id.to_string(), "$ref": base.at(&format!("Users/{id}"))}))
            .collect();
        resource["members"] = Value::Array(members);
    }
    Ok(resource)
}

/// The project `id` read with its members, as a SCIM Group of a list; `None` if it was
/// deleted since the list read it (a group gone in between is left out, not the list's 404).
async fn read_with_members(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    id: ProjectId,
    base: &Base,
) -> Result<Option<Value>, ScimError> {
    let g = match s.roster.project_with_members(a, id).await {
        Ok(g) => g,
        Err(CoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    render(s, a, org, &g, base, true).await.map(Some)
}

/// The users that SCIM `members` values (User ids) name in `org`, read together: an id that
/// is no member's, or an invitation's, is refused (`invalidValue`), naming it.
async fn users_named(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    members: &Value,
) -> Result<Vec<UserId>, ScimError> {
    let items: Vec<&Value> = match members {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    };
    let no_member = |value: &str| {
        ScimError::bad_request(
            "invalidValue",
            format!("{value} is no member of this organization"),
        )
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let value = item.get("value").and_then(Value::as_str).ok_or_else(|| {
            ScimError::bad_request(
                "invalidValue",
                format!("a member is {{\"value\": \"<User id>\"}}, not {item}"),
            )
        })?;
        let id: MembershipId = value.parse().map_err(|_| no_member(value))?;
        ids.push((id, value.to_owned()));
    }
    let wanted: Vec<MembershipId> = ids.iter().map(|(id, _)| *id).collect();
    let found: HashMap<MembershipId, Option<UserId>> =
        memberships_in_chunks(s, a, org, &wanted, |membership_ids| MembershipFilter {
            membership_ids,
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|m| (m.id, m.user_id))
        .collect();
    let mut users = Vec::with_capacity(ids.len());
    for (id, value) in ids {
        match found.get(&id) {
            None => return Err(no_member(&value)),
            Some(None) => {
                return Err(ScimError::bad_request(
                    "invalidValue",
                    format!("{value} is an invitation, not a User"),
                ));
            }
            Some(Some(user)) => users.push(*user),
        }
    }
    Ok(users)
}

fn wants_members(q: &ListQuery) -> bool {
    let names = |list: &Option<String>| {
        list.as_deref().is_some_and(|l| {
            l.split(',').any(|a| {
                a.trim()
                    .rsplit(':')
                    .next()
                    .is_some_and(|n| n.eq_ignore_ascii_case("members"))
            })
        })
    };
    match (&q.attributes, &q.excluded_attributes) {
        (Some(_), _) => names(&q.attributes),
        (None, Some(_)) => !names(&q.excluded_attributes),
        (None, None) => true,
    }
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

/// The `ListResponse` of the groups `q` asks for (a GET's query, or a `.search` body).
pub async fn search(
    s: &AppState,
    a: &Actor,
    named: &str,
    q: &ListQuery,
    headers: &HeaderMap,
) -> Result<Value, ScimError> {
    let org = organization_id(s, a, named).await?;
    let filter = q.filter()?;
    let base = Base::new(headers, named);
    let with_members = wants_members(q);
    // Members are read for the groups the answer shows, unless the filter itself reads them:
    // `displayName eq "…"` (what Entra ID and Okta send) is decided on the project alone, and
    // a page of 100 of 10,000 groups reads 100 groups' members, not 10,000.
    let filter_reads_members = filter.as_ref().is_some_and(|f| f.mentions("members"));
    let mut matching = Vec::new();
    let mut after = None;
    loop {
        let page = Page {
            after,
            offset: 0,
            limit: Page::MAX_LIMIT,
            descending: false,
        };
        let read = s.roster.list_projects(a, org, page).await?;
        for p in read.items {
            let resource = if filter_reads_members {
                match read_with_members(s, a, org, p.id, &base).await? {
                    Some(r) => r,
                    None => continue,
                }
            } else {
                render_project(&p, &base)
            };
            if filter.as_ref().is_none_or(|f| f.matches(&resource)) {
                matching.push((p.id, resource));
            }
        }
        match read.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let total = matching.len();
    let mut shown = Vec::new();
    for (id, resource) in matching.into_iter().skip(q.start() - 1).take(q.count()) {
        if with_members && !filter_reads_members {
            shown.extend(read_with_members(s, a, org, id, &base).await?);
        } else {
            shown.push(resource);
        }
    }
    Ok(q.list_response(total, shown))
}

pub async fn get(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((named, id)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    let g = group(&s, &a, org, &id).await?;
    let base = Base::new(&headers, &named);
    let resource = render(&s, &a, org, &g, &base, wants_members(&q)).await?;
    Ok(scim_json(StatusCode::OK, &q.shape(resource)))
}

/// The text attribute `name` of a body, which must be a string where present.
fn text_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimError> {
    wire::text(wire::attribute(body, name), name)
}

fn members_of(body: &Map<String, Value>) -> Option<&Value> {
    wire::attribute(body, "members")
}

/// POST: a new project named `displayName`, with `members` in it. 201 with `Location`.
pub async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(named): Path<String>,
    headers: HeaderMap,
    Body(body): Body<Map<String, Value>>,
) -> Result<Response, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    let name = text_field(&body, "displayName")?
        .ok_or_else(|| ScimError::bad_request("invalidValue", "displayName is required"))?;
    let members = match members_of(&body) {
        Some(m) => users_named(&s, &a, org, m).await?,
        None => Vec::new(),
    };
    let input = NewProject {
        name,
        slug: None,
        external_id: text_field(&body, "externalId")?,
    };
    let g = s
        .roster
        .create_project_with_members(&a, org, input, members, &context())
        .await?;
    let base = Base::new(&headers, &named);
    let resource = render(&s, &a, org, &g, &base, true).await?;
    let mut res = scim_json(StatusCode::CREATED, &resource);
    if let Some(location) = resource["meta"]["location"]
        .as_str()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// Applies `change` to group `id`, and answers with the group as it then is.
async fn apply(
    s: &AppState,
    a: &Actor,
    org: OrganizationId,
    id: ProjectId,
    change: ProjectMembersChange,
    base: &Base,
) -> Result<Response, ScimError> {
    let g = s
        .roster
        .change_project_members(a, id, change, &context())
        .await?;
    Ok(scim_json(
        StatusCode::OK,
        &render(s, a, org, &g, base, true).await?,
    ))
}

/// PUT: the group's name and its members, as given.
pub async fn replace(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((named, id)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<Map<String, Value>>,
) -> Result<Response, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    let g = group(&s, &a, org, &id).await?;
    let name = text_field(&body, "displayName")?
        .ok_or_else(|| ScimError::bad_request("invalidValue", "displayName is required"))?;
    let members = match members_of(&body) {
        Some(m) => users_named(&s, &a, org, m).await?,
        None => Vec::new(),
    };
    let change = ProjectMembersChange {
        name: Some(name),
        external_id: Some(text_field(&body, "externalId")?),
        replace: Some(members),
        ..Default::default()
    };
    apply(
        &s,
        &a,
        org,
        g.project.id,
        change,
        &Base::new(&headers, &named),
    )
    .await
}

/// The member a `members[value eq "…"]` path names, if it is one.
fn member_path(path: &str) -> Option<Value> {
    let (attr, rest) = path.split_once('[')?;
    if !attr.trim().eq_ignore_ascii_case("members") {
        return None;
    }
    let inner = rest.strip_suffix(']')?;
    let filter = Filter::parse(inner).ok()?;
    filter
        .required_eq(&["value"])
        .map(|v| json!([{"value": v}]))
}

/// PATCH: `displayName` replaced; members added, removed (by value, or by a
/// `members[value eq "…"]` path, as Okta and Entra ID send it) or replaced. One transaction.
pub async fn patch(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((named, id)): Path<(String, String)>,
    headers: HeaderMap,
    Body(request): Body<PatchRequest>,
) -> Result<Response, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    if !request.schemas.iter().any(|s| s == PATCH_SCHEMA) {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            format!("a PATCH names the schema {PATCH_SCHEMA}"),
        ));
    }
    let g = group(&s, &a, org, &id).await?;
    let mut change = ProjectMembersChange::default();
    for operation in &request.operations {
        let op = operation.op.to_ascii_lowercase();
        let path = operation.path.as_deref().map(str::trim);
        let is = |p: Option<&str>, name: &str| p.is_some_and(|p| p.eq_ignore_ascii_case(name));
        match (op.as_str(), path, &operation.value) {
            ("add" | "replace", Some(p), Some(Value::String(name)))
                if is(Some(p), "displayName") =>
            {
                change.name = Some(name.clone());
            }
            ("add" | "replace", Some(p), Some(Value::String(external)))
                if is(Some(p), "externalId") =>
            {
                change.external_id = Some(Some(external.clone()));
            }
            ("remove", Some(p), _) if is(Some(p), "externalId") => {
                change.external_id = Some(None);
            }
            ("add" | "replace", None, Some(Value::Object(attrs))) => {
                for (attr, value) in attrs {
                    match attr.to_ascii_lowercase().as_str() {
                        "displayname" => {
                            let name = value.as_str().ok_or_else(|| {
                                ScimError::bad_request(
                                    "invalidValue",
                                    "displayName must be a string",
                                )
                            })?;
                            change.name = Some(name.to_owned());
                        }
                        "externalid" => {
                            let external = value.as_str().ok_or_else(|| {
                                ScimError::bad_request(
                                    "invalidValue",
                                    "externalId must be a string",
                                )
                            })?;
                            change.external_id = Some(Some(external.to_owned()));
                        }
                        "members" => {
                            let users = users_named(&s, &a, org, value).await?;
                            if op == "replace" {
                                change.replace = Some(users);
                            } else {
                                change.add.extend(users);
                            }
                        }
                        // Okta sends the id back with the name; it cannot change.
                        "id" if value.as_str() == Some(id.as_str()) => {}
                        _ => {
                            return Err(ScimError::bad_request(
                                "invalidPath",
                                format!("{attr} is not an attribute a Group's PATCH changes"),
                            ));
                        }
                    }
                }
            }
            ("add", Some(p), Some(value)) if is(Some(p), "members") => {
                change.add.extend(users_named(&s, &a, org, value).await?);
            }
            ("replace", Some(p), Some(value)) if is(Some(p), "members") => {
                change.replace = Some(users_named(&s, &a, org, value).await?);
            }
            ("remove", Some(p), value) if is(Some(p), "members") => match value {
                Some(v) if !v.is_null() => {
                    change.remove.extend(users_named(&s, &a, org, v).await?);
                }
                _ => change.replace = Some(Vec::new()),
            },
            ("remove", Some(p), _) => match member_path(p) {
                Some(named_member) => {
                    change
                        .remove
                        .extend(users_named(&s, &a, org, &named_member).await?);
                }
                None => {
                    return Err(ScimError::bad_request(
                        "invalidPath",
                        format!("{p} is not a path a Group's PATCH removes"),
                    ));
                }
            },
            ("remove", None, _) => {
                return Err(ScimError::bad_request("noTarget", "remove needs a path"));
            }
            ("add" | "replace", Some(p), _) => {
                return Err(ScimError::bad_request(
                    "invalidPath",
                    format!("{p} is not an attribute a Group's PATCH changes"),
                ));
            }
            ("add" | "replace", None, _) => {
                return Err(ScimError::bad_request(
                    "invalidValue",
                    format!("{op} without a path needs an object of attributes"),
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
    apply(
        &s,
        &a,
        org,
        g.project.id,
        change,
        &Base::new(&headers, &named),
    )
    .await
}

/// DELETE: the project goes, and its memberships with it (the organization memberships stay).
pub async fn delete(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((named, id)): Path<(String, String)>,
) -> Result<StatusCode, ScimError> {
    let org = organization_id(&s, &a, &named).await?;
    let g = group(&s, &a, org, &id).await?;
    s.roster
        .delete_project(&a, g.project.id, &context())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
