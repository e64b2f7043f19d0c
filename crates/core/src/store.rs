//! The storage boundary. A `Store` hands out `Session`s: a read session (no transaction) or a
//! write transaction. Every write happens in a transaction that first locks its organization
//! (`lock_organization`), so changes to one organization's memberships are serialised and the
//! guards the use-cases check inside it hold when the transaction commits.
//!
//! A session's rows are split by resource, a trait each (`OrganizationRows`, `UserRows`, …),
//! which `Session` gathers: callers reach them all through a `dyn Session`; a store implements
//! each in a file of its own.
//!
//! Implementations live in the store crates; this module knows no SQL.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::events::{Event, EventFilter, PurgedEvents};
use crate::idempotency::IdempotencyRecord;
use crate::ids::*;
use crate::model::*;
use crate::permissions::PermissionSet;
use crate::timestamp::Timestamp;
use crate::webhooks::*;

/// Every row trait, for a store's `use …::rows::*`.
pub mod rows {
    pub use super::{
        AuditRows, CredentialRows, EventRows, FormerMemberRows, IdempotencyRows, IdentityRows,
        MembershipRows, OrganizationRows, ProjectRows, RoleRows, UserRows, WebhookRows,
    };
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A session for reads; it sees committed data and must not be used to write.
    async fn read(&self) -> CoreResult<Box<dyn Session>>;
    /// A write transaction. Dropping it without `commit` rolls everything back.
    async fn begin(&self) -> CoreResult<Box<dyn Session>>;
    /// A write transaction that holds the row locks of the organizations `orgs` from its
    /// start (taken in id order, the order of every transaction that locks several), so that
    /// what it reads sees everything the transactions it waited for committed. On PostgreSQL a
    /// statement that waits for a lock keeps the snapshot it began with: a lock taken in the
    /// statement that also reads (`Session::lock_organizations_reading_tokens`) would read from
    /// before the wait. A store whose every transaction already holds one lock for all writes
    /// (SQLite's writer) begins as `begin` does.
    async fn begin_locking(&self, _orgs: &[OrganizationId]) -> CoreResult<Box<dyn Session>> {
        self.begin().await
    }
    /// A write transaction whose commit does not wait to reach the disk: a power cut or a crash
    /// of the database server may lose it (the whole of it, never a part), a crash of roster's
    /// process does not. Only for writes whose loss means no more than doing their work again.
    async fn begin_lazily(&self) -> CoreResult<Box<dyn Session>>;
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> CoreResult<()>;
    /// Which backend this is ("sqlite", "postgres").
    fn backend(&self) -> &'static str;
    /// How many removal batches should run at once, each over organizations of its own (group
    /// commit's lanes). One where a single writer runs every write in turn: each batch then
    /// takes every removal waiting, whatever its organization.
    fn write_lanes(&self) -> usize {
        1
    }
    /// How many membership events this store's transactions have committed since it opened.
    fn events_written(&self) -> u64 {
        0
    }
    /// From now on, a transaction that writes deliveries while `to` is open claims them and
    /// hands them to `to` when it commits. A store that cannot leaves every delivery to be
    /// claimed by the worker's turns.
    fn hand_deliveries_to(&self, _to: std::sync::Arc<crate::webhooks::DeliveryHandOff>) {}
}

/// Organizations: rows, the slug lookup, the member count kept with each.
#[async_trait]
pub trait OrganizationRows: Send {
    async fn insert_organization(&mut self, org: &Organization) -> CoreResult<()>;
    async fn organization(&mut self, id: OrganizationId) -> CoreResult<Option<Organization>>;
    async fn organization_by_slug(&mut self, slug: &str) -> CoreResult<Option<Organization>>;
    /// Organizations in id order, filtered.
    async fn list_organizations(
        &mut self,
        filter: &OrganizationFilter,
        page: Page,
    ) -> CoreResult<Vec<Organization>>;
    async fn count_organizations(&mut self, filter: &OrganizationFilter) -> CoreResult<i64>;
    async fn update_organization(&mut self, org: &Organization) -> CoreResult<()>;
    async fn delete_organization(&mut self, id: OrganizationId) -> CoreResult<()>;
    async fn count_memberships(&mut self, org: OrganizationId) -> CoreResult<i64>;
}

