//! Credentials: user, identity and service tokens, instance admin keys, member-owned passwords,
//! and the bootstrap of a fresh instance. Secrets are generated here, returned once in
//! `CreatedToken`/`NewPassword`'s reply, and stored only as hashes.

use serde_json::json;

use super::organizations::create_organization_in;
use super::roles::refuse_escalation;
use super::{
    NewOrganization, RequestContext, Roster, audit_event, may_manage_user, only_instance_admins,
    paged, probe, validate,
};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventObject, EventType};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission, PermissionSet, Principal};
use crate::secrets::{PlainSecret, format_token};
use crate::service::idempotency::commit;
use crate::store::Session;
use crate::timestamp::Timestamp;

/// A token just created: the stored record and, this once, its secret.
#[derive(Debug)]
pub struct CreatedToken {
    pub token: Token,
    pub secret: PlainSecret,
}

impl CreatedToken {
    /// The full bearer token, `rst_<id>_<secret>`.
    pub fn bearer(&self) -> String {
        format_token(self.token.id, &self.secret)
    }
}

#[derive(Clone, Debug, Default)]
pub struct NewServiceToken {
    pub name: Option<String>,
    pub permissions: Vec<String>,
    /// Lifetime in seconds; none means it does not expire.
    pub ttl_seconds: Option<i64>,
}

/// A password just created, with its secret shown this once.
#[derive(Debug)]
pub struct NewPassword {
    pub password: Password,
    pub secret: PlainSecret,
}

/// What `roster bootstrap` made.
#[derive(Debug)]
pub struct Bootstrap {
    pub organization: Organization,
    pub user: User,
    pub membership: Membership,
    pub admin_key: CreatedToken,
}

/// A new token of `kind`, its secret, and (when an admin key creates it) which key did.
fn new_token(kind: TokenKind, name: String, by: Option<&Actor>) -> (Token, PlainSecret) {
    let secret = PlainSecret::generate();
    let token = Token {
        id: TokenId::new(),
        kind,
        organization_id: None,
        user_id: None,
        identity_id: None,
        created_by: None,
        created_by_key: by.and_then(Actor::admin_key),
        name,
        secret_hash: secret.hash(),
        permissions: PermissionSet::EMPTY,
        expires_at: None,
        created_at: Timestamp::now(),
    };
    (token, secret)
}

/// A service token of `org`; any other token, or none, is "not found".
async fn service_token_of(
    s: &mut dyn Session,
    org: OrganizationId,
    id: TokenId,
) -> CoreResult<Token> {
    match s.token(id).await? {
        Some(t) if t.kind == TokenKind::Service && t.organization_id == Some(org) => Ok(t),
        _ => Err(CoreError::not_found("token", id)),
    }
}

fn expiry(ttl: Option<i64>) -> CoreResult<Option<Timestamp>> {
    match ttl {
        None => Ok(None),
        Some(s) if s > 0 && s <= 10 * 365 * 24 * 3600 => {
            Ok(Some(Timestamp(Timestamp::now().0 + s * 1000)))
        }
        Some(_) => Err(CoreError::invalid(
            "ttl",
            "ttl must be a positive number of seconds, at most ten years",
        )),
    }
}

impl Roster {
    /// Creates the first user, an organization with that user as admin, and an instance admin
    /// key, in one transaction. A second run with the same organization name is a conflict.
    pub async fn bootstrap(&self, org_name: &str, email: &str) -> CoreResult<Bootstrap> {
        let ctx = RequestContext {
            request_id: Some("bootstrap".into()),
        };
        let email = validate::email("email", email)?;
        let mut tx = self.store.begin().await?;
        let now = Timestamp::now();
        let user = match tx.user_by_email(&email).await? {
            Some(u) => u,
            None => {
                let u = User {
                    id: UserId::new(),
                    email,
                    first_name: None,
                    last_name: None,
                    username: None,
                    image_url: None,
                    created_at: now,
                    updated_at: now,
                };
                tx.insert_user(&u).await?;
                tx.insert_events(&[Event::new(
                    &ctx,
                    None,
                    None,
                    EventType::UserCreated,
                    EventObject::User(u.clone()),
                )])
                .await?;
                u
            }
        };
        let (org, membership) = create_organization_in(
            &mut *tx,
            NewOrganization {
                name: org_name.to_owned(),
                ..Default::default()
            },
            Some(user.id),
            &ctx,
            None,
        )
        .await?;
        let membership =
            membership.ok_or_else(|| CoreError::internal("bootstrap membership missing"))?;
        let (token, secret) = new_token(TokenKind::InstanceAdmin, "bootstrap".into(), None);
        tx.insert_token(&token).await?;
        tx.insert_audit_events(&[
            audit_event(
                &ctx,
                None,
                Some(org.id),
                "organization.created",
                ("organization", org.id.to_string()),
                json!({"bootstrap": true}),
            ),
            audit_event(
                &ctx,
                None,
                None,
                "admin_key.created",
                ("token", token.id.to_string()),
                json!({}),
            ),
        ])
        .await?;
        commit(tx).await?;
        Ok(Bootstrap {
            organization: org,
            user,
            membership,
            admin_key: CreatedToken { token, secret },
        })
    }

