//! Typed ids. Every id is a UUID v7 (time-ordered, so new rows land at the end of indexes and
//! keyset pagination by id follows creation order). The newtypes keep a membership id from being
//! passed where a user id is expected; dialects render and parse them in their vendor's format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident => $label:literal),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// What the id names, for error messages ("membership … not found").
            pub const LABEL: &'static str = $label;

            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = crate::CoreError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_uuid(s, $label).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    )*};
}

id_type! {
    /// An organization.
    OrganizationId => "organization",
    /// A user account.
    UserId => "user",
    /// A role of one organization.
    RoleId => "role",
    /// An organization membership (a user's, or an invitation by email).
    MembershipId => "membership",
    /// A project of one organization.
    ProjectId => "project",
    /// A user's membership in a project.
    ProjectMembershipId => "project membership",
    /// A machine identity.
    IdentityId => "identity",
    /// A machine identity's membership in a project.
    IdentityProjectMembershipId => "identity project membership",
    /// An API token (user, identity, service token or instance admin key).
    TokenId => "token",
    /// A member-owned password (a named secret).
    PasswordId => "password",
    /// An audit event.
    AuditEventId => "audit event",
}

/// Parses a UUID in its hyphenated or simple form; anything else is invalid input naming `what`.
pub fn parse_uuid(s: &str, what: &str) -> Result<Uuid, crate::CoreError> {
    // Only the two canonical text forms: `Uuid::parse_str` also accepts braces and URNs,
    // which no client of ours sends and which would make two spellings of one id.
    let ok =
        (s.len() == 36 || s.len() == 32) && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    match ok.then(|| Uuid::parse_str(s)) {
        Some(Ok(u)) => Ok(u),
        _ => Err(crate::CoreError::invalid(
            what.replace(' ', "_") + "_id",
            format!("`{s}` is not a valid {what} id (a UUID)"),
        )),
    }
}