/// Users, and the organizations each belongs to.
#[async_trait]
pub trait UserRows: Send {
    async fn insert_user(&mut self, user: &User) -> CoreResult<()>;
    async fn user(&mut self, id: UserId) -> CoreResult<Option<User>>;
    async fn user_by_email(&mut self, email: &str) -> CoreResult<Option<User>>;
    async fn users_by_ids(&mut self, ids: &[UserId]) -> CoreResult<Vec<User>>;
    async fn list_users(&mut self, filter: &UserFilter, page: Page) -> CoreResult<Vec<User>>;
    async fn count_users(&mut self, filter: &UserFilter) -> CoreResult<i64>;
    async fn update_user(&mut self, user: &User) -> CoreResult<()>;
    async fn delete_user(&mut self, id: UserId) -> CoreResult<()>;
    /// The organizations a user holds a membership in.
    async fn organizations_of_user(&mut self, user: UserId) -> CoreResult<Vec<OrganizationId>>;
}

/// Each organization's roles.
#[async_trait]
pub trait RoleRows: Send {
    async fn insert_role(&mut self, role: &Role) -> CoreResult<()>;
    async fn role(&mut self, org: OrganizationId, id: RoleId) -> CoreResult<Option<Role>>;
    async fn role_by_key(&mut self, org: OrganizationId, key: &str) -> CoreResult<Option<Role>>;
    async fn list_roles(&mut self, org: OrganizationId) -> CoreResult<Vec<Role>>;
    async fn update_role(&mut self, role: &Role) -> CoreResult<()>;
    async fn delete_role(&mut self, org: OrganizationId, id: RoleId) -> CoreResult<()>;
    /// Whether any membership or identity holds the role.
    async fn role_in_use(&mut self, org: OrganizationId, id: RoleId) -> CoreResult<bool>;
}

/// Organization memberships, and the permissions they give.
#[async_trait]
pub trait MembershipRows: Send {
    async fn insert_membership(&mut self, m: &Membership) -> CoreResult<()>;
    async fn membership(
        &mut self,
        org: OrganizationId,
        id: MembershipId,
    ) -> CoreResult<Option<Membership>>;
    async fn membership_by_user(
        &mut self,
        org: OrganizationId,
        user: UserId,
    ) -> CoreResult<Option<Membership>>;
    /// The pending invitation of `email` (any case) to `org`, if there is one.
    async fn pending_invitation(
        &mut self,
        org: OrganizationId,
        email: &str,
    ) -> CoreResult<Option<Membership>>;
    async fn list_memberships(
        &mut self,
        org: OrganizationId,
        filter: &MembershipFilter,
        page: Page,
    ) -> CoreResult<Vec<Membership>>;
    /// The memberships of `org` among `ids` (in no particular order; unknown ids are skipped).
    async fn count_matching_memberships(
        &mut self,
        org: OrganizationId,
        filter: &MembershipFilter,
    ) -> CoreResult<i64>;
    /// The memberships with these ids in any of the organizations `orgs`.
    async fn memberships_by_ids(
        &mut self,
        orgs: &[OrganizationId],
        ids: &[MembershipId],
    ) -> CoreResult<Vec<Membership>>;
    /// The memberships of these users in any of the organizations `orgs`.
    async fn memberships_by_users(
        &mut self,
        orgs: &[OrganizationId],
        users: &[UserId],
    ) -> CoreResult<Vec<Membership>>;
    async fn update_membership(&mut self, m: &Membership) -> CoreResult<()>;
    async fn delete_memberships(
        &mut self,
        org: OrganizationId,
        ids: &[MembershipId],
    ) -> CoreResult<u64>;
    /// Users with an accepted, active membership holding the role `admin`.
    async fn count_active_admins(&mut self, org: OrganizationId) -> CoreResult<i64>;
    /// The permissions a user holds in an organization through an accepted, active membership.
    async fn user_permissions(
        &mut self,
        org: OrganizationId,
        user: UserId,
    ) -> CoreResult<Option<PermissionSet>>;
    /// The permissions a machine identity holds through its role in its organization.
    async fn identity_permissions(
        &mut self,
        org: OrganizationId,
        identity: IdentityId,
    ) -> CoreResult<Option<PermissionSet>>;
}

