//! The unit of work every removal ends in, inside a transaction holding the organization's
//! lock: the last-admin guard, the cascade (project memberships; on request passwords and
//! service tokens), the deletes and one audit event per removed membership, naming what the
//! cascade deleted of its member's. The caller commits.

use serde_json::{Value, json};

use crate::error::CoreResult;
use crate::ids::*;
use crate::model::*;
use crate::permissions::Actor;
use crate::removed::Removed;
use crate::service::{RequestContext, audit_event};
use crate::store::Session;

use super::rules::last_admin;

/// Who removes, and how the audit trail names it.
pub(in crate::service) struct Audit<'a> {
    pub ctx: &'a RequestContext,
    pub actor: &'a Actor,
    pub action: &'static str,
}

/// The shared removal unit of work, inside a transaction holding the organization's lock:
/// last-admin guard, cascade, delete, one audit event per removed membership. The caller
/// commits (after whatever else belongs to the same transaction).
pub(in crate::service) async fn remove_in(
    tx: &mut dyn Session,
    org: OrganizationId,
    members: Removed,
    options: RemovalOptions,
    audit: Audit<'_>,
) -> CoreResult<Removal> {
    let admins_removed = members.active_admins().count() as i64;
    if admins_removed > 0 && tx.count_active_admins(org).await? - admins_removed < 1 {
        return Err(last_admin(members.active_admins()));
    }
    // Allocated once: collecting the filtered users would double its way to 100,000.
    let mut users: Vec<UserId> = Vec::with_capacity(members.len());
    users.extend(members.user_ids());
    let ids: Vec<MembershipId> = members.ids().collect();
    let cascade = delete_removed(tx, org, &users, &ids, options).await?;
    drop((users, ids));
    // The events are built a part at a time, each just before it is written: all the events of
    // a 100,000-member removal, each with its details as a JSON map, would take tens of MiB.
    let mut to_record = members.iter();
    loop {
        let events: Vec<AuditEvent> = to_record
            .by_ref()
            .take(EVENTS_AT_A_TIME)
            .map(|m| removal_event(&audit, org, &m, options, &cascade))
            .collect();
        if events.is_empty() {
            break;
        }
        tx.insert_audit_events(&events).await?;
    }
    drop(to_record);
    Ok(Removal {
        removed: members,
        cascade,
        context: None,
    })
}

/// The deletes of a removal of the memberships `ids`, whose users are `users`: on request the
/// users' passwords and the service tokens they created, then their project memberships and
/// the memberships themselves. Returns what the cascade deleted.
pub(in crate::service) async fn delete_removed(
    tx: &mut dyn Session,
    org: OrganizationId,
    users: &[UserId],
    ids: &[MembershipId],
    options: RemovalOptions,
) -> CoreResult<Cascade> {
    let (mut passwords, mut service_tokens) = (Vec::new(), Vec::new());
    if !users.is_empty() {
        if options.delete_passwords {
            passwords = tx.delete_passwords_of_users(org, users).await?;
        }
        if options.delete_service_tokens {
            service_tokens = tx.delete_service_tokens_created_by(org, users).await?;
        }
    }
    let project_memberships = tx.remove_memberships_cascading(org, users, ids).await?;
    Ok(Cascade::sorted(
        project_memberships,
        passwords,
        service_tokens,
    ))
}

/// Audit events a large removal builds at a time: as many as the store writes in a few
/// statements.
pub(in crate::service) const EVENTS_AT_A_TIME: usize = 500;

/// The audit event of one removed membership: who it was, what was asked, and what the
/// cascade deleted of its member's (`cascade` holds at least that).
pub(in crate::service) fn removal_event(
    audit: &Audit<'_>,
    org: OrganizationId,
    m: &Membership,
    options: RemovalOptions,
    cascade: &Cascade,
) -> AuditEvent {
    let of = m.user_id.map(|u| cascade.of(u)).unwrap_or_default();
    let project_memberships: Vec<Value> = of
        .project_memberships
        .iter()
        .map(|p| json!({"id": p.id, "project_id": p.project_id}))
        .collect();
    audit_event(
        audit.ctx,
        Some(audit.actor),
        Some(org),
        audit.action,
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
