//! Organization memberships: adding, inviting, updating, and removing them (one, many, or
//! oneself). Every change here runs under the organization's lock, with the guards checked
//! inside the transaction so that concurrent changes cannot break them.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::group_commit::{OwnMembership, RemovalRequest, SHARED_COMMIT_MAX_TARGETS};
use super::{Changes, RequestContext, Roster, audit_event, paged, probe, validate};
use crate::auth::Caller;
use crate::error::{CoreError, CoreResult, Rule};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission, Principal};
use crate::store::Session;
use crate::timestamp::Timestamp;

/// The most targets one bulk removal may name (documented in the README and the OpenAPI
/// document): large enough for a real off-boarding, small enough for one transaction.
pub const MAX_BULK_REMOVAL: usize = 100_000;

#[derive(Clone, Debug, Default)]
pub struct NewMembership {
    /// Add an existing user (accepted at once) ...
    pub user_id: Option<UserId>,
    /// ... or invite an email address (status `invited` until accepted).
    pub email: Option<String>,
    pub role_key: String,
    pub public_metadata: Metadata,
    pub private_metadata: Metadata,
}

#[derive(Clone, Debug, Default)]
pub struct MembershipPatch {
    pub role_key: Option<String>,
    pub is_active: Option<bool>,
    pub public_metadata: Option<MetadataUpdate>,
    pub private_metadata: Option<MetadataUpdate>,
}

/// A member, its organization and the organization's roles, as read together.
#[derive(Clone, Debug)]
pub struct MemberInContext {
    pub organization: Organization,
    pub member: MemberView,
    pub roles: Vec<Role>,
}

const LAST_ADMIN: &str = "an organization must keep at least one active admin";

/// The audit actions of a removal by someone else and of a member leaving.
const REMOVED: &str = "membership.removed";
const LEFT: &str = "membership.left";

