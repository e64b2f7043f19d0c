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
    modifiers(&BearerAuth, &UniqueOperationIds, &IdempotencyKeys),
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

/// Every `POST`, `PATCH` and `DELETE` takes an `Idempotency-Key` (`crate::idempotency`), and
/// may answer 422 `idempotency_key_reused` or 409 `idempotency_key_in_use` for it.
struct IdempotencyKeys;

impl Modify for IdempotencyKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
        let key = ParameterBuilder::new()
            .name(crate::idempotency::KEY_HEADER)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes the request safe to repeat: a repeat by the same caller with the same \
                 key, method, path and body within the retention window (a day by default) \
                 gets the first answer again, with `Idempotent-Replayed: true`, and changes \
                 nothing. Only a request that changed something is kept; a secret shown once \
                 is `null` in a repeat.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some("^[ -~]+$")),
            ))
            .build();
        let reused = ResponseBuilder::new()
            .description(
                "`idempotency_key_reused`: the `Idempotency-Key` was used for a different request.",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.post, &mut item.patch, &mut item.delete]
                .into_iter()
                .flatten()
            {
                op.parameters.get_or_insert_with(Vec::new).push(key.clone());
                op.responses
                    .responses
                    .insert("422".to_owned(), reused.clone().into());
                if let Some(utoipa::openapi::RefOr::T(conflict)) =
                    op.responses.responses.get_mut("409")
                {
                    conflict.description.push_str(
                        " Or `idempotency_key_in_use`: a request with the same \
                         `Idempotency-Key` is still running.",
                    );
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
