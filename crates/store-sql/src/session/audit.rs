//! The audit trail: events written in the change's transaction, and read by page and filter.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::ids::*;
use roster_core::model::*;
use roster_core::store::rows::*;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

pub(super) const AUDIT_COLS: &str = "id, org_id, actor_kind, actor_id, action, target_kind, target_id, request_id, details, created_at";

/// Arguments per audit event row.
pub(super) const AUDIT_ARGS: usize = 10;

/// Audit events per statement: a bulk removal writes one per membership.
pub(super) const AUDIT_PER_STATEMENT: usize = 100;

/// `INSERT INTO audit_events … VALUES …` for `events`, their arguments appended to `args`
/// (numbered after those already there).
pub(super) fn audit_insert(events: &[AuditEvent], args: &mut Vec<Arg>) -> String {
    let mut values = Vec::with_capacity(events.len());
    for e in events {
        values.push(format!("({})", placeholders(args.len() + 1, AUDIT_ARGS)));
        args.extend([
            Arg::Uuid(e.id.0),
            Arg::OptUuid(e.organization_id.map(|o| o.0)),
            Arg::Text(e.actor_kind.clone()),
            Arg::Text(e.actor_id.clone()),
            Arg::Text(e.action.clone()),
            Arg::Text(e.target_kind.clone()),
            Arg::Text(e.target_id.clone()),
            Arg::OptText(e.request_id.clone()),
            Arg::Text(e.details.to_string()),
            ts(e.created_at),
        ]);
    }
    format!(
        "INSERT INTO audit_events ({AUDIT_COLS}) VALUES {}",
        values.join(", ")
    )
}

/// The statement that reads a page of audit events, of one organization (read from its
/// `(org_id, id)` index as `list_page_statement` reads it: with no filter, the same statement)
/// or of the whole instance (in id order), with `filter`'s conditions.
pub fn list_audit_events_statement(
    org: Option<OrganizationId>,
    filter: &AuditFilter,
    page: Page,
) -> (String, Vec<Arg>) {
    let (select, parent, id) = PagedList::AuditEvents.parts();
    let mut args = Vec::new();
    let mut sql = match org {
        Some(o) => {
            args.push(Arg::Uuid(o.0));
            format!("{select}{}", parent_page_condition(parent, page))
        }
        None => format!("{select} WHERE 1 = 1"),
    };
    let mut equal = |column: &str, value: &Option<String>| {
        if let Some(v) = value {
            args.push(Arg::Text(v.clone()));
            sql.push_str(&format!(" AND {column} = ${}", args.len()));
        }
    };
    equal("action", &filter.action);
    equal("actor_id", &filter.actor_id);
    equal("target_id", &filter.target_id);
    for (compare, at) in [(">=", filter.since), ("<", filter.until)] {
        if let Some(t) = at {
            args.push(ts(t));
            sql.push_str(&format!(" AND created_at {compare} ${}", args.len()));
        }
    }
    let next = args.len() + 1;
    let tail = match org {
        Some(_) => parent_page_tail(parent, id, page, next, &mut args),
        None => page_sql(id, page, next, &mut args),
    };
    sql.push_str(&tail);
    (sql, args)
}

pub(super) fn audit_row(r: &impl SqlRow) -> CoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: AuditEventId(r.uuid(0)?),
        organization_id: r.opt_uuid(1)?.map(OrganizationId),
        actor_kind: r.text(2)?,
        actor_id: r.text(3)?,
        action: r.text(4)?,
        target_kind: r.text(5)?,
        target_id: r.text(6)?,
        request_id: r.opt_text(7)?,
        details: serde_json::from_str(&r.text(8)?).map_err(|_| corrupt("audit details"))?,
        created_at: Timestamp(r.int(9)?),
    })
}

#[async_trait]
impl<C: Conn> AuditRows for SqlSession<C> {
    async fn insert_audit_events(&mut self, events: &[AuditEvent]) -> CoreResult<()> {
        // Many rows per statement: a bulk removal writes one event per membership.
        for chunk in events.chunks(AUDIT_PER_STATEMENT) {
            let mut args = Vec::with_capacity(chunk.len() * 10);
            let sql = audit_insert(chunk, &mut args);
            self.0.execute(&sql, args).await?;
        }
        Ok(())
    }

    async fn list_audit_events(
        &mut self,
        org: Option<OrganizationId>,
        filter: &AuditFilter,
        page: Page,
    ) -> CoreResult<Vec<AuditEvent>> {
        let (sql, args) = list_audit_events_statement(org, filter, page);
        self.all(&sql, args, audit_row).await
    }
}