impl Roster {
    pub async fn add_membership(
        &self,
        actor: &Actor,
        org: OrganizationId,
        input: NewMembership,
        ctx: &RequestContext,
    ) -> CoreResult<Membership> {
        let (mut tx, _) = self.write_in(actor, org, Permission::MembersWrite).await?;
        let role = role_by_key(&mut *tx, org, &input.role_key).await?;
        let organization = tx
            .organization(org)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", org))?;
        let now = Timestamp::now();
        let (user_id, invite_email, status) = match (input.user_id, input.email) {
            (Some(user), None) => {
                tx.user(user)
                    .await?
                    .ok_or_else(|| CoreError::not_found("user", user))?;
                if tx.membership_by_user(org, user).await?.is_some() {
                    return Err(CoreError::conflict(
                        "already_a_member",
                        format!("user {user} is already a member of this organization"),
                    ));
                }
                (Some(user), None, MembershipStatus::Accepted)
            }
            (None, Some(email)) => {
                let email = validate::email("email", &email)?;
                // A second pending invitation to the same address is refused by the store's
                // unique index (`already_invited`), which concurrent requests cannot race.
                if let Some(user) = tx.user_by_email(&email).await?
                    && tx.membership_by_user(org, user.id).await?.is_some()
                {
                    return Err(CoreError::conflict(
                        "already_a_member",
                        format!("{email} is already a member of this organization"),
                    ));
                }
                (None, Some(email), MembershipStatus::Invited)
            }
            _ => {
                return Err(CoreError::invalid(
                    "user_id",
                    "give exactly one of `user_id` and `email`",
                ));
            }
        };
        if organization.max_allowed_memberships > 0
            && tx.count_memberships(org).await? >= organization.max_allowed_memberships
        {
            return Err(CoreError::rule(
                Rule::MembershipQuota,
                format!(
                    "the organization has reached its limit of {} memberships",
                    organization.max_allowed_memberships
                ),
                None,
            ));
        }
        let membership = Membership {
            id: MembershipId::new(),
            organization_id: org,
            user_id,
            last_invited_at: invite_email.as_ref().map(|_| now),
            invite_email,
            role_id: role.id,
            role_key: role.key,
            status,
            is_active: true,
            last_login_auth_method: None,
            last_login_time: None,
            project_favorites: None,
            public_metadata: within_metadata_limit("public_metadata", input.public_metadata)?,
            private_metadata: within_metadata_limit("private_metadata", input.private_metadata)?,
            created_at: now,
            updated_at: now,
        };
        tx.insert_membership(&membership).await?;
        let action = if user_id.is_some() {
            "membership.created"
        } else {
            "membership.invited"
        };
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            action,
            ("membership", membership.id.to_string()),
            json!({"user_id": user_id, "invite_email": membership.invite_email,
                   "role": membership.role_key}),
        )])
        .await?;
        tx.commit().await?;
        Ok(membership)
    }

    /// The invited user (matched by email, case-insensitively) accepts an invitation.
    pub async fn accept_invitation(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: MembershipId,
        ctx: &RequestContext,
    ) -> CoreResult<Membership> {
        let mut tx = self.store.begin().await?;
        if !tx.lock_organization(org).await? {
            return Err(CoreError::not_found("membership", id));
        }
        let mut m = tx
            .membership(org, id)
            .await?
            .ok_or_else(|| CoreError::not_found("membership", id))?;
        let caller = match actor.user_id() {
            Some(u) => tx.user(u).await?,
            None => None,
        };
        let addressed_to_caller = m.status == MembershipStatus::Invited
            && m.invite_email
                .as_deref()
                .zip(caller.as_ref())
                .is_some_and(|(e, user)| e.eq_ignore_ascii_case(&user.email));
        let Some(user_id) = caller.filter(|_| addressed_to_caller).map(|u| u.id) else {
            // Someone who can see the organization is told what is true; anyone else learns
            // nothing of it.
            return Err(
                match crate::auth::permissions_in(&mut *tx, actor, org).await? {
                    Some(_) => not_the_invitee(&m),
                    None => CoreError::not_found("membership", id),
                },
            );
        };
        if tx.membership_by_user(org, user_id).await?.is_some() {
            return Err(CoreError::conflict(
                "already_a_member",
                "you are already a member of this organization",
            ));
        }
        m.user_id = Some(user_id);
        m.status = MembershipStatus::Accepted;
        m.updated_at = Timestamp::now();
        tx.update_membership(&m).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "membership.accepted",
            ("membership", id.to_string()),
            json!({}),
        )])
        .await?;
        tx.commit().await?;
        Ok(m)
    }

    pub async fn membership(
        &self,
        actor: &Actor,
        org: OrganizationId,
        target: MemberRef,
    ) -> CoreResult<Membership> {
        let (mut s, held) = self
            .read_holding(actor, org, Permission::MembersRead)
            .await?;
        Ok(resolve_one(&mut *s, org, target).await?.as_seen_with(held))
    }

    /// One membership with its user.
    pub async fn member(
        &self,
        actor: &Actor,
        org: OrganizationId,
        target: MemberRef,
    ) -> CoreResult<MemberView> {
        let (mut s, held) = self
            .read_holding(actor, org, Permission::MembersRead)
            .await?;
        let membership = resolve_one(&mut *s, org, target).await?.as_seen_with(held);
        let user = match membership.user_id {
            Some(u) => s.user(u).await?,
            None => None,
        };
        Ok(MemberView { membership, user })
    }

    /// One member with what a renderer shows beside it, its organization and the roles
    /// (Clerk renders all three around a membership), read in one session.
    pub async fn member_in_context(
        &self,
        actor: &Actor,
        org: OrganizationId,
        target: MemberRef,
    ) -> CoreResult<MemberInContext> {
        let mut s = self.store.read().await?;
        let organization = s
            .organization(org)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", org))?;
        let held = crate::auth::require(&mut *s, actor, org, Permission::MembersRead).await?;
        if !held.contains(Permission::OrganizationRead) {
            return Err(CoreError::Forbidden {
                permission: Permission::OrganizationRead.key(),
            });
        }
        let membership = resolve_one(&mut *s, org, target).await?.as_seen_with(held);
        let user = match membership.user_id {
            Some(u) => s.user(u).await?,
            None => None,
        };
        Ok(MemberInContext {
            organization: organization.as_seen_with(held),
            member: MemberView { membership, user },
            roles: s.list_roles(org).await?,
        })
    }

    /// How many memberships match the filter (for totals of offset-paged lists).
    pub async fn count_members(
        &self,
        actor: &Actor,
        org: OrganizationId,
        filter: &MembershipFilter,
    ) -> CoreResult<i64> {
        let mut s = self.read_in(actor, org, Permission::MembersRead).await?;
        s.count_matching_memberships(org, filter).await
    }

    /// A page of memberships with their users (one query for the page's users).
    pub async fn list_members(
        &self,
        actor: &Actor,
        org: OrganizationId,
        filter: &MembershipFilter,
        page: Page,
    ) -> CoreResult<Paged<MemberView>> {
        let (mut s, held) = self
            .read_holding(actor, org, Permission::MembersRead)
            .await?;
        let rows = paged(
            s.list_memberships(org, filter, probe(page)?).await?,
            page,
            |m| m.id.0,
        );
        let ids: Vec<UserId> = rows.items.iter().filter_map(|m| m.user_id).collect();
        let users: HashMap<UserId, User> = if ids.is_empty() {
            HashMap::new()
        } else {
            s.users_by_ids(&ids)
                .await?
                .into_iter()
                .map(|u| (u.id, u))
                .collect()
        };
        Ok(Paged {
            items: rows
                .items
                .into_iter()
                .map(|m| {
                    let user = m.user_id.and_then(|u| users.get(&u).cloned());
                    MemberView {
                        membership: m.as_seen_with(held),
                        user,
                    }
                })
                .collect(),
            next_after: rows.next_after,
        })
    }

    pub async fn list_memberships(
        &self,
        actor: &Actor,
        org: OrganizationId,
        filter: &MembershipFilter,
        page: Page,
    ) -> CoreResult<Paged<Membership>> {
        let (mut s, held) = self
            .read_holding(actor, org, Permission::MembersRead)
            .await?;
        let rows = s.list_memberships(org, filter, probe(page)?).await?;
        let rows = rows.into_iter().map(|m| m.as_seen_with(held)).collect();
        Ok(paged(rows, page, |m| m.id.0))
    }

    pub async fn update_membership(
        &self,
        actor: &Actor,
        org: OrganizationId,
        target: MemberRef,
        patch: MembershipPatch,
        ctx: &RequestContext,
    ) -> CoreResult<Membership> {
        let (mut tx, _) = self.write_in(actor, org, Permission::MembersWrite).await?;
        let before = resolve_one(&mut *tx, org, target).await?;
        let mut m = before.clone();
        let changes_access = patch.role_key.is_some() || patch.is_active.is_some();
        if changes_access && m.user_id.is_some() && m.user_id == actor.user_id() {
            return Err(CoreError::rule(
                Rule::OwnMembershipChange,
                "you cannot change your own role or deactivate yourself",
                Some(m.id.to_string()),
            ));
        }
        if let Some(key) = &patch.role_key {
            let role = role_by_key(&mut *tx, org, key).await?;
            m.role_id = role.id;
            m.role_key = role.key;
        }
        if let Some(active) = patch.is_active {
            m.is_active = active;
        }
        if let Some(md) = patch.public_metadata {
            md.apply_within_limit("public_metadata", &mut m.public_metadata)?;
        }
        if let Some(md) = patch.private_metadata {
            md.apply_within_limit("private_metadata", &mut m.private_metadata)?;
        }
        if before.is_active_admin()
            && !m.is_active_admin()
            && tx.count_active_admins(org).await? <= 1
        {
            return Err(CoreError::rule(
                Rule::LastAdmin,
                LAST_ADMIN,
                Some(m.id.to_string()),
            ));
        }
        m.updated_at = Timestamp::now();
        tx.update_membership(&m).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "membership.updated",
            ("membership", m.id.to_string()),
            Changes::default()
                .field("role", &before.role_key, &m.role_key)
                .field("is_active", &before.is_active, &m.is_active)
                .metadata(
                    "public_metadata",
                    &before.public_metadata,
                    &m.public_metadata,
                )
                .metadata(
                    "private_metadata",
                    &before.private_metadata,
                    &m.private_metadata,
                )
                .into_details(),
        )])
        .await?;
        tx.commit().await?;
        Ok(m)
    }

    /// Removes one or many memberships, all or nothing: every target is checked first, and one
    /// that is missing, foreign or protected by a rule refuses the whole request, naming it.
    /// A caller cannot remove themselves here (that is `leave_organization`).
    pub async fn remove_memberships(
        &self,
        actor: &Actor,
        org: OrganizationId,
        targets: &[MemberRef],
        options: RemovalOptions,
        ctx: &RequestContext,
    ) -> CoreResult<Removal> {
        let caller = Caller::Authenticated(actor.clone());
        let request = RemovalRequest::new(caller, targets.to_vec(), options, ctx.clone());
        self.remove(org, request).await
    }

    /// Runs one removal request (see `remove_memberships`); the caller may still be a token
    /// claim, verified in the removal's transaction.
    ///
    /// Small requests share their transaction and commit with the other removals in the same
    /// organization that arrive meanwhile, each with its own outcome (see `group_commit`).
    pub async fn remove(
        &self,
        org: OrganizationId,
        request: RemovalRequest,
    ) -> CoreResult<Removal> {
        if request.targets.len() > MAX_BULK_REMOVAL {
            // Refused before any read, but still only after the caller is known.
            request.caller.authenticate(&*self.store).await?;
            return Err(CoreError::invalid(
                "membership_ids",
                format!("at most {MAX_BULK_REMOVAL} memberships can be removed in one request"),
            ));
        }
        if request.targets.len() <= SHARED_COMMIT_MAX_TARGETS {
            return self.remove_in_shared_commit(org, request).await;
        }
        // A large request runs in a transaction of its own: a batch of one.
        self.remove_memberships_together(org, std::slice::from_ref(&request))
            .await
            .pop()
            .unwrap_or_else(|| Err(CoreError::internal("a removal batch answered nothing")))
    }

    /// `remove` in the organization `slug` names (PlanetScale names organizations by slug).
    /// The slug's id is taken from what was last read of it, when anything was, so that the
    /// request queues at once; the batch's transaction refuses it as not found unless the slug
    /// still names that organization, and then the id is read again and the removal tried once
    /// more. A slug naming nothing: not found, once the caller is verified (a bad token is
    /// refused as such whatever the slug names).
    pub async fn remove_in_organization_named(
        &self,
        slug: &str,
        mut request: RemovalRequest,
    ) -> CoreResult<Removal> {
        request.org_slug = Some(slug.to_owned());
        let kept = self.slug_ids.get(slug);
        if let Some(org) = kept {
            match self.remove(org, request.clone()).await {
                Err(CoreError::NotFound {
                    kind: "organization",
                    ..
                }) => {
                    self.slug_ids.forget(slug, org);
                }
                answered => return answered,
            }
        }
        match self.organization_id_by_slug(slug).await? {
            // Read again to the same id: the refusal stands (the caller may not see it).
            Some(org) if Some(org) == kept => Err(CoreError::not_found("organization", slug)),
            Some(org) => self.remove(org, request).await,
            None => {
                request.caller.authenticate(&*self.store).await?;
                Err(CoreError::not_found("organization", slug))
            }
        }
    }

    /// The caller leaves an organization. The last active admin cannot leave; with
    /// `refuse_only_organization` (PlanetScale's rule) nor can a user whose only organization
    /// it is. Credential deletion is for removing others, so asking for it here is refused.
    pub async fn leave_organization(
        &self,
        actor: &Actor,
        org: OrganizationId,
        options: RemovalOptions,
        refuse_only_organization: bool,
        ctx: &RequestContext,
    ) -> CoreResult<Removal> {
        let user = actor.user_id().ok_or_else(|| {
            CoreError::invalid(
                "actor",
                "only a user can leave an organization; use a user's token",
            )
        })?;
        let mut tx = self.store.begin().await?;
        if !tx.lock_organization(org).await? {
            return Err(CoreError::not_found("organization", org));
        }
        let own = tx
            .membership_by_user(org, user)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", org))?;
        let leaving = Leaving {
            own,
            options,
            refuse_only_organization,
        };
        let removal = leave_in(&mut *tx, org, actor, leaving, ctx).await?;
        tx.commit().await?;
        Ok(removal)
    }
}

