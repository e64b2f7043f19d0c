//! The SCIM 2.0 dialect (RFC 7643, RFC 7644): a service provider through which an identity
//! provider (Okta, Microsoft Entra ID) keeps an organization's members in step with its
//! directory, mounted at `/scim/v2/organizations/{organization}` (the organization's id or
//! slug). Users are the organization's members, `id` their membership's id; `active: false`
//! deactivates a membership, `DELETE` is the removal every mount uses. Groups are the
//! organization's projects, their members the project's users. Errors are SCIM's
//! (`error.rs`); filters are evaluated on the resources as rendered (`filter.rs`). See
//! `docs/dialects/scim.md`.
//!
//! It depends on the core, axum and roster-http's shared plumbing; never on a store or on
//! another dialect.

mod discovery;
mod error;
pub mod filter;
mod groups;
mod list;
mod search;
mod users;
mod wire;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use roster_core::ids::OrganizationId;
use roster_http::Mount;

pub use error::ScimError;

mod extract {
    //! This mount's extractors, rendering every rejection in SCIM's envelope.
    roster_http::extractors!(super::ScimError);
}

/// The media type of every answer (RFC 7644 §3.1).
pub const SCIM_JSON: &str = "application/scim+json";

/// `body` with `status`, as `application/scim+json`.
fn scim_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    res
}

/// The organization a path's `{organization}` names (its id, or else its slug), if the caller
/// can see it; anyone else learns nothing of it (404).
async fn organization_id(
    s: &roster_http::AppState,
    a: &roster_core::Actor,
    named: &str,
) -> Result<OrganizationId, ScimError> {
    let org = match named.parse::<OrganizationId>() {
        Ok(id) => s.roster.visible_organization(a, id).await?,
        Err(_) => s.roster.visible_organization_by_slug(a, named).await?,
    };
    Ok(org.id)
}

/// The router, to be mounted at `/scim/v2`.
pub fn mount() -> Mount {
    let (router, paths) = roster_http::Routes::new()
        .route(
            "/organizations/{organization}/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route(
            "/organizations/{organization}/ResourceTypes",
            get(discovery::resource_types),
        )
        .route(
            "/organizations/{organization}/ResourceTypes/{id}",
            get(discovery::resource_type),
        )
        .route(
            "/organizations/{organization}/Schemas",
            get(discovery::schemas),
        )
        .route(
            "/organizations/{organization}/Schemas/{id}",
            get(discovery::schema),
        )
        .route(
            "/organizations/{organization}/Users",
            get(users::list).post(users::create),
        )
        .route(
            "/organizations/{organization}/Users/{id}",
            get(users::get)
                .put(users::replace)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route(
            "/organizations/{organization}/.search",
            axum::routing::post(search::all),
        )
        .route(
            "/organizations/{organization}/Users/.search",
            axum::routing::post(search::users),
        )
        .route(
            "/organizations/{organization}/Groups/.search",
            axum::routing::post(search::groups),
        )
        .route(
            "/organizations/{organization}/Groups",
            get(groups::list).post(groups::create),
        )
        .route(
            "/organizations/{organization}/Groups/{id}",
            get(groups::get)
                .put(groups::replace)
                .patch(groups::patch)
                .delete(groups::delete),
        )
        .into_parts();
    let router = router
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    Mount {
        prefix: "/scim/v2",
        router,
        paths,
    }
}