/// Projects and their user memberships.
#[async_trait]
pub trait ProjectRows: Send {
    async fn insert_project(&mut self, p: &Project) -> CoreResult<()>;
    async fn project(&mut self, id: ProjectId) -> CoreResult<Option<Project>>;
    async fn list_projects(&mut self, org: OrganizationId, page: Page) -> CoreResult<Vec<Project>>;
    async fn update_project(&mut self, p: &Project) -> CoreResult<()>;
    /// Deletes the project and its memberships; returns its identities' memberships.
    async fn delete_project(&mut self, id: ProjectId)
    -> CoreResult<Vec<IdentityProjectMembership>>;
    async fn insert_project_membership(&mut self, pm: &ProjectMembership) -> CoreResult<()>;
    async fn project_membership(
        &mut self,
        project: ProjectId,
        id: ProjectMembershipId,
    ) -> CoreResult<Option<ProjectMembership>>;
    async fn list_project_memberships(
        &mut self,
        project: ProjectId,
        page: Page,
    ) -> CoreResult<Vec<ProjectMembership>>;
    async fn delete_project_membership(
        &mut self,
        project: ProjectId,
        id: ProjectMembershipId,
    ) -> CoreResult<()>;
    /// The cascade of a membership removal: these users' memberships in the org's projects,
    /// returned as deleted.
    async fn delete_project_memberships_of_users(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
    ) -> CoreResult<Vec<CascadedProjectMembership>>;
}

