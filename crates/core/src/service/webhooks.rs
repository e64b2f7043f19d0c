//! Webhook endpoints (an organization's admins manage them, under `webhooks:manage`), their
//! deliveries as an admin inspects and retries them, and what the delivery worker asks of the
//! core: claiming due deliveries and recording each attempt, with the retry schedule and the
//! rule that disables an endpoint failing for five days.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::{RequestContext, Roster, audit_event, paged, probe, validate};
use crate::error::{CoreError, CoreResult};
use crate::events::EventType;
use crate::ids::*;
use crate::model::{Page, Paged};
use crate::permissions::{Actor, Permission};
use crate::service::idempotency::commit;
use crate::timestamp::Timestamp;
use crate::webhooks::*;

#[derive(Clone, Debug, Default)]
pub struct NewWebhookEndpoint {
    pub url: String,
    /// Event type keys; none or empty: every type.
    pub event_types: Option<Vec<String>>,
    /// `native` (the default) or `clerk`.
    pub format: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct WebhookEndpointPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
}

/// What an attempt came to, as the worker saw it.
#[derive(Clone, Debug)]
pub struct AttemptResult {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration: Duration,
    /// Not sent, because the endpoint's format does not show this event (Clerk's has no
    /// machine identities, and shows invitations as objects roster does not have): done.
    pub not_shown: bool,
}

