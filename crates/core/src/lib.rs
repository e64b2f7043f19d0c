//! roster's core: the domain model, the one error type, actors and permissions, the use-cases
//! (removal first among them) and the `Store` trait they run against.
//!
//! It must not depend on HTTP (axum), on SQL (sqlx) or on any vendor dialect: the dialects and
//! the stores depend on it, never the other way round.

pub mod auth;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod model;
pub mod permissions;
pub mod removed;
pub mod secrets;
pub mod service;
pub mod store;
pub mod timestamp;
pub mod webhooks;

pub use error::{AuthFailure, CoreError, Rule};
pub use ids::*;
pub use model::*;
pub use permissions::{Actor, Permission, PermissionSet, Principal};
pub use service::{RequestContext, Roster};
pub use store::{Session, Store};
pub use timestamp::Timestamp;
