//! Webhook endpoints, the deliveries of events to them (claimed by lease), and the attempts
//! made. Deliveries are written with their events (`events.rs`).

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::events::{Event, EventType};
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;
use roster_core::webhooks::*;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

pub(super) const ENDPOINT_COLS: &str = "id, org_id, url, description, event_types, format, \
    secret, disabled, disabled_reason, failing_since, created_at, updated_at";

fn endpoint_row(r: &impl SqlRow) -> CoreResult<WebhookEndpoint> {
    let types = r.text(4)?;
    let event_types = types
        .split_whitespace()
        .map(|k| EventType::parse(k).ok_or_else(|| corrupt("webhook endpoint event type")))
        .collect::<CoreResult<Vec<_>>>()?;
    Ok(WebhookEndpoint {
        id: WebhookEndpointId(r.uuid(0)?),
        organization_id: OrganizationId(r.uuid(1)?),
        url: r.text(2)?,
        description: r.opt_text(3)?,
        event_types,
        format: WebhookFormat::parse(&r.text(5)?).ok_or_else(|| corrupt("webhook format"))?,
        secret: r.text(6)?,
        disabled: r.boolean(7)?,
        disabled_reason: r.opt_text(8)?,
        failing_since: r.opt_int(9)?.map(Timestamp),
        created_at: Timestamp(r.int(10)?),
        updated_at: Timestamp(r.int(11)?),
    })
}

fn endpoint_args(e: &WebhookEndpoint) -> Vec<Arg> {
    let types: Vec<&str> = e.event_types.iter().map(|t| t.key()).collect();
    vec![
        Arg::Uuid(e.id.0),
        Arg::Uuid(e.organization_id.0),
        Arg::Text(e.url.clone()),
        Arg::OptText(e.description.clone()),
        Arg::Text(types.join(" ")),
        Arg::Text(e.format.key().to_owned()),
        Arg::Text(e.secret.clone()),
        Arg::Bool(e.disabled),
        Arg::OptText(e.disabled_reason.clone()),
        opt_ts(e.failing_since),
        ts(e.created_at),
        ts(e.updated_at),
    ]
}

const ATTEMPT_COLS: &str = "a.id, a.endpoint_id, a.event_id, a.org_id, a.status_code, a.error, \
    a.duration_ms, a.created_at, d.state";

fn attempt_row(r: &impl SqlRow) -> CoreResult<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        id: WebhookAttemptId(r.uuid(0)?),
        endpoint_id: WebhookEndpointId(r.uuid(1)?),
        event_id: EventId(r.uuid(2)?),
        organization_id: OrganizationId(r.uuid(3)?),
        status_code: r
            .opt_int(4)?
            .map(|c| u16::try_from(c).map_err(|_| corrupt("status code")))
            .transpose()?,
        error: r.opt_text(5)?,
        duration_ms: r.int(6)?,
        created_at: Timestamp(r.int(7)?),
        delivery_state: DeliveryState::parse(&r.text(8)?)
            .ok_or_else(|| corrupt("delivery state"))?,
    })
}

