//! The outbox: membership events, written in their change's transaction and read by page.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::events::PurgedEvents;
use roster_core::events::{Event, EventData, EventFilter, EventType};
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

pub(super) const EVENT_COLS: &str = "id, org_id, event_type, data, created_at";

/// Arguments per event row.
const EVENT_ARGS: usize = 5;

/// Events per statement: a bulk removal writes one per membership.
const EVENTS_PER_STATEMENT: usize = 100;

/// `INSERT INTO events … VALUES …` for `events`, their arguments appended to `args`.
fn event_insert(events: &[Event], args: &mut Vec<Arg>) -> CoreResult<String> {
    let mut values = Vec::with_capacity(events.len());
    for e in events {
        values.push(format!("({})", placeholders(args.len() + 1, EVENT_ARGS)));
        let data = serde_json::to_string(&e.data)
            .map_err(|e| CoreError::internal(format!("event data: {e}")))?;
        args.extend([
            Arg::Uuid(e.id.0),
            Arg::OptUuid(e.organization_id.map(|o| o.0)),
            Arg::Text(e.event_type.key().to_owned()),
            Arg::Text(data),
            ts(e.created_at),
        ]);
    }
    Ok(format!(
        "INSERT INTO events ({EVENT_COLS}) VALUES {}",
        values.join(", ")
    ))
}

/// `INSERT INTO webhook_deliveries … SELECT`: a pending delivery of each event of `source` (the
/// events just inserted, as `e`, filtered by `condition`) to each endpoint of its organization
/// that is not disabled and wants its type. Written with the events, in their transaction.
/// With a `lease`, each is claimed at birth (its first attempt counted, due when the lease runs
/// out) and the statement returns each one's endpoint and event.
fn deliveries_insert(source: &str, condition: &str, lease: Option<std::time::Duration>) -> String {
    let (attempts, due, claimed_until, returning) = match lease {
        Some(lease) => {
            let until = format!("e.created_at + {}", lease.as_millis());
            (1, until.clone(), until, " RETURNING endpoint_id, event_id")
        }
        None => (0, "e.created_at".to_owned(), "NULL".to_owned(), ""),
    };
    // The types are space-separated keys; `_` in a key (a LIKE wildcard) matches itself, and
    // no two keys differ only where one has it.
    format!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, org_id, state, attempts, \
         next_attempt_at, claimed_until, created_at, updated_at) \
         SELECT ep.id, e.id, e.org_id, 'pending', {attempts}, {due}, {claimed_until}, \
         e.created_at, e.created_at FROM {source} e \
         JOIN webhook_endpoints ep ON ep.org_id = e.org_id \
         WHERE ep.disabled = FALSE AND (ep.event_types = '' \
         OR (' ' || ep.event_types || ' ') LIKE ('% ' || e.event_type || ' %')){condition}\
         {returning}"
    )
}

/// Runs `sql`, the deliveries insert of `events`: with a lease, what it claimed goes into
/// `tally`, to be handed over when the transaction commits.
async fn insert_deliveries<C: Conn>(
    conn: &mut C,
    tally: &mut EventTally,
    lease: Option<std::time::Duration>,
    sql: &str,
    args: Vec<Arg>,
    events: &[Event],
) -> CoreResult<()> {
    if lease.is_none() {
        conn.execute(sql, args).await?;
        return Ok(());
    }
    let mut born = Vec::new();
    for row in conn.fetch_all(sql, args).await? {
        let (endpoint_id, event_id) = (WebhookEndpointId(row.uuid(0)?), EventId(row.uuid(1)?));
        let event = events
            .iter()
            .find(|e| e.id == event_id)
            .ok_or_else(|| corrupt("delivery's event"))?;
        born.push(BornDelivery {
            event: event.clone(),
            endpoint_id,
        });
    }
    tally.claimed(born);
    Ok(())
}

/// An insert to run before a change's events: builds its statement, numbering its arguments
/// after those already in the vector it is given.
type Insert<'a> = &'a (dyn Fn(&mut Vec<Arg>) -> CoreResult<String> + Sync);

