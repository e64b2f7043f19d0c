//! Organizations: created with their built-in roles (and their creator as admin), read,
//! updated, deleted with everything they hold.

use serde_json::json;

use super::{Changes, RequestContext, Roster, audit_event, paged, probe, validate};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventObject, EventType};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission, PermissionSet, Principal};
use crate::service::idempotency::commit;
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
    /// The user who becomes its first admin. An instance admin names one; a user creating an
    /// organization is always its creator.
    pub created_by: Option<UserId>,
    /// Whether it may be created with no admin at all (`created_by` absent), which only a
    /// vendor's contract asks for (Clerk's). Such an organization has no member: only instance
    /// admin keys can act in it, until one adds an admin.
    pub may_start_without_admin: bool,
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
        // An organization always keeps an active admin; it starts with one.
        if creator.is_none() && !input.may_start_without_admin {
            return Err(CoreError::invalid(
                "created_by",
                "an organization starts with an admin: give created_by, the id of the user who \
                 becomes its first admin",
            ));
        }
        let mut tx = self.store.begin().await?;
        let (org, _) = create_organization_in(&mut *tx, input, creator, ctx, actor).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            actor,
            Some(org.id),
            "organization.created",
            ("organization", org.id.to_string()),
            json!({"name": org.name, "slug": org.slug, "created_by": creator}),
        )])
        .await?;
        commit(tx).await?;
        Ok(org)
    }

    /// By id. Anyone who cannot see it gets the same answer as for a missing one.
    pub async fn organization(
        &self,
        actor: &Actor,
        id: OrganizationId,
    ) -> CoreResult<Organization> {
        let (mut s, held) = self
            .read_holding(actor, id, Permission::OrganizationRead)
            .await?;
        Ok(s.organization(id)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", id))?
            .as_seen_with(held))
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

    /// The id of the organization a slug names, for no caller in particular, read now (and
    /// kept): how `remove_in_organization_named` names a removal's organization, whose
    /// transaction then verifies the caller and checks its access. Whether a slug exists must
    /// not reach a caller before that check (`None` and a refused removal have to be answered
    /// alike).
    pub(super) async fn organization_id_by_slug(
        &self,
        slug: &str,
    ) -> CoreResult<Option<OrganizationId>> {
        let mut s = self.store.read().await?;
        let id = s.organization_by_slug(slug).await?.map(|org| org.id);
        if let Some(id) = id {
            self.slug_ids.remember(slug, id);
        }
        Ok(id)
    }

    /// An organization by slug, for any caller who can see it at all (whatever they may do in
    /// it: each operation checks its own permission). Anyone else: not found.
    pub async fn visible_organization_by_slug(
        &self,
        actor: &Actor,
        slug: &str,
    ) -> CoreResult<Organization> {
        let mut s = self.store.read().await?;
        let org = s.organization_by_slug(slug).await?;
        as_seen_by(&mut *s, actor, org, slug).await
    }

    /// `visible_organization_by_slug`, by id.
    pub async fn visible_organization(
        &self,
        actor: &Actor,
        id: OrganizationId,
    ) -> CoreResult<Organization> {
        let mut s = self.store.read().await?;
        let org = s.organization(id).await?;
        as_seen_by(&mut *s, actor, org, id).await
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
        let mut paged = paged(rows, page, |o| o.id.0);
        let mut seen = Vec::with_capacity(paged.items.len());
        for org in paged.items {
            let held = crate::auth::permissions_in(&mut *s, actor, org.id).await?;
            seen.push(org.as_seen_with(held.unwrap_or_default()));
        }
        paged.items = seen;
        Ok(paged)
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
        let before = tx
            .organization(id)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", id))?;
        let mut org = before.clone();
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
            md.apply_within_limit("public_metadata", &mut org.public_metadata)?;
        }
        if let Some(md) = patch.private_metadata {
            md.apply_within_limit("private_metadata", &mut org.private_metadata)?;
        }
        org.updated_at = Timestamp::now();
        tx.update_organization(&org).await?;
        let changes = Changes::default()
            .field("name", &before.name, &org.name)
            .field("slug", &before.slug, &org.slug)
            .field(
                "max_allowed_memberships",
                &before.max_allowed_memberships,
                &org.max_allowed_memberships,
            )
            .field(
                "admin_delete_enabled",
                &before.admin_delete_enabled,
                &org.admin_delete_enabled,
            )
            .metadata(
                "public_metadata",
                &before.public_metadata,
                &org.public_metadata,
            )
            .metadata(
                "private_metadata",
                &before.private_metadata,
                &org.private_metadata,
            );
        if !changes.is_empty() {
            tx.insert_events(&[Event::new(
                ctx,
                Some(actor),
                Some(id),
                EventType::OrganizationUpdated,
                EventObject::Organization(org.clone()),
            )])
            .await?;
        }
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(id),
            "organization.updated",
            ("organization", id.to_string()),
            changes.into_details(),
        )])
        .await?;
        commit(tx).await?;
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
        tx.insert_events(&[Event::new(
            ctx,
            Some(actor),
            Some(id),
            EventType::OrganizationDeleted,
            EventObject::Organization(org.clone()),
        )])
        .await?;
        commit(tx).await?;
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
/// Creates an organization, its built-in roles and, if there is a creator, their admin
/// membership, with the events of both (`organization.created`, `membership.created`).
pub(super) async fn create_organization_in(
    tx: &mut dyn Session,
    input: NewOrganization,
    creator: Option<UserId>,
    ctx: &RequestContext,
    actor: Option<&Actor>,
) -> CoreResult<(Organization, Option<Membership>)> {
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
        public_metadata: within_metadata_limit("public_metadata", input.public_metadata)?,
        private_metadata: within_metadata_limit("private_metadata", input.private_metadata)?,
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
    let mut events = vec![Event::new(
        ctx,
        actor,
        Some(org.id),
        EventType::OrganizationCreated,
        EventObject::Organization(org.clone()),
    )];
    let mut first_admin = None;
    if let (Some(user), Some(role)) = (creator, admin_role) {
        let m = Membership {
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
            external_id: None,
            directory_user_name: None,
        };
        tx.insert_membership(&m).await?;
        events.push(Event::new(
            ctx,
            actor,
            Some(org.id),
            EventType::MembershipCreated,
            EventObject::Membership(m.clone()),
        ));
        first_admin = Some(m);
    }
    tx.insert_events(&events).await?;
    Ok((org, first_admin))
}

