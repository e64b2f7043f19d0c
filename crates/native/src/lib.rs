//! The native API, `/v1`: roster's own resources at plural nouns, JSON in and out, keyset
//! cursors for lists, errors in `{"error": {"code", "message", "request_id", "details"?}}`,
//! and its OpenAPI document at `/openapi.json`. A surface like the vendor dialects, built on
//! `roster-http`'s kit; no dialect depends on it.
//! Handlers parse, call the core, render: no SQL and no permission logic here.

mod admin_keys;
pub mod console;
mod credentials;
pub mod docs;
pub mod error;
pub mod events;
pub mod extract;
mod former_members;
pub mod idempotency;
mod identities;
mod memberships;
pub mod openapi;
mod organizations;
mod projects;
mod query;
mod users;
mod webhooks;
pub mod wire;

use std::str::FromStr;

use axum::Router;
use axum::routing::{delete, get, post};
use roster_core::CoreError;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

use roster_http::AppState;

/// Parses a path or body id into its typed form (400 naming the parameter when malformed).
fn parse<T: FromStr<Err = CoreError>>(s: &str) -> Result<T, CoreError> {
    s.parse()
}

/// The error envelope, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable snake_case code: `not_found`, `invalid_input`, `last_admin`, …
    pub code: String,
    pub message: String,
    /// The `x-request-id` of the request.
    pub request_id: String,
    /// What the error is about: the field, the permission, the offending id.
    pub details: Option<serde_json::Value>,
}

/// The errors any native operation may answer.
#[derive(IntoResponses)]
pub enum Errors {
    /// Malformed input: bad JSON, unknown fields, wrong types, malformed ids.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorEnvelope),
    /// No or bad credentials.
    #[response(status = 401)]
    Unauthorized(ErrorEnvelope),
    /// Authenticated, but lacking the permission.
    #[response(status = 403)]
    Forbidden(ErrorEnvelope),
    /// Missing, or not visible to the caller.
    #[response(status = 404)]
    NotFound(ErrorEnvelope),
    /// A uniqueness clash, or a rule refused the change (`last_admin`, `self_removal`, …).
    #[response(status = 409)]
    Conflict(ErrorEnvelope),
    /// The body is larger than 1 MiB (8 MiB for bulk removal).
    #[response(status = 413)]
    PayloadTooLarge(ErrorEnvelope),
}

/// The bulk removal's route, whose bodies may be larger (`roster_http::bulk_body_limit`).
const BULK_REMOVE_ROUTE: &str = "/v1/organizations/{organization_id}/memberships/bulk-remove";

/// The native API's router; `state` is what its idempotency layer runs with.
pub fn router(state: &AppState) -> Router<AppState> {
    routes()
        .into_parts()
        .0
        .route_layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(state.clone()),
            idempotency::layer,
        ))
        // Outermost: a request with a query parameter its route lacks is refused before it
        // can run, idempotently or not.
        .route_layer(axum::middleware::from_fn(query::refuse_undeclared))
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
}

/// The path template of every native route.
pub fn paths() -> Vec<&'static str> {
    routes().into_parts().1
}

fn routes() -> roster_http::Routes {
    roster_http::Routes::new()
        .route(
            "/v1/organizations",
            get(organizations::list).post(organizations::create),
        )
        .route(
            "/v1/organizations/{organization_id}",
            get(organizations::get)
                .patch(organizations::update)
                .delete(organizations::delete),
        )
        .route(
            "/v1/organizations/{organization_id}/roles",
            get(organizations::list_roles).post(organizations::create_role),
        )
        .route(
            "/v1/organizations/{organization_id}/roles/{role_id}",
            get(organizations::get_role)
                .patch(organizations::update_role)
                .delete(organizations::delete_role),
        )
        .route(
            "/v1/organizations/{organization_id}/audit-events",
            get(organizations::audit_events),
        )
        .route(
            "/v1/organizations/{organization_id}/events",
            get(events::list),
        )
        .route(
            "/v1/organizations/{organization_id}/former-members",
            get(former_members::list),
        )
        .route(
            "/v1/organizations/{organization_id}/former-members/{membership_id}",
            get(former_members::get).delete(former_members::purge),
        )
        .route(
            "/v1/organizations/{organization_id}/former-members/{membership_id}/reinstate",
            post(former_members::reinstate),
        )
        .route(
            "/v1/organizations/{organization_id}/webhook-endpoints",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/v1/organizations/{organization_id}/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry",
            post(webhooks::retry),
        )
        .route(
            "/v1/organizations/{organization_id}/memberships",
            get(memberships::list).post(memberships::create),
        )
        .route(
            BULK_REMOVE_ROUTE,
            roster_http::bulk_body_limit(post(memberships::bulk_remove)),
        )
        .route(
            "/v1/organizations/{organization_id}/memberships/{membership_id}",
            get(memberships::get)
                .patch(memberships::update)
                .delete(memberships::remove),
        )
        .route(
            "/v1/organizations/{organization_id}/memberships/{membership_id}/accept",
            post(memberships::accept),
        )
        .route(
            "/v1/organizations/{organization_id}/leave",
            post(memberships::leave),
        )
        .route(
            "/v1/organizations/{organization_id}/projects",
            get(projects::list).post(projects::create),
        )
        .route(
            "/v1/organizations/{organization_id}/identities",
            get(identities::list).post(identities::create),
        )
        .route(
            "/v1/organizations/{organization_id}/service-tokens",
            get(credentials::list_service_tokens).post(credentials::create_service_token),
        )
        .route(
            "/v1/organizations/{organization_id}/service-tokens/{token_id}",
            get(credentials::get_service_token).delete(credentials::delete_service_token),
        )
        .route(
            "/v1/organizations/{organization_id}/passwords",
            get(credentials::list_passwords).post(credentials::create_password),
        )
        .route(
            "/v1/organizations/{organization_id}/passwords/{password_id}",
            delete(credentials::delete_password),
        )
        .route(
            "/v1/audit-events",
            get(organizations::instance_audit_events),
        )
        .route("/v1/admin-keys", get(admin_keys::list))
        .route("/v1/admin-keys/{token_id}", delete(admin_keys::revoke))
        .route("/v1/users", get(users::list).post(users::create))
        .route(
            "/v1/users/{user_id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/v1/users/{user_id}/offboard", post(users::offboard))
        .route(
            "/v1/users/{user_id}/tokens",
            get(users::list_tokens).post(users::create_token),
        )
        .route(
            "/v1/users/{user_id}/tokens/{token_id}",
            delete(users::delete_token),
        )
        .route(
            "/v1/projects/{project_id}",
            get(projects::get)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/v1/projects/{project_id}/memberships",
            get(projects::list_members).post(projects::add_member),
        )
        .route(
            "/v1/projects/{project_id}/memberships/{project_membership_id}",
            delete(projects::remove_member),
        )
        .route(
            "/v1/projects/{project_id}/identity-memberships",
            get(projects::list_identities).post(projects::add_identity),
        )
        .route(
            "/v1/projects/{project_id}/identity-memberships/{identity_id}",
            get(projects::get_identity).delete(projects::remove_identity),
        )
        .route(
            "/v1/identities/{identity_id}",
            get(identities::get)
                .patch(identities::update)
                .delete(identities::delete),
        )
        .route(
            "/v1/identities/{identity_id}/tokens",
            post(identities::create_token),
        )
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
}
