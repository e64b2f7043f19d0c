//! Discovery (RFC 7644 §4): `ServiceProviderConfig`, `ResourceTypes` and `Schemas`, saying
//! what this service provider does, and nothing it does not.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use roster_http::AppState;
use serde_json::{Value, json};

use crate::error::ScimError;
use crate::extract::{Auth, Path};
use crate::list::MAX_RESULTS;
use crate::wire::{Base, GROUP_SCHEMA, USER_SCHEMA, list_response};
use crate::{organization_id, scim_json};

const CONFIG_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

pub async fn service_provider_config(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    organization_id(&s, &a, &org).await?;
    let base = Base::new(&headers, &org);
    Ok(scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [CONFIG_SCHEMA],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "Authorization: Bearer <a roster token>; an organization service \
                    token with members:read, members:write and members:delete is the usual one",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": base.at("ServiceProviderConfig"),
            },
        }),
    ))
}

fn resource_type_of(base: &Base, name: &str, description: &str, schema: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": name,
        "name": name,
        "endpoint": format!("/{name}s"),
        "description": description,
        "schema": schema,
        "meta": {"resourceType": "ResourceType", "location": base.at(&format!("ResourceTypes/{name}"))},
    })
}

fn all_resource_types(base: &Base) -> Vec<Value> {
    vec![
        resource_type_of(base, "User", "A member of the organization", USER_SCHEMA),
        resource_type_of(base, "Group", "A project of the organization", GROUP_SCHEMA),
    ]
}

pub async fn resource_types(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    organization_id(&s, &a, &org).await?;
    let base = Base::new(&headers, &org);
    let all = all_resource_types(&base);
    Ok(scim_json(StatusCode::OK, &list_response(all.len(), 1, all)))
}

pub async fn resource_type(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    organization_id(&s, &a, &org).await?;
    let base = Base::new(&headers, &org);
    all_resource_types(&base)
        .into_iter()
        .find(|t| t["id"] == id.as_str())
        .map(|t| scim_json(StatusCode::OK, &t))
        .ok_or_else(|| ScimError::not_found(format!("no resource type {id}")))
}

/// An attribute's definition (RFC 7643 §7).
fn attribute(name: &str, kind: &str, multi: bool, required: bool, mutability: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": multi,
        "required": required,
        "caseExact": false,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": if name == "userName" { "server" } else { "none" },
    })
}

fn canonical(mut a: Value, values: &[String]) -> Value {
    a["canonicalValues"] = json!(values);
    a
}

fn with_sub(mut a: Value, sub: Vec<Value>) -> Value {
    a["subAttributes"] = Value::Array(sub);
    a
}

/// The User schema; `roles.value` lists the organization's role keys as its canonical values.
fn user_schema(base: &Base, role_keys: &[String]) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A member of the organization: the user (by email) and their membership",
        "attributes": [
            attribute("userName", "string", false, true, "readWrite"),
            with_sub(attribute("name", "complex", false, false, "readOnly"), vec![
                attribute("formatted", "string", false, false, "readOnly"),
                attribute("givenName", "string", false, false, "readOnly"),
                attribute("familyName", "string", false, false, "readOnly"),
            ]),
            attribute("displayName", "string", false, false, "readOnly"),
            // Required: roster knows a person by their email (a userName that is one will do).
            with_sub(attribute("emails", "complex", true, true, "immutable"), vec![
                attribute("value", "string", false, true, "immutable"),
                attribute("type", "string", false, false, "readOnly"),
                attribute("primary", "boolean", false, false, "immutable"),
            ]),
            attribute("externalId", "string", false, false, "readWrite"),
            attribute("active", "boolean", false, false, "readWrite"),
            with_sub(attribute("roles", "complex", true, false, "readWrite"), vec![
                // One role a member: no `primary` to choose between.
                canonical(attribute("value", "string", false, false, "readWrite"), role_keys),
            ]),
        ],
        "meta": {"resourceType": "Schema", "location": base.at(&format!("Schemas/{USER_SCHEMA}"))},
    })
}

fn group_schema(base: &Base) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A project of the organization: its name and the members in it",
        "attributes": [
            attribute("displayName", "string", false, true, "readWrite"),
            attribute("externalId", "string", false, false, "readWrite"),
            with_sub(attribute("members", "complex", true, false, "readWrite"), vec![
                attribute("value", "string", false, false, "immutable"),
                references(attribute("$ref", "reference", false, false, "immutable"), &["User"]),
            ]),
        ],
        "meta": {"resourceType": "Schema", "location": base.at(&format!("Schemas/{GROUP_SCHEMA}"))},
    })
}

fn references(mut a: Value, types: &[&str]) -> Value {
    a["referenceTypes"] = json!(types);
    a
}

/// Every schema, as `org` has them (its roles).
async fn all_schemas(
    s: &AppState,
    a: &roster_core::Actor,
    org: roster_core::ids::OrganizationId,
    base: &Base,
) -> Result<Vec<Value>, ScimError> {
    let roles: Vec<String> = s
        .roster
        .list_roles(a, org)
        .await?
        .into_iter()
        .map(|r| r.key)
        .collect();
    Ok(vec![user_schema(base, &roles), group_schema(base)])
}

pub async fn schemas(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let id = organization_id(&s, &a, &org).await?;
    let base = Base::new(&headers, &org);
    let all = all_schemas(&s, &a, id, &base).await?;
    Ok(scim_json(StatusCode::OK, &list_response(all.len(), 1, all)))
}

pub async fn schema(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let org_id = organization_id(&s, &a, &org).await?;
    let base = Base::new(&headers, &org);
    all_schemas(&s, &a, org_id, &base)
        .await?
        .into_iter()
        .find(|schema| schema["id"] == id.as_str())
        .map(|schema| scim_json(StatusCode::OK, &schema))
        .ok_or_else(|| ScimError::not_found(format!("no schema {id}")))
}
