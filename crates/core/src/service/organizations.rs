//! Organizations: created with their built-in roles (and their creator as admin), read,
//! updated, deleted with everything they hold.

use serde_json::json;

use super::{RequestContext, Roster, audit_event, paged, probe, validate};
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission, PermissionSet, Principal};
use crate::store::Session;
use crate::timestamp::Timestamp;

#[derive(Clone, Debug, Default)]
pub struct NewOrganization {
    pub name: String,
    pub slug: Option<String>,
    pub max_allowed_memberships: Option<i64>,
    pub admin_delete_enabled: Option<bool>,
    pub public_metadata: Metadata,
    pub private_metadata: Metadata,
    /// The user who becomes its first admin. An instance admin may name one; a user creating
    /// an organization is always its creator.
    pub created_by: Option<UserId>,
}

#[derive(Clone, Debug, Default)]
pub struct OrganizationPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub max_allowed_memberships: Option<i64>,
    pub admin_delete_enabled: Option<bool>,
    pub public_metadata: Option<MetadataUpdate>,
    pub private_metadata: Option<MetadataUpdate>,
}

fn quota(v: i64) -> CoreResult<i64> {
    if v < 0 {
        Err(CoreError::invalid(
            "max_allowed_memberships",
            "max_allowed_memberships must be 0 (unlimited) or more",
        ))
    } else {
        Ok(v)
    }
}

/// The permissions of the built-in roles.
pub fn built_in_permissions(key: &str) -> PermissionSet {
    match key {
        ROLE_ADMIN => PermissionSet::all(),
        ROLE_MEMBER => {
            PermissionSet::from_iter([Permission::OrganizationRead, Permission::MembersRead])
        }
        _ => PermissionSet::EMPTY,
    }
}

impl Roster {
    pub async fn create_organization(
        &self,
        actor: Option<&Actor>,
        input: NewOrganization,
        ctx: &RequestContext,
    ) -> CoreResult<Organization> {
        let creator = match actor.map(|a| &a.principal) {
            None | Some(Principal::InstanceAdmin) => input.created_by,
            Some(Principal::User(u)) => match input.created_by {
                Some(other) if other != *u => {
                    return Err(CoreError::invalid(
                        "created_by",
                        "a user creates organizations as themselves",
                    ));
                }
                _ => Some(*u),
            },
            Some(_) => {
                return Err(CoreError::Forbidden {
                    permission: "organization:create",
                });
            }
        };
        let mut tx = self.store.begin().await?;
        let org = create_organization_in(&mut *tx, input, creator).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            actor,
            Some(org.id),
            "organization.created",
            ("organization", org.id.to_string()),
            json!({"name": org.name, "slug": org.slug, "created_by": creator}),
        )])
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    /// By id. Anyone who cannot see it gets the same answer as for a missing one.
    pub async fn organization(
        &self,
        actor: &Actor,
        id: OrganizationId,
    ) -> CoreResult<Organization> {
        let mut s = self
            .read_in(actor, id, Permission::OrganizationRead)
            .await?;
        s.organization(id)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", id))
    }

    pub async fn organization_by_slug(
        &self,
        actor: &Actor,
        slug: &str,
    ) -> CoreResult<Organization> {
        let mut s = self.store.read().await?;
        let org = s
            .organization_by_slug(slug)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", slug))?;
        drop(s);
        self.organization(actor, org.id).await.map_err(|e| match e {
            CoreError::NotFound { .. } => CoreError::not_found("organization", slug),
            other => other,
        })
    }

    /// The id of the organization a slug names, for no caller in particular: a dialect that
    /// addresses organizations by slug uses it to name a removal's organization, and the removal
    /// then verifies the caller and checks its access in its own transaction. Whether a slug
    /// exists must not reach a caller before that check (`None` and a refused removal have to
    /// be answered alike).
    pub async fn organization_id_by_slug(&self, slug: &str) -> CoreResult<Option<OrganizationId>> {
        let mut s = self.store.read().await?;
        Ok(s.organization_by_slug(slug).await?.map(|org| org.id))
    }

    /// An organization by slug, for any caller who can see it at all (whatever they may do in
    /// it: each operation checks its own permission). Anyone else: not found.
    pub async fn visible_organization_by_slug(
        &self,
        actor: &Actor,
        slug: &str,
    ) -> CoreResult<Organization> {
        let mut s = self.store.read().await?;
        let org = s
            .organization_by_slug(slug)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", slug))?;
        match crate::auth::permissions_in(&mut *s, actor, org.id).await? {
            Some(_) => Ok(org),
            None => Err(CoreError::not_found("organization", slug)),
        }
    }

    pub async fn member_count(&self, actor: &Actor, id: OrganizationId) -> CoreResult<i64> {
        let mut s = self
            .read_in(actor, id, Permission::OrganizationRead)
            .await?;
        s.count_memberships(id).await
    }

    /// The organizations the actor can see.
    pub async fn list_organizations(
        &self,
        actor: &Actor,
        query: Option<String>,
        page: Page,
    ) -> CoreResult<Paged<Organization>> {
        let mut s = self.store.read().await?;
        let rows = s
            .list_organizations(&visible_to(actor, query), probe(page)?)
            .await?;
        Ok(paged(rows, page, |o| o.id.0))
    }

    /// How many organizations the actor can see (matching `query`).
    pub async fn count_organizations(
        &self,
        actor: &Actor,
        query: Option<String>,
    ) -> CoreResult<i64> {
        self.store
            .read()
            .await?
            .count_organizations(&visible_to(actor, query))
            .await
    }

    pub async fn update_organization(
        &self,
        actor: &Actor,
        id: OrganizationId,
        patch: OrganizationPatch,
        ctx: &RequestContext,
    ) -> CoreResult<Organization> {
        let (mut tx, _) = self
            .write_in(actor, id, Permission::OrganizationWrite)
            .await?;
        let mut org = tx
            .organization(id)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", id))?;
        if let Some(name) = patch.name {
            org.name = validate::name("name", &name)?;
        }
        if let Some(slug) = patch.slug {
            org.slug = validate::slug("slug", &slug)?;
        }
        if let Some(q) = patch.max_allowed_memberships {
            org.max_allowed_memberships = quota(q)?;
        }
        if let Some(v) = patch.admin_delete_enabled {
            org.admin_delete_enabled = v;
        }
        if let Some(md) = patch.public_metadata {
            md.apply(&mut org.public_metadata);
        }
        if let Some(md) = patch.private_metadata {
            md.apply(&mut org.private_metadata);
        }
        org.updated_at = Timestamp::now();
        tx.update_organization(&org).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(id),
            "organization.updated",
            ("organization", id.to_string()),
            json!({}),
        )])
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    /// Deletes the organization and everything it holds; returns it as it was.
    pub async fn delete_organization(
        &self,
        actor: &Actor,
        id: OrganizationId,
        ctx: &RequestContext,
    ) -> CoreResult<Organization> {
        let (mut tx, _) = self
            .write_in(actor, id, Permission::OrganizationDelete)
            .await?;
        let org = tx
            .organization(id)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", id))?;
        tx.delete_organization(id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(id),
            "organization.deleted",
            ("organization", id.to_string()),
            json!({"name": org.name, "slug": org.slug}),
        )])
        .await?;
        tx.commit().await?;
        Ok(org)
    }
}

