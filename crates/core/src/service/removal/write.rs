//! The writes of accepted removals, inside a transaction holding the organization's lock: the
//! cascade (project memberships; on request passwords and service tokens), the deletes, and for
//! each removed membership one audit event and one `membership.removed` event, both naming what
//! the cascade deleted of its member's. One
//! statement per table for however many removals (the audit events of a batch's every
//! organization together). The caller commits.

use serde_json::{Value, json};

use crate::error::CoreResult;
use std::time::Duration;

use crate::events::{Event, EventActor, EventObject, EventType};
use crate::ids::*;
use crate::model::*;
use crate::service::{RequestContext, audit_event};
use crate::store::Session;
use crate::timestamp::Timestamp;

use super::decide::Plan;

/// Writes the accepted `plans` of one organization (each with its request's context) and
/// their audit events, and returns what their cascade deleted.
pub(in crate::service) async fn write(
    tx: &mut dyn Session,
    org: OrganizationId,
    plans: &[(&RequestContext, &Plan)],
    keep: Option<Duration>,
) -> CoreResult<Cascade> {
    let cascade = delete(tx, org, plans.iter().map(|(_, plan)| *plan)).await?;
    let accepted: Vec<Accepted<'_>> = plans
        .iter()
        .map(|(ctx, plan)| Accepted {
            org,
            ctx,
            plan,
            cascade: &cascade,
        })
        .collect();
    record(tx, &accepted, keep).await?;
    drop(accepted);
    Ok(cascade)
}

/// The deletes of the accepted `plans` of one organization, and what their cascade deleted.
pub(in crate::service) async fn delete<'p>(
    tx: &mut dyn Session,
    org: OrganizationId,
    plans: impl Iterator<Item = &'p Plan> + Clone,
) -> CoreResult<Cascade> {
    let n: usize = plans.clone().map(|p| p.members.len()).sum();
    if n == 0 {
        return Ok(Cascade::default());
    }
    // Allocated once: collecting would double its way to 100,000.
    let (mut users, mut ids) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut passwords_of, mut service_tokens_of) = (Vec::new(), Vec::new());
    for p in plans {
        users.extend(p.members.user_ids());
        ids.extend(p.members.ids());
        if p.options.delete_passwords {
            passwords_of.extend(p.members.user_ids());
        }
        if p.options.delete_service_tokens {
            service_tokens_of.extend(p.members.user_ids());
        }
    }
    let passwords = if passwords_of.is_empty() {
        Vec::new()
    } else {
        tx.delete_passwords_of_users(org, &passwords_of).await?
    };
    let service_tokens = if service_tokens_of.is_empty() {
        Vec::new()
    } else {
        tx.delete_service_tokens_created_by(org, &service_tokens_of)
            .await?
    };
    let project_memberships = tx.remove_memberships_cascading(org, &users, &ids).await?;
    Ok(Cascade::sorted(
        project_memberships,
        passwords,
        service_tokens,
    ))
}

/// One accepted removal, as its audit events need it.
pub(in crate::service) struct Accepted<'a> {
    pub org: OrganizationId,
    pub ctx: &'a RequestContext,
    pub plan: &'a Plan,
    /// What the cascade deleted, this removal's share at least.
    pub cascade: &'a Cascade,
}

/// One audit event and one `membership.removed` event per membership the `accepted` removals
/// removed, in whatever organizations, with as few statements as their number allows.
/// `keep` is how long each removed member's former-member record is kept; `None` keeps none
/// (a user's deletion, which keeps nothing of the person).
pub(in crate::service) async fn record(
    tx: &mut dyn Session,
    accepted: &[Accepted<'_>],
    keep: Option<Duration>,
) -> CoreResult<()> {
    let n: usize = accepted.iter().map(|a| a.plan.members.len()).sum();
    // The records are built a part at a time, each just before it is written: all those of a
    // 100,000-member removal, each with its details as a JSON map, would take tens of MiB.
    let mut audit = Vec::with_capacity(n.min(EVENTS_AT_A_TIME));
    let mut former = Vec::with_capacity(if keep.is_some() {
        n.min(EVENTS_AT_A_TIME)
    } else {
        0
    });
    let mut events = Vec::with_capacity(n.min(EVENTS_AT_A_TIME));
    let now = Timestamp::now();
    for a in accepted {
        for m in a.plan.members.iter() {
            audit.push(removal_audit_event(a, &m));
            let event = removal_event(a, m.clone());
            if let Some(keep) = keep {
                former.push(former_member(a, &m, now, keep, event.id));
            }
            events.push(event);
            if audit.len() == EVENTS_AT_A_TIME {
                tx.insert_removal_records(&audit, &former, &events).await?;
                audit.clear();
                former.clear();
                events.clear();
            }
        }
    }
    if !audit.is_empty() {
        tx.insert_removal_records(&audit, &former, &events).await?;
    }
    Ok(())
}

/// The former-member record of one removed membership, kept for `keep` from `now`; `event` is
/// its removal's event.
fn former_member(
    a: &Accepted<'_>,
    m: &Membership,
    now: Timestamp,
    keep: Duration,
    event: EventId,
) -> FormerMember {
    let of = m.user_id.map(|u| a.cascade.of(u)).unwrap_or_default();
    FormerMember {
        membership: m.clone(),
        project_memberships: of.project_memberships.to_vec(),
        passwords: of.passwords.iter().map(|p| p.id).collect(),
        service_tokens: of.service_tokens.iter().map(|t| t.id).collect(),
        removed_by: EventActor::of(Some(&a.plan.actor)),
        request_id: a.ctx.request_id.clone(),
        removed_at: now,
        expires_at: now.plus(keep),
        removal_event: Some(event),
    }
}

/// Audit events a large removal builds at a time: as many as the store writes in a few
/// statements.
const EVENTS_AT_A_TIME: usize = 500;

/// The `membership.removed` event of one removed membership: the membership as it was, and
/// what the cascade deleted of its member's.
fn removal_event(a: &Accepted<'_>, m: Membership) -> Event {
    let cascade = m
        .user_id
        .map(|u| a.cascade.of(u).to_cascade())
        .unwrap_or_default();
    Event::new(
        a.ctx,
        Some(&a.plan.actor),
        Some(a.org),
        EventType::MembershipRemoved,
        EventObject::Membership(m),
    )
    .with_cascade(cascade)
}

/// The audit event of one removed membership: who it was, what was asked, and what the
/// cascade deleted of its member's.
fn removal_audit_event(a: &Accepted<'_>, m: &Membership) -> AuditEvent {
    let of = m.user_id.map(|u| a.cascade.of(u)).unwrap_or_default();
    let project_memberships: Vec<Value> = of
        .project_memberships
        .iter()
        .map(|p| json!({"id": p.id, "project_id": p.project_id}))
        .collect();
    let options = a.plan.options;
    audit_event(
        a.ctx,
        Some(&a.plan.actor),
        Some(a.org),
        a.plan.action,
        ("membership", m.id.to_string()),
        json!({"user_id": m.user_id, "invite_email": m.invite_email, "role": m.role_key,
        "delete_passwords": options.delete_passwords,
        "delete_service_tokens": options.delete_service_tokens,
        "cascade": {
            "project_memberships": project_memberships,
            "passwords": of.passwords.iter().map(|p| p.id).collect::<Vec<_>>(),
            "service_tokens": of.service_tokens.iter().map(|t| t.id).collect::<Vec<_>>(),
        }}),
    )
}