impl AttemptResult {
    /// Any 2xx answer delivers the event (as does an event the format does not show);
    /// anything else is tried again.
    pub fn delivered(&self) -> bool {
        self.not_shown || self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// The worker's counters, and the oldest pending delivery as last read.
#[derive(Default)]
pub(super) struct DeliveryCounters {
    delivered: AtomicU64,
    retrying: AtomicU64,
    failed: AtomicU64,
    /// When the oldest pending delivery was last read, and what it was.
    oldest_pending: Mutex<Option<(Timestamp, Option<Timestamp>)>>,
}

/// How often the worker reads the oldest pending delivery again (a scan of what is pending).
const OLDEST_PENDING_EVERY: Duration = Duration::from_secs(5);

fn event_types(keys: Option<Vec<String>>) -> CoreResult<Vec<EventType>> {
    let mut types = Vec::new();
    for key in keys.unwrap_or_default() {
        let t = EventType::parse(&key)
            .ok_or_else(|| CoreError::invalid("events", format!("`{key}` is not an event type")))?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Ok(types)
}

/// What the attempts of claimed deliveries need, read on `s` after their claims committed: for
/// each (event, endpoint, attempts made before) its endpoint as it is now, and Clerk's context.
/// A delivery whose endpoint was deleted since, with what it was owed, is left out: nothing to
/// send. (One claimed while its endpoint was enabled is sent, whether claimed by a turn or by
/// the transaction that wrote it.)
async fn due_deliveries(
    s: &mut dyn crate::store::Session,
    claimed: Vec<(crate::events::Event, WebhookEndpointId, u32)>,
) -> CoreResult<Vec<DueDelivery>> {
    let ids: Vec<WebhookEndpointId> = claimed.iter().map(|c| c.1).collect();
    let endpoints = s.webhook_endpoints_by_ids(&ids).await?;
    let mut due: Vec<DueDelivery> = claimed
        .into_iter()
        .filter_map(|(event, endpoint_id, attempts_before)| {
            let endpoint = endpoints.iter().find(|e| e.id == endpoint_id)?;
            Some(DueDelivery {
                event,
                endpoint: endpoint.clone(),
                attempts_before,
                context: None,
            })
        })
        .collect();
    read_clerk_context(s, &mut due).await?;
    Ok(due)
}

/// For each claimed membership event of a Clerk-format endpoint, what Clerk's membership
/// object embeds (`DeliveryContext`), each organization's read once.
async fn read_clerk_context(
    tx: &mut dyn crate::store::Session,
    claimed: &mut [DueDelivery],
) -> CoreResult<()> {
    use crate::events::EventObject;
    let mut orgs: Vec<(OrganizationId, DeliveryContext)> = Vec::new();
    for due in claimed.iter_mut() {
        let EventObject::Membership(m) = &due.event.data.object else {
            continue;
        };
        if due.endpoint.format != WebhookFormat::Clerk {
            continue;
        }
        let org = m.organization_id;
        let mut context = match orgs.iter().find(|(o, _)| *o == org) {
            Some((_, c)) => c.clone(),
            None => {
                let c = DeliveryContext {
                    organization: tx.organization(org).await?,
                    user: None,
                    roles: tx.list_roles(org).await?,
                };
                orgs.push((org, c.clone()));
                c
            }
        };
        if let Some(user) = m.user_id {
            context.user = tx.user(user).await?;
        }
        due.context = Some(context);
    }
    Ok(())
}

/// The audit event of `actor`'s `action` on the endpoint `id` of `org`.
fn endpoint_audit(
    ctx: &RequestContext,
    actor: &Actor,
    org: OrganizationId,
    action: &str,
    id: WebhookEndpointId,
    details: serde_json::Value,
) -> crate::model::AuditEvent {
    audit_event(
        ctx,
        Some(actor),
        Some(org),
        action,
        ("webhook_endpoint", id.to_string()),
        details,
    )
}

/// The endpoint `id` of `org`, or not found.
async fn endpoint_of(
    s: &mut dyn crate::store::Session,
    org: OrganizationId,
    id: WebhookEndpointId,
) -> CoreResult<WebhookEndpoint> {
    s.webhook_endpoint(org, id)
        .await?
        .ok_or_else(|| CoreError::not_found("webhook endpoint", id))
}

impl Roster {
    /// Refuses a URL that is not http(s) with a host, or that the operator's policy forbids.
    async fn webhook_url(&self, url: &str) -> CoreResult<String> {
        let url = url.trim();
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !scheme_ok || url.len() > 2048 {
            return Err(CoreError::invalid(
                "url",
                "url must be an http or https URL of at most 2048 characters",
            ));
        }
        self.webhook_url_policy
            .check(url)
            .await
            .map_err(|reason| CoreError::invalid("url", reason))?;
        Ok(url.to_owned())
    }

    pub async fn create_webhook_endpoint(
        &self,
        actor: &Actor,
        org: OrganizationId,
        input: NewWebhookEndpoint,
        ctx: &RequestContext,
    ) -> CoreResult<WebhookEndpoint> {
        let format = match input.format.as_deref() {
            None => WebhookFormat::Native,
            Some(f) => WebhookFormat::parse(f).ok_or_else(|| {
                CoreError::invalid("format", "format must be `native` or `clerk`")
            })?,
        };
        let event_types = event_types(input.event_types)?;
        let description = validate::optional_text("description", input.description)?;
        // The caller's permission first: the URL's check may look its host up, which nobody
        // who may not manage endpoints gets to make roster do (and not inside the write
        // transaction, which holds the organization's lock).
        drop(self.read_in(actor, org, Permission::WebhooksManage).await?);
        let url = self.webhook_url(&input.url).await?;
        let (mut tx, _) = self
            .write_in(actor, org, Permission::WebhooksManage)
            .await?;
        let now = Timestamp::now();
        let endpoint = WebhookEndpoint {
            id: WebhookEndpointId::new(),
            organization_id: org,
            url,
            description,
            event_types,
            format,
            secret: new_signing_secret(),
            disabled: false,
            disabled_reason: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        tx.insert_webhook_endpoint(&endpoint).await?;
        tx.insert_audit_events(&[endpoint_audit(
            ctx,
            actor,
            org,
            "webhook_endpoint.created",
            endpoint.id,
            json!({"url": endpoint.url, "format": format.key()}),
        )])
        .await?;
        commit(tx).await?;
        Ok(endpoint)
    }

    pub async fn webhook_endpoint(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: WebhookEndpointId,
    ) -> CoreResult<WebhookEndpoint> {
        let mut s = self.read_in(actor, org, Permission::WebhooksManage).await?;
        endpoint_of(&mut *s, org, id).await
    }

    pub async fn list_webhook_endpoints(
        &self,
        actor: &Actor,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Paged<WebhookEndpoint>> {
        let mut s = self.read_in(actor, org, Permission::WebhooksManage).await?;
        let rows = s.list_webhook_endpoints(org, probe(page)?).await?;
        Ok(paged(rows, page, |e| e.id.0))
    }

    pub async fn update_webhook_endpoint(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: WebhookEndpointId,
        patch: WebhookEndpointPatch,
        ctx: &RequestContext,
    ) -> CoreResult<WebhookEndpoint> {
        let url = match &patch.url {
            Some(u) => {
                // As at creation: the permission before the URL's check.
                drop(self.read_in(actor, org, Permission::WebhooksManage).await?);
                Some(self.webhook_url(u).await?)
            }
            None => None,
        };
        let (mut tx, _) = self
            .write_in(actor, org, Permission::WebhooksManage)
            .await?;
        let mut e = endpoint_of(&mut *tx, org, id).await?;
        if let Some(url) = url {
            e.url = url;
        }
        if patch.event_types.is_some() {
            e.event_types = event_types(patch.event_types)?;
        }
        if let Some(d) = patch.description {
            e.description = validate::optional_text("description", d)?;
        }
        if let Some(disabled) = patch.disabled {
            if !disabled {
                // Enabled again: its failures so far no longer count towards disabling it.
                e.disabled_reason = None;
                e.failing_since = None;
            }
            e.disabled = disabled;
        }
        e.updated_at = Timestamp::now();
        tx.update_webhook_endpoint(&e).await?;
        tx.insert_audit_events(&[endpoint_audit(
            ctx,
            actor,
            org,
            "webhook_endpoint.updated",
            id,
            json!({"url": e.url, "disabled": e.disabled}),
        )])
        .await?;
        commit(tx).await?;
        Ok(e)
    }

    pub async fn delete_webhook_endpoint(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: WebhookEndpointId,
        ctx: &RequestContext,
    ) -> CoreResult<WebhookEndpoint> {
        let (mut tx, _) = self
            .write_in(actor, org, Permission::WebhooksManage)
            .await?;
        let endpoint = endpoint_of(&mut *tx, org, id).await?;
        tx.delete_webhook_endpoint(org, id).await?;
        tx.insert_audit_events(&[endpoint_audit(
            ctx,
            actor,
            org,
            "webhook_endpoint.deleted",
            id,
            json!({}),
        )])
        .await?;
        commit(tx).await?;
        Ok(endpoint)
    }

    /// A new signing secret, at once the only one: the endpoint with it, to be shown once.
    pub async fn rotate_webhook_secret(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: WebhookEndpointId,
        ctx: &RequestContext,
    ) -> CoreResult<WebhookEndpoint> {
        let (mut tx, _) = self
            .write_in(actor, org, Permission::WebhooksManage)
            .await?;
        let mut e = endpoint_of(&mut *tx, org, id).await?;
        e.secret = new_signing_secret();
        e.updated_at = Timestamp::now();
        tx.update_webhook_endpoint(&e).await?;
        tx.insert_audit_events(&[endpoint_audit(
            ctx,
            actor,
            org,
            "webhook_endpoint.secret_rotated",
            id,
            json!({}),
        )])
        .await?;
        commit(tx).await?;
        Ok(e)
    }

    /// A page of the endpoint's delivery attempts, oldest first unless the page says.
    pub async fn list_webhook_attempts(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: WebhookEndpointId,
        page: Page,
    ) -> CoreResult<Paged<DeliveryAttempt>> {
        let mut s = self.read_in(actor, org, Permission::WebhooksManage).await?;
        endpoint_of(&mut *s, org, id).await?;
        let rows = s.list_webhook_attempts(id, probe(page)?).await?;
        Ok(paged(rows, page, |a| a.id.0))
    }

    /// Sends the delivery of `event` to the endpoint again, now, whatever came of it so far.
    pub async fn retry_webhook_delivery(
        &self,
        actor: &Actor,
        org: OrganizationId,
        id: WebhookEndpointId,
        event: EventId,
        ctx: &RequestContext,
    ) -> CoreResult<()> {
        let (mut tx, _) = self
            .write_in(actor, org, Permission::WebhooksManage)
            .await?;
        endpoint_of(&mut *tx, org, id).await?;
        if !tx.retry_delivery(id, event, Timestamp::now()).await? {
            return Err(CoreError::not_found("delivery", event));
        }
        tx.insert_audit_events(&[endpoint_audit(
            ctx,
            actor,
            org,
            "webhook_delivery.retried",
            id,
            json!({"event_id": event}),
        )])
        .await?;
        commit(tx).await
    }

    /// Whether anything is due, read without taking the write lock (the worker's idle poll);
    /// every few seconds it also reads how old the oldest pending delivery is.
    pub async fn deliveries_due(&self) -> CoreResult<bool> {
        let now = Timestamp::now();
        let mut s = self.store.read().await?;
        let stale = self
            .deliveries
            .oldest_pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|(read_at, _)| {
                now.0 - read_at.0 >= OLDEST_PENDING_EVERY.as_millis() as i64
            });
        if stale {
            let oldest = s.oldest_pending_delivery().await?;
            *self
                .deliveries
                .oldest_pending
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some((now, oldest));
        }
        s.any_delivery_due(now).await
    }

    /// From now on, a transaction that writes deliveries while `to` is open claims them and
    /// hands them to `to` when it commits (`DeliveryHandOff`: this process's delivery worker).
    pub fn hand_deliveries_to(&self, to: Arc<DeliveryHandOff>) {
        self.store.hand_deliveries_to(to);
    }

    /// What the attempts of deliveries claimed at birth need besides their events
    /// (`due_deliveries`).
    pub async fn born_deliveries(&self, born: Vec<BornDelivery>) -> CoreResult<Vec<DueDelivery>> {
        let mut s = self.store.read().await?;
        let claimed = born
            .into_iter()
            .map(|b| (b.event, b.endpoint_id, 0))
            .collect();
        due_deliveries(&mut *s, claimed).await
    }

    /// What the delivery worker has done since the process started (`/metrics`).
    pub fn delivery_stats(&self) -> DeliveryStats {
        let c = &self.deliveries;
        let oldest = c
            .oldest_pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .and_then(|(_, oldest)| oldest);
        DeliveryStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            retrying: c.retrying.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            oldest_pending: oldest.map_or(Duration::ZERO, |t| {
                Duration::from_millis(Timestamp::now().0.saturating_sub(t.0).max(0) as u64)
            }),
        }
    }

    /// The delivery worker's turn, in one transaction (one commit, however much it does, and
    /// not waited for to reach the disk): records the attempts made since its last turn and
    /// what follows from each (the delivery done, tried again after the schedule's next delay,
    /// or failed; each endpoint's failing streak, and its disabling after five days of it),
    /// then claims up to `claim` due deliveries for `lease` (another node may take one over
    /// once its lease has run out: the attempt is then presumed lost). What the claimed
    /// attempts need (events, endpoints, Clerk's context) is read after the commit.
    pub async fn delivery_turn(
        &self,
        attempts: &[(DueDelivery, AttemptResult)],
        schedule: &RetrySchedule,
        claim: u32,
        lease: Duration,
    ) -> CoreResult<Vec<DueDelivery>> {
        let now = Timestamp::now();
        let outcomes: Vec<AttemptOutcome> = attempts
            .iter()
            .map(|(due, result)| {
                let (state, next) = if result.delivered() {
                    (DeliveryState::Succeeded, now)
                } else {
                    match schedule.after(due.attempts_before + 1) {
                        Some(delay) => (DeliveryState::Pending, now.plus(delay)),
                        None => (DeliveryState::Failed, now),
                    }
                };
                AttemptOutcome {
                    endpoint_id: due.endpoint.id,
                    event_id: due.event.id,
                    organization_id: due.endpoint.organization_id,
                    status_code: result.status_code,
                    error: result.error.clone(),
                    duration_ms: result.duration.as_millis().min(i64::MAX as u128) as i64,
                    at: now,
                    state,
                    next_attempt_at: next,
                }
            })
            .collect();
        // Lost in a power cut, a turn is only done again: its attempts are sent again (with
        // the same event ids) once their claims run out. So its commit does not wait for the
        // disk: on SQLite the sync would hold the one writer that every removal waits for.
        let mut tx = self.store.begin_lazily().await?;
        if !outcomes.is_empty() {
            tx.record_attempts(&outcomes).await?;
        }
        // Each endpoint's streak: broken by any delivery of the batch, else started (or gone
        // on) by its failures.
        let mut endpoints: Vec<(OrganizationId, WebhookEndpointId, bool)> = Vec::new();
        // An event the format does not show was not sent: it says nothing of the endpoint.
        let sent = attempts
            .iter()
            .zip(&outcomes)
            .filter(|((_, r), _)| !r.not_shown);
        for (_, o) in sent {
            let delivered = o.state == DeliveryState::Succeeded;
            match endpoints.iter_mut().find(|e| e.1 == o.endpoint_id) {
                Some(e) => e.2 |= delivered,
                None => endpoints.push((o.organization_id, o.endpoint_id, delivered)),
            }
        }
        for (org, id, delivered) in endpoints {
            // The endpoint as it is now (an admin may have changed it since the claim).
            let Some(mut e) = tx.webhook_endpoint(org, id).await? else {
                continue;
            };
            let before = (e.failing_since, e.disabled);
            if delivered {
                e.failing_since = None;
            } else {
                let since = *e.failing_since.get_or_insert(now);
                if !e.disabled && now.0 - since.0 >= DISABLE_AFTER_FAILING_FOR.as_millis() as i64 {
                    e.disabled = true;
                    e.disabled_reason = Some(format!(
                        "every delivery failed for 5 days, since {}",
                        since.to_rfc3339()
                    ));
                }
            }
            if (e.failing_since, e.disabled) != before {
                tx.update_webhook_endpoint(&e).await?;
            }
        }
        let claimed = if claim > 0 {
            tx.claim_due_deliveries(now, now.plus(lease), claim).await?
        } else {
            Vec::new()
        };
        commit(tx).await?;
        for o in &outcomes {
            let counter = match o.state {
                DeliveryState::Succeeded => &self.deliveries.delivered,
                DeliveryState::Pending => &self.deliveries.retrying,
                DeliveryState::Failed => &self.deliveries.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // What the attempts need is read after the commit, on a read session: on SQLite the
        // turn holds the one writer, which every removal waits for, only for its writes.
        let mut s = self.store.read().await?;
        let ids: Vec<EventId> = claimed.iter().map(|c| c.event_id).collect();
        let events = s.events_by_ids(&ids).await?;
        let claimed = claimed
            .into_iter()
            .map(|c| {
                let event = events
                    .iter()
                    .find(|e| e.id == c.event_id)
                    .cloned()
                    .ok_or_else(|| CoreError::internal("a claimed delivery's event is gone"))?;
                Ok((event, c.endpoint_id, c.attempts_before))
            })
            .collect::<CoreResult<Vec<_>>>()?;
        due_deliveries(&mut *s, claimed).await
    }
}