#[async_trait]
impl<C: Conn> WebhookRows for SqlSession<C> {
    async fn insert_webhook_endpoint(&mut self, e: &WebhookEndpoint) -> CoreResult<()> {
        let sql = format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLS}) VALUES ({})",
            placeholders(1, 12)
        );
        self.0.execute(&sql, endpoint_args(e)).await?;
        Ok(())
    }

    async fn webhook_endpoint(
        &mut self,
        org: OrganizationId,
        id: WebhookEndpointId,
    ) -> CoreResult<Option<WebhookEndpoint>> {
        let sql =
            format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE org_id = $1 AND id = $2");
        self.one(&sql, vec![Arg::Uuid(org.0), Arg::Uuid(id.0)], endpoint_row)
            .await
    }

    async fn list_webhook_endpoints(
        &mut self,
        org: OrganizationId,
        page: Page,
    ) -> CoreResult<Vec<WebhookEndpoint>> {
        let (sql, args) = list_page_statement(PagedList::WebhookEndpoints, org.0, page);
        self.all(&sql, args, endpoint_row).await
    }

    async fn update_webhook_endpoint(&mut self, e: &WebhookEndpoint) -> CoreResult<()> {
        self.0
            .execute(
                "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, \
                 format = $6, secret = $7, disabled = $8, disabled_reason = $9, \
                 failing_since = $10, updated_at = $12 WHERE id = $1 AND org_id = $2",
                endpoint_args(e),
            )
            .await?;
        Ok(())
    }

    async fn delete_webhook_endpoint(
        &mut self,
        org: OrganizationId,
        id: WebhookEndpointId,
    ) -> CoreResult<bool> {
        let (sql, args) = delete_owed_deliveries_statement(org, id);
        self.0.execute(&sql, args).await?;
        let n = self
            .0
            .execute(
                "DELETE FROM webhook_endpoints WHERE org_id = $1 AND id = $2",
                vec![Arg::Uuid(org.0), Arg::Uuid(id.0)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn list_webhook_attempts(
        &mut self,
        endpoint: WebhookEndpointId,
        page: Page,
    ) -> CoreResult<Vec<DeliveryAttempt>> {
        let mut args = vec![Arg::Uuid(endpoint.0)];
        let tail = page_sql_after(Some("a.endpoint_id"), "a.id", page, 2, &mut args);
        let sql = format!(
            "SELECT {ATTEMPT_COLS} FROM webhook_attempts a JOIN webhook_deliveries d \
             ON d.endpoint_id = a.endpoint_id AND d.event_id = a.event_id \
             WHERE a.endpoint_id = $1{tail}"
        );
        self.all(&sql, args, attempt_row).await
    }

    async fn retry_delivery(
        &mut self,
        endpoint: WebhookEndpointId,
        event: EventId,
        now: Timestamp,
    ) -> CoreResult<bool> {
        let n = self
            .0
            .execute(
                "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $3, \
                 claimed_until = NULL, updated_at = $3 WHERE endpoint_id = $1 AND event_id = $2",
                vec![Arg::Uuid(endpoint.0), Arg::Uuid(event.0), ts(now)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn claim_due_deliveries(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> CoreResult<Vec<ClaimedDelivery>> {
        let (sql, args) = claim_due_deliveries_statement::<C>(now, lease_until, limit);
        self.all(&sql, args, |r| {
            Ok(ClaimedDelivery {
                endpoint_id: WebhookEndpointId(r.uuid(0)?),
                event_id: EventId(r.uuid(1)?),
                attempts_before: u32::try_from(r.int(2)? - 1).unwrap_or(0),
            })
        })
        .await
    }

    async fn events_by_ids(&mut self, ids: &[EventId]) -> CoreResult<Vec<Event>> {
        let mut events = Vec::with_capacity(ids.len());
        for part in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT {EVENT_COLS} FROM events WHERE id IN ({})",
                placeholders(1, part.len())
            );
            let args = part.iter().map(|e| Arg::Uuid(e.0)).collect();
            events.extend(self.all(&sql, args, event_row).await?);
        }
        Ok(events)
    }

    async fn webhook_endpoints_by_ids(
        &mut self,
        ids: &[WebhookEndpointId],
    ) -> CoreResult<Vec<WebhookEndpoint>> {
        // Most deliveries read together go to few endpoints: each endpoint read once.
        let mut ids: Vec<uuid::Uuid> = ids.iter().map(|e| e.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut endpoints = Vec::new();
        for part in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id IN ({})",
                placeholders(1, part.len())
            );
            let args = part.iter().copied().map(Arg::Uuid).collect();
            endpoints.extend(self.all(&sql, args, endpoint_row).await?);
        }
        Ok(endpoints)
    }

    async fn oldest_pending_delivery(&mut self) -> CoreResult<Option<Timestamp>> {
        let oldest = self
            .one(
                "SELECT min(created_at) FROM webhook_deliveries WHERE state = 'pending'",
                vec![],
                |r| r.opt_int(0),
            )
            .await?;
        Ok(oldest.flatten().map(Timestamp))
    }

    async fn any_delivery_due(&mut self, now: Timestamp) -> CoreResult<bool> {
        let due = self
            .one(
                "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' \
                 AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
                 LIMIT 1",
                vec![ts(now)],
                |_| Ok(()),
            )
            .await?;
        Ok(due.is_some())
    }

    async fn record_attempts(&mut self, outcomes: &[AttemptOutcome]) -> CoreResult<()> {
        // Deliveries to one endpoint that end in the same state at the same time are set in
        // one statement, naming their events by a list of ids: a list of (endpoint, event)
        // pairs took PostgreSQL 11 ms to plan at 256 pairs, against 0.5 ms for 256 ids.
        type Group = (
            WebhookEndpointId,
            DeliveryState,
            Timestamp,
            Timestamp,
            Vec<EventId>,
        );
        let mut groups: Vec<Group> = Vec::new();
        for o in outcomes {
            let key = (o.endpoint_id, o.state, o.next_attempt_at, o.at);
            match groups.iter_mut().find(|g| (g.0, g.1, g.2, g.3) == key) {
                Some(g) => g.4.push(o.event_id),
                None => groups.push((key.0, key.1, key.2, key.3, vec![o.event_id])),
            }
        }
        for (endpoint, state, next, at, events) in groups {
            for part in events.chunks(CHUNK) {
                let (sql, args) = record_deliveries_statement(endpoint, state, next, at, part);
                self.0.execute(&sql, args).await?;
            }
        }
        const ATTEMPT_ARGS: usize = 8;
        for part in outcomes.chunks(CHUNK / ATTEMPT_ARGS) {
            let mut args = Vec::with_capacity(part.len() * ATTEMPT_ARGS);
            let values: Vec<String> = part
                .iter()
                .map(|o| {
                    let row = format!("({})", placeholders(args.len() + 1, ATTEMPT_ARGS));
                    args.extend([
                        Arg::Uuid(WebhookAttemptId::new().0),
                        Arg::Uuid(o.endpoint_id.0),
                        Arg::Uuid(o.event_id.0),
                        Arg::Uuid(o.organization_id.0),
                        Arg::OptInt(o.status_code.map(i64::from)),
                        Arg::OptText(o.error.clone()),
                        Arg::Int(o.duration_ms),
                        ts(o.at),
                    ]);
                    row
                })
                .collect();
            let sql = format!(
                "INSERT INTO webhook_attempts (id, endpoint_id, event_id, org_id, status_code, \
                 error, duration_ms, created_at) VALUES {}",
                values.join(", ")
            );
            self.0.execute(&sql, args).await?;
        }
        Ok(())
    }
}

/// The statement that deletes what `endpoint` is still owed (its pending deliveries), as it is
/// deleted. Its history (deliveries done or failed, and every attempt) is left to the purge,
/// which takes it with its events: deleting an endpoint's whole history, in the transaction
/// that holds its organization's lock (on SQLite, the one writer), took as long as the history
/// was long. Pinned by the plan tests of the PostgreSQL store: it reads the pending deliveries,
/// not the table.
pub fn delete_owed_deliveries_statement(
    org: OrganizationId,
    endpoint: WebhookEndpointId,
) -> (String, Vec<Arg>) {
    (
        "DELETE FROM webhook_deliveries \
         WHERE state = 'pending' AND org_id = $1 AND endpoint_id = $2"
            .to_owned(),
        vec![Arg::Uuid(org.0), Arg::Uuid(endpoint.0)],
    )
}

/// The statement that sets the state of `events`' deliveries to `endpoint` after an attempt
/// each, and releases their claims (pinned by the plan tests of the PostgreSQL store: it finds
/// them by their events, whatever PostgreSQL knows of the table).
pub fn record_deliveries_statement(
    endpoint: WebhookEndpointId,
    state: DeliveryState,
    next: Timestamp,
    at: Timestamp,
    events: &[EventId],
) -> (String, Vec<Arg>) {
    let mut args = vec![
        Arg::Text(state.key().to_owned()),
        ts(next),
        ts(at),
        Arg::Uuid(endpoint.0),
    ];
    args.extend(events.iter().map(|e| Arg::Uuid(e.0)));
    let sql = format!(
        "UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, \
         claimed_until = NULL, updated_at = $3 \
         WHERE endpoint_id = $4 AND event_id IN ({})",
        placeholders(5, events.len())
    );
    (sql, args)
}

/// The statement that claims at most `limit` due deliveries until `lease_until` and returns
/// each one's endpoint, event and attempts so far (pinned by the plan tests of the PostgreSQL
/// store: it walks the due index, and sorts nothing).
pub fn claim_due_deliveries_statement<C: Conn>(
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> (String, Vec<Arg>) {
    // The pick locks its rows (on PostgreSQL, passing over those another node holds, and
    // checking each row's conditions again once it has its lock), and is materialized:
    // PostgreSQL may otherwise run it again for each row it updates and, passing over the
    // rows it has just locked, claim many times `limit`. Disabled endpoints are a hashed
    // list beside the walk of the due index, which stops at `limit` (as a join, they made
    // PostgreSQL read and sort every pending delivery).
    let sql = format!(
        "WITH picked AS MATERIALIZED (\
           SELECT d.endpoint_id, d.event_id FROM webhook_deliveries d \
           WHERE d.state = 'pending' AND d.next_attempt_at <= $2 \
           AND (d.claimed_until IS NULL OR d.claimed_until < $2) \
           AND d.endpoint_id NOT IN (SELECT ep.id FROM webhook_endpoints ep \
             WHERE ep.disabled = TRUE) \
           ORDER BY d.next_attempt_at LIMIT {limit}{skip}) \
         UPDATE webhook_deliveries SET claimed_until = $1, attempts = attempts + 1, \
         updated_at = $2 WHERE (endpoint_id, event_id) IN (\
           SELECT endpoint_id, event_id FROM picked) \
         RETURNING endpoint_id, event_id, attempts",
        skip = C::SKIP_LOCKED,
    );
    (sql, vec![ts(lease_until), ts(now)])
}
