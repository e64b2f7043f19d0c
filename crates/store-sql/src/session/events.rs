//! The outbox: membership events, written in their change's transaction and read by page.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
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

fn event_row(r: &impl SqlRow) -> CoreResult<Event> {
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
            let mut args = Vec::with_capacity(chunk.len() * EVENT_ARGS);
            let sql = event_insert(chunk, &mut args)?;
            self.0.execute(&sql, args).await?;
        }
        Ok(())
    }

    async fn insert_audit_and_events(
        &mut self,
        audit: &[AuditEvent],
        events: &[Event],
    ) -> CoreResult<()> {
        let one_statement = C::WRITES_IN_WITH
            && !audit.is_empty()
            && !events.is_empty()
            && audit.len() <= AUDIT_PER_STATEMENT
            && events.len() <= EVENTS_PER_STATEMENT;
        if !one_statement {
            self.insert_audit_events(audit).await?;
            return self.insert_events(events).await;
        }
        // Statements in `WITH` all run, to completion, whether or not the query reads them.
        let mut args = Vec::with_capacity(audit.len() * AUDIT_ARGS + events.len() * EVENT_ARGS);
        let audit_sql = audit_insert(audit, &mut args);
        let events_sql = event_insert(events, &mut args)?;
        let sql = format!("WITH audited AS ({audit_sql}) {events_sql}");
        self.0.execute(&sql, args).await?;
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
}
