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
        organizations::delete_role, organizations::audit_events,
        memberships::list, memberships::create, memberships::get, memberships::update, memberships::remove,
        memberships::bulk_remove, memberships::accept, memberships::leave,
        users::list, users::create, users::get, users::update, users::delete,
        users::list_tokens, users::create_token, users::delete_token,
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
    modifiers(&BearerAuth),
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

pub fn document() -> utoipa::openapi::OpenApi {
    NativeApi::openapi()
}
