//! Machine identities (their organization role) and their project memberships, including the
//! removal of an identity from a project.

use serde_json::json;

use super::memberships::role_by_key;
use super::projects::project_role;
use super::{RequestContext, Roster, audit_event, paged, probe, validate};
use crate::error::{CoreError, CoreResult, Rule};
use crate::events::{Event, EventObject, EventType};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission, Principal};
use crate::service::idempotency::commit;
use crate::timestamp::Timestamp;

#[derive(Clone, Debug, Default)]
pub struct NewIdentity {
    pub name: String,
    pub role_key: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct IdentityPatch {
    pub name: Option<String>,
    pub role_key: Option<String>,
}

impl Roster {
    pub async fn create_identity(
        &self,
        actor: &Actor,
        org: OrganizationId,
        input: NewIdentity,
        ctx: &RequestContext,
    ) -> CoreResult<Identity> {
        let (mut tx, _) = self
            .write_in(actor, org, Permission::IdentitiesWrite)
            .await?;
        let role = role_by_key(
            &mut *tx,
            org,
            input.role_key.as_deref().unwrap_or(ROLE_NO_ACCESS),
        )
        .await?;
        let now = Timestamp::now();
        let identity = Identity {
            id: IdentityId::new(),
            organization_id: org,
            name: validate::name("name", &input.name)?,
            role_id: role.id,
            role_key: role.key,
            created_at: now,
            updated_at: now,
        };
        tx.insert_identity(&identity).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "identity.created",
            ("identity", identity.id.to_string()),
            json!({"role": identity.role_key}),
        )])
        .await?;
        commit(tx).await?;
        Ok(identity)
    }

    /// An identity, visible to whoever may read identities in its organization.
    pub async fn identity(&self, actor: &Actor, id: IdentityId) -> CoreResult<Identity> {
        let identity = self
            .store
            .read()
            .await?
            .identity(id)
            .await?
            .ok_or_else(|| CoreError::not_found("identity", id))?;
        self.read_in(actor, identity.organization_id, Permission::IdentitiesRead)
            .await
            .map_err(hide(id))?;
        Ok(identity)
    }

    pub async fn list_identities(
        &self,
        actor: &Actor,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Paged<Identity>> {
        let mut s = self.read_in(actor, org, Permission::IdentitiesRead).await?;
        let rows = s.list_identities(org, probe(page)?).await?;
        Ok(paged(rows, page, |i| i.id.0))
    }

    pub async fn update_identity(
        &self,
        actor: &Actor,
        id: IdentityId,
        patch: IdentityPatch,
        ctx: &RequestContext,
    ) -> CoreResult<Identity> {
        let org = self.identity(actor, id).await?.organization_id;
        let (mut tx, _) = self
            .write_in(actor, org, Permission::IdentitiesWrite)
            .await
            .map_err(hide(id))?;
        let mut identity = tx
            .identity(id)
            .await?
            .ok_or_else(|| CoreError::not_found("identity", id))?;
        if let Some(name) = patch.name {
            identity.name = validate::name("name", &name)?;
        }
        if let Some(key) = patch.role_key {
            let role = role_by_key(&mut *tx, org, &key).await?;
            identity.role_id = role.id;
            identity.role_key = role.key;
        }
        identity.updated_at = Timestamp::now();
        tx.update_identity(&identity).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "identity.updated",
            ("identity", id.to_string()),
            json!({"role": identity.role_key}),
        )])
        .await?;
        commit(tx).await?;
        Ok(identity)
    }

    /// Deletes an identity with its project memberships and tokens.
    pub async fn delete_identity(
        &self,
        actor: &Actor,
        id: IdentityId,
        ctx: &RequestContext,
    ) -> CoreResult<Identity> {
        let org = self.identity(actor, id).await?.organization_id;
        let (mut tx, _) = self
            .write_in(actor, org, Permission::IdentitiesDelete)
            .await
            .map_err(hide(id))?;
        let identity = tx
            .identity(id)
            .await?
            .ok_or_else(|| CoreError::not_found("identity", id))?;
        let removed = tx.delete_identity(id).await?;
        tx.insert_events(&removed_from_projects(ctx, actor, removed))
            .await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "identity.deleted",
            ("identity", id.to_string()),
            json!({}),
        )])
        .await?;
        commit(tx).await?;
        Ok(identity)
    }

    pub async fn add_identity_to_project(
        &self,
        actor: &Actor,
        project: ProjectId,
        identity: IdentityId,
        role: Option<String>,
        ctx: &RequestContext,
    ) -> CoreResult<IdentityProjectMembership> {
        let (mut tx, org) = self
            .write_in_project(actor, project, Permission::IdentitiesWrite)
            .await?;
        tx.project(project)
            .await?
            .ok_or_else(|| CoreError::not_found("project", project))?;
        match tx.identity(identity).await? {
            Some(i) if i.organization_id == org => {}
            _ => return Err(CoreError::not_found("identity", identity)),
        }
        if tx
            .identity_project_membership(project, identity)
            .await?
            .is_some()
        {
            return Err(CoreError::conflict(
                "already_a_member",
                "Identity is already a member of the project",
            ));
        }
        let now = Timestamp::now();
        let m = IdentityProjectMembership {
            id: IdentityProjectMembershipId::new(),
            organization_id: org,
            project_id: project,
            identity_id: identity,
            role: project_role(role, ROLE_NO_ACCESS)?,
            created_at: now,
            updated_at: now,
        };
        tx.insert_identity_project_membership(&m).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "identity_project_membership.created",
            ("identity_project_membership", m.id.to_string()),
            json!({"project_id": project, "identity_id": identity, "role": m.role}),
        )])
        .await?;
        tx.insert_events(&[Event::new(
            ctx,
            Some(actor),
            Some(org),
            EventType::IdentityMembershipCreated,
            EventObject::IdentityMembership(m.clone()),
        )])
        .await?;
        commit(tx).await?;
        Ok(m)
    }

    pub async fn identity_project_membership(
        &self,
        actor: &Actor,
        project: ProjectId,
        identity: IdentityId,
    ) -> CoreResult<IdentityProjectMembership> {
        let mut s = self
            .read_in_project(actor, project, Permission::IdentitiesRead)
            .await?;
        s.identity_project_membership(project, identity)
            .await?
            .ok_or_else(|| CoreError::not_found("identity project membership", identity))
    }

    pub async fn list_identity_project_memberships(
        &self,
        actor: &Actor,
        project: ProjectId,
        page: Page,
    ) -> CoreResult<Paged<IdentityProjectMembership>> {
        let mut s = self
            .read_in_project(actor, project, Permission::IdentitiesRead)
            .await?;
        let rows = s
            .list_identity_project_memberships(project, probe(page)?)
            .await?;
        Ok(paged(rows, page, |m| m.id.0))
    }

    /// How many identities hold a membership in the project.
    pub async fn count_identity_project_memberships(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> CoreResult<i64> {
        let mut s = self
            .read_in_project(actor, project, Permission::IdentitiesRead)
            .await?;
        s.count_identity_project_memberships(project).await
    }

    pub async fn count_identities(&self, actor: &Actor, org: OrganizationId) -> CoreResult<i64> {
        let mut s = self.read_in(actor, org, Permission::IdentitiesRead).await?;
        s.count_identities(org).await
    }

    /// Changes the project role of a machine identity.
    pub async fn update_identity_project_role(
        &self,
        actor: &Actor,
        project: ProjectId,
        identity: IdentityId,
        role: String,
        ctx: &RequestContext,
    ) -> CoreResult<IdentityProjectMembership> {
        let (mut tx, org) = self
            .write_in_project(actor, project, Permission::IdentitiesWrite)
            .await?;
        let mut m = tx
            .identity_project_membership(project, identity)
            .await?
            .ok_or_else(|| CoreError::not_found("identity project membership", identity))?;
        let before = m.role.clone();
        m.role = project_role(Some(role), ROLE_NO_ACCESS)?;
        m.updated_at = Timestamp::now();
        tx.update_identity_project_membership(&m).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "identity_project_membership.updated",
            ("identity_project_membership", m.id.to_string()),
            json!({"role": {"from": before, "to": m.role}}),
        )])
        .await?;
        commit(tx).await?;
        Ok(m)
    }

    /// Removes a machine identity from one project: only that project membership goes; the
    /// identity, its organization role and its tokens stay.
    /// Removes a machine identity from a project; with `dry_run`, everything but the commit.
    pub async fn remove_identity_from_project(
        &self,
        actor: &Actor,
        project: ProjectId,
        identity: IdentityId,
        dry_run: bool,
        ctx: &RequestContext,
    ) -> CoreResult<IdentityProjectMembership> {
        let (mut tx, org) = self
            .write_in_project(actor, project, Permission::IdentitiesDelete)
            .await?;
        let m = tx
            .identity_project_membership(project, identity)
            .await?
            .ok_or_else(|| CoreError::not_found("identity project membership", identity))?;
        if matches!(actor.principal, Principal::Identity { identity_id, .. } if identity_id == identity)
        {
            return Err(CoreError::rule(
                Rule::SelfRemoval,
                "You can't delete your own membership",
                Some(identity.to_string()),
            ));
        }
        tx.delete_identity_project_membership(m.id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "identity_project_membership.removed",
            ("identity_project_membership", m.id.to_string()),
            json!({"project_id": project, "identity_id": identity}),
        )])
        .await?;
        tx.insert_events(&[Event::new(
            ctx,
            Some(actor),
            Some(org),
            EventType::IdentityMembershipRemoved,
            EventObject::IdentityMembership(m.clone()),
        )])
        .await?;
        if !dry_run {
            commit(tx).await?;
        }
        Ok(m)
    }
}

/// The `identity_membership.removed` events of identities' project memberships that went with
/// a deletion (of the identity, or of the project).
pub(super) fn removed_from_projects(
    ctx: &RequestContext,
    actor: &Actor,
    removed: Vec<IdentityProjectMembership>,
) -> Vec<Event> {
    removed
        .into_iter()
        .map(|m| {
            Event::new(
                ctx,
                Some(actor),
                Some(m.organization_id),
                EventType::IdentityMembershipRemoved,
                EventObject::IdentityMembership(m),
            )
        })
        .collect()
}

fn hide(id: IdentityId) -> impl Fn(CoreError) -> CoreError {
    move |e| match e {
        CoreError::NotFound {
            kind: "organization",
            ..
        } => CoreError::not_found("identity", id),
        other => other,
    }
}
