//! roster's HTTP kit: the application state, the middleware every surface shares (request id,
//! tracing, body limit, metrics), the extractors each surface instantiates with its own error
//! type (`extractors!`), authentication from headers, the operational endpoints, and the
//! place where the surfaces (the native API, the vendor dialects) are put together.
//!
//! It depends on the core and axum, never on a store crate (the binary hands it a `Roster`)
//! and never on a surface (each is handed in as a router by the binary).

pub mod auth;
pub mod auth_limit;
pub mod extract;
pub mod json_parts;
pub mod metrics;
pub mod ops;
pub mod request_id;
pub mod serve;

pub use serve::{Timeouts, serve};

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use roster_core::Roster;

/// The largest request body any mount accepts, but for bulk removals.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The largest body of a bulk removal: room for `MAX_BULK_REMOVAL` (100,000) quoted UUIDs.
pub const MAX_BULK_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The body limit a route applies, as a request extension, so that a refusal states it. Set
/// beside the route's `DefaultBodyLimit` by `bulk_body_limit`; absent, `MAX_BODY_BYTES` applied.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A bulk route's larger body limit, and the note of it that a 413 reads.
pub fn bulk_body_limit<S: Clone + Send + Sync + 'static>(
    route: axum::routing::MethodRouter<S>,
) -> axum::routing::MethodRouter<S> {
    route
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(MAX_BULK_BODY_BYTES))
        .layer::<_, std::convert::Infallible>(axum::Extension(BodyLimit(MAX_BULK_BODY_BYTES)))
}

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub roster: Roster,
    pub metrics: Arc<metrics::Metrics>,
    pub auth_limits: Arc<auth_limit::AuthFailureLimits>,
}

impl AppState {
    pub fn new(roster: Roster) -> Self {
        AppState {
            metrics: Arc::new(metrics::Metrics::new(roster.clone())),
            auth_limits: Arc::default(),
            roster,
        }
    }
}

/// A surface's routes: the router, and the path template of each route it was built with.
/// Every surface builds its router through this, so that the tests can walk every route of
/// every mount (the generated cross-tenant matrix) with no list of their own for a new route
/// to be missing from.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `path` with `method_router`, as `Router::route` does, and notes the path.
    pub fn route(
        mut self,
        path: &'static str,
        method_router: axum::routing::MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    /// The router, and the templates of its routes in the order they were added.
    pub fn into_parts(self) -> (Router<AppState>, Vec<&'static str>) {
        (self.router, self.paths)
    }
}

/// A vendor dialect's router and the prefix it is mounted under (`/infisical`, `/clerk`, …).
/// The router brings its own fallbacks, so unknown routes below the prefix get the vendor's
/// error envelope.
pub struct Mount {
    pub prefix: &'static str,
    pub router: Router<AppState>,
    /// The templates of the router's routes, below `prefix`.
    pub paths: Vec<&'static str>,
}

/// The whole application, wrapped in the shared middleware: `base` (the native API, whose
/// fallbacks answer every path no mount takes), the operational endpoints, and the given
/// mounts under their prefixes.
pub fn app(state: AppState, base: Router<AppState>, mounts: Vec<Mount>) -> Router {
    let mut router = base.merge(ops::router());
    for m in mounts {
        router = router.nest(m.prefix, m.router);
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth_limit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// Logs an internal error once, with its cause, under the current request's span (which names
/// the request id the client was given). Every mount's error renderer calls this.
pub fn log_internal_error(cause: &str) {
    tracing::error!(%cause, "internal error");
}

/// Logs, under the request's span, why the database could not be reached for it.
pub fn log_unavailable(cause: &str) {
    tracing::warn!(%cause, "database unavailable");
}