/// Machine identities and their project memberships.
#[async_trait]
pub trait IdentityRows: Send {
    async fn insert_identity(&mut self, i: &Identity) -> CoreResult<()>;
    async fn identity(&mut self, id: IdentityId) -> CoreResult<Option<Identity>>;
    async fn list_identities(
        &mut self,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Vec<Identity>>;
    async fn update_identity(&mut self, i: &Identity) -> CoreResult<()>;
    /// Deletes the identity, its tokens and its project memberships; returns those.
    async fn delete_identity(
        &mut self,
        id: IdentityId,
    ) -> CoreResult<Vec<IdentityProjectMembership>>;
    async fn insert_identity_project_membership(
        &mut self,
        m: &IdentityProjectMembership,
    ) -> CoreResult<()>;
    async fn identity_project_membership(
        &mut self,
        project: ProjectId,
        identity: IdentityId,
    ) -> CoreResult<Option<IdentityProjectMembership>>;
    async fn list_identity_project_memberships(
        &mut self,
        project: ProjectId,
        page: Page,
    ) -> CoreResult<Vec<IdentityProjectMembership>>;
    async fn count_identity_project_memberships(&mut self, project: ProjectId) -> CoreResult<i64>;
    async fn count_identities(&mut self, org: OrganizationId) -> CoreResult<i64>;
    async fn update_identity_project_membership(
        &mut self,
        m: &IdentityProjectMembership,
    ) -> CoreResult<()>;
    async fn delete_identity_project_membership(
        &mut self,
        id: IdentityProjectMembershipId,
    ) -> CoreResult<()>;
}

/// Tokens (user, identity, service, admin keys) and passwords.
#[async_trait]
pub trait CredentialRows: Send {
    async fn insert_token(&mut self, t: &Token) -> CoreResult<()>;
    async fn token(&mut self, id: TokenId) -> CoreResult<Option<Token>>;
    /// The tokens among `ids` that exist, in no particular order.
    async fn tokens_by_ids(&mut self, ids: &[TokenId]) -> CoreResult<Vec<Token>>;
    /// Tokens of one kind, scoped to an organization or (for user tokens) to a user.
    async fn list_tokens(
        &mut self,
        kind: TokenKind,
        org: Option<OrganizationId>,
        user: Option<UserId>,
        page: Page,
    ) -> CoreResult<Vec<Token>>;
    async fn count_tokens(&mut self, kind: TokenKind, org: OrganizationId) -> CoreResult<i64>;
    async fn delete_token(&mut self, id: TokenId) -> CoreResult<()>;
    /// Deletes the user's own tokens (not the service tokens they created); their ids.
    async fn delete_user_tokens(&mut self, user: UserId) -> CoreResult<Vec<TokenId>>;
    async fn update_token_permissions(
        &mut self,
        id: TokenId,
        permissions: PermissionSet,
    ) -> CoreResult<()>;
    /// The service tokens of `org` that `users` created, returned as deleted.
    async fn delete_service_tokens_created_by(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
    ) -> CoreResult<Vec<OwnedBy<TokenId>>>;
    async fn insert_password(&mut self, p: &Password) -> CoreResult<()>;
    async fn password(
        &mut self,
        org: OrganizationId,
        id: PasswordId,
    ) -> CoreResult<Option<Password>>;
    async fn list_passwords(
        &mut self,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Vec<Password>>;
    async fn delete_password(&mut self, org: OrganizationId, id: PasswordId) -> CoreResult<()>;
    /// The passwords of `users` in `org`, returned as deleted.
    async fn delete_passwords_of_users(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
    ) -> CoreResult<Vec<OwnedBy<PasswordId>>>;
}

/// The audit trail.
#[async_trait]
pub trait AuditRows: Send {
    async fn insert_audit_events(&mut self, events: &[AuditEvent]) -> CoreResult<()>;
    /// A page of one organization's audit events, or (`None`) of every event of the instance,
    /// those of no organization included.
    async fn list_audit_events(
        &mut self,
        org: Option<OrganizationId>,
        filter: &AuditFilter,
        page: Page,
    ) -> CoreResult<Vec<AuditEvent>>;
}

/// The outbox: membership events, written in their change's transaction.
#[async_trait]
pub trait EventRows: Send {
    async fn insert_events(&mut self, events: &[Event]) -> CoreResult<()>;
    /// A removal's records together: its audit events, its former members and its membership
    /// events (in one statement where the backend allows it: round trips to PostgreSQL saved).
    async fn insert_removal_records(
        &mut self,
        audit: &[AuditEvent],
        former: &[FormerMember],
        events: &[Event],
    ) -> CoreResult<()>;
    /// A page of one organization's events, oldest first (or newest first if the page says).
    async fn list_events(
        &mut self,
        org: OrganizationId,
        filter: &EventFilter,
        page: Page,
    ) -> CoreResult<Vec<Event>>;
    /// Purges what happened before `before` (event and attempt ids are time-ordered, so an id
    /// bound reads only the old rows): attempts, deliveries no longer pending, and events no
    /// delivery waits for and no former member's record names (they hold its details); then
    /// the endpoints of deleted organizations with nothing pending.
    async fn purge_events_before(&mut self, before: EventId) -> CoreResult<PurgedEvents>;
}

/// Webhook endpoints and the deliveries of events to them. (A delivery is written by
/// `EventRows::insert_events`, for each endpoint of the event's organization that wants it.)
#[async_trait]
pub trait WebhookRows: Send {
    async fn insert_webhook_endpoint(&mut self, e: &WebhookEndpoint) -> CoreResult<()>;
    async fn webhook_endpoint(
        &mut self,
        org: OrganizationId,
        id: WebhookEndpointId,
    ) -> CoreResult<Option<WebhookEndpoint>>;
    async fn list_webhook_endpoints(
        &mut self,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Vec<WebhookEndpoint>>;
    async fn update_webhook_endpoint(&mut self, e: &WebhookEndpoint) -> CoreResult<()>;
    /// Deletes it and the deliveries it is still owed (pending); false if there was none. Its
    /// history (deliveries done or failed, attempts) stays until the purge takes it with its
    /// events, out of sight: nothing reaches it without the endpoint.
    async fn delete_webhook_endpoint(
        &mut self,
        org: OrganizationId,
        id: WebhookEndpointId,
    ) -> CoreResult<bool>;
    /// A page of the endpoint's attempts, newest last (unless the page says otherwise).
    async fn list_webhook_attempts(
        &mut self,
        endpoint: WebhookEndpointId,
        page: Page,
    ) -> CoreResult<Vec<DeliveryAttempt>>;
    /// Makes the delivery of `event` to `endpoint` due again at `now`, whatever its state;
    /// false if there is no such delivery.
    async fn retry_delivery(
        &mut self,
        endpoint: WebhookEndpointId,
        event: EventId,
        now: Timestamp,
    ) -> CoreResult<bool>;
    /// Claims up to `limit` deliveries due at `now` (pending, to an endpoint not disabled,
    /// not claimed by a live lease) until `lease_until`, counting the attempt each is for.
    /// On PostgreSQL rows another node is claiming are skipped, not waited for.
    async fn claim_due_deliveries(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> CoreResult<Vec<ClaimedDelivery>>;
    /// The events of `ids` (a claim's, read after its commit so that the claim holds the
    /// write lock only for its update).
    async fn events_by_ids(&mut self, ids: &[EventId]) -> CoreResult<Vec<crate::events::Event>>;
    /// The endpoints of `ids` that exist, as they are now.
    async fn webhook_endpoints_by_ids(
        &mut self,
        ids: &[WebhookEndpointId],
    ) -> CoreResult<Vec<WebhookEndpoint>>;
    /// When the oldest pending delivery was written, if one is pending.
    async fn oldest_pending_delivery(&mut self) -> CoreResult<Option<Timestamp>>;
    /// Whether a delivery is due at `now` (a read: nothing is claimed).
    async fn any_delivery_due(&mut self, now: Timestamp) -> CoreResult<bool>;
    /// Records attempts and sets their deliveries' states (their leases released), with as
    /// few statements as their outcomes allow.
    async fn record_attempts(&mut self, outcomes: &[AttemptOutcome]) -> CoreResult<()>;
}

/// Former members: what removals removed, kept for the retention window (written by
/// `EventRows::insert_removal_records`).
#[async_trait]
pub trait FormerMemberRows: Send {
    async fn list_former_members(
        &mut self,
        org: OrganizationId,
        filter: &FormerMemberFilter,
        page: Page,
    ) -> CoreResult<Vec<FormerMember>>;
    async fn former_member(
        &mut self,
        org: OrganizationId,
        id: MembershipId,
    ) -> CoreResult<Option<FormerMember>>;
    /// False if there was none.
    async fn delete_former_member(
        &mut self,
        org: OrganizationId,
        id: MembershipId,
    ) -> CoreResult<bool>;
    /// Every record of `user`, in every organization (nothing is kept of a deleted person).
    async fn delete_former_members_of_user(&mut self, user: UserId) -> CoreResult<u64>;
    /// The records whose window closed before `now`; how many.
    async fn purge_expired_former_members(&mut self, now: Timestamp) -> CoreResult<u64>;
}

/// Idempotency records: a key's request and the answer its change gave, written in that
/// change's transaction (`crate::idempotency`).
#[async_trait]
pub trait IdempotencyRows: Send {
    /// `actor`'s record of `key`, unless it expired before `now`.
    async fn idempotency_record(
        &mut self,
        actor: &str,
        key: &str,
        now: Timestamp,
    ) -> CoreResult<Option<IdempotencyRecord>>;
    /// Writes `record` (replacing an expired one of the same caller and key); false, writing
    /// nothing, if a live one is there.
    async fn insert_idempotency_record(&mut self, record: &IdempotencyRecord) -> CoreResult<bool>;
    /// The records that expired before `now`; how many.
    async fn purge_expired_idempotency_records(&mut self, now: Timestamp) -> CoreResult<u64>;
}

/// A read session or a write transaction: the rows of every resource (each a trait of its
/// own, by resource), and what belongs to the transaction itself (commit, the organization's
/// lock, the writes of a batch of removals across tables).
#[async_trait]
pub trait Session:
    OrganizationRows
    + UserRows
    + RoleRows
    + MembershipRows
    + ProjectRows
    + IdentityRows
    + CredentialRows
    + AuditRows
    + EventRows
    + WebhookRows
    + FormerMemberRows
    + IdempotencyRows
    + Send
{
    async fn commit(self: Box<Self>) -> CoreResult<()>;

    /// Takes the organization's write lock for the rest of the transaction; false if the
    /// organization does not exist.
    async fn lock_organization(&mut self, id: OrganizationId) -> CoreResult<bool> {
        Ok(self.lock_organization_slug(id).await?.is_some())
    }

    /// `lock_organization`, returning the organization's slug as it is under the lock (`None`
    /// if the organization does not exist).
    async fn lock_organization_slug(&mut self, id: OrganizationId) -> CoreResult<Option<String>> {
        let locked = self.lock_organization_slugs(&[id]).await?;
        Ok(locked.into_iter().next().map(|(_, slug)| slug))
    }

    /// Takes the locks of the organizations `ids` in id order (the order every transaction
    /// that locks several takes them in, so that none waits for another in a cycle); returns
    /// the id and slug of each that exists.
    async fn lock_organization_slugs(
        &mut self,
        ids: &[OrganizationId],
    ) -> CoreResult<Vec<(OrganizationId, String)>>;

    /// Takes the row locks of the users `ids` in id order, so that transactions deciding by a
    /// user's memberships in several organizations (leaving one's last organization) take
    /// turns. Taken after any organization's lock.
    async fn lock_users(&mut self, ids: &[UserId]) -> CoreResult<()>;

    /// `tokens_by_ids(tokens)`, then `lock_organization_slugs(ids)`: how a batch of removals
    /// starts. A backend that can do both in one statement does (on PostgreSQL, one round trip
    /// instead of two); the transaction must then hold those locks already (begun with
    /// `Store::begin_locking(ids)`), or the tokens it reads may predate a wait for them.
    async fn lock_organizations_reading_tokens(
        &mut self,
        ids: &[OrganizationId],
        tokens: &[TokenId],
    ) -> CoreResult<(Vec<(OrganizationId, String)>, Vec<Token>)> {
        read_tokens_then_lock(self, ids, tokens).await
    }

    /// The organization, its member count and its roles in id order: what a renderer shows
    /// around a membership (Clerk's removal answer). A backend that can read them in one
    /// statement does (the SQL stores: one round trip instead of three).
    async fn organization_in_context(
        &mut self,
        id: OrganizationId,
    ) -> CoreResult<Option<(Organization, i64, Vec<Role>)>> {
        let Some(organization) = self.organization(id).await? else {
            return Ok(None);
        };
        let count = self.count_memberships(id).await?;
        Ok(Some((organization, count, self.list_roles(id).await?)))
    }

    /// The deletes of a removal: the project memberships of `users` (returned as deleted) and
    /// the memberships `ids`. A backend that can do both in one statement does (on PostgreSQL,
    /// one round trip instead of two); the others do them one after the other.
    async fn remove_memberships_cascading(
        &mut self,
        org: OrganizationId,
        users: &[UserId],
        ids: &[MembershipId],
    ) -> CoreResult<Vec<CascadedProjectMembership>> {
        remove_memberships_then_cascade(self, org, users, ids).await
    }
}

/// `Session::lock_organizations_reading_tokens` in two statements: its default, and what a
/// store that does it in one falls back to where it cannot.
pub async fn read_tokens_then_lock(
    s: &mut (impl Session + ?Sized),
    ids: &[OrganizationId],
    tokens: &[TokenId],
) -> CoreResult<(Vec<(OrganizationId, String)>, Vec<Token>)> {
    let tokens = if tokens.is_empty() {
        Vec::new()
    } else {
        s.tokens_by_ids(tokens).await?
    };
    Ok((s.lock_organization_slugs(ids).await?, tokens))
}

/// `Session::remove_memberships_cascading` table by table: its default, and what a store that
/// does it in one statement falls back to where it cannot.
pub async fn remove_memberships_then_cascade(
    s: &mut (impl Session + ?Sized),
    org: OrganizationId,
    users: &[UserId],
    ids: &[MembershipId],
) -> CoreResult<Vec<CascadedProjectMembership>> {
    let cascaded = if users.is_empty() {
        Vec::new()
    } else {
        s.delete_project_memberships_of_users(org, users).await?
    };
    if !ids.is_empty() {
        s.delete_memberships(org, ids).await?;
    }
    Ok(cascaded)
}
