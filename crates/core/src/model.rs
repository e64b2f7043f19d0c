//! The domain model of DESIGN.md, as plain data. Parsing of user input into these types lives in
//! the use-cases (`service`), storage in the stores, wire shapes in each mount.

use serde_json::{Map, Value};

use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::permissions::{Permission, PermissionSet};
use crate::timestamp::Timestamp;

/// A JSON object of free-form metadata.
pub type Metadata = Map<String, Value>;

/// Private metadata is for admins and backends, as in Clerk: those who may change what it
/// describes. Anyone else gets the object without it (an empty object, never an error).
fn private_metadata_as_seen(held: PermissionSet, writes: Permission, private: &mut Metadata) {
    if !held.contains(writes) {
        private.clear();
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub slug: String,
    /// 0 means unlimited.
    pub max_allowed_memberships: i64,
    pub admin_delete_enabled: bool,
    pub public_metadata: Metadata,
    pub private_metadata: Metadata,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Organization {
    /// The organization as a caller holding `held` may see it (`private_metadata_as_seen`).
    pub fn as_seen_with(mut self, held: PermissionSet) -> Self {
        private_metadata_as_seen(
            held,
            Permission::OrganizationWrite,
            &mut self.private_metadata,
        );
        self
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The keys of the roles every organization has from its creation.
pub const BUILT_IN_ROLES: [(&str, &str); 3] = [
    (ROLE_ADMIN, "Admin"),
    (ROLE_MEMBER, "Member"),
    (ROLE_NO_ACCESS, "No access"),
];
pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_MEMBER: &str = "member";
pub const ROLE_NO_ACCESS: &str = "no-access";

#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    pub id: RoleId,
    pub organization_id: OrganizationId,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: PermissionSet,
    pub built_in: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipStatus {
    Invited,
    Accepted,
}

impl MembershipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipStatus::Invited => "invited",
            MembershipStatus::Accepted => "accepted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invited" => Some(Self::Invited),
            "accepted" => Some(Self::Accepted),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Membership {
    pub id: MembershipId,
    pub organization_id: OrganizationId,
    /// Absent while the membership is only an invitation by email.
    pub user_id: Option<UserId>,
    pub invite_email: Option<String>,
    pub role_id: RoleId,
    /// The role's key, loaded with the membership because every mount renders it.
    pub role_key: String,
    pub status: MembershipStatus,
    pub is_active: bool,
    pub last_invited_at: Option<Timestamp>,
    pub last_login_auth_method: Option<String>,
    pub last_login_time: Option<Timestamp>,
    pub project_favorites: Option<Vec<String>>,
    pub public_metadata: Metadata,
    pub private_metadata: Metadata,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The member's id in an identity provider's directory (SCIM's `externalId`), unique in
    /// the organization where set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The member's userName in that directory (SCIM's `userName`) where it is not their
    /// email; unique in the organization, whatever its case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_user_name: Option<String>,
}

impl Membership {
    /// The membership as a caller holding `held` may see it (`private_metadata_as_seen`).
    pub fn as_seen_with(mut self, held: PermissionSet) -> Self {
        private_metadata_as_seen(held, Permission::MembersWrite, &mut self.private_metadata);
        self
    }

    /// Counts towards "the organization keeps at least one active admin".
    pub fn is_active_admin(&self) -> bool {
        Membership::counts_as_active_admin(
            self.user_id,
            &self.role_key,
            self.status,
            self.is_active,
        )
    }

    /// `is_active_admin` from the fields it reads (for memberships held packed).
    pub fn counts_as_active_admin(
        user: Option<UserId>,
        role_key: &str,
        status: MembershipStatus,
        is_active: bool,
    ) -> bool {
        user.is_some()
            && role_key == ROLE_ADMIN
            && status == MembershipStatus::Accepted
            && is_active
    }
}

/// Keys of the roles a project membership may hold.
pub const PROJECT_ROLES: [&str; 4] = ["admin", "member", "viewer", "no-access"];

#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub id: ProjectId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub slug: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The project's id in an identity provider's directory (a SCIM Group's `externalId`),
    /// unique in the organization where set.
    pub external_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProjectMembership {
    pub id: ProjectMembershipId,
    pub organization_id: OrganizationId,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub role: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A machine identity; its organization membership is its `role_id` in its organization.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub id: IdentityId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub role_id: RoleId,
    pub role_key: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdentityProjectMembership {
    pub id: IdentityProjectMembershipId,
    pub organization_id: OrganizationId,
    pub project_id: ProjectId,
    pub identity_id: IdentityId,
    pub role: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    InstanceAdmin,
    User,
    Identity,
    Service,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::InstanceAdmin => "admin",
            TokenKind::User => "user",
            TokenKind::Identity => "identity",
            TokenKind::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::InstanceAdmin),
            "user" => Some(Self::User),
            "identity" => Some(Self::Identity),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

/// An API token as stored: the secret only as its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub id: TokenId,
    pub kind: TokenKind,
    /// Set for identity and service tokens (the organization they act in).
    pub organization_id: Option<OrganizationId>,
    /// The owner of a user token.
    pub user_id: Option<UserId>,
    /// The owner of an identity token.
    pub identity_id: Option<IdentityId>,
    /// Who created it (the actor a service token acts on behalf of).
    pub created_by: Option<UserId>,
    /// The instance admin key that created it, when one did.
    pub created_by_key: Option<TokenId>,
    pub name: String,
    pub secret_hash: Vec<u8>,
    /// A service token's explicit accesses.
    pub permissions: PermissionSet,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A member-owned named secret (PlanetScale's "passwords").
#[derive(Clone, Debug, PartialEq)]
pub struct Password {
    pub id: PasswordId,
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub organization_id: Option<OrganizationId>,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub request_id: Option<String>,
    pub details: Value,
    pub created_at: Timestamp,
}

/// Which audit events a list shows (every field: any). Each names one value exactly; the time
/// range is `since` inclusive to `until` exclusive.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// The actor's id as events record it (a user's, an identity's, or a token's id).
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// A page of rows in id order (which follows creation order): after the keyset cursor `after`
/// (the native API's way, equally fast at any depth), or skipping `offset` rows (for vendor
/// dialects whose clients page by offset), at most `limit`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub after: Option<uuid::Uuid>,
    pub offset: u64,
    pub limit: u32,
    /// Newest first (and `after` then means "older than").
    pub descending: bool,
}

impl Page {
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The most rows one page may hold on any mount (Infisical allows 20,000).
    pub const MAX_LIMIT: u32 = 20_000;
}

/// An organization membership with its user (absent for an invitation), as mounts render it.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberView {
    pub membership: Membership,
    pub user: Option<User>,
}

/// One page of results and the cursor of the next one, if there is more.
#[derive(Clone, Debug, PartialEq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_after: Option<uuid::Uuid>,
}

/// Filters of the membership list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MembershipFilter {
    /// Only memberships holding one of these role keys (none: any).
    pub role_keys: Vec<String>,
    /// Only these memberships (none: any).
    pub membership_ids: Vec<MembershipId>,
    /// Only these users' memberships (none: any).
    pub user_ids: Vec<UserId>,
    /// Only memberships of users with one of these email addresses (none: any).
    pub emails: Vec<String>,
    /// Only memberships of users (no pending invitations).
    pub users_only: bool,
    /// Only members whose email or name contains this text (case-insensitive).
    pub query: Option<String>,
    /// Only memberships with one of these external ids (none: any).
    pub external_ids: Vec<String>,
    /// Only memberships whose directory userName (`Membership::directory_user_name`, or else
    /// the user's email) is one of these, whatever its case (none: any).
    pub directory_user_names: Vec<String>,
}

/// Filters of the organization list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrganizationFilter {
    /// Only organizations where this user holds an accepted membership.
    pub member: Option<UserId>,
    /// Only this organization.
    pub only: Option<OrganizationId>,
    /// Only organizations whose name or slug contains this text (case-insensitive).
    pub query: Option<String>,
}

/// Filters of the user list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserFilter {
    /// Only users with one of these email addresses (none: any).
    pub emails: Vec<String>,
    /// Only users whose email, name or username contains this text (case-insensitive).
    pub query: Option<String>,
}

/// How an update treats metadata: replace it whole, or deep-merge into it (a `null` value
/// removes the key).
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataUpdate {
    Replace(Metadata),
    Merge(Metadata),
}

impl MetadataUpdate {
    pub fn apply(self, current: &mut Metadata) {
        match self {
            MetadataUpdate::Replace(m) => *current = m,
            MetadataUpdate::Merge(m) => merge(current, m),
        }
    }

    /// `apply`, refused (and `current` left as it was) if the result is over
    /// `MAX_METADATA_BYTES`.
    pub fn apply_within_limit(self, field: &'static str, current: &mut Metadata) -> CoreResult<()> {
        let mut next = current.clone();
        self.apply(&mut next);
        *current = within_metadata_limit(field, next)?;
        Ok(())
    }
}

/// The most one metadata object may take, as compact JSON: Clerk's limit per field. Metadata
/// comes back in every list answer, so an unbounded one makes every page heavy.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// `metadata` as it is, if its JSON is at most `MAX_METADATA_BYTES`; else a 400 naming `field`.
pub fn within_metadata_limit(field: &'static str, metadata: Metadata) -> CoreResult<Metadata> {
    let size = serde_json::to_vec(&metadata).map_or(usize::MAX, |json| json.len());
    if size > MAX_METADATA_BYTES {
        return Err(CoreError::invalid(
            field,
            format!(
                "{field} is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES} bytes (8 KiB)"
            ),
        ));
    }
    Ok(metadata)
}

fn merge(into: &mut Metadata, patch: Metadata) {
    for (k, v) in patch {
        match (into.get_mut(&k), v) {
            (_, Value::Null) => {
                into.remove(&k);
            }
            (Some(Value::Object(existing)), Value::Object(nested)) => merge(existing, nested),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// What a removal also deletes, on request (PlanetScale's flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemovalOptions {
    pub delete_passwords: bool,
    pub delete_service_tokens: bool,
}

/// How a removal names its target: by membership id (native, Infisical) or by user id
/// (Clerk, PlanetScale).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberRef {
    Membership(MembershipId),
    User(UserId),
}

impl MemberRef {
    /// Membership ids as removal targets, in a vector allocated once (a bulk removal names up
    /// to 100,000: collecting into a `Result` would double its way there); the first malformed
    /// id is the error.
    pub fn memberships(ids: Vec<IdText<MembershipId>>) -> Result<Vec<MemberRef>, crate::CoreError> {
        let mut targets = Vec::with_capacity(ids.len());
        for id in ids {
            targets.push(MemberRef::Membership(id.parse()?));
        }
        Ok(targets)
    }
}

pub use crate::removed::Removed;

/// The outcome of a removal: the memberships as they were, and what the removal cascaded to.
#[derive(Clone, Debug, PartialEq)]
pub struct Removal {
    pub removed: Removed,
    pub cascade: Cascade,
    /// What a renderer shows around the removed memberships, when the request asked for it
    /// (read in the removal's own transaction, after its writes).
    pub context: Option<RemovalContext>,
}

/// What a removal took with the memberships: the removed members' project memberships, and on
/// request their passwords and the service tokens they created. Each part is sorted by user,
/// so that one member's share is found without an index (`Cascade::of`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cascade {
    pub project_memberships: Vec<CascadedProjectMembership>,
    pub passwords: Vec<OwnedBy<PasswordId>>,
    pub service_tokens: Vec<OwnedBy<TokenId>>,
}

/// A project membership a removal deleted with its member's membership.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CascadedProjectMembership {
    pub id: ProjectMembershipId,
    pub project_id: ProjectId,
    pub user_id: UserId,
    /// Its role in the project (what a reinstatement gives back).
    #[serde(default)]
    pub role: String,
}

