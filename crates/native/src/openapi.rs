//! The OpenAPI 3.1 document of the native API, generated from the handlers' annotations and
//! the wire types, served at `/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "roster", description = "Organization membership: organizations, members, roles, projects, machine identities, credentials, and safe removal."),
    paths(
        organizations::list, organizations::create, organizations::get, organizations::update, organizations::delete,
        organizations::list_roles, organizations::create_role, organizations::get_role, organizations::update_role,
        organizations::delete_role, organizations::audit_events, organizations::instance_audit_events,
        events::list, former_members::list, former_members::get, former_members::purge,
        former_members::reinstate, webhooks::list, webhooks::create, webhooks::get, webhooks::update,
        webhooks::delete, webhooks::rotate_secret, webhooks::deliveries, webhooks::retry,
        memberships::list, memberships::create, memberships::get, memberships::update, memberships::remove,
        memberships::bulk_remove, memberships::accept, memberships::leave,
        users::list, users::create, users::get, users::update, users::delete, users::offboard,
        users::list_tokens, users::create_token, users::delete_token,
        admin_keys::list, admin_keys::revoke,
        projects::list, projects::create, projects::get, projects::update, projects::delete,
        projects::list_members, projects::add_member, projects::remove_member,
        projects::list_identities, projects::add_identity, projects::get_identity, projects::remove_identity,
        identities::list, identities::create, identities::get, identities::update, identities::delete,
        identities::create_token,
        credentials::list_service_tokens, credentials::create_service_token, credentials::get_service_token,
        credentials::delete_service_token, credentials::list_passwords, credentials::create_password,
        credentials::delete_password,
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(&BearerAuth, &UniqueOperationIds),
    security(("bearer" = [])),
)]
struct NativeApi;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer rst_…`, or `Authorization: <token id>:<secret>`",
                    ))
                    .build(),
            ),
        );
    }
}

/// Operation ids are the handlers' names, which repeat across resources (`list`, `delete`); a
/// repeated one gets the literal segments of its path (`list_organizations_memberships`), so
/// that every id is unique, as generated clients need.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut seen = std::collections::HashMap::<String, usize>::new();
        for item in openapi.paths.paths.values() {
            for op in operations(item) {
                *seen
                    .entry(op.operation_id.clone().unwrap_or_default())
                    .or_default() += 1;
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let literals: Vec<&str> = path
                .split('/')
                .filter(|s| !s.is_empty() && *s != "v1" && !s.starts_with('{'))
                .collect();
            for op in operations_mut(item) {
                let id = op.operation_id.clone().unwrap_or_default();
                if seen.get(&id).copied().unwrap_or_default() > 1 {
                    op.operation_id =
                        Some(format!("{id}_{}", literals.join("_").replace('-', "_")));
                }
            }
        }
    }
}

fn operations(
    item: &utoipa::openapi::PathItem,
) -> impl Iterator<Item = &utoipa::openapi::path::Operation> {
    [
        &item.get,
        &item.put,
        &item.post,
        &item.delete,
        &item.options,
        &item.head,
        &item.patch,
        &item.trace,
    ]
    .into_iter()
    .flatten()
}

fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

pub fn document() -> utoipa::openapi::OpenApi {
    NativeApi::openapi()
}
