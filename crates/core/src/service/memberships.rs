//! Organization memberships: adding, inviting, accepting, reading and updating them (removing
//! them is `super::removal`). Every change here runs under the organization's lock, with the guards checked
//! inside the transaction so that concurrent changes cannot break them.

use std::collections::HashMap;

use serde_json::json;

use super::removal::{leaves_no_admin, no_such_member};
use super::{Changes, RequestContext, Roster, audit_event, paged, probe, validate};
use crate::error::{CoreError, CoreResult, Rule};
use crate::events::{Event, EventObject, EventType};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission};
use crate::service::idempotency::commit;
use crate::store::Session;
use crate::timestamp::Timestamp;

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

/// A member as an identity provider provisions them (SCIM's `POST /Users`): the user by email,
/// made if there is none, and a membership accepted at once.
#[derive(Clone, Debug, Default)]
pub struct ProvisionedMember {
    pub email: String,
    /// Set on a user made now; an existing user's profile is theirs and stays as it is.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub external_id: Option<String>,
    /// The member's userName in the provider's directory, where it is not their email.
    pub directory_user_name: Option<String>,
    pub role_key: String,
    pub is_active: bool,
}

#[derive(Clone, Debug, Default)]
pub struct MembershipPatch {
    pub role_key: Option<String>,
    pub is_active: Option<bool>,
    pub public_metadata: Option<MetadataUpdate>,
    pub private_metadata: Option<MetadataUpdate>,
    /// `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
    /// `Some(None)` clears it.
    pub directory_user_name: Option<Option<String>>,
}

/// A member, its organization and the organization's roles, as read together.
#[derive(Clone, Debug)]
pub struct MemberInContext {
    pub organization: Organization,
    pub member: MemberView,
    pub roles: Vec<Role>,
}

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
            external_id: None,
            directory_user_name: None,
        };
        insert_new_membership(&mut *tx, actor, ctx, &organization, &membership).await?;
        commit(tx).await?;
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
            // Someone who may read the organization's members is told what is true; anyone
            // else learns nothing of it.
            return Err(
                match crate::auth::permissions_in(&mut *tx, actor, org).await? {
                    Some(held) if held.contains(Permission::MembersRead) => not_the_invitee(&m),
                    _ => CoreError::not_found("membership", id),
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
        // Accepted, the invitation becomes a user's membership: created, as Clerk tells it.
        tx.insert_events(&[membership_event(
            ctx,
            actor,
            EventType::MembershipCreated,
            &m,
        )])
        .await?;
        commit(tx).await?;
        Ok(m)
    }

    /// Provisions a member (`ProvisionedMember`): the user found by email or made (which a
    /// member's adder may do here, as an invitation would), then made a member at once, in one
    /// transaction. Already a member: 409 `already_a_member`; an external id another member
    /// has: 409 `external_id_taken`.
    pub async fn provision_member(
        &self,
        actor: &Actor,
        org: OrganizationId,
        input: ProvisionedMember,
        ctx: &RequestContext,
    ) -> CoreResult<MemberView> {
        let (mut tx, held) = self.write_in(actor, org, Permission::MembersWrite).await?;
        let role = role_by_key(&mut *tx, org, &input.role_key).await?;
        let organization = tx
            .organization(org)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", org))?;
        let email = validate::email("userName", &input.email)?;
        let external_id = validate::optional_text("externalId", input.external_id)?;
        let directory_user_name = validate::optional_text("userName", input.directory_user_name)?;
        let now = Timestamp::now();
        let user = match tx.user_by_email(&email).await? {
            Some(user) => {
                if tx.membership_by_user(org, user.id).await?.is_some() {
                    return Err(CoreError::conflict(
                        "already_a_member",
                        format!("{email} is already a member of this organization"),
                    ));
                }
                user
            }
            None => {
                let user = User {
                    id: UserId::new(),
                    email,
                    first_name: validate::optional_text("name.givenName", input.first_name)?,
                    last_name: validate::optional_text("name.familyName", input.last_name)?,
                    username: None,
                    image_url: None,
                    created_at: now,
                    updated_at: now,
                };
                super::users::insert_new_user(&mut *tx, Some(actor), ctx, &user, Some(org)).await?;
                user
            }
        };
        // A pending invitation of the address becomes the membership (under its id, with its
        // metadata), as if accepted: the directory has spoken for the person.
        let invitation = tx.pending_invitation(org, &user.email).await?;
        let accepts_invitation = invitation.is_some();
        let membership = match invitation {
            Some(invited) => Membership {
                user_id: Some(user.id),
                role_id: role.id,
                role_key: role.key,
                status: MembershipStatus::Accepted,
                is_active: input.is_active,
                external_id,
                directory_user_name,
                updated_at: now,
                ..invited
            },
            None => Membership {
                id: MembershipId::new(),
                organization_id: org,
                user_id: Some(user.id),
                invite_email: None,
                role_id: role.id,
                role_key: role.key,
                status: MembershipStatus::Accepted,
                is_active: input.is_active,
                last_invited_at: None,
                last_login_auth_method: None,
                last_login_time: None,
                project_favorites: None,
                public_metadata: Metadata::new(),
                private_metadata: Metadata::new(),
                created_at: now,
                updated_at: now,
                external_id,
                directory_user_name,
            },
        };
        if accepts_invitation {
            tx.update_membership(&membership).await?;
            tx.insert_audit_events(&[audit_event(
                ctx,
                Some(actor),
                Some(org),
                "membership.accepted",
                ("membership", membership.id.to_string()),
                json!({"provisioned": true, "role": membership.role_key}),
            )])
            .await?;
            tx.insert_events(&[membership_event(
                ctx,
                actor,
                EventType::MembershipCreated,
                &membership,
            )])
            .await?;
            commit(tx).await?;
            return Ok(MemberView {
                membership: membership.as_seen_with(held),
                user: Some(user),
            });
        }
        insert_new_membership(&mut *tx, actor, ctx, &organization, &membership).await?;
        commit(tx).await?;
        Ok(MemberView {
            membership: membership.as_seen_with(held),
            user: Some(user),
        })
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
        if let Some(external_id) = patch.external_id {
            m.external_id = validate::optional_text("external_id", external_id)?;
        }
        if let Some(name) = patch.directory_user_name {
            m.directory_user_name = validate::optional_text("directory_user_name", name)?;
        }
        if before.is_active_admin() && !m.is_active_admin() {
            let admins = tx.count_active_admins(org).await?;
            if let Some(refusal) = leaves_no_admin(admins, [m.id].into_iter()) {
                return Err(refusal);
            }
        }
        m.updated_at = Timestamp::now();
        tx.update_membership(&m).await?;
        let changes = Changes::default()
            .field("role", &before.role_key, &m.role_key)
            .field("is_active", &before.is_active, &m.is_active)
            .field("external_id", &before.external_id, &m.external_id)
            .field(
                "directory_user_name",
                &before.directory_user_name,
                &m.directory_user_name,
            )
            .metadata(
                "public_metadata",
                &before.public_metadata,
                &m.public_metadata,
            )
            .metadata(
                "private_metadata",
                &before.private_metadata,
                &m.private_metadata,
            );
        if !changes.is_empty() {
            tx.insert_events(&[membership_event(
                ctx,
                actor,
                EventType::MembershipUpdated,
                &m,
            )])
            .await?;
        }
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "membership.updated",
            ("membership", m.id.to_string()),
            changes.into_details(),
        )])
        .await?;
        commit(tx).await?;
        Ok(m)
    }
}