/// A member a removal removed, kept for the retention window (`former_members`): the
/// membership as it was, its project memberships, what credentials went with it (by id: a
/// secret is never kept), who removed it, when, and until when the record is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct FormerMember {
    pub membership: Membership,
    pub project_memberships: Vec<CascadedProjectMembership>,
    pub passwords: Vec<PasswordId>,
    pub service_tokens: Vec<TokenId>,
    pub removed_by: crate::events::EventActor,
    pub request_id: Option<String>,
    pub removed_at: Timestamp,
    pub expires_at: Timestamp,
    /// The removal's `membership.removed` event, written beside the record and holding the
    /// same details: the store keeps the record as a reference to it, and the event as long
    /// as the record. `None` for a record written before records named their events.
    pub removal_event: Option<EventId>,
}

/// Which former members a list asks for.
#[derive(Clone, Debug, Default)]
pub struct FormerMemberFilter {
    pub user_id: Option<UserId>,
    /// The user's email or the invitation's address, case-insensitively.
    pub email: Option<String>,
}

/// A credential a removal deleted, and the user it was deleted for (a password's owner, a
/// service token's creator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OwnedBy<I> {
    pub id: I,
    pub user_id: UserId,
}

/// One member's share of a `Cascade`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CascadeOf<'a> {
    pub project_memberships: &'a [CascadedProjectMembership],
    pub passwords: &'a [OwnedBy<PasswordId>],
    pub service_tokens: &'a [OwnedBy<TokenId>],
}