/// The refusal of `user` leaving with `options`, if the rules refuse it: credential deletion is
/// for removing others, and with `refuse_only_organization` (PlanetScale's rule) nobody leaves
/// their only organization. The last-admin guard is the removal's own, checked after these.
async fn leave_refusal(
    tx: &mut dyn Session,
    user: UserId,
    options: RemovalOptions,
    refuse_only_organization: bool,
) -> CoreResult<Option<CoreError>> {
    if options.delete_passwords || options.delete_service_tokens {
        return Ok(Some(CoreError::rule(
            Rule::CredentialFlagsOnSelf,
            "delete_passwords and delete_service_tokens are only available when removing other members",
            Some(user.to_string()),
        )));
    }
    if refuse_only_organization && tx.organizations_of_user(user).await?.len() <= 1 {
        return Ok(Some(CoreError::rule(
            Rule::OnlyOrganization,
            "you cannot leave your only organization",
            Some(user.to_string()),
        )));
    }
    Ok(None)
}

/// A member leaving: its own membership, and how (`leave_refusal`).
struct Leaving {
    own: Membership,
    options: RemovalOptions,
    refuse_only_organization: bool,
}

/// `actor` leaving `org`, whose lock the transaction holds: the rules of leaving, then the
/// shared unit of work, audited as leaving (`leave_organization`, and `remove_one` for a request
/// that is its caller leaving).
async fn leave_in(
    tx: &mut dyn Session,
    org: OrganizationId,
    actor: &Actor,
    leaving: Leaving,
    ctx: &RequestContext,
) -> CoreResult<Removal> {
    let Leaving {
        own,
        options,
        refuse_only_organization,
    } = leaving;
    let user = own
        .user_id
        .ok_or_else(|| CoreError::internal("a membership that leaves has no user"))?;
    if let Some(refusal) = leave_refusal(tx, user, options, refuse_only_organization).await? {
        return Err(refusal);
    }
    let audit = Audit {
        ctx,
        actor,
        action: LEFT,
    };
    remove_in(tx, org, vec![own].into(), options, audit).await
}

