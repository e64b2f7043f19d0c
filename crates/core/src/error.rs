//! The one error type of the core. Every mount renders it in its own vendor's envelope; the
//! variants carry what a renderer needs (which rule, which id, which field) and nothing about HTTP.

use std::fmt;

/// A business rule that refused a change. Dialects map each to their vendor's status and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The change would leave the organization without an active admin.
    LastAdmin,
    /// A caller tried to remove their own membership through the admin path.
    SelfRemoval,
    /// A user tried to leave the only organization they belong to (PlanetScale's rule).
    OnlyOrganization,
    /// Credential deletion flags are only for removing others (PlanetScale's rule).
    CredentialFlagsOnSelf,
    /// Nobody changes their own role or deactivates themselves.
    OwnMembershipChange,
    /// The organization is at `max_allowed_memberships`.
    MembershipQuota,
    /// A built-in role cannot be changed or deleted.
    BuiltInRole,
    /// A role still held by members cannot be deleted.
    RoleInUse,
}

impl Rule {
    /// A stable snake_case name, used as the native error code.
    pub fn code(self) -> &'static str {
        match self {
            Rule::LastAdmin => "last_admin",
            Rule::SelfRemoval => "self_removal",
            Rule::OnlyOrganization => "only_organization",
            Rule::CredentialFlagsOnSelf => "credential_flags_on_self",
            Rule::OwnMembershipChange => "own_membership_change",
            Rule::MembershipQuota => "membership_quota",
            Rule::BuiltInRole => "built_in_role",
            Rule::RoleInUse => "role_in_use",
        }
    }
}

/// Why a request did not authenticate (some vendors answer the two differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials, or not in a form any mount reads.
    Missing,
    /// Well-formed credentials that match no live token.
    Invalid,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFailure::Missing => "missing or malformed credentials",
            AuthFailure::Invalid => "invalid credentials",
        })
    }
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum CoreError {
    /// The thing does not exist, or the caller may not know that it does (the two are
    /// deliberately indistinguishable across tenants).
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },

    /// Targets of one request of several that name nothing (a bulk removal): the first
    /// `MAX_NAMED_NOT_FOUND` of them, in request order, and how many there are, so that a list
    /// is cleaned in one round trip.
    #[error("{count} {kind}s not found: {}", ids.join(", "))]
    NotFoundAmong {
        kind: &'static str,
        ids: Vec<String>,
        count: usize,
    },

    /// A uniqueness clash: a slug taken, a user already a member.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    /// Input that does not parse or is out of range; `field` names the offending parameter.
    #[error("{message}")]
    InvalidInput { field: String, message: String },

    /// No credentials, or credentials that do not authenticate.
    #[error("{0}")]
    Unauthenticated(AuthFailure),

    /// Authenticated, known to the organization, but lacking a permission.
    #[error("missing permission `{permission}`")]
    Forbidden { permission: &'static str },

    /// A business rule refused the change; `id` names the offending target where there is one,
    /// and `ids` every target the rule refused where there are several (the first
    /// `MAX_NAMED_NOT_FOUND`: a bulk removal of every admin names them all).
    #[error("{message}")]
    RuleViolated {
        rule: Rule,
        message: String,
        id: Option<String>,
        ids: Vec<String>,
    },

    /// The database cannot be reached (refused, unknown, timed out): says what is wrong, for
    /// the operator; clients are told only that the service is unavailable.
    #[error("{0}")]
    Unavailable(String),

    /// Anything else: logged with its cause, shown to clients only as a request id.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn not_found(kind: &'static str, id: impl fmt::Display) -> Self {
        CoreError::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn rule(rule: Rule, message: impl Into<String>, id: Option<String>) -> Self {
        CoreError::RuleViolated {
            rule,
            message: message.into(),
            id,
            ids: Vec::new(),
        }
    }

    pub fn internal(cause: impl fmt::Display) -> Self {
        CoreError::Internal(cause.to_string())
    }
}

pub type CoreResult<T> = Result<T, CoreError>;

/// The most ids a `NotFoundAmong` names; its `count` says how many there were.
pub const MAX_NAMED_NOT_FOUND: usize = 100;