/// Organization ids by slug, as last read: a removal named by slug queues at once, without
/// reading its organization first (`Roster::remove_in_organization_named`). An entry may be
/// stale (the slug renamed, or taken by another organization, here or on another server):
/// what makes it safe is that the removal's transaction checks, under the organization's lock,
/// that the slug still names it (`RemovalRequest::org_slug`). So entries are never updated
/// when a slug changes; one found stale is dropped and read again.
#[derive(Default)]
pub(super) struct SlugIds(std::sync::Mutex<std::collections::HashMap<String, OrganizationId>>);

/// The most slugs kept: a map this full is emptied and filled again by the slugs in use.
const MAX_SLUG_IDS: usize = 4096;

impl SlugIds {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, OrganizationId>> {
        // Each change is one call on the map: a panic elsewhere cannot leave it half-changed.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn get(&self, slug: &str) -> Option<OrganizationId> {
        self.map().get(slug).copied()
    }

    pub(super) fn remember(&self, slug: &str, id: OrganizationId) {
        let mut map = self.map();
        if map.len() >= MAX_SLUG_IDS && !map.contains_key(slug) {
            map.clear();
        }
        map.insert(slug.to_owned(), id);
    }

    pub(super) fn forget(&self, slug: &str, id: OrganizationId) {
        let mut map = self.map();
        if map.get(slug) == Some(&id) {
            map.remove(slug);
        }
    }
}

/// `org` (read by what named it) as `actor` may see it: not found if it is not there, or if
/// the actor holds nothing in it.
async fn as_seen_by(
    s: &mut dyn Session,
    actor: &Actor,
    org: Option<Organization>,
    named: impl std::fmt::Display,
) -> CoreResult<Organization> {
    let org = org.ok_or_else(|| CoreError::not_found("organization", &named))?;
    match crate::auth::permissions_in(s, actor, org.id).await? {
        Some(held) => Ok(org.as_seen_with(held)),
        None => Err(CoreError::not_found("organization", named)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_id_is_forgotten_but_a_newer_one_read_meanwhile_is_kept() {
        let ids = SlugIds::default();
        let (old, new) = (OrganizationId::new(), OrganizationId::new());
        ids.remember("acme", old);
        assert_eq!(ids.get("acme"), Some(old));
        ids.remember("acme", new);
        ids.forget("acme", old);
        assert_eq!(ids.get("acme"), Some(new), "another request read it afresh");
        ids.forget("acme", new);
        assert_eq!(ids.get("acme"), None);
    }

    #[test]
    fn a_full_map_starts_over_rather_than_growing() {
        let ids = SlugIds::default();
        for i in 0..MAX_SLUG_IDS {
            ids.remember(&format!("org-{i}"), OrganizationId::new());
        }
        let kept = OrganizationId::new();
        ids.remember("org-0", kept);
        assert_eq!(
            ids.map().len(),
            MAX_SLUG_IDS,
            "a slug kept already is replaced"
        );
        ids.remember("one-more", OrganizationId::new());
        assert_eq!(ids.map().len(), 1);
        assert_eq!(ids.get("org-0"), None);
        assert!(ids.get("one-more").is_some());
    }
}