/// Whether `request` by `actor` may be the caller leaving (`OwnMembership::Leaves`): a user
/// caller and one target, not another user. It is, if the target is the caller's own
/// membership. Returns the target, the caller, and whether their only organization is kept.
fn may_be_leaving(actor: &Actor, request: &RemovalRequest) -> Option<(MemberRef, UserId, bool)> {
    let OwnMembership::Leaves {
        refuse_only_organization,
    } = request.own_membership
    else {
        return None;
    };
    let me = actor.user_id()?;
    match request.targets.as_slice() {
        [MemberRef::User(other)] if *other != me => None,
        [target] => Some((*target, me, refuse_only_organization)),
        _ => None,
    }
}

/// One removal request, inside a transaction holding the organization's lock: the actor's
/// permission, the targets, the self-removal rule, then the shared unit of work; or, for a
/// caller leaving (`OwnMembership::Leaves`), the rules of leaving and the unit of work. The
/// caller commits. Every refusal is decided from reads before the first write (group commit
/// relies on it): a write can only fail as a conflict or an internal error.
pub(super) async fn remove_one(
    tx: &mut dyn Session,
    org: OrganizationId,
    actor: &Actor,
    request: &RemovalRequest,
) -> CoreResult<Removal> {
    let held = crate::auth::permissions_in(tx, actor, org)
        .await?
        .ok_or_else(|| CoreError::not_found("organization", org))?;
    let leaving = match may_be_leaving(actor, request) {
        Some((target, me, refuse_only_organization)) => find_one(tx, org, target)
            .await?
            .filter(|m| m.user_id == Some(me))
            .map(|own| Leaving {
                own,
                options: request.options,
                refuse_only_organization,
            }),
        None => None,
    };
    if let Some(refusal) = lacking(held, actor, org, request, leaving.is_some()) {
        return Err(refusal);
    }
    if let Some(leaving) = leaving {
        return leave_in(tx, org, actor, leaving, &request.ctx).await;
    }
    let members = resolve_many(tx, org, &request.targets).await?;
    if let Some(refusal) = self_removal(actor, members.ids_and_users()) {
        return Err(refusal);
    }
    remove_in(
        tx,
        org,
        members,
        request.options,
        Audit {
            ctx: &request.ctx,
            actor,
            action: REMOVED,
        },
    )
    .await
}

/// What the requests of one batch that want context (`RemovalRequest::include_context`) share:
/// a batch of removals changes neither the organization nor its roles, and its member count
/// is the one read once, less what the batch removed after that read.
pub(super) struct SharedContext {
    organization: Organization,
    roles: Vec<Role>,
    count_when_read: i64,
    /// The batch's removed memberships the count read already saw.
    removed_when_read: i64,
    users: HashMap<UserId, User>,
}

impl SharedContext {
    /// Reads the organization, its roles, its member count (which has seen `removed_so_far` of
    /// the batch's removals) and `users`.
    async fn read(
        tx: &mut dyn Session,
        org: OrganizationId,
        users: &[UserId],
        removed_so_far: i64,
    ) -> CoreResult<SharedContext> {
        let users = if users.is_empty() {
            Vec::new()
        } else {
            tx.users_by_ids(users).await?
        };
        let (organization, count_when_read, roles) = tx
            .organization_in_context(org)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", org))?;
        Ok(SharedContext {
            organization,
            roles,
            count_when_read,
            removed_when_read: removed_so_far,
            users: users.into_iter().map(|u| (u.id, u)).collect(),
        })
    }

