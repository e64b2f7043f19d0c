//! The Clerk dialect: Clerk's Backend API for organizations, users and organization
//! memberships, mounted at `/clerk`, so that code using `@clerk/backend` works with only
//! `createClerkClient({ secretKey, apiUrl: "http://host/clerk" })` changed. Ids are Clerk-style
//! (`org_…`, `user_…`, `orgmem_…`, encoded reversibly from roster's), timestamps Unix
//! milliseconds, roles `org:<key>`; the rules are roster's core (see `docs/dialects/clerk.md`).
//!
//! It depends on the core, axum and roster-http's shared plumbing; never on a store or on
//! another dialect.

#![recursion_limit = "256"] // the User object is one large `json!`

mod error;
mod form;
pub mod ids;
mod memberships;
mod organizations;
mod users;
pub mod webhooks;
mod wire;

use axum::routing::get;
use roster_http::Mount;

pub use error::ClerkError;

mod extract {
    //! This mount's extractors, rendering every rejection in Clerk's envelope.
    roster_http::extractors!(super::ClerkError);
}

/// The router, to be mounted at `/clerk`.
pub fn mount() -> Mount {
    let (router, paths) = roster_http::Routes::new()
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
            "/v1/organizations/{organization_id}/metadata",
            axum::routing::patch(organizations::merge_metadata)
                .put(organizations::replace_metadata),
        )
        .route(
            "/v1/organizations/{organization_id}/memberships",
            get(memberships::list).post(memberships::create),
        )
        .route(
            "/v1/organizations/{organization_id}/memberships/{user_id}",
            axum::routing::patch(memberships::update).delete(memberships::delete),
        )
        .route(
            "/v1/organizations/{organization_id}/memberships/{user_id}/metadata",
            axum::routing::patch(memberships::merge_metadata),
        )
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/count", get(users::count))
        .route(
            "/v1/users/{user_id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .into_parts();
    let router = router
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::route_not_found);
    Mount {
        prefix: "/clerk",
        router,
        paths,
    }
}
