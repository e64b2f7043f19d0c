//! Infisical's wire shapes: camelCase, ISO-8601 timestamps, and exactly the fields of the seed
//! schemas where those say `additionalProperties: false`.

use roster_core::ids::{IdText, MembershipId};
use roster_core::model::*;
use roster_core::{CoreError, Timestamp};
use serde::{Deserialize, Serialize};

fn iso(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// An organization membership as the seed endpoints return it (no other field).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgMembership {
    pub id: String,
    pub role: String,
    pub status: &'static str,
    pub invite_email: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub user_id: Option<String>,
    pub org_id: String,
    /// Infisical sets `roleId` only for custom roles; built-in roles are named by `role` alone.
    pub role_id: Option<String>,
    pub project_favorites: Option<Vec<String>>,
    pub is_active: bool,
    pub last_invited_at: Option<String>,
    pub last_login_auth_method: Option<String>,
    pub last_login_time: Option<String>,
}

impl From<Membership> for OrgMembership {
    fn from(m: Membership) -> Self {
        let built_in = BUILT_IN_ROLES.iter().any(|(k, _)| *k == m.role_key);
        OrgMembership {
            id: m.id.to_string(),
            status: m.status.as_str(),
            invite_email: m.invite_email,
            created_at: iso(m.created_at),
            updated_at: iso(m.updated_at),
            user_id: m.user_id.map(|u| u.to_string()),
            org_id: m.organization_id.to_string(),
            role_id: (!built_in).then(|| m.role_id.to_string()),
            role: m.role_key,
            project_favorites: m.project_favorites,
            is_active: m.is_active,
            last_invited_at: m.last_invited_at.map(iso),
            last_login_auth_method: m.last_login_auth_method,
            last_login_time: m.last_login_time.map(iso),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipUser {
    pub id: String,
    pub username: String,
    pub email: String,
    /// roster users are provisioned by an administrator, who vouches for the address.
    pub is_email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// roster keeps no end-to-end encryption keys.
    pub public_key: Option<String>,
}

/// A membership with its user, for the list and get endpoints.
#[derive(Serialize)]
pub struct OrgMembershipWithUser {
    #[serde(flatten)]
    pub membership: OrgMembership,
    pub user: Option<MembershipUser>,
}

impl From<MemberView> for OrgMembershipWithUser {
    fn from(v: MemberView) -> Self {
        OrgMembershipWithUser {
            membership: v.membership.into(),
            user: v.user.map(|u| MembershipUser {
                id: u.id.to_string(),
                username: u.username.unwrap_or_else(|| u.email.clone()),
                email: u.email,
                is_email_verified: true,
                first_name: u.first_name,
                last_name: u.last_name,
                public_key: None,
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BulkDelete {
    pub membership_ids: Vec<IdText<MembershipId>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataEntry {
    pub key: String,
    pub value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateOrgMembership {
    pub role: Option<String>,
    pub is_active: Option<bool>,
    /// Stored as the membership's public metadata, `{key: value}`.
    pub metadata: Option<Vec<MetadataEntry>>,
}

/// A project identity membership as the delete endpoint returns it (no other field).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityMembership {
    pub id: String,
    pub project_id: String,
    pub identity_id: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&IdentityProjectMembership> for IdentityMembership {
    fn from(m: &IdentityProjectMembership) -> Self {
        IdentityMembership {
            id: m.id.to_string(),
            project_id: m.project_id.to_string(),
            identity_id: m.identity_id.to_string(),
            created_at: iso(m.created_at),
            updated_at: iso(m.updated_at),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipRole {
    pub id: String,
    pub role: String,
    pub custom_role_id: Option<String>,
    pub custom_role_name: Option<String>,
    pub custom_role_slug: Option<String>,
    pub is_temporary: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&IdentityProjectMembership> for MembershipRole {
    fn from(m: &IdentityProjectMembership) -> Self {
        MembershipRole {
            id: m.id.to_string(),
            role: m.role.clone(),
            custom_role_id: None,
            custom_role_name: None,
            custom_role_slug: None,
            is_temporary: false,
            created_at: iso(m.created_at),
            updated_at: iso(m.updated_at),
        }
    }
}

/// A project identity membership with its role, for the get, create and list endpoints.
#[derive(Serialize)]
pub struct IdentityMembershipWithRoles {
    #[serde(flatten)]
    pub membership: IdentityMembership,
    pub roles: Vec<MembershipRole>,
}

impl From<IdentityProjectMembership> for IdentityMembershipWithRoles {
    fn from(m: IdentityProjectMembership) -> Self {
        IdentityMembershipWithRoles {
            membership: (&m).into(),
            roles: vec![(&m).into()],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleRequest {
    pub role: String,
    #[serde(default)]
    pub is_temporary: bool,
}

impl RoleRequest {
    /// roster holds one role per membership and no temporary access.
    pub fn single(roles: Vec<RoleRequest>) -> Result<String, CoreError> {
        let mut it = roles.into_iter();
        match (it.next(), it.next()) {
            (Some(r), None) if !r.is_temporary => Ok(r.role),
            (Some(r), None) if r.is_temporary => Err(CoreError::invalid(
                "roles",
                "temporary project roles are not supported",
            )),
            _ => Err(CoreError::invalid("roles", "give exactly one role")),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentityMembership {
    pub role: Option<String>,
    pub roles: Option<Vec<RoleRequest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateIdentityMembership {
    pub roles: Vec<RoleRequest>,
}

/// `?offset=&limit=` (limit 1 to 20,000, default 100).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetQuery {
    pub offset: Option<u64>,
    pub limit: Option<u32>,
}

impl OffsetQuery {
    pub fn page(&self) -> Page {
        Page {
            after: None,
            offset: self.offset.unwrap_or(0),
            limit: self.limit.unwrap_or(100),
            descending: false,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityRef {
    pub id: String,
    pub name: String,
    pub auth_methods: Vec<String>,
}

/// An identity's organization membership (roster keeps it on the identity itself, so its id is
/// the identity's).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgIdentityMembership {
    pub id: String,
    pub identity_id: String,
    pub org_id: String,
    pub role: String,
    pub role_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub identity: IdentityRef,
}

impl From<Identity> for OrgIdentityMembership {
    fn from(i: Identity) -> Self {
        let built_in = BUILT_IN_ROLES.iter().any(|(k, _)| *k == i.role_key);
        OrgIdentityMembership {
            id: i.id.to_string(),
            identity_id: i.id.to_string(),
            org_id: i.organization_id.to_string(),
            role_id: (!built_in).then(|| i.role_id.to_string()),
            role: i.role_key,
            created_at: iso(i.created_at),
            updated_at: iso(i.updated_at),
            identity: IdentityRef {
                id: i.id.to_string(),
                name: i.name,
                auth_methods: Vec::new(),
            },
        }
    }
}