    /// The context of a removal of the memberships of `removed_users`, the batch having removed
    /// `removed_so_far` memberships with it (the users must have been read).
    fn context(
        &self,
        removed_users: impl Iterator<Item = UserId>,
        removed_so_far: i64,
    ) -> RemovalContext {
        RemovalContext {
            organization: self.organization.clone(),
            member_count: self.count_when_read - (removed_so_far - self.removed_when_read),
            users: removed_users
                .filter_map(|u| self.users.get(&u).cloned())
                .collect(),
            roles: self.roles.clone(),
        }
    }
}

/// The context of `removal`, just made by one of `requests`: read on the batch's first such
/// request (with the users every such request names, in one query), then taken from `shared`.
/// `removed_so_far` counts the memberships the batch has removed, this removal's included.
pub(super) async fn context_for(
    tx: &mut dyn Session,
    org: OrganizationId,
    requests: &[RemovalRequest],
    removal: &Removal,
    removed_so_far: i64,
    shared: &mut Option<SharedContext>,
) -> CoreResult<RemovalContext> {
    let removed_users = || removal.removed.user_ids();
    let s = match shared {
        Some(s) => s,
        None => {
            let named = requests
                .iter()
                .filter(|r| r.include_context)
                .flat_map(|r| &r.targets)
                .filter_map(|t| match t {
                    MemberRef::User(u) => Some(*u),
                    MemberRef::Membership(_) => None,
                });
            let wanted: Vec<UserId> = named
                .chain(removed_users())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            shared.insert(SharedContext::read(tx, org, &wanted, removed_so_far).await?)
        }
    };
    let missing: Vec<UserId> = removed_users()
        .filter(|u| !s.users.contains_key(u))
        .collect();
    if !missing.is_empty() {
        for u in tx.users_by_ids(&missing).await? {
            s.users.insert(u.id, u);
        }
    }
    Ok(s.context(removal.removed.user_ids(), removed_so_far))
}

/// The refusal of a caller who holds `held` and may not make `request`. What the context shows
/// is checked first: a caller who may not read the members learns nothing from the order of
/// refusals. A caller `leaving` needs no permission to remove. A service token is told the
/// organization is not there where the request asks so
/// (`RemovalRequest::forbidden_to_service_tokens_is_not_found`).
fn lacking(
    held: crate::permissions::PermissionSet,
    actor: &Actor,
    org: OrganizationId,
    request: &RemovalRequest,
    leaving: bool,
) -> Option<CoreError> {
    let reads: &[Permission] = if request.include_context {
        &[Permission::MembersRead, Permission::OrganizationRead]
    } else {
        &[]
    };
    let removes: &[Permission] = if leaving {
        &[]
    } else {
        &[Permission::MembersDelete]
    };
    reads
        .iter()
        .chain(removes)
        .find(|p| !held.contains(**p))
        .map(|p| {
            let concealed = request.forbidden_to_service_tokens_is_not_found
                && matches!(actor.principal, Principal::ServiceToken { .. });
            if concealed {
                CoreError::not_found("organization", org)
            } else {
                CoreError::Forbidden {
                    permission: p.key(),
                }
            }
        })
}

/// The refusal of a removal of `members` (their ids and users) that names the caller's own
/// membership, if it does.
fn self_removal(
    actor: &Actor,
    mut members: impl Iterator<Item = (MembershipId, Option<UserId>)>,
) -> Option<CoreError> {
    let me = actor.user_id()?;
    let (own, _) = members.find(|(_, user)| *user == Some(me))?;
    Some(CoreError::rule(
        Rule::SelfRemoval,
        "You cannot remove yourself from an organization",
        Some(own.to_string()),
    ))
}

/// The refusal of a removal that would leave no active admin, naming the first admin it
/// removes.
fn last_admin(first_admin: Option<MembershipId>) -> CoreError {
    CoreError::rule(
        Rule::LastAdmin,
        LAST_ADMIN,
        first_admin.map(|id| id.to_string()),
    )
}

/// Whether a request can run in `remove_plain_together`: no credential deletion.
pub(super) fn is_plain(r: &RemovalRequest) -> bool {
    r.options == RemovalOptions::default()
}

