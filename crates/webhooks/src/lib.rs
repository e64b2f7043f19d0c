//! roster's webhook delivery: the worker inside `roster serve` that sends each pending
//! delivery (claimed by lease, so that one node sends an attempt at a time), signed with the
//! Standard Webhooks scheme, retried on the core's schedule; and the address policy that keeps
//! an organization admin from making roster call internal addresses (SSRF).
//!
//! It depends on the core and an HTTP client, never on a store or a surface: how an event is
//! rendered for an endpoint's format is handed in (`Render`) by the binary.

mod policy;
mod sign;
mod worker;

pub use policy::AddressPolicy;
pub use sign::sign;
pub use worker::{Render, Settings, spawn};
