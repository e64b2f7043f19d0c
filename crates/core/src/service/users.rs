//! Users: instance-level accounts. Only an instance admin creates or lists them; a user reads,
//! updates and deletes themselves. Deleting a user removes their memberships everywhere, under
//! the same last-admin guard as any removal.

use serde_json::json;

use super::removal::remove_deleted_users_membership;
use super::{
    RequestContext, Roster, audit_event, may_manage_user, only_instance_admins, paged, probe,
    validate,
};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventObject, EventType};
use crate::ids::*;
use crate::model::*;
use crate::permissions::Actor;
use crate::service::idempotency::commit;
use crate::store::Session;
use crate::timestamp::Timestamp;

#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub image_url: Option<Option<String>>,
}

impl Roster {
    pub async fn create_user(
        &self,
        actor: Option<&Actor>,
        input: NewUser,
        ctx: &RequestContext,
    ) -> CoreResult<User> {
        only_instance_admins(actor, "users:create")?;
        let now = Timestamp::now();
        let user = User {
            id: UserId::new(),
            email: validate::email("email", &input.email)?,
            first_name: validate::optional_text("first_name", input.first_name)?,
            last_name: validate::optional_text("last_name", input.last_name)?,
            username: validate::optional_text("username", input.username)?,
            image_url: validate::optional_text("image_url", input.image_url)?,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.begin().await?;
        if tx.user_by_email(&user.email).await?.is_some() {
            return Err(CoreError::conflict(
                "email_taken",
                format!("a user with email `{}` already exists", user.email),
            ));
        }
        insert_new_user(&mut *tx, actor, ctx, &user, None).await?;
        commit(tx).await?;
        Ok(user)
    }

    pub async fn user(&self, actor: &Actor, id: UserId) -> CoreResult<User> {
        may_manage_user(actor, id)?;
        let mut s = self.store.read().await?;
        s.user(id)
            .await?
            .ok_or_else(|| CoreError::not_found("user", id))
    }

    pub async fn list_users(
        &self,
        actor: &Actor,
        filter: &UserFilter,
        page: Page,
    ) -> CoreResult<Paged<User>> {
        only_instance_admins(Some(actor), "users:list")?;
        let mut s = self.store.read().await?;
        let rows = s.list_users(filter, probe(page)?).await?;
        Ok(paged(rows, page, |u| u.id.0))
    }

    pub async fn count_users(&self, actor: &Actor, filter: &UserFilter) -> CoreResult<i64> {
        only_instance_admins(Some(actor), "users:list")?;
        self.store.read().await?.count_users(filter).await
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        id: UserId,
        patch: UserPatch,
        ctx: &RequestContext,
    ) -> CoreResult<User> {
        may_manage_user(actor, id)?;
        let mut tx = self.store.begin().await?;
        let before = tx
            .user(id)
            .await?
            .ok_or_else(|| CoreError::not_found("user", id))?;
        let mut user = before.clone();
        if let Some(v) = patch.first_name {
            user.first_name = validate::optional_text("first_name", v)?;
        }
        if let Some(v) = patch.last_name {
            user.last_name = validate::optional_text("last_name", v)?;
        }
        if let Some(v) = patch.username {
            user.username = validate::optional_text("username", v)?;
        }
        if let Some(v) = patch.image_url {
            user.image_url = validate::optional_text("image_url", v)?;
        }
        let changed = user != before;
        user.updated_at = Timestamp::now();
        tx.update_user(&user).await?;
        if changed {
            let orgs = tx.organizations_of_user(id).await?;
            tx.insert_events(&user_events(
                ctx,
                Some(actor),
                EventType::UserUpdated,
                &user,
                &orgs,
            ))
            .await?;
        }
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            None,
            "user.updated",
            ("user", id.to_string()),
            json!({}),
        )])
        .await?;
        commit(tx).await?;
        Ok(user)
    }

    /// Deletes a user and their memberships, refusing if they are the last active admin of
    /// any organization. Organizations are locked in id order so that two deletions cannot
    /// deadlock on each other.
    pub async fn delete_user(
        &self,
        actor: &Actor,
        id: UserId,
        ctx: &RequestContext,
    ) -> CoreResult<User> {
        may_manage_user(actor, id)?;
        let mut tx = self.store.begin().await?;
        let user = tx
            .user(id)
            .await?
            .ok_or_else(|| CoreError::not_found("user", id))?;
        let mut orgs = tx.organizations_of_user(id).await?;
        orgs.sort();
        // The same removal as any other, in each organization, all in one transaction.
        for &org in &orgs {
            tx.lock_organization(org).await?;
            if let Some(m) = tx.membership_by_user(org, id).await? {
                remove_deleted_users_membership(&mut *tx, org, m, actor, ctx).await?;
            }
        }
        tx.delete_user(id).await?;
        // Nothing is kept of a deleted person: their former-member records go everywhere.
        tx.delete_former_members_of_user(id).await?;
        tx.insert_events(&user_events(
            ctx,
            Some(actor),
            EventType::UserDeleted,
            &user,
            &orgs,
        ))
        .await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            None,
            "user.deleted",
            ("user", id.to_string()),
            json!({}),
        )])
        .await?;
        commit(tx).await?;
        Ok(user)
    }
}

/// A change to `user`'s events: one for each organization they belong to (whose endpoints
/// learn of it), or one of no organization while they belong to none.
/// Writes a new user, its `user.created` event (in `org`, where it was made for one) and its
/// audit event.
pub(super) async fn insert_new_user(
    tx: &mut dyn Session,
    actor: Option<&Actor>,
    ctx: &RequestContext,
    user: &User,
    org: Option<OrganizationId>,
) -> CoreResult<()> {
    tx.insert_user(user).await?;
    let orgs: Vec<_> = org.into_iter().collect();
    tx.insert_events(&user_events(
        ctx,
        actor,
        EventType::UserCreated,
        user,
        &orgs,
    ))
    .await?;
    tx.insert_audit_events(&[audit_event(
        ctx,
        actor,
        org,
        "user.created",
        ("user", user.id.to_string()),
        json!({}),
    )])
    .await
}

fn user_events(
    ctx: &RequestContext,
    actor: Option<&Actor>,
    event_type: EventType,
    user: &User,
    orgs: &[OrganizationId],
) -> Vec<Event> {
    let event = |org| Event::new(ctx, actor, org, event_type, EventObject::User(user.clone()));
    if orgs.is_empty() {
        vec![event(None)]
    } else {
        orgs.iter().map(|&o| event(Some(o))).collect()
    }
}