/// A whole batch of plain removals (`is_plain`) with one statement per table, inside a
/// transaction holding the organization's lock. Every request's outcome is decided first, in
/// arrival order, from reads made before any write, and is the one it would have had run alone
/// after the requests before it: a membership an earlier request removed is not found, a caller
/// whose own membership an earlier request removed no longer sees the organization, the
/// last-admin guard counts the admins removed so far; a caller leaving (`OwnMembership::Leaves`)
/// needs no permission to remove but is held to the rules of leaving. Then the accepted
/// removals are written together: the project memberships (returning their users, so each request gets its own
/// cascade count), the memberships, the audit events. Requests that want context get it from
/// reads made once for the batch, before the writes: the member count is the one read less what
/// the batch removed up to and including the request. An `Err` means a read or a write failed:
/// the caller must drop the transaction (it may hold some of the writes).
pub(super) async fn remove_plain_together(
    tx: &mut dyn Session,
    org: OrganizationId,
    requests: &[RemovalRequest],
    actors: Vec<CoreResult<Actor>>,
) -> CoreResult<Vec<CoreResult<Removal>>> {
    let (mut ids, mut users) = (Vec::new(), Vec::new());
    for (r, _) in requests.iter().zip(&actors).filter(|(_, a)| a.is_ok()) {
        for t in &r.targets {
            match t {
                MemberRef::Membership(id) => ids.push(*id),
                MemberRef::User(u) => users.push(*u),
            }
        }
    }
    let by_id: HashMap<MembershipId, Membership> = if ids.is_empty() {
        HashMap::new()
    } else {
        let found = tx.memberships_by_ids(org, &ids).await?;
        found.into_iter().map(|m| (m.id, m)).collect()
    };
    let by_user: HashMap<UserId, Membership> = if users.is_empty() {
        HashMap::new()
    } else {
        let found = tx.memberships_by_users(org, &users).await?;
        found
            .into_iter()
            .filter_map(|m| Some((m.user_id?, m)))
            .collect()
    };

    let mut held_by_token: HashMap<TokenId, Option<crate::permissions::PermissionSet>> =
        HashMap::new();
    let (mut removed_ids, mut removed_users) = (HashSet::new(), HashSet::new());
    let mut active_admins: Option<i64> = None;
    // What a target names, unless an earlier request of the batch removed it.
    let find = |t: &MemberRef, removed_ids: &HashSet<MembershipId>| {
        match t {
            MemberRef::Membership(id) => by_id.get(id),
            MemberRef::User(u) => by_user.get(u),
        }
        .filter(|m| !removed_ids.contains(&m.id))
    };
    // Each accepted request's caller, memberships and audit action.
    let mut plans: Vec<CoreResult<(Actor, Vec<Membership>, &str)>> =
        Vec::with_capacity(requests.len());
    for (r, actor) in requests.iter().zip(actors) {
        let actor = match actor {
            Ok(actor) => actor,
            Err(e) => {
                plans.push(Err(e));
                continue;
            }
        };
        let held = if actor.user_id().is_some_and(|u| removed_users.contains(&u)) {
            None
        } else if let Some(held) = held_by_token.get(&actor.token_id) {
            *held
        } else {
            let held = crate::auth::permissions_in(tx, &actor, org).await?;
            held_by_token.insert(actor.token_id, held);
            held
        };
        let Some(held) = held else {
            plans.push(Err(CoreError::not_found("organization", org)));
            continue;
        };
        let leaving = may_be_leaving(&actor, r).filter(|(target, me, _)| {
            find(target, &removed_ids).is_some_and(|m| m.user_id == Some(*me))
        });
        if let Some(refusal) = lacking(held, &actor, org, r, leaving.is_some()) {
            plans.push(Err(refusal));
            continue;
        }
        let mut members: Vec<Membership> = Vec::with_capacity(r.targets.len());
        // At most `SHARED_COMMIT_MAX_TARGETS` targets: a scan for duplicates is cheap.
        let mut missing: Vec<MemberRef> = Vec::new();
        for t in &r.targets {
            match find(t, &removed_ids) {
                Some(m) if !members.iter().any(|seen| seen.id == m.id) => members.push(m.clone()),
                Some(_) => {}
                None if !missing.contains(t) => missing.push(*t),
                None => {}
            }
        }
        let missing = (!missing.is_empty()).then(|| none_such(&r.targets, &missing));
        let refusal = match (missing, leaving) {
            (Some(missing), _) => Some(missing),
            (None, Some((_, me, refuse_only_organization))) => {
                leave_refusal(tx, me, r.options, refuse_only_organization).await?
            }
            (None, None) => self_removal(&actor, members.iter().map(|m| (m.id, m.user_id))),
        };
        if let Some(refusal) = refusal {
            plans.push(Err(refusal));
            continue;
        }
        let admins_removed = members.iter().filter(|m| m.is_active_admin()).count() as i64;
        if admins_removed > 0 {
            let admins = match active_admins {
                Some(n) => n,
                None => tx.count_active_admins(org).await?,
            };
            active_admins = Some(admins);
            if admins - admins_removed < 1 {
                let first = members.iter().find(|m| m.is_active_admin()).map(|m| m.id);
                plans.push(Err(last_admin(first)));
                continue;
            }
            active_admins = Some(admins - admins_removed);
        }
        removed_ids.extend(members.iter().map(|m| m.id));
        removed_users.extend(members.iter().filter_map(|m| m.user_id));
        let action = if leaving.is_some() { LEFT } else { REMOVED };
        plans.push(Ok((actor, members, action)));
    }

    let wants_context = requests
        .iter()
        .zip(&plans)
        .any(|(r, plan)| r.include_context && plan.is_ok());
    let shared = if wants_context {
        let users: Vec<UserId> = requests
            .iter()
            .zip(&plans)
            .filter(|(r, _)| r.include_context)
            .filter_map(|(_, plan)| plan.as_ref().ok())
            .flat_map(|(_, members, _)| members.iter().filter_map(|m| m.user_id))
            .collect();
        Some(SharedContext::read(tx, org, &users, 0).await?)
    } else {
        None
    };

    let mut cascaded: HashMap<UserId, u64> = HashMap::new();
    if !removed_ids.is_empty() {
        let users: Vec<UserId> = removed_users.iter().copied().collect();
        let ids: Vec<MembershipId> = removed_ids.iter().copied().collect();
        // A shared batch is small (at most `SHARED_COMMIT_MAX_TARGETS` per request): its events
        // are written in one go.
        let events: Vec<AuditEvent> = requests
            .iter()
            .zip(&plans)
            .filter_map(|(r, plan)| Some((r, plan.as_ref().ok()?)))
            .flat_map(|(r, (actor, members, action))| {
                members
                    .iter()
                    .map(move |m| removal_event(&r.ctx, actor, org, action, m, r.options))
            })
            .collect();
        for u in tx
            .remove_memberships_recording(org, &users, &ids, &events)
            .await?
        {
            *cascaded.entry(u).or_default() += 1;
        }
    }
    let mut removed_so_far = 0i64;
    Ok(requests
        .iter()
        .zip(plans)
        .map(|(r, plan)| {
            plan.map(|(_, removed, _)| {
                removed_so_far += removed.len() as i64;
                let context = shared
                    .as_ref()
                    .filter(|_| r.include_context)
                    .map(|s| s.context(removed.iter().filter_map(|m| m.user_id), removed_so_far));
                Removal {
                    project_memberships_removed: removed
                        .iter()
                        .filter_map(|m| cascaded.get(&m.user_id?))
                        .sum(),
                    removed: removed.into(),
                    passwords_deleted: 0,
                    service_tokens_deleted: 0,
                    context,
                }
            })
        })
        .collect())
}

