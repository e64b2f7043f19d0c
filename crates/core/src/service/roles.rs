//! Roles of an organization: the built-in three, plus custom roles with a permission set.

use serde_json::json;

use super::{RequestContext, Roster, audit_event, validate};
use crate::error::{CoreError, CoreResult, Rule};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission, PermissionSet};
use crate::service::idempotency::commit;
use crate::timestamp::Timestamp;

#[derive(Clone, Debug, Default)]
pub struct NewRole {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub permissions: Option<Vec<String>>,
}

impl Roster {
    pub async fn list_roles(&self, actor: &Actor, org: OrganizationId) -> CoreResult<Vec<Role>> {
        let mut s = self.read_in(actor, org, Permission::MembersRead).await?;
        s.list_roles(org).await
    }

    pub async fn role(&self, actor: &Actor, org: OrganizationId, id: RoleId) -> CoreResult<Role> {
        let mut s = self.read_in(actor, org, Permission::MembersRead).await?;
        s.role(org, id)
            .await?
            .ok_or_else(|| CoreError::not_found("role", id))
    }

    pub async fn create_role(
        &self,
        actor: &Actor,
        org: OrganizationId,
        input: NewRole,
        ctx: &RequestContext,
    ) -> CoreResult<Role> {
        let (mut tx, held) = self.write_in(actor, org, Permission::RolesWrite).await?;
        let key = validate::role_key("key", &input.key)?;
        let permissions = PermissionSet::parse_keys(&input.permissions, "permissions")?;
        refuse_escalation(held, permissions)?;
        if tx.role_by_key(org, &key).await?.is_some() {
            return Err(CoreError::conflict(
                "role_key_taken",
                format!("the organization already has a role `{key}`"),
            ));
        }
        let now = Timestamp::now();
        let role = Role {
            id: RoleId::new(),
            organization_id: org,
            key,
            name: validate::name("name", &input.name)?,
            description: validate::optional_text("description", input.description)?,
            permissions,
            built_in: false,
            created_at: now,
            updated_at: now,
        };
        tx.insert_role(&role).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "role.created",
            ("role", role.id.to_string()),
            json!({"key": role.key, "permissions": role.permissions.keys()}),
        )])
        .await?;
        commit(tx).await?;
        Ok(role)
    }

    pub async fn update_role(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: RoleId,
        patch: RolePatch,
        ctx: &RequestContext,
    ) -> CoreResult<Role> {
        let (mut tx, held) = self.write_in(actor, org, Permission::RolesWrite).await?;
        let mut role = tx
            .role(org, id)
            .await?
            .ok_or_else(|| CoreError::not_found("role", id))?;
        if role.built_in {
            return Err(CoreError::rule(
                Rule::BuiltInRole,
                "built-in roles cannot be changed",
                Some(id.to_string()),
            ));
        }
        if let Some(name) = patch.name {
            role.name = validate::name("name", &name)?;
        }
        if let Some(d) = patch.description {
            role.description = validate::optional_text("description", d)?;
        }
        if let Some(p) = patch.permissions {
            role.permissions = PermissionSet::parse_keys(&p, "permissions")?;
            refuse_escalation(held, role.permissions)?;
        }
        role.updated_at = Timestamp::now();
        tx.update_role(&role).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "role.updated",
            ("role", id.to_string()),
            json!({"permissions": role.permissions.keys()}),
        )])
        .await?;
        commit(tx).await?;
        Ok(role)
    }

    pub async fn delete_role(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: RoleId,
        ctx: &RequestContext,
    ) -> CoreResult<Role> {
        let (mut tx, _) = self.write_in(actor, org, Permission::RolesWrite).await?;
        let role = tx
            .role(org, id)
            .await?
            .ok_or_else(|| CoreError::not_found("role", id))?;
        if role.built_in {
            return Err(CoreError::rule(
                Rule::BuiltInRole,
                "built-in roles cannot be deleted",
                Some(id.to_string()),
            ));
        }
        if tx.role_in_use(org, id).await? {
            return Err(CoreError::rule(
                Rule::RoleInUse,
                "the role is still held by members or identities",
                Some(id.to_string()),
            ));
        }
        tx.delete_role(org, id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "role.deleted",
            ("role", id.to_string()),
            json!({"key": role.key}),
        )])
        .await?;
        commit(tx).await?;
        Ok(role)
    }
}

/// Nobody grants what they do not hold themselves.
pub(super) fn refuse_escalation(held: PermissionSet, granted: PermissionSet) -> CoreResult<()> {
    match granted.iter().find(|p| !held.contains(*p)) {
        Some(p) => Err(CoreError::Forbidden {
            permission: p.key(),
        }),
        None => Ok(()),
    }
}