/// Writes `events` (at most `EVENTS_PER_STATEMENT`) and their deliveries, after the inserts
/// `before` builds (each numbering its arguments after those already in the vector it is
/// given): on PostgreSQL all in one statement, elsewhere in turn.
async fn write_events<C: Conn>(
    conn: &mut C,
    tally: &mut EventTally,
    before: &[Insert<'_>],
    events: &[Event],
) -> CoreResult<()> {
    let lease = tally.birth_lease();
    if C::WRITES_IN_WITH {
        // Statements in `WITH` all run, to completion, whether or not the query reads them.
        let mut args = Vec::new();
        let mut parts = Vec::with_capacity(before.len() + 1);
        for (i, insert) in before.iter().enumerate() {
            parts.push(format!("w{i} AS ({})", insert(&mut args)?));
        }
        let events_sql = event_insert(events, &mut args)?;
        parts.push(format!(
            "evs AS ({events_sql} RETURNING id, org_id, event_type, created_at)"
        ));
        let sql = format!(
            "WITH {} {}",
            parts.join(", "),
            deliveries_insert("evs", "", lease)
        );
        return insert_deliveries(conn, tally, lease, &sql, args, events).await;
    }
    for insert in before {
        let mut args = Vec::new();
        let sql = insert(&mut args)?;
        conn.execute(&sql, args).await?;
    }
    let mut args = Vec::with_capacity(events.len() * EVENT_ARGS);
    let sql = event_insert(events, &mut args)?;
    conn.execute(&sql, args).await?;
    let ids: Vec<Arg> = events.iter().map(|e| Arg::Uuid(e.id.0)).collect();
    let condition = format!(" AND e.id IN ({})", placeholders(1, ids.len()));
    let sql = deliveries_insert("events", &condition, lease);
    insert_deliveries(conn, tally, lease, &sql, ids, events).await
}

/// The statement that reads a page of an organization's events, of one type if the filter
/// names one (read from the `(org_id, id)` index, as every list of an organization's rows).
fn list_events_statement(
    org: OrganizationId,
    filter: &EventFilter,
    page: Page,
) -> (String, Vec<Arg>) {
    let (select, parent, id) = PagedList::Events.parts();
    let mut args = vec![Arg::Uuid(org.0)];
    let mut sql = format!("{select}{}", parent_page_condition(parent, page));
    if let Some(t) = filter.event_type {
        args.push(Arg::Text(t.key().to_owned()));
        sql.push_str(&format!(" AND event_type = ${}", args.len()));
    }
    let next = args.len() + 1;
    sql.push_str(&parent_page_tail(parent, id, page, next, &mut args));
    (sql, args)
}

pub(super) fn event_row(r: &impl SqlRow) -> CoreResult<Event> {
    let event_type = r.text(2)?;
    Ok(Event {
        id: EventId(r.uuid(0)?),
        organization_id: r.opt_uuid(1)?.map(OrganizationId),
        event_type: EventType::parse(&event_type).ok_or_else(|| corrupt("event type"))?,
        data: serde_json::from_str::<EventData>(&r.text(3)?).map_err(|_| corrupt("event"))?,
        created_at: Timestamp(r.int(4)?),
    })
}

#[async_trait]
impl<C: Conn> EventRows for SqlSession<C> {
    async fn insert_events(&mut self, events: &[Event]) -> CoreResult<()> {
        for chunk in events.chunks(EVENTS_PER_STATEMENT) {
            write_events(&mut self.0, &mut self.1, &[], chunk).await?;
        }
        self.1.wrote(events.len());
        Ok(())
    }

    async fn insert_removal_records(
        &mut self,
        audit: &[AuditEvent],
        former: &[FormerMember],
        events: &[Event],
    ) -> CoreResult<()> {
        let one_go = !events.is_empty()
            && audit.len() <= AUDIT_PER_STATEMENT
            && former.len() <= FORMER_PER_STATEMENT
            && events.len() <= EVENTS_PER_STATEMENT;
        if !one_go {
            self.insert_audit_events(audit).await?;
            self.insert_former_members(former).await?;
            return self.insert_events(events).await;
        }
        let audited = |args: &mut Vec<Arg>| Ok(audit_insert(audit, args));
        let kept = |args: &mut Vec<Arg>| former_insert(former, args);
        let mut before: Vec<Insert<'_>> = Vec::new();
        if !audit.is_empty() {
            before.push(&audited);
        }
        if !former.is_empty() {
            before.push(&kept);
        }
        write_events(&mut self.0, &mut self.1, &before, events).await?;
        self.1.wrote(events.len());
        Ok(())
    }

    async fn list_events(
        &mut self,
        org: OrganizationId,
        filter: &EventFilter,
        page: Page,
    ) -> CoreResult<Vec<Event>> {
        let (sql, args) = list_events_statement(org, filter, page);
        self.all(&sql, args, event_row).await
    }

    async fn purge_events_before(&mut self, before: EventId) -> CoreResult<PurgedEvents> {
        let bound = || vec![Arg::Uuid(before.0)];
        let mut purged = PurgedEvents {
            attempts: self
                .0
                .execute("DELETE FROM webhook_attempts WHERE id < $1", bound())
                .await?,
            deliveries: self
                .0
                .execute(
                    "DELETE FROM webhook_deliveries WHERE event_id < $1 AND state <> 'pending'",
                    bound(),
                )
                .await?,
            ..PurgedEvents::default()
        };
        purged.events = self
            .0
            .execute(
                "DELETE FROM events WHERE id < $1 \
                 AND id NOT IN (SELECT event_id FROM webhook_deliveries) \
                 AND NOT EXISTS (SELECT 1 FROM former_members f WHERE f.event_id = events.id)",
                bound(),
            )
            .await?;
        // A deleted organization's endpoints stay until its last events (its deletion's
        // among them) are delivered; then they go, with what is left of their deliveries.
        purged.endpoints = self
            .0
            .execute(
                "DELETE FROM webhook_endpoints \
                 WHERE org_id NOT IN (SELECT id FROM organizations) \
                 AND id NOT IN (SELECT endpoint_id FROM webhook_deliveries WHERE state = 'pending')",
                vec![],
            )
            .await?;
        if purged.endpoints > 0 {
            for table in ["webhook_deliveries", "webhook_attempts"] {
                let n = self
                    .0
                    .execute(
                        &format!(
                            "DELETE FROM {table} \
                             WHERE endpoint_id NOT IN (SELECT id FROM webhook_endpoints)"
                        ),
                        vec![],
                    )
                    .await?;
                if table == "webhook_deliveries" {
                    purged.deliveries += n;
                } else {
                    purged.attempts += n;
                }
            }
        }
        Ok(purged)
    }
}
