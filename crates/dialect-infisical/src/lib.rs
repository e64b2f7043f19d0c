//! The Infisical dialect: Infisical's organization-membership and project-identity-membership
//! endpoints, mounted at `/infisical`, so that code written against Infisical works with
//! `siteUrl = http://host/infisical`. Paths, field names, status codes and the error envelope
//! are Infisical's (`../shared/seeds/` and `../shared/vendors/infisical.md`); the rules are
//! roster's core, the same for every mount. Infisical's bugs are not copied (see
//! `docs/dialects/infisical.md`).
//!
//! It depends on the core, axum and roster-http's shared plumbing; never on a store or on
//! another dialect.

mod error;
mod identity_memberships;
mod org_memberships;
mod wire;

use axum::routing::{delete, get};
use roster_http::Mount;

pub use error::InfisicalError;

mod extract {
    //! This mount's extractors, rendering every rejection in Infisical's envelope.
    roster_http::extractors!(super::InfisicalError);
}

/// The router, to be mounted at `/infisical`.
pub fn mount() -> Mount {
    let identity = get(identity_memberships::get)
        .post(identity_memberships::create)
        .patch(identity_memberships::update)
        .delete(identity_memberships::remove);
    let (router, paths) = roster_http::Routes::new()
        .route(
            "/api/v2/organizations/{organization_id}/memberships",
            roster_http::bulk_body_limit(
                get(org_memberships::list).delete(org_memberships::bulk_remove),
            ),
        )
        .route(
            "/api/v2/organizations/{organization_id}/memberships/{membership_id}",
            get(org_memberships::get)
                .patch(org_memberships::update)
                .delete(org_memberships::remove),
        )
        .route(
            "/api/v2/organizations/{organization_id}/identity-memberships",
            get(identity_memberships::list_in_org),
        )
        .route(
            "/api/v1/projects/{project_id}/identity-memberships",
            get(identity_memberships::list),
        )
        .route(
            "/api/v1/projects/{project_id}/identity-memberships/{identity_id}",
            identity.clone(),
        )
        // Deprecated twins, same behaviour.
        .route(
            "/api/v2/workspace/{project_id}/identity-memberships/{identity_id}",
            identity,
        )
        .route(
            "/api/v1/projects/{project_id}/memberships/identities/{identity_id}",
            delete(identity_memberships::remove),
        )
        .into_parts();
    let router = router
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::route_not_found);
    Mount {
        prefix: "/infisical",
        router,
        paths,
    }
}