    /// A new instance admin key (CLI only: there is no HTTP route that mints one).
    pub async fn create_admin_key(&self, name: &str) -> CoreResult<CreatedToken> {
        let (token, secret) = new_token(
            TokenKind::InstanceAdmin,
            validate::name("name", name)?,
            None,
        );
        let mut tx = self.store.begin().await?;
        tx.insert_token(&token).await?;
        tx.insert_audit_events(&[audit_event(
            &RequestContext::default(),
            None,
            None,
            "admin_key.created",
            ("token", token.id.to_string()),
            json!({}),
        )])
        .await?;
        commit(tx).await?;
        Ok(CreatedToken { token, secret })
    }

    /// The instance admin keys (never their secrets), for an instance admin over HTTP or for
    /// the CLI (`None`: it holds the database already).
    pub async fn list_admin_keys(
        &self,
        actor: Option<&Actor>,
        page: Page,
    ) -> CoreResult<Paged<Token>> {
        only_instance_admins(actor, "admin_keys:read")?;
        let mut s = self.store.read().await?;
        let rows = s
            .list_tokens(TokenKind::InstanceAdmin, None, None, probe(page)?)
            .await?;
        Ok(paged(rows, page, |t| t.id.0))
    }

    /// Revokes an instance admin key at once (a leaked one, say), audited. A key may revoke
    /// itself; the CLI can always mint another.
    pub async fn revoke_admin_key(
        &self,
        actor: Option<&Actor>,
        id: TokenId,
        ctx: &RequestContext,
    ) -> CoreResult<Token> {
        only_instance_admins(actor, "admin_keys:write")?;
        let mut tx = self.store.begin().await?;
        let key = match tx.token(id).await? {
            Some(t) if t.kind == TokenKind::InstanceAdmin => t,
            _ => return Err(CoreError::not_found("admin key", id)),
        };
        tx.delete_token(id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            actor,
            None,
            "admin_key.revoked",
            ("token", id.to_string()),
            json!({"name": key.name}),
        )])
        .await?;
        commit(tx).await?;
        Ok(key)
    }

    /// A token for a user: created by the user themselves or by an instance admin.
    pub async fn create_user_token(
        &self,
        actor: &Actor,
        user: UserId,
        name: &str,
        ttl: Option<i64>,
        ctx: &RequestContext,
    ) -> CoreResult<CreatedToken> {
        may_manage_user(actor, user)?;
        let (mut token, secret) =
            new_token(TokenKind::User, validate::name("name", name)?, Some(actor));
        token.user_id = Some(user);
        token.created_by = actor.user_id();
        token.expires_at = expiry(ttl)?;
        let mut tx = self.store.begin().await?;
        tx.user(user)
            .await?
            .ok_or_else(|| CoreError::not_found("user", user))?;
        tx.insert_token(&token).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            None,
            "user_token.created",
            ("token", token.id.to_string()),
            json!({"user_id": user}),
        )])
        .await?;
        commit(tx).await?;
        Ok(CreatedToken { token, secret })
    }

    pub async fn create_identity_token(
        &self,
        actor: &Actor,
        identity: IdentityId,
        name: &str,
        ctx: &RequestContext,
    ) -> CoreResult<CreatedToken> {
        let org = self.identity(actor, identity).await?.organization_id;
        let (mut tx, _) = self
            .write_in(actor, org, Permission::IdentitiesWrite)
            .await?;
        tx.identity(identity)
            .await?
            .ok_or_else(|| CoreError::not_found("identity", identity))?;
        let (mut token, secret) = new_token(
            TokenKind::Identity,
            validate::name("name", name)?,
            Some(actor),
        );
        token.organization_id = Some(org);
        token.identity_id = Some(identity);
        token.created_by = actor.user_id();
        tx.insert_token(&token).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "identity_token.created",
            ("token", token.id.to_string()),
            json!({"identity_id": identity}),
        )])
        .await?;
        commit(tx).await?;
        Ok(CreatedToken { token, secret })
    }

    /// An organization service token. It may only be given accesses its creator holds.
    pub async fn create_service_token(
        &self,
        actor: &Actor,
        org: OrganizationId,
        input: NewServiceToken,
        ctx: &RequestContext,
    ) -> CoreResult<CreatedToken> {
        let (mut tx, held) = self
            .write_in(actor, org, Permission::ServiceTokensWrite)
            .await?;
        let permissions = PermissionSet::parse_keys(&input.permissions, "permissions")?;
        refuse_escalation(held, permissions)?;
        let name = validate::optional_text("name", input.name)?
            .unwrap_or_else(|| "service token".to_owned());
        let (mut token, secret) = new_token(TokenKind::Service, name, Some(actor));
        token.organization_id = Some(org);
        token.created_by = match &actor.principal {
            Principal::ServiceToken { created_by, .. } => *created_by,
            _ => actor.user_id(),
        };
        token.permissions = permissions;
        token.expires_at = expiry(input.ttl_seconds)?;
        tx.insert_token(&token).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "service_token.created",
            ("token", token.id.to_string()),
            json!({"permissions": permissions.keys()}),
        )])
        .await?;
        commit(tx).await?;
        Ok(CreatedToken { token, secret })
    }

    pub async fn list_service_tokens(
        &self,
        actor: &Actor,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Paged<Token>> {
        let mut s = self
            .read_in(actor, org, Permission::ServiceTokensRead)
            .await?;
        let rows = s
            .list_tokens(TokenKind::Service, Some(org), None, probe(page)?)
            .await?;
        Ok(paged(rows, page, |t| t.id.0))
    }

    pub async fn count_service_tokens(
        &self,
        actor: &Actor,
        org: OrganizationId,
    ) -> CoreResult<i64> {
        let mut s = self
            .read_in(actor, org, Permission::ServiceTokensRead)
            .await?;
        s.count_tokens(TokenKind::Service, org).await
    }

    pub async fn service_token(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: TokenId,
    ) -> CoreResult<Token> {
        let mut s = self
            .read_in(actor, org, Permission::ServiceTokensRead)
            .await?;
        service_token_of(&mut *s, org, id).await
    }

    pub async fn delete_service_token(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: TokenId,
        ctx: &RequestContext,
    ) -> CoreResult<Token> {
        let (mut tx, _) = self
            .write_in(actor, org, Permission::ServiceTokensWrite)
            .await?;
        let token = service_token_of(&mut *tx, org, id).await?;
        tx.delete_token(id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "service_token.deleted",
            ("token", id.to_string()),
            json!({}),
        )])
        .await?;
        commit(tx).await?;
        Ok(token)
    }

    /// Replaces a service token's permissions; nobody grants what they do not hold.
    pub async fn set_service_token_permissions(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: TokenId,
        permissions: PermissionSet,
        ctx: &RequestContext,
    ) -> CoreResult<Token> {
        let (mut tx, held) = self
            .write_in(actor, org, Permission::ServiceTokensWrite)
            .await?;
        let mut token = service_token_of(&mut *tx, org, id).await?;
        refuse_escalation(held, permissions)?;
        let before = token.permissions;
        token.permissions = permissions;
        tx.update_token_permissions(id, permissions).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "service_token.permissions_changed",
            ("token", id.to_string()),
            json!({"from": before.keys(), "to": permissions.keys()}),
        )])
        .await?;
        commit(tx).await?;
        Ok(token)
    }

    pub async fn list_user_tokens(
        &self,
        actor: &Actor,
        user: UserId,
        page: Page,
    ) -> CoreResult<Paged<Token>> {
        may_manage_user(actor, user)?;
        let mut s = self.store.read().await?;
        let rows = s
            .list_tokens(TokenKind::User, None, Some(user), probe(page)?)
            .await?;
        Ok(paged(rows, page, |t| t.id.0))
    }

    pub async fn delete_user_token(
        &self,
        actor: &Actor,
        user: UserId,
        id: TokenId,
        ctx: &RequestContext,
    ) -> CoreResult<Token> {
        may_manage_user(actor, user)?;
        let mut tx = self.store.begin().await?;
        let token = match tx.token(id).await? {
            Some(t) if t.kind == TokenKind::User && t.user_id == Some(user) => t,
            _ => return Err(CoreError::not_found("token", id)),
        };
        tx.delete_token(id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            None,
            "user_token.deleted",
            ("token", id.to_string()),
            json!({"user_id": user}),
        )])
        .await?;
        commit(tx).await?;
        Ok(token)
    }

    /// A password owned by `owner` (by default the calling user), who must be a member.
    pub async fn create_password(
        &self,
        actor: &Actor,
        org: OrganizationId,
        name: &str,
        owner: Option<UserId>,
        ctx: &RequestContext,
    ) -> CoreResult<NewPassword> {
        let (mut tx, _) = self
            .write_in(actor, org, Permission::PasswordsWrite)
            .await?;
        let owner = owner.or(actor.user_id()).ok_or_else(|| {
            CoreError::invalid("user_id", "name the member who owns the password")
        })?;
        if tx.membership_by_user(org, owner).await?.is_none() {
            return Err(CoreError::invalid(
                "user_id",
                format!("user {owner} is not a member of this organization"),
            ));
        }
        let secret = PlainSecret::generate();
        let password = Password {
            id: PasswordId::new(),
            organization_id: org,
            user_id: owner,
            name: validate::name("name", name)?,
            secret_hash: secret.hash(),
            created_at: Timestamp::now(),
        };
        tx.insert_password(&password).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "password.created",
            ("password", password.id.to_string()),
            json!({"user_id": owner}),
        )])
        .await?;
        commit(tx).await?;
        Ok(NewPassword { password, secret })
    }

    pub async fn list_passwords(
        &self,
        actor: &Actor,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Paged<Password>> {
        let mut s = self.read_in(actor, org, Permission::PasswordsRead).await?;
        let rows = s.list_passwords(org, probe(page)?).await?;
        Ok(paged(rows, page, |p| p.id.0))
    }

    pub async fn delete_password(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: PasswordId,
        ctx: &RequestContext,
    ) -> CoreResult<Password> {
        let (mut tx, _) = self
            .write_in(actor, org, Permission::PasswordsWrite)
            .await?;
        let p = tx
            .password(org, id)
            .await?
            .ok_or_else(|| CoreError::not_found("password", id))?;
        tx.delete_password(org, id).await?;
        tx.insert_audit_events(&[audit_event(
            ctx,
            Some(actor),
            Some(org),
            "password.deleted",
            ("password", id.to_string()),
            json!({}),
        )])
        .await?;
        commit(tx).await?;
        Ok(p)
    }

    pub async fn list_audit_events(
        &self,
        actor: &Actor,
        org: OrganizationId,
        filter: &AuditFilter,
        page: Page,
    ) -> CoreResult<Paged<AuditEvent>> {
        let mut s = self.read_in(actor, org, Permission::AuditRead).await?;
        let rows = s.list_audit_events(Some(org), filter, probe(page)?).await?;
        Ok(paged(rows, page, |e| e.id.0))
    }

    /// Every audit event of the instance, those of no organization (users, their tokens, admin
    /// keys) included: for instance admins only.
    pub async fn list_instance_audit_events(
        &self,
        actor: &Actor,
        filter: &AuditFilter,
        page: Page,
    ) -> CoreResult<Paged<AuditEvent>> {
        only_instance_admins(Some(actor), "audit:read")?;
        let mut s = self.store.read().await?;
        let rows = s.list_audit_events(None, filter, probe(page)?).await?;
        Ok(paged(rows, page, |e| e.id.0))
    }
}
