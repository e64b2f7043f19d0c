//! Who is calling (`Actor`) and what they may do (`Permission`). Permissions are checked in the
//! core only, so that the four mounts can never disagree about who may do what.

use std::fmt;

use crate::ids::{IdentityId, OrganizationId, TokenId, UserId};

macro_rules! permissions {
    ($($variant:ident = $key:literal),* $(,)?) => {
        /// One thing a role or a service token may do in an organization.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Permission { $($variant),* }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),*];

            pub fn key(self) -> &'static str {
                match self { $(Permission::$variant => $key),* }
            }

            pub fn parse(key: &str) -> Option<Permission> {
                match key { $($key => Some(Permission::$variant),)* _ => None }
            }
        }
    };
}

permissions! {
    OrganizationRead = "organization:read",
    OrganizationWrite = "organization:write",
    OrganizationDelete = "organization:delete",
    MembersRead = "members:read",
    MembersWrite = "members:write",
    MembersDelete = "members:delete",
    RolesWrite = "roles:write",
    ProjectsRead = "projects:read",
    ProjectsWrite = "projects:write",
    IdentitiesRead = "identities:read",
    IdentitiesWrite = "identities:write",
    IdentitiesDelete = "identities:delete",
    ServiceTokensRead = "service_tokens:read",
    ServiceTokensWrite = "service_tokens:write",
    PasswordsRead = "passwords:read",
    PasswordsWrite = "passwords:write",
    AuditRead = "audit:read",
    EventsRead = "events:read",
    WebhooksManage = "webhooks:manage",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A set of permissions, as a bit set: checking one is a mask, not a search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PermissionSet(u32);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn all() -> Self {
        Self::from_iter(Permission::ALL.iter().copied())
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & (1 << p as u8) != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= 1 << p as u8;
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }

    /// Parses a list of permission keys; an unknown key is invalid input naming `field`.
    pub fn parse_keys<S: AsRef<str>>(keys: &[S], field: &str) -> Result<Self, crate::CoreError> {
        let mut set = Self::EMPTY;
        for k in keys {
            let k = k.as_ref();
            let p = Permission::parse(k).ok_or_else(|| {
                crate::CoreError::invalid(field, format!("unknown permission `{k}`"))
            })?;
            set.insert(p);
        }
        Ok(set)
    }

    /// The stored form: keys separated by single spaces.
    pub fn to_storage(self) -> String {
        self.iter()
            .map(Permission::key)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Reads the stored form, ignoring keys this version does not know (a downgrade must not
    /// lock anyone out of what they could do before).
    pub fn from_storage(s: &str) -> Self {
        Self::from_iter(s.split_whitespace().filter_map(Permission::parse))
    }

    pub fn keys(self) -> Vec<&'static str> {
        self.iter().map(Permission::key).collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

/// What a request authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// An instance admin key: every permission in every organization.
    InstanceAdmin,
    /// A user, through a token they own; permissions come from their memberships.
    User(UserId),
    /// A machine identity of one organization; permissions come from its role.
    Identity {
        identity_id: IdentityId,
        organization_id: OrganizationId,
    },
    /// An organization service token with explicit accesses.
    ServiceToken {
        organization_id: OrganizationId,
        permissions: PermissionSet,
        created_by: Option<UserId>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub token_id: TokenId,
    pub principal: Principal,
}

impl Actor {
    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            Principal::User(u) => Some(u),
            _ => None,
        }
    }

    /// The instance admin key this actor calls with, if it is one.
    pub fn admin_key(&self) -> Option<TokenId> {
        (self.principal == Principal::InstanceAdmin).then_some(self.token_id)
    }

    /// (kind, id) as written to audit events.
    pub fn audit_ref(&self) -> (&'static str, String) {
        match &self.principal {
            Principal::InstanceAdmin => ("admin_key", self.token_id.to_string()),
            Principal::User(u) => ("user", u.to_string()),
            Principal::Identity { identity_id, .. } => ("identity", identity_id.to_string()),
            Principal::ServiceToken { .. } => ("service_token", self.token_id.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_sets_round_trip_through_storage() {
        let set = PermissionSet::from_iter([Permission::MembersRead, Permission::AuditRead]);
        assert_eq!(set.to_storage(), "members:read audit:read");
        assert_eq!(PermissionSet::from_storage(&set.to_storage()), set);
        assert!(!set.contains(Permission::MembersDelete));
    }

    #[test]
    fn unknown_permission_keys_are_refused_on_input() {
        let err = PermissionSet::parse_keys(&["members:read", "members:fly"], "permissions");
        assert!(matches!(err, Err(crate::CoreError::InvalidInput { .. })));
    }
}
