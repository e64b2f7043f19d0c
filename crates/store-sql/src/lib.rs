//! The SQL of roster's `Store`, written once. Both backends run the same statement text
//! (`$1…$n` placeholders, standard SQL), so it lives here over `Conn`, a small trait of
//! "run this statement with these arguments" that each backend crate implements with sqlx.
//! What really differs (column types in the migrations, how an organization is locked, pool
//! set-up) stays in the backend crates.
//!
//! This crate must not depend on a database driver (sqlx, rusqlite) or on any HTTP crate.

mod conn;
pub mod migrations;
mod session;

pub use conn::{Arg, Conn, SqlRow, constraint_error};
pub use migrations::Migration;
pub use session::{
    EventTally, HandOffSlot, PagedList, SqlSession, claim_due_deliveries_statement,
    delete_owed_deliveries_statement, list_memberships_statement, list_page_statement,
    list_tokens_statement, lock_organizations_reading_tokens_statement,
    memberships_by_ids_statement, memberships_by_users_statement, placeholders,
    record_deliveries_statement, remove_memberships_cascading_statement,
};
