//! Former members: reading what removals kept (members who may read the organization's
//! members may read them), purging one at once, and the background purge of records whose
//! retention window has closed. (Every removal writes its records in `removal/write.rs`.)

use serde_json::json;

use super::{RequestContext, Roster, audit_event, paged, probe};
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission};
use crate::service::idempotency::commit;
use crate::timestamp::Timestamp;

impl FormerMember {
    /// The record as a caller holding `held` may see it (its membership's private metadata as
    /// `Membership::as_seen_with` decides).
    pub fn as_seen_with(mut self, held: crate::PermissionSet) -> Self {
        self.membership = self.membership.as_seen_with(held);
        self
    }
}

impl Roster {
    pub async fn list_former_members(
        &self,
        actor: &Actor,
        org: OrganizationId,
        filter: &FormerMemberFilter,
        page: Page,
    ) -> CoreResult<Paged<FormerMember>> {
        let (mut s, held) = self
            .read_holding(actor, org, Permission::MembersRead)
            .await?;
        let rows = s.list_former_members(org, filter, probe(page)?).await?;
        let mut p = paged(rows, page, |f| f.membership.id.0);
        p.items = p.items.into_iter().map(|f| f.as_seen_with(held)).collect();
        Ok(p)
    }

    pub async fn former_member(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: MembershipId,
    ) -> CoreResult<FormerMember> {
        let (mut s, held) = self
            .read_holding(actor, org, Permission::MembersRead)
            .await?;
        Ok(s.former_member(org, id)
            .await?
            .ok_or_else(|| CoreError::not_found("former member", id))?
            .as_seen_with(held))
    }

    /// Forgets a former member at once (before its window closes): it can no longer be
    /// reinstated.
    pub async fn purge_former_member(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: MembershipId,
        ctx: &RequestContext,
    ) -> CoreResult<FormerMember> {
        let (mut tx, held) = self.write_in(actor, org, Permission::MembersDelete).await?;
        let record = tx
            .former_member(org, id)
            .await?
            .ok_or_else(|| CoreError::not_found("former member", id))?;
        tx.delete_former_member(org, id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "former_member.purged",
            ("membership", id.to_string()),
            json!({"user_id": record.membership.user_id}),
        )])
        .await?;
        commit(tx).await?;
        Ok(record.as_seen_with(held))
    }

    /// Purges every record whose window has closed (the server runs this now and then); how
    /// many went.
    pub async fn purge_expired_former_members(&self) -> CoreResult<u64> {
        let mut tx = self.store.begin().await?;
        let n = tx.purge_expired_former_members(Timestamp::now()).await?;
        commit(tx).await?;
        Ok(n)
    }
}

/// What a reinstatement gave back.
#[derive(Clone, Debug)]
pub struct Reinstatement {
    /// The membership, under its old id.
    pub membership: Membership,
    /// The role it had no longer exists: it is back as `member`.
    pub role_fell_back: bool,
    /// Its project memberships, in the projects that still exist.
    pub project_memberships: Vec<ProjectMembership>,
}

impl Roster {
    /// Brings a former member back under their old membership id, with their role (or
    /// `member` if that role was deleted) and their project memberships in projects that still
    /// exist. Refused if the user is a member again or the organization is at its quota.
    /// Needs what adding a member needs. The user's access returns at their next request.
    pub async fn reinstate_former_member(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: MembershipId,
        ctx: &RequestContext,
    ) -> CoreResult<Reinstatement> {
        let (mut tx, held) = self.write_in(actor, org, Permission::MembersWrite).await?;
        let record = tx
            .former_member(org, id)
            .await?
            .ok_or_else(|| CoreError::not_found("former member", id))?;
        let organization = tx
            .organization(org)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", org))?;
        if let Some(user) = record.membership.user_id
            && tx.membership_by_user(org, user).await?.is_some()
        {
            return Err(CoreError::conflict(
                "already_a_member",
                format!("user {user} is a member of this organization again"),
            ));
        }
        if organization.max_allowed_memberships > 0
            && tx.count_memberships(org).await? >= organization.max_allowed_memberships
        {
            return Err(CoreError::rule(
                crate::error::Rule::MembershipQuota,
                format!(
                    "the organization has reached its limit of {} memberships",
                    organization.max_allowed_memberships
                ),
                None,
            ));
        }
        let (role, role_fell_back) = match tx.role_by_key(org, &record.membership.role_key).await? {
            Some(role) => (role, false),
            None => (
                tx.role_by_key(org, ROLE_MEMBER)
                    .await?
                    .ok_or_else(|| CoreError::internal("the built-in member role is missing"))?,
                true,
            ),
        };
        let now = Timestamp::now();
        let membership = Membership {
            role_id: role.id,
            role_key: role.key,
            updated_at: now,
            ..record.membership.clone()
        };
        tx.insert_membership(&membership).await?;
        let mut project_memberships = Vec::new();
        for pm in &record.project_memberships {
            if tx.project(pm.project_id).await?.is_none() {
                continue;
            }
            let restored = ProjectMembership {
                id: pm.id,
                organization_id: org,
                project_id: pm.project_id,
                user_id: pm.user_id,
                role: pm.role.clone(),
                created_at: now,
                updated_at: now,
            };
            tx.insert_project_membership(&restored).await?;
            project_memberships.push(restored);
        }
        tx.delete_former_member(org, id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "membership.reinstated",
            ("membership", id.to_string()),
            json!({"user_id": membership.user_id, "role": membership.role_key,
                   "role_fell_back": role_fell_back,
                   "project_memberships": project_memberships.len()}),
        )])
        .await?;
        tx.insert_events(&[crate::events::Event::new(
            ctx,
            Some(actor),
            Some(org),
            crate::events::EventType::MembershipCreated,
            crate::events::EventObject::Membership(membership.clone()),
        )])
        .await?;
        commit(tx).await?;
        Ok(Reinstatement {
            membership: membership.as_seen_with(held),
            role_fell_back,
            project_memberships,
        })
    }
}
