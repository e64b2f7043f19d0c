//! roster's load tools, `roster-bench` (`src/main.rs`) and `roster-chaos`
//! (`src/bin/roster-chaos/`), and what they share. Tools, not tests: they assert nothing, they
//! report. They drive a `roster serve` process over HTTP and read its database directly; they
//! never link a mount.

pub mod client;
pub mod fixture;
pub mod load;
pub mod seed;

pub use fixture::{
    Backends, Bench, Server, Target, create_postgres_database, drop_postgres_database, org_parts,
};
