//! The PlanetScale dialect: PlanetScale's organization-member and service-token endpoints,
//! mounted at `/planetscale`, so that code written against `https://api.planetscale.com/v1`
//! works with the base URL `http://host/planetscale/v1`. `{organization}` is the organization's
//! slug and a member's `{id}` is the user's id, as in PlanetScale. The rules are roster's core;
//! PlanetScale's own (a user cannot leave their only organization, credential deletion only
//! when removing others) are passed to it as options. See `docs/dialects/planetscale.md`.
//!
//! It depends on the core, axum and roster-http's shared plumbing; never on a store or on
//! another dialect.

mod error;
mod members;
mod service_tokens;
mod wire;

use axum::routing::get;
use roster_http::Mount;

pub use error::PlanetScaleError;
pub use members::removal_of;

mod extract {
    //! This mount's extractors, rendering every rejection in PlanetScale's envelope.
    roster_http::extractors!(super::PlanetScaleError);
}

/// The organization named by a path's `{organization}` (its slug), if the caller can see it.
async fn organization(
    s: &roster_http::AppState,
    a: &roster_core::Actor,
    slug: &str,
) -> Result<roster_core::model::Organization, PlanetScaleError> {
    s.roster
        .visible_organization_by_slug(a, slug)
        .await
        .map_err(PlanetScaleError::for_actor(a))
}

/// The router, to be mounted at `/planetscale`.
pub fn mount() -> Mount {
    let (router, paths) = roster_http::Routes::new()
        .route(
            "/v1/organizations/{organization}/members",
            get(members::list),
        )
        .route(
            "/v1/organizations/{organization}/members/{id}",
            get(members::get)
                .patch(members::update)
                .delete(members::remove),
        )
        .route(
            "/v1/organizations/{organization}/service-tokens",
            get(service_tokens::list).post(service_tokens::create),
        )
        .route(
            "/v1/organizations/{organization}/service-tokens/{id}",
            get(service_tokens::get).delete(service_tokens::delete),
        )
        .route(
            "/v1/organizations/{organization}/service-tokens/{id}/access",
            get(service_tokens::list_access)
                .post(service_tokens::add_access)
                .delete(service_tokens::remove_access),
        )
        .into_parts();
    let router = router
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::route_not_found);
    Mount {
        prefix: "/planetscale",
        router,
        paths,
    }
}