impl CascadeOf<'_> {
    /// This share as a cascade of its own.
    pub fn to_cascade(self) -> Cascade {
        Cascade {
            project_memberships: self.project_memberships.to_vec(),
            passwords: self.passwords.to_vec(),
            service_tokens: self.service_tokens.to_vec(),
        }
    }
}

impl Cascade {
    /// The cascade of rows deleted in any order, sorted by user (and id, so that it reads the
    /// same whichever order the store deleted them in).
    pub fn sorted(
        mut project_memberships: Vec<CascadedProjectMembership>,
        mut passwords: Vec<OwnedBy<PasswordId>>,
        mut service_tokens: Vec<OwnedBy<TokenId>>,
    ) -> Cascade {
        project_memberships.sort_unstable_by_key(|p| (p.user_id, p.id));
        passwords.sort_unstable_by_key(|p| (p.user_id, p.id));
        service_tokens.sort_unstable_by_key(|t| (t.user_id, t.id));
        Cascade {
            project_memberships,
            passwords,
            service_tokens,
        }
    }

    /// What the cascade took of `user`'s.
    pub fn of(&self, user: UserId) -> CascadeOf<'_> {
        CascadeOf {
            project_memberships: users_part(&self.project_memberships, user, |p| p.user_id),
            passwords: users_part(&self.passwords, user, |p| p.user_id),
            service_tokens: users_part(&self.service_tokens, user, |t| t.user_id),
        }
    }

    /// The part of the cascade that belongs to `users` (a request's share of a batch's).
    pub fn of_users(&self, users: impl Iterator<Item = UserId>) -> Cascade {
        let mut part = Cascade::default();
        for user in users {
            let of = self.of(user);
            part.project_memberships
                .extend_from_slice(of.project_memberships);
            part.passwords.extend_from_slice(of.passwords);
            part.service_tokens.extend_from_slice(of.service_tokens);
        }
        Cascade::sorted(
            part.project_memberships,
            part.passwords,
            part.service_tokens,
        )
    }
}

/// The rows of `user` in `rows`, sorted by user.
fn users_part<T>(rows: &[T], user: UserId, user_of: impl Fn(&T) -> UserId) -> &[T] {
    let start = rows.partition_point(|r| user_of(r) < user);
    let end = start + rows[start..].partition_point(|r| user_of(r) == user);
    &rows[start..end]
}

/// The organization as the removal left it (its member count included), the removed members'
/// users, and the organization's roles.
#[derive(Clone, Debug, PartialEq)]
pub struct RemovalContext {
    pub organization: Organization,
    /// The organization's memberships after the removal.
    pub member_count: i64,
    pub users: Vec<User>,
    pub roles: Vec<Role>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_merge_is_deep_and_null_removes_a_key() {
        let Value::Object(mut current) = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}) else {
            unreachable!()
        };
        let Value::Object(patch) = json!({"b": {"c": 20, "d": null}, "e": null, "f": 5}) else {
            unreachable!()
        };
        MetadataUpdate::Merge(patch).apply(&mut current);
        assert_eq!(
            Value::Object(current),
            json!({"a": 1, "b": {"c": 20}, "f": 5})
        );
    }
}
