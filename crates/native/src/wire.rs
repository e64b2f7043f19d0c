//! Wire types of the native API: what goes over HTTP, apart from the domain model, so that the
//! model can change without changing the contract. Timestamps are RFC 3339 strings with
//! milliseconds; ids are hyphenated UUIDs.

use roster_core::ids::{IdText, MembershipId};
use roster_core::model::*;
use roster_core::{CoreError, PermissionSet, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::idempotency::ShownOnce;
use roster_http::json_parts::JsonParts;

fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

fn opt_time(t: Option<Timestamp>) -> Option<String> {
    t.map(Timestamp::to_rfc3339)
}

/// One page of a list, and the cursor of the next (`null` on the last page).
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    pub fn from_paged<D>(p: Paged<D>, f: impl Fn(D) -> T) -> Self {
        List {
            data: p.items.into_iter().map(f).collect(),
            next_cursor: p.next_after.map(|u| u.to_string()),
        }
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// At most this many items (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, CoreError> {
        let after = match &self.cursor {
            Some(c) => Some(
                roster_core::ids::parse_uuid(c, "cursor")
                    .map_err(|_| CoreError::invalid("cursor", "invalid cursor"))?,
            ),
            None => None,
        };
        let limit = self.limit.unwrap_or(Page::DEFAULT_LIMIT);
        if !(1..=500).contains(&limit) {
            return Err(CoreError::invalid(
                "limit",
                "limit must be between 1 and 500",
            ));
        }
        Ok(Page {
            after,
            offset: 0,
            limit,
            descending: false,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrganizationOut {
    pub id: String,
    pub name: String,
    pub slug: String,
    /// 0 means unlimited.
    pub max_allowed_memberships: i64,
    pub admin_delete_enabled: bool,
    pub public_metadata: Value,
    pub private_metadata: Value,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Organization> for OrganizationOut {
    fn from(o: Organization) -> Self {
        OrganizationOut {
            id: o.id.to_string(),
            name: o.name,
            slug: o.slug,
            max_allowed_memberships: o.max_allowed_memberships,
            admin_delete_enabled: o.admin_delete_enabled,
            public_metadata: Value::Object(o.public_metadata),
            private_metadata: Value::Object(o.private_metadata),
            created_by: o.created_by.map(|u| u.to_string()),
            created_at: time(o.created_at),
            updated_at: time(o.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    pub name: String,
    pub slug: Option<String>,
    pub max_allowed_memberships: Option<i64>,
    pub admin_delete_enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<Metadata>,
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<Metadata>,
    /// The user who becomes the first admin: required with an instance admin key (an
    /// organization always has an admin); a user is always the creator of what they create.
    pub created_by: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub max_allowed_memberships: Option<i64>,
    pub admin_delete_enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<Metadata>,
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<Metadata>,
}

#[derive(Serialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        UserOut {
            id: u.id.to_string(),
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            username: u.username,
            image_url: u.image_url,
            created_at: time(u.created_at),
            updated_at: time(u.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
}

/// A field given as `null` is cleared; an absent field is left as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, deserialize_with = "nullable")]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub username: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub image_url: Option<Option<String>>,
}

/// Tells `null` (Some(None)) from absent (None).
pub(crate) fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct RoleOut {
    pub id: String,
    pub organization_id: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<&'static str>,
    pub built_in: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Role> for RoleOut {
    fn from(r: Role) -> Self {
        RoleOut {
            id: r.id.to_string(),
            organization_id: r.organization_id.to_string(),
            key: r.key,
            name: r.name,
            description: r.description,
            permissions: r.permissions.keys(),
            built_in: r.built_in,
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    pub permissions: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct MembershipOut {
    pub id: String,
    pub organization_id: String,
    pub user_id: Option<String>,
    pub invite_email: Option<String>,
    pub role: String,
    pub role_id: String,
    /// `invited` or `accepted`.
    pub status: &'static str,
    pub is_active: bool,
    pub last_invited_at: Option<String>,
    pub last_login_auth_method: Option<String>,
    pub last_login_time: Option<String>,
    pub project_favorites: Option<Vec<String>>,
    pub public_metadata: Value,
    pub private_metadata: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Membership> for MembershipOut {
    fn from(m: Membership) -> Self {
        MembershipOut {
            id: m.id.to_string(),
            organization_id: m.organization_id.to_string(),
            user_id: m.user_id.map(|u| u.to_string()),
            invite_email: m.invite_email,
            role: m.role_key,
            role_id: m.role_id.to_string(),
            status: m.status.as_str(),
            is_active: m.is_active,
            last_invited_at: opt_time(m.last_invited_at),
            last_login_auth_method: m.last_login_auth_method,
            last_login_time: opt_time(m.last_login_time),
            project_favorites: m.project_favorites,
            public_metadata: Value::Object(m.public_metadata),
            private_metadata: Value::Object(m.private_metadata),
            created_at: time(m.created_at),
            updated_at: time(m.updated_at),
        }
    }
}

/// A membership in a list, with its user's email and name (the invited address and no name
/// while it is an invitation), so that a leaver is found by email in one request.
#[derive(Serialize, ToSchema)]
pub struct MemberOut {
    #[serde(flatten)]
    pub membership: MembershipOut,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl From<MemberView> for MemberOut {
    fn from(v: MemberView) -> Self {
        let (email, first_name, last_name) = match v.user {
            Some(u) => (Some(u.email), u.first_name, u.last_name),
            None => (v.membership.invite_email.clone(), None, None),
        };
        MemberOut {
            membership: v.membership.into(),
            email,
            first_name,
            last_name,
        }
    }
}

/// Add a user (`user_id`) or invite an address (`email`): exactly one of the two.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMembership {
    pub user_id: Option<String>,
    pub email: Option<String>,
    /// A role key of the organization (default `member`).
    pub role: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<Metadata>,
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<Metadata>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMembership {
    pub role: Option<String>,
    pub is_active: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<Metadata>,
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<Metadata>,
}

/// Credential deletion on removal (only for removing others).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RemoveOptions {
    #[serde(default)]
    pub delete_passwords: bool,
    #[serde(default)]
    pub delete_service_tokens: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRemove {
    /// 1 to 100,000 membership ids of the organization; duplicates count once.
    #[schema(value_type = Vec<String>)]
    pub membership_ids: Vec<IdText<MembershipId>>,
    #[serde(default)]
    pub delete_passwords: bool,
    #[serde(default)]
    pub delete_service_tokens: bool,
}

/// What a removal did (or, for a dry run, would do).
#[derive(Serialize, ToSchema)]
pub struct RemovalOut {
    /// The removed memberships, as they were.
    pub removed: Vec<MembershipOut>,
    pub project_memberships_removed: u64,
    pub passwords_deleted: u64,
    pub service_tokens_deleted: u64,
    /// What went with the memberships, by id.
    pub cascade: CascadeOut,
    /// `true` when nothing was changed: the answer says what the removal would do.
    pub dry_run: bool,
}

/// What a removal deleted with a membership: its member's project memberships, and on request
/// their passwords and the service tokens they created.
#[derive(Serialize, ToSchema)]
pub struct CascadeOut {
    pub project_memberships: Vec<CascadedProjectMembershipOut>,
    pub passwords: Vec<String>,
    pub service_tokens: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CascadedProjectMembershipOut {
    pub id: String,
    pub project_id: String,
    /// Its role in the project.
    pub role: String,
}

impl From<Cascade> for CascadeOut {
    fn from(c: Cascade) -> Self {
        CascadeOut {
            project_memberships: c
                .project_memberships
                .iter()
                .map(|p| CascadedProjectMembershipOut {
                    id: p.id.to_string(),
                    project_id: p.project_id.to_string(),
                    role: p.role.clone(),
                })
                .collect(),
            passwords: c.passwords.iter().map(|p| p.id.to_string()).collect(),
            service_tokens: c.service_tokens.iter().map(|t| t.id.to_string()).collect(),
        }
    }
}

impl RemovalOut {
    /// The same JSON as `RemovalOut`, written a part at a time (`roster_http::json_parts`): a bulk
    /// removal's answer can hold 100,000 memberships.
    pub fn written_in_parts(
        r: Removal,
        dry_run: bool,
    ) -> JsonParts<
        roster_core::removed::IntoIter,
        impl FnMut(Membership) -> MembershipOut + Send + Unpin + 'static,
    > {
        let counts = (
            r.cascade.project_memberships.len(),
            r.cascade.passwords.len(),
            r.cascade.service_tokens.len(),
        );
        // A cascade's ids serialize whatever they are.
        let cascade = serde_json::to_string(&CascadeOut::from(r.cascade)).unwrap_or_default();
        let tail = format!(
            r#"],"project_memberships_removed":{},"passwords_deleted":{},"service_tokens_deleted":{},"cascade":{cascade},"dry_run":{dry_run}}}"#,
            counts.0, counts.1, counts.2
        );
        JsonParts::new(
            &br#"{"removed":["#[..],
            r.removed,
            MembershipOut::from,
            tail,
        )
    }
}

impl RemovalOut {
    pub fn new(r: Removal, dry_run: bool) -> Self {
        RemovalOut {
            removed: r.removed.into_iter().map(Into::into).collect(),
            project_memberships_removed: r.cascade.project_memberships.len() as u64,
            passwords_deleted: r.cascade.passwords.len() as u64,
            service_tokens_deleted: r.cascade.service_tokens.len() as u64,
            cascade: r.cascade.into(),
            dry_run,
        }
    }
}

/// What removing an identity from a project answers: the membership removed, or for a dry run
/// a receipt as the membership removals give.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum IdentityRemovalOut {
    Removed(IdentityProjectMembershipOut),
    DryRun(IdentityRemovalReceipt),
}

/// A dry run's answer: what would be removed, and what would go with it (nothing, for an
/// identity's project membership).
#[derive(Serialize, ToSchema)]
pub struct IdentityRemovalReceipt {
    pub dry_run: bool,
    pub removed: Vec<IdentityProjectMembershipOut>,
    pub cascade: CascadeOut,
}

/// What offboarding a person did, or for a dry run would do.
#[derive(Serialize, ToSchema)]
pub struct OffboardingOut {
    pub user_id: String,
    /// Each organization the user was a member of, with its removal's receipt.
    pub organizations: Vec<OrganizationRemovalOut>,
    /// The user's own tokens revoked (every one, whatever it reached).
    pub tokens_revoked: u64,
    pub dry_run: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OrganizationRemovalOut {
    pub organization_id: String,
    pub removed: Vec<MembershipOut>,
    pub cascade: CascadeOut,
}

impl OffboardingOut {
    pub fn new(o: roster_core::service::Offboarding, dry_run: bool) -> Self {
        OffboardingOut {
            user_id: o.user.to_string(),
            organizations: o
                .organizations
                .into_iter()
                .map(|(org, r)| OrganizationRemovalOut {
                    organization_id: org.to_string(),
                    removed: r.removed.into_iter().map(Into::into).collect(),
                    cascade: r.cascade.into(),
                })
                .collect(),
            tokens_revoked: o.tokens_revoked as u64,
            dry_run,
        }
    }
}

/// `?dry_run=true` of the removal routes.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DryRunQuery {
    /// `true`: run the whole removal (authentication, permission, every guard, the cascade)
    /// and roll it back; the answer is what it would do, or the error it would get, and
    /// nothing changes.
    pub dry_run: Option<bool>,
}

impl DryRunQuery {
    pub fn asked(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProjectOut {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub slug: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Project> for ProjectOut {
    fn from(p: Project) -> Self {
        ProjectOut {
            id: p.id.to_string(),
            organization_id: p.organization_id.to_string(),
            name: p.name,
            slug: p.slug,
            created_at: time(p.created_at),
            updated_at: time(p.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
    pub slug: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProjectMembershipOut {
    pub id: String,
    pub organization_id: String,
    pub project_id: String,
    pub user_id: String,
    pub role: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<ProjectMembership> for ProjectMembershipOut {
    fn from(m: ProjectMembership) -> Self {
        ProjectMembershipOut {
            id: m.id.to_string(),
            organization_id: m.organization_id.to_string(),
            project_id: m.project_id.to_string(),
            user_id: m.user_id.to_string(),
            role: m.role,
            created_at: time(m.created_at),
            updated_at: time(m.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectMembership {
    pub user_id: String,
    /// `admin`, `member` (default), `viewer` or `no-access`.
    pub role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IdentityOut {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub role: String,
    pub role_id: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Identity> for IdentityOut {
    fn from(i: Identity) -> Self {
        IdentityOut {
            id: i.id.to_string(),
            organization_id: i.organization_id.to_string(),
            name: i.name,
            role: i.role_key,
            role_id: i.role_id.to_string(),
            created_at: time(i.created_at),
            updated_at: time(i.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentity {
    pub name: String,
    /// An organization role key (default `no-access`).
    pub role: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIdentity {
    pub name: Option<String>,
    pub role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IdentityProjectMembershipOut {
    pub id: String,
    pub organization_id: String,
    pub project_id: String,
    pub identity_id: String,
    pub role: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<IdentityProjectMembership> for IdentityProjectMembershipOut {
    fn from(m: IdentityProjectMembership) -> Self {
        IdentityProjectMembershipOut {
            id: m.id.to_string(),
            organization_id: m.organization_id.to_string(),
            project_id: m.project_id.to_string(),
            identity_id: m.identity_id.to_string(),
            role: m.role,
            created_at: time(m.created_at),
            updated_at: time(m.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentityProjectMembership {
    pub identity_id: String,
    /// `admin`, `member`, `viewer` or `no-access` (default).
    pub role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    pub id: String,
    /// `user`, `identity`, `service` or `admin`.
    pub kind: &'static str,
    pub name: String,
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    pub identity_id: Option<String>,
    pub created_by: Option<String>,
    /// The instance admin key that created it, when one did.
    pub created_by_key: Option<String>,
    pub permissions: Vec<&'static str>,
    pub expires_at: Option<String>,
    pub created_at: String,
}

impl From<Token> for TokenOut {
    fn from(t: Token) -> Self {
        TokenOut {
            id: t.id.to_string(),
            kind: t.kind.as_str(),
            name: t.name,
            organization_id: t.organization_id.map(|o| o.to_string()),
            user_id: t.user_id.map(|u| u.to_string()),
            identity_id: t.identity_id.map(|i| i.to_string()),
            created_by: t.created_by.map(|u| u.to_string()),
            created_by_key: t.created_by_key.map(|k| k.to_string()),
            permissions: if t.kind == TokenKind::Service {
                t.permissions.keys()
            } else {
                PermissionSet::EMPTY.keys()
            },
            expires_at: opt_time(t.expires_at),
            created_at: time(t.created_at),
        }
    }
}

/// A token as created: the only response that ever carries its secret.
#[derive(Serialize, ToSchema)]
pub struct CreatedTokenOut {
    #[serde(flatten)]
    pub token: TokenOut,
    /// `Authorization: Bearer <token>`: the name `roster bootstrap` and `roster admin-key`
    /// print it under too.
    #[serde(rename = "token")]
    pub bearer: String,
    /// The same as `token`, under its earlier name.
    #[schema(deprecated)]
    pub token_value: String,
    /// With the id, `Authorization: <id>:<token_secret>`.
    pub token_secret: String,
}

impl CreatedTokenOut {
    /// The fields a replayed answer has null (`crate::idempotency`).
    pub const SHOWN_ONCE: ShownOnce = ShownOnce(&["token", "token_value", "token_secret"]);
}

impl From<roster_core::service::CreatedToken> for CreatedTokenOut {
    fn from(c: roster_core::service::CreatedToken) -> Self {
        let bearer = c.bearer();
        let token_secret = c.secret.expose().to_owned();
        CreatedTokenOut {
            token: c.token.into(),
            token_value: bearer.clone(),
            bearer,
            token_secret,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// Lifetime in seconds (default: no expiry).
    pub ttl: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceToken {
    pub name: Option<String>,
    /// Permission keys, e.g. `members:read`; only ones the creator holds.
    pub permissions: Vec<String>,
    pub ttl: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordOut {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub name: String,
    pub created_at: String,
}

impl From<Password> for PasswordOut {
    fn from(p: Password) -> Self {
        PasswordOut {
            id: p.id.to_string(),
            organization_id: p.organization_id.to_string(),
            user_id: p.user_id.to_string(),
            name: p.name,
            created_at: time(p.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedPasswordOut {
    #[serde(flatten)]
    pub password: PasswordOut,
    /// Shown once.
    pub plain_text: String,
}

impl CreatedPasswordOut {
    /// The field a replayed answer has null (`crate::idempotency`).
    pub const SHOWN_ONCE: ShownOnce = ShownOnce(&["plain_text"]);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePassword {
    pub name: String,
    /// The member who owns it (default: the caller).
    pub user_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventOut {
    pub id: String,
    pub organization_id: Option<String>,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub request_id: Option<String>,
    pub details: Value,
    pub created_at: String,
}

/// `?limit=&cursor=&order=` and the filters of an audit log.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many events (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (in the same order).
    pub cursor: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    #[param(inline)]
    pub order: Option<Order>,
    /// Only events of this action (`membership.removed`, …).
    pub action: Option<String>,
    /// Only events by this actor (the `actor_id` events carry).
    pub actor_id: Option<String>,
    /// Only events about this target (the `target_id` events carry).
    pub target_id: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
}

/// `?limit=&cursor=&order=` of a list that reads both ways.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrderedPageQuery {
    /// At most this many items (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (in the same order).
    pub cursor: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    #[param(inline)]
    pub order: Option<Order>,
}

impl OrderedPageQuery {
    pub fn page(&self) -> Result<Page, CoreError> {
        let mut page = PageQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .page()?;
        page.descending = matches!(self.order, Some(Order::Desc));
        Ok(page)
    }
}

/// The order of a page: oldest first or newest first.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    Desc,
}

impl AuditQuery {
    /// The page and the filter this query asks for.
    pub fn parse(self) -> Result<(Page, AuditFilter), CoreError> {
        let mut page = PageQuery {
            limit: self.limit,
            cursor: self.cursor,
        }
        .page()?;
        page.descending = matches!(self.order, Some(Order::Desc));
        let time = |field: &'static str, v: Option<String>| {
            v.map(|v| {
                Timestamp::parse_rfc3339(&v).ok_or_else(|| {
                    CoreError::invalid(field, format!("{field} must be an RFC 3339 time"))
                })
            })
            .transpose()
        };
        let filter = AuditFilter {
            action: self.action,
            actor_id: self.actor_id,
            target_id: self.target_id,
            since: time("since", self.since)?,
            until: time("until", self.until)?,
        };
        Ok((page, filter))
    }
}

impl From<AuditEvent> for AuditEventOut {
    fn from(e: AuditEvent) -> Self {
        AuditEventOut {
            id: e.id.to_string(),
            organization_id: e.organization_id.map(|o| o.to_string()),
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            request_id: e.request_id,
            details: e.details,
            created_at: time(e.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;
    use roster_core::ids::*;

    fn member(n: u16) -> Membership {
        let at = Timestamp(1_700_000_000_000 + i64::from(n));
        let id = |kind: u128| uuid::Uuid::from_u128((kind << 64) | u128::from(n));
        Membership {
            id: roster_core::ids::MembershipId(id(1)),
            organization_id: roster_core::ids::OrganizationId(id(0)),
            user_id: Some(roster_core::ids::UserId(id(2))),
            invite_email: None,
            role_id: roster_core::ids::RoleId(id(3)),
            role_key: "member".into(),
            status: MembershipStatus::Accepted,
            is_active: true,
            last_invited_at: None,
            last_login_auth_method: None,
            // Half of them with a login of their own: packed both ways (`Removed`).
            last_login_time: (n % 2 == 0).then_some(at),
            project_favorites: None,
            public_metadata: Metadata::new(),
            private_metadata: Metadata::new(),
            created_at: at,
            updated_at: at,
            external_id: None,
            directory_user_name: None,
        }
    }

    #[tokio::test]
    async fn a_removal_written_in_parts_is_the_same_json_as_removal_out() {
        // None, a few (sent whole), and more than a part (sent in parts).
        for members in [0u16, 2, 1_100] {
            let removal = Removal {
                removed: (0..members).map(member).collect(),
                cascade: Cascade {
                    project_memberships: vec![
                        CascadedProjectMembership {
                            id: ProjectMembershipId::new(),
                            project_id: ProjectId::new(),
                            user_id: UserId::new(),
                            role: "member".into(),
                        };
                        3
                    ],
                    passwords: vec![
                        OwnedBy {
                            id: PasswordId::new(),
                            user_id: UserId::new(),
                        };
                        4
                    ],
                    service_tokens: vec![
                        OwnedBy {
                            id: TokenId::new(),
                            user_id: UserId::new(),
                        };
                        5
                    ],
                },
                context: None,
            };
            let dry_run = members == 2;
            let whole = serde_json::to_value(RemovalOut::new(removal.clone(), dry_run)).unwrap();
            let body = RemovalOut::written_in_parts(removal, dry_run)
                .into_response()
                .into_body();
            let parts = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let parts: Value = serde_json::from_slice(&parts).unwrap();
            assert_eq!(parts, whole, "{members} memberships");
        }
    }
}