/// Who removes, and how the audit trail names it.
pub(super) struct Audit<'a> {
    pub ctx: &'a RequestContext,
    pub actor: &'a Actor,
    pub action: &'static str,
}

/// The shared removal unit of work, inside a transaction holding the organization's lock:
/// last-admin guard, cascade, delete, one audit event per removed membership. The caller
/// commits (after whatever else belongs to the same transaction).
pub(super) async fn remove_in(
    tx: &mut dyn Session,
    org: OrganizationId,
    members: Removed,
    options: RemovalOptions,
    audit: Audit<'_>,
) -> CoreResult<Removal> {
    let admins_removed = members.active_admins().count() as i64;
    if admins_removed > 0 && tx.count_active_admins(org).await? - admins_removed < 1 {
        return Err(last_admin(members.active_admins().next()));
    }
    // Allocated once: collecting the filtered users would double its way to 100,000.
    let mut users: Vec<UserId> = Vec::with_capacity(members.len());
    users.extend(members.user_ids());
    let ids: Vec<MembershipId> = members.ids().collect();
    let (mut project_memberships_removed, mut passwords_deleted, mut service_tokens_deleted) =
        (0, 0, 0);
    if !users.is_empty() {
        project_memberships_removed = tx.delete_project_memberships_of_users(org, &users).await?;
        if options.delete_passwords {
            passwords_deleted = tx.delete_passwords_of_users(org, &users).await?;
        }
        if options.delete_service_tokens {
            service_tokens_deleted = tx.delete_service_tokens_created_by(org, &users).await?;
        }
    }
    if !ids.is_empty() {
        tx.delete_memberships(org, &ids).await?;
    }
    drop((users, ids));
    // The events are built a part at a time, each just before it is written: all the events of
    // a 100,000-member removal, each with its details as a JSON map, would take tens of MiB.
    let mut to_record = members.iter();
    loop {
        let events: Vec<AuditEvent> = to_record
            .by_ref()
            .take(EVENTS_AT_A_TIME)
            .map(|m| removal_event(audit.ctx, audit.actor, org, audit.action, &m, options))
            .collect();
        if events.is_empty() {
            break;
        }
        tx.insert_audit_events(&events).await?;
    }
    drop(to_record);
    Ok(Removal {
        removed: members,
        project_memberships_removed,
        passwords_deleted,
        service_tokens_deleted,
        context: None,
    })
}

/// Audit events a large removal builds at a time: as many as the store writes in a few
/// statements.
const EVENTS_AT_A_TIME: usize = 500;

fn removal_event(
    ctx: &RequestContext,
    actor: &Actor,
    org: OrganizationId,
    action: &str,
    m: &Membership,
    options: RemovalOptions,
) -> AuditEvent {
    audit_event(
        ctx,
        Some(actor),
        Some(org),
        action,
        ("membership", m.id.to_string()),
        json!({"user_id": m.user_id, "invite_email": m.invite_email, "role": m.role_key,
               "delete_passwords": options.delete_passwords,
               "delete_service_tokens": options.delete_service_tokens}),
    )
}

pub(super) async fn role_by_key(
    tx: &mut dyn Session,
    org: OrganizationId,
    key: &str,
) -> CoreResult<Role> {
    let key = validate::role_key("role", key)?;
    tx.role_by_key(org, &key)
        .await?
        .ok_or_else(|| CoreError::invalid("role", format!("the organization has no role `{key}`")))
}

/// The membership of `org` a target names, if any.
async fn find_one(
    s: &mut dyn Session,
    org: OrganizationId,
    target: MemberRef,
) -> CoreResult<Option<Membership>> {
    match target {
        MemberRef::Membership(id) => s.membership(org, id).await,
        MemberRef::User(user) => s.membership_by_user(org, user).await,
    }
}

async fn resolve_one(
    s: &mut dyn Session,
    org: OrganizationId,
    target: MemberRef,
) -> CoreResult<Membership> {
    find_one(s, org, target)
        .await?
        .ok_or_else(|| no_such_member(target))
}

/// Why a caller who can see an invitation may not accept it.
fn not_the_invitee(m: &Membership) -> CoreError {
    match m.status {
        MembershipStatus::Accepted => CoreError::conflict(
            "not_an_invitation",
            format!(
                "membership {} is not a pending invitation: it was accepted",
                m.id
            ),
        ),
        MembershipStatus::Invited => CoreError::conflict(
            "not_the_invitee",
            "only the user the invitation is addressed to can accept it, with a token of their own",
        ),
    }
}

