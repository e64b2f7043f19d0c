//! The use-cases. `Roster` is what every mount calls: handlers parse a request into the inputs
//! defined here, call one method, and render what comes back. Each write runs in one
//! transaction that locks its organization first, checks permissions and rules inside it, writes
//! its audit events, and commits; any error before the commit leaves nothing behind.

mod credentials;
mod events;
mod former_members;
mod group_commit;
mod idempotency;
mod identities;
mod memberships;
mod organizations;
mod projects;
mod removal;
mod roles;
mod users;
pub mod validate;
mod webhooks;

use std::sync::Arc;

use serde_json::Value;

pub use credentials::{Bootstrap, CreatedToken, NewPassword, NewServiceToken};
pub use former_members::Reinstatement;
pub use group_commit::{GroupCommitLayers, GroupCommitStats};
pub use idempotency::{Earlier, HeldChange, KeyClaim};
pub use identities::{IdentityPatch, NewIdentity};
pub use memberships::{MemberInContext, MembershipPatch, NewMembership, ProvisionedMember};
pub use organizations::{NewOrganization, OrganizationPatch};
pub use projects::{NewProject, ProjectMembersChange, ProjectPatch, ProjectWithMembers};
pub use removal::{MAX_BULK_REMOVAL, Offboarding, OwnMembership, RemovalRequest};
pub use roles::{NewRole, RolePatch};
pub use users::{NewUser, UserPatch};
pub use webhooks::{AttemptResult, NewWebhookEndpoint, WebhookEndpointPatch};

use crate::auth;
use crate::error::{CoreError, CoreResult};
use crate::ids::{AuditEventId, OrganizationId, UserId};
use crate::model::{AuditEvent, Page, Paged};
use crate::permissions::{Actor, Permission, PermissionSet, Principal};
use crate::store::{Session, Store};
use crate::timestamp::Timestamp;

/// How long a removed member's record is kept by default, as GitHub keeps a former member's
/// access for reinstatement: 90 days.
pub const DEFAULT_FORMER_MEMBER_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(90 * 24 * 3600);

/// How long events and delivery attempts are kept by default: 30 days, as Stripe keeps its
/// events; a consumer that missed deliveries has that long to catch up by listing.
pub const DEFAULT_EVENT_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

/// Per-request facts the core records (the request id goes into audit events).
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub request_id: Option<String>,
}

/// The service: the one entry point of every use-case.
#[derive(Clone)]
pub struct Roster {
    store: Arc<dyn Store>,
    /// Removals waiting to share a commit, by organization (`group_commit`).
    queues: Arc<group_commit::GroupCommit<removal::RemovalBatches>>,
    /// Removal batches run again a request at a time after a failure.
    removal_restarts: Arc<std::sync::atomic::AtomicU64>,
    /// The group-commit layers that run (all, unless a benchmark turns some off).
    layers: Arc<std::sync::OnceLock<GroupCommitLayers>>,
    /// Organization ids by slug, as last read (`organizations::SlugIds`).
    slug_ids: Arc<organizations::SlugIds>,
    /// Which webhook URLs roster may call (the operator's rule; `with_webhook_url_policy`).
    webhook_url_policy: Arc<dyn crate::webhooks::WebhookUrlPolicy>,
    /// What the delivery worker has done (`webhooks::DeliveryCounters`).
    deliveries: Arc<webhooks::DeliveryCounters>,
    /// How long a removed member's former-member record is kept (90 days unless set).
    former_member_retention: std::time::Duration,
    /// How long an idempotent request's answer is kept for its repeats (a day unless set).
    idempotency_retention: std::time::Duration,
    /// How long events and delivery attempts are kept (30 days unless set).
    event_retention: std::time::Duration,
    /// The idempotency keys of requests running in this process (`idempotency`).
    running_keys: Arc<idempotency::RunningKeys>,
}

impl std::fmt::Debug for Roster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roster")
            .field("backend", &self.store.backend())
            .finish()
    }
}