/// The organizations an actor can see: all for an instance admin, a user's own, a token's one.
fn visible_to(actor: &Actor, query: Option<String>) -> OrganizationFilter {
    let mut filter = OrganizationFilter {
        query,
        ..Default::default()
    };
    match &actor.principal {
        Principal::InstanceAdmin => {}
        Principal::User(u) => filter.member = Some(*u),
        Principal::Identity {
            organization_id, ..
        }
        | Principal::ServiceToken {
            organization_id, ..
        } => {
            filter.only = Some(*organization_id);
        }
    }
    filter
}

/// Inserts an organization, its built-in roles and (if any) its creator's admin membership.
pub(super) async fn create_organization_in(
    tx: &mut dyn Session,
    input: NewOrganization,
    creator: Option<UserId>,
) -> CoreResult<Organization> {
    let name = validate::name("name", &input.name)?;
    let slug = match input.slug {
        Some(s) => validate::slug("slug", &s)?,
        None => validate::slug_from_name(&name),
    };
    if tx.organization_by_slug(&slug).await?.is_some() {
        return Err(CoreError::conflict(
            "slug_taken",
            format!("an organization with slug `{slug}` already exists"),
        ));
    }
    if let Some(u) = creator
        && tx.user(u).await?.is_none()
    {
        return Err(CoreError::not_found("user", u));
    }
    let now = Timestamp::now();
    let org = Organization {
        id: OrganizationId::new(),
        name,
        slug,
        max_allowed_memberships: quota(input.max_allowed_memberships.unwrap_or(0))?,
        admin_delete_enabled: input.admin_delete_enabled.unwrap_or(true),
        public_metadata: input.public_metadata,
        private_metadata: input.private_metadata,
        created_by: creator,
        created_at: now,
        updated_at: now,
    };
    tx.insert_organization(&org).await?;
    let mut admin_role = None;
    for (key, name) in BUILT_IN_ROLES {
        let role = Role {
            id: RoleId::new(),
            organization_id: org.id,
            key: key.to_owned(),
            name: name.to_owned(),
            description: None,
            permissions: built_in_permissions(key),
            built_in: true,
            created_at: now,
            updated_at: now,
        };
        tx.insert_role(&role).await?;
        if key == ROLE_ADMIN {
            admin_role = Some(role);
        }
    }
    if let (Some(user), Some(role)) = (creator, admin_role) {
        tx.insert_membership(&Membership {
            id: MembershipId::new(),
            organization_id: org.id,
            user_id: Some(user),
            invite_email: None,
            role_id: role.id,
            role_key: role.key,
            status: MembershipStatus::Accepted,
            is_active: true,
            last_invited_at: None,
            last_login_auth_method: None,
            last_login_time: None,
            project_favorites: None,
            public_metadata: Metadata::new(),
            private_metadata: Metadata::new(),
            created_at: now,
            updated_at: now,
        })
        .await?;
    }
    Ok(org)
}