/// The not-found error for a target that names no membership of the organization.
fn no_such_member(target: MemberRef) -> CoreError {
    match target {
        MemberRef::Membership(id) => CoreError::not_found("membership", id),
        MemberRef::User(user) => CoreError::not_found("membership", user),
    }
}

/// The refusal of a request whose `missing` targets (in request order, each once) name no
/// membership: one target's not found, or for a request naming several every such target in
/// one error (the first `MAX_NAMED_NOT_FOUND`, and the count), so that a list is cleaned in
/// one round trip. Both the batched and the one-by-one path answer through it.
fn none_such(targets: &[MemberRef], missing: &[MemberRef]) -> CoreError {
    if let ([_], [only]) = (targets, missing) {
        return no_such_member(*only);
    }
    CoreError::NotFoundAmong {
        kind: "membership",
        ids: missing
            .iter()
            .take(crate::error::MAX_NAMED_NOT_FOUND)
            .map(|t| match t {
                MemberRef::Membership(id) => id.to_string(),
                MemberRef::User(user) => user.to_string(),
            })
            .collect(),
        count: missing.len(),
    }
}

/// Resolves every target in request order, dropping duplicates. Any target that is not a
/// membership of `org` fails the whole request; the error names them all (up to a cap).
async fn resolve_many(
    s: &mut dyn Session,
    org: OrganizationId,
    targets: &[MemberRef],
) -> CoreResult<Removed> {
    let by_ids = targets
        .iter()
        .filter(|t| matches!(t, MemberRef::Membership(_)))
        .count();
    let mut ids = Vec::with_capacity(by_ids);
    let mut users = Vec::with_capacity(targets.len() - by_ids);
    for t in targets {
        match t {
            MemberRef::Membership(id) => ids.push(*id),
            MemberRef::User(u) => users.push(*u),
        }
    }
    // Every membership found, by id then by user (one named both ways is read twice), packed
    // as each part is read: a bulk removal never holds its 100,000 memberships whole. The
    // answer is this put in request order in place. The lookups are positions sorted by key
    // and searched by bisection: hash maps and a set over 100,000 memberships took a fifth as
    // much memory as the memberships themselves. Positions fit in `u32`: at most
    // 2 × `MAX_BULK_REMOVAL` rows.
    let mut found = Removed::with_capacity(targets.len());
    for part in ids.chunks(READ_AT_A_TIME) {
        for m in s.memberships_by_ids(org, part).await? {
            found.push(m);
        }
    }
    drop(ids);
    let read_by_id = found.len();
    for part in users.chunks(READ_AT_A_TIME) {
        for m in s.memberships_by_users(org, part).await? {
            found.push(m);
        }
    }
    drop(users);
    let by_id = Positions::sorted(0..read_by_id, |i| found.id_at(i));
    let by_user = Positions::sorted(
        (read_by_id..found.len()).filter(|&i| found.user_at(i).is_some()),
        |i| found.user_at(i),
    );
    let mut taken = vec![false; found.len()];
    let mut order: Vec<u32> = Vec::with_capacity(targets.len());
    let (mut missing, mut missing_seen) = (Vec::new(), HashSet::new());
    for t in targets {
        let at = match t {
            MemberRef::Membership(id) => by_id.find(id, |i| found.id_at(i)),
            // A membership also named by id is taken at its by-id position, so that it is
            // removed once however it is named.
            MemberRef::User(u) => by_user.find(&Some(*u), |i| found.user_at(i)).map(|at| {
                by_id
                    .find(&found.id_at(at), |i| found.id_at(i))
                    .unwrap_or(at)
            }),
        };
        match at {
            Some(at) if !std::mem::replace(&mut taken[at], true) => order.push(at as u32),
            Some(_) => {}
            None if missing_seen.insert(*t) => missing.push(*t),
            None => {}
        }
    }
    drop((by_id, by_user, taken));
    if !missing.is_empty() {
        return Err(none_such(targets, &missing));
    }
    found.arrange(&order);
    Ok(found)
}

/// Memberships a large removal reads in one go, packing them before it reads more (the SQL
/// stores read as many in one statement).
const READ_AT_A_TIME: usize = 1000;

/// Positions in a vector, sorted by a key of the item at each: a lookup by key in a few bytes a
/// position.
struct Positions(Vec<u32>);

impl Positions {
    fn sorted<K: Ord>(positions: impl Iterator<Item = usize>, key: impl Fn(usize) -> K) -> Self {
        let mut sorted: Vec<u32> = positions.map(|i| i as u32).collect();
        sorted.sort_unstable_by_key(|&i| key(i as usize));
        Positions(sorted)
    }

    /// The position of the item whose key is `wanted`, if there is one (`key` as sorted by).
    fn find<K: Ord>(&self, wanted: &K, key: impl Fn(usize) -> K) -> Option<usize> {
        self.0
            .binary_search_by(|&i| key(i as usize).cmp(wanted))
            .ok()
            .map(|k| self.0[k] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::Positions;

    #[test]
    fn positions_find_each_item_by_its_key_and_nothing_for_a_key_no_item_has() {
        let items = [40, 10, 30, 20, 50];
        // Only the positions given are searched: 4 (key 50) is left out.
        let by_key = Positions::sorted(0..4, |i| items[i]);
        for (at, key) in items[..4].iter().enumerate() {
            assert_eq!(by_key.find(key, |i| items[i]), Some(at), "key {key}");
        }
        for absent in [0, 15, 50, 60] {
            assert_eq!(by_key.find(&absent, |i| items[i]), None, "key {absent}");
        }
    }
}