impl Roster {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Roster {
            store,
            queues: Arc::new(group_commit::GroupCommit::new()),
            removal_restarts: Arc::default(),
            layers: Arc::default(),
            slug_ids: Arc::default(),
            webhook_url_policy: Arc::new(AnyHttpUrl),
            deliveries: Arc::default(),
            former_member_retention: DEFAULT_FORMER_MEMBER_RETENTION,
            idempotency_retention: crate::idempotency::DEFAULT_IDEMPOTENCY_RETENTION,
            event_retention: DEFAULT_EVENT_RETENTION,
            running_keys: Arc::default(),
        }
    }

    /// The same service, keeping events and delivery attempts for `retention`.
    pub fn with_event_retention(mut self, retention: std::time::Duration) -> Self {
        self.event_retention = retention;
        self
    }

    /// The same service, keeping idempotent requests' answers for `retention`.
    pub fn with_idempotency_retention(mut self, retention: std::time::Duration) -> Self {
        self.idempotency_retention = retention;
        self
    }

    /// The same service, keeping removed members' records for `retention`.
    pub fn with_former_member_retention(mut self, retention: std::time::Duration) -> Self {
        self.former_member_retention = retention;
        self
    }

    /// The same service, deciding which webhook URLs it may call by `policy` (by default any
    /// http(s) URL: the binary sets the operator's rule).
    pub fn with_webhook_url_policy(
        mut self,
        policy: Arc<dyn crate::webhooks::WebhookUrlPolicy>,
    ) -> Self {
        self.webhook_url_policy = policy;
        self
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// A read session in which `actor` holds `permission` in `org` (404 if it may not see it).
    async fn read_in(
        &self,
        actor: &Actor,
        org: OrganizationId,
        permission: Permission,
    ) -> CoreResult<Box<dyn Session>> {
        Ok(self.read_holding(actor, org, permission).await?.0)
    }

    /// `read_in`, and everything the actor holds in `org` (what it may see of what it reads).
    async fn read_holding(
        &self,
        actor: &Actor,
        org: OrganizationId,
        permission: Permission,
    ) -> CoreResult<(Box<dyn Session>, PermissionSet)> {
        let mut s = self.store.read().await?;
        if actor.principal == Principal::InstanceAdmin && s.organization(org).await?.is_none() {
            return Err(CoreError::not_found("organization", org));
        }
        let held = auth::require(&mut *s, actor, org, permission).await?;
        Ok((s, held))
    }

    /// A write transaction holding `org`'s lock, in which `actor` holds `permission`.
    async fn write_in(
        &self,
        actor: &Actor,
        org: OrganizationId,
        permission: Permission,
    ) -> CoreResult<(Box<dyn Session>, PermissionSet)> {
        let mut tx = self.store.begin().await?;
        if !tx.lock_organization(org).await? {
            return Err(CoreError::not_found("organization", org));
        }
        let held = auth::require(&mut *tx, actor, org, permission).await?;
        Ok((tx, held))
    }
}

/// The default webhook URL policy: any http(s) URL (the scheme is checked before it is asked).
struct AnyHttpUrl;

#[async_trait::async_trait]
impl crate::webhooks::WebhookUrlPolicy for AnyHttpUrl {
    async fn check(&self, _url: &str) -> Result<(), String> {
        Ok(())
    }
}

/// What an update changed, for its audit event: `{"field": {"from": …, "to": …}}` for each
/// field whose value differs, and `{"changed": true}` alone for metadata (whose values, private
/// ones above all, stay out of the audit trail). Unchanged fields are not named.
#[derive(Default)]
struct Changes(serde_json::Map<String, Value>);

impl Changes {
    fn field<T: serde::Serialize + PartialEq>(mut self, name: &str, from: &T, to: &T) -> Self {
        if from != to {
            self.0
                .insert(name.to_owned(), serde_json::json!({"from": from, "to": to}));
        }
        self
    }

    fn metadata(
        mut self,
        name: &str,
        from: &crate::model::Metadata,
        to: &crate::model::Metadata,
    ) -> Self {
        if from != to {
            self.0
                .insert(name.to_owned(), serde_json::json!({"changed": true}));
        }
        self
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn into_details(self) -> Value {
        Value::Object(self.0)
    }
}

/// What belongs to the instance rather than to an organization (users, admin keys, the
/// instance's audit log): only an instance admin manages it over the API (anyone else is
/// forbidden `permission`), and the CLI (`None`), which holds the database already.
fn only_instance_admins(actor: Option<&Actor>, permission: &'static str) -> CoreResult<()> {
    match actor {
        Some(a) if a.principal != Principal::InstanceAdmin => {
            Err(CoreError::Forbidden { permission })
        }
        _ => Ok(()),
    }
}

/// A user and their own tokens: an instance admin, or the user themselves; anyone else learns
/// nothing (404).
fn may_manage_user(actor: &Actor, id: UserId) -> CoreResult<()> {
    if actor.principal == Principal::InstanceAdmin || actor.user_id() == Some(id) {
        Ok(())
    } else {
        Err(CoreError::not_found("user", id))
    }
}

/// Builds an audit event for `actor` acting on a target.
fn audit_event(
    ctx: &RequestContext,
    actor: Option<&Actor>,
    org: Option<OrganizationId>,
    action: &str,
    target: (&str, String),
    details: Value,
) -> AuditEvent {
    let (actor_kind, actor_id) = match actor {
        Some(a) => {
            let (k, id) = a.audit_ref();
            (k.to_owned(), id)
        }
        None => ("system".to_owned(), String::new()),
    };
    AuditEvent {
        id: AuditEventId::new(),
        organization_id: org,
        actor_kind,
        actor_id,
        action: action.to_owned(),
        target_kind: target.0.to_owned(),
        target_id: target.1,
        request_id: ctx.request_id.clone(),
        details,
        created_at: Timestamp::now(),
    }
}

/// Turns `limit + 1` fetched rows into a page and the cursor of the next.
fn paged<T>(mut rows: Vec<T>, page: Page, id_of: impl Fn(&T) -> uuid::Uuid) -> Paged<T> {
    let limit = page.limit as usize;
    let next_after = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(&id_of)
    } else {
        None
    };
    Paged {
        items: rows,
        next_after,
    }
}

/// The page to ask a store for: one more row than asked, to know whether there is a next page.
fn probe(page: Page) -> CoreResult<Page> {
    if page.limit == 0 || page.limit > Page::MAX_LIMIT {
        return Err(CoreError::invalid(
            "limit",
            format!("limit must be between 1 and {}", Page::MAX_LIMIT),
        ));
    }
    Ok(Page {
        limit: page.limit + 1,
        ..page
    })
}