/// The event of a change to membership `m`, made by `actor`.
/// Writes a new membership (within the organization's quota), its audit event
/// (`membership.created`, or `membership.invited` for an invitation) and its event.
async fn insert_new_membership(
    tx: &mut dyn Session,
    actor: &Actor,
    ctx: &RequestContext,
    organization: &Organization,
    membership: &Membership,
) -> CoreResult<()> {
    if organization.max_allowed_memberships > 0
        && tx.count_memberships(organization.id).await? >= organization.max_allowed_memberships
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
    tx.insert_membership(membership).await?;
    let action = if membership.user_id.is_some() {
        "membership.created"
    } else {
        "membership.invited"
    };
    tx.insert_audit_events(&[audit_event(
        ctx,
        Some(actor),
        Some(organization.id),
        action,
        ("membership", membership.id.to_string()),
        json!({"user_id": membership.user_id, "invite_email": membership.invite_email,
               "role": membership.role_key}),
    )])
    .await?;
    tx.insert_events(&[membership_event(
        ctx,
        actor,
        EventType::MembershipCreated,
        membership,
    )])
    .await
}

fn membership_event(
    ctx: &RequestContext,
    actor: &Actor,
    event_type: EventType,
    m: &Membership,
) -> Event {
    Event::new(
        ctx,
        Some(actor),
        Some(m.organization_id),
        event_type,
        EventObject::Membership(m.clone()),
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

/// The membership of `org` a target names.
async fn resolve_one(
    s: &mut dyn Session,
    org: OrganizationId,
    target: MemberRef,
) -> CoreResult<Membership> {
    match target {
        MemberRef::Membership(id) => s.membership(org, id).await,
        MemberRef::User(user) => s.membership_by_user(org, user).await,
    }?
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
