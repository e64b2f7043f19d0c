//! Running removal requests inside a transaction holding the organization's lock: one request
//! at a time (`remove_one`, which any request may take), or a whole batch of plain requests
//! decided in memory in arrival order (`remove_plain_together`), each outcome the one it would
//! have had alone after the requests before it. A property test holds the second to the first
//! (`tests/api/removal_equivalence.rs`).

use std::collections::{HashMap, HashSet};

use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::model::*;
use crate::permissions::Actor;
use crate::service::RequestContext;
use crate::service::memberships::find_one;
use crate::store::Session;

use super::resolve::resolve_many;
use super::rules::{lacking, last_admin, leave_refusal, may_be_leaving, none_such, self_removal};
use super::write::{Audit, delete_removed, removal_event, remove_in};
use super::{LEFT, REMOVED, RemovalRequest};

/// A member leaving: its own membership, and how (`leave_refusal`).
pub(in crate::service) struct Leaving {
    pub(in crate::service) own: Membership,
    pub(in crate::service) options: RemovalOptions,
    pub(in crate::service) refuse_only_organization: bool,
}

/// `actor` leaving `org`, whose lock the transaction holds: the rules of leaving, then the
/// shared unit of work, audited as leaving (`leave_organization`, and `remove_one` for a request
/// that is its caller leaving).
pub(in crate::service) async fn leave_in(
    tx: &mut dyn Session,
    org: OrganizationId,
    actor: &Actor,
    leaving: Leaving,
    ctx: &RequestContext,
) -> CoreResult<Removal> {
    let Leaving {
        own,
        options,
        refuse_only_organization,
    } = leaving;
    let user = own
        .user_id
        .ok_or_else(|| CoreError::internal("a membership that leaves has no user"))?;
    if let Some(refusal) = leave_refusal(tx, user, options, refuse_only_organization).await? {
        return Err(refusal);
    }
    let audit = Audit {
        ctx,
        actor,
        action: LEFT,
    };
    remove_in(tx, org, vec![own].into(), options, audit).await
}

/// One removal request, inside a transaction holding the organization's lock: the actor's
/// permission, the targets, the self-removal rule, then the shared unit of work; or, for a
/// caller leaving (`OwnMembership::Leaves`), the rules of leaving and the unit of work. The
/// caller commits. Every refusal is decided from reads before the first write (group commit
/// relies on it): a write can only fail as a conflict or an internal error.
pub(in crate::service) async fn remove_one(
    tx: &mut dyn Session,
    org: OrganizationId,
    actor: &Actor,
    request: &RemovalRequest,
) -> CoreResult<Removal> {
    let held = crate::auth::permissions_in(tx, actor, org)
        .await?
        .ok_or_else(|| CoreError::not_found("organization", org))?;
    let leaving = match may_be_leaving(actor, request) {
        Some((target, me, refuse_only_organization)) => find_one(tx, org, target)
            .await?
            .filter(|m| m.user_id == Some(me))
            .map(|own| Leaving {
                own,
                options: request.options,
                refuse_only_organization,
            }),
        None => None,
    };
    if let Some(refusal) = lacking(held, actor, org, request, leaving.is_some()) {
        return Err(refusal);
    }
    if let Some(leaving) = leaving {
        return leave_in(tx, org, actor, leaving, &request.ctx).await;
    }
    let members = resolve_many(tx, org, &request.targets).await?;
    if let Some(refusal) = self_removal(actor, members.ids_and_users()) {
        return Err(refusal);
    }
    remove_in(
        tx,
        org,
        members,
        request.options,
        Audit {
            ctx: &request.ctx,
            actor,
            action: REMOVED,
        },
    )
    .await
}

/// What the requests of one batch that want context (`RemovalRequest::include_context`) share:
/// a batch of removals changes neither the organization nor its roles, and its member count
/// is the one read once, less what the batch removed after that read.
pub(in crate::service) struct SharedContext {
    organization: Organization,
    roles: Vec<Role>,
    count_when_read: i64,
    /// The batch's removed memberships the count read already saw.
    removed_when_read: i64,
    users: HashMap<UserId, User>,
}

impl SharedContext {
    /// Reads the organization, its roles, its member count (which has seen `removed_so_far` of
    /// the batch's removals) and `users`.
    async fn read(
        tx: &mut dyn Session,
        org: OrganizationId,
        users: &[UserId],
        removed_so_far: i64,
    ) -> CoreResult<SharedContext> {
        let users = if users.is_empty() {
            Vec::new()
        } else {
            tx.users_by_ids(users).await?
        };
        let (organization, count_when_read, roles) = tx
            .organization_in_context(org)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", org))?;
        Ok(SharedContext {
            organization,
            roles,
            count_when_read,
            removed_when_read: removed_so_far,
            users: users.into_iter().map(|u| (u.id, u)).collect(),
        })
    }

    /// The context of a removal of the memberships of `removed_users`, the batch having removed
    /// `removed_so_far` memberships with it (the users must have been read).
    fn context(
        &self,
        removed_users: impl Iterator<Item = UserId>,
        removed_so_far: i64,
    ) -> RemovalContext {
        RemovalContext {
            organization: self.organization.clone(),
            member_count: self.count_when_read - (removed_so_far - self.removed_when_read),
            users: removed_users
                .filter_map(|u| self.users.get(&u).cloned())
                .collect(),
            roles: self.roles.clone(),
        }
    }
}

/// The context of `removal`, just made by one of `requests`: read on the batch's first such
/// request (with the users every such request names, in one query), then taken from `shared`.
/// `removed_so_far` counts the memberships the batch has removed, this removal's included.
pub(in crate::service) async fn context_for(
    tx: &mut dyn Session,
    org: OrganizationId,
    requests: &[RemovalRequest],
    removal: &Removal,
    removed_so_far: i64,
    shared: &mut Option<SharedContext>,
) -> CoreResult<RemovalContext> {
    let removed_users = || removal.removed.user_ids();
    let s = match shared {
        Some(s) => s,
        None => {
            let named = requests
                .iter()
                .filter(|r| r.include_context)
                .flat_map(|r| &r.targets)
                .filter_map(|t| match t {
                    MemberRef::User(u) => Some(*u),
                    MemberRef::Membership(_) => None,
                });
            let wanted: Vec<UserId> = named
                .chain(removed_users())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            shared.insert(SharedContext::read(tx, org, &wanted, removed_so_far).await?)
        }
    };
    let missing: Vec<UserId> = removed_users()
        .filter(|u| !s.users.contains_key(u))
        .collect();
    if !missing.is_empty() {
        for u in tx.users_by_ids(&missing).await? {
            s.users.insert(u.id, u);
        }
    }
    Ok(s.context(removal.removed.user_ids(), removed_so_far))
}

/// A whole batch of plain removals (`is_plain`) with one statement per table, inside a
/// transaction holding the organization's lock. Every request's outcome is decided first, in
/// arrival order, from reads made before any write, and is the one it would have had run alone
/// after the requests before it: a membership an earlier request removed is not found, a caller
/// whose own membership an earlier request removed no longer sees the organization, the
/// last-admin guard counts the admins removed so far; a caller leaving (`OwnMembership::Leaves`)
/// needs no permission to remove but is held to the rules of leaving. Then the accepted
/// removals are written together: the project memberships (returned, so each request gets its own
/// share of the cascade), the memberships, the audit events. Requests that want context get it from
/// reads made once for the batch, before the writes: the member count is the one read less what
/// the batch removed up to and including the request. An `Err` means a read or a write failed:
/// the caller must drop the transaction (it may hold some of the writes).
pub(in crate::service) async fn remove_plain_together(
    tx: &mut dyn Session,
    org: OrganizationId,
    requests: &[RemovalRequest],
    actors: Vec<CoreResult<Actor>>,
) -> CoreResult<Vec<CoreResult<Removal>>> {
    let (mut ids, mut users) = (Vec::new(), Vec::new());
    for (r, _) in requests.iter().zip(&actors).filter(|(_, a)| a.is_ok()) {
        for t in &r.targets {
            match t {
                MemberRef::Membership(id) => ids.push(*id),
                MemberRef::User(u) => users.push(*u),
            }
        }
    }
    let by_id: HashMap<MembershipId, Membership> = if ids.is_empty() {
        HashMap::new()
    } else {
        let found = tx.memberships_by_ids(org, &ids).await?;
        found.into_iter().map(|m| (m.id, m)).collect()
    };
    let by_user: HashMap<UserId, Membership> = if users.is_empty() {
        HashMap::new()
    } else {
        let found = tx.memberships_by_users(org, &users).await?;
        found
            .into_iter()
            .filter_map(|m| Some((m.user_id?, m)))
            .collect()
    };

    let mut held_by_token: HashMap<TokenId, Option<crate::permissions::PermissionSet>> =
        HashMap::new();
    let (mut removed_ids, mut removed_users) = (HashSet::new(), HashSet::new());
    let mut active_admins: Option<i64> = None;
    // What a target names, unless an earlier request of the batch removed it.
    let find = |t: &MemberRef, removed_ids: &HashSet<MembershipId>| {
        match t {
            MemberRef::Membership(id) => by_id.get(id),
            MemberRef::User(u) => by_user.get(u),
        }
        .filter(|m| !removed_ids.contains(&m.id))
    };
    // Each accepted request's caller, memberships and audit action.
    let mut plans: Vec<CoreResult<(Actor, Vec<Membership>, &'static str)>> =
        Vec::with_capacity(requests.len());
    for (r, actor) in requests.iter().zip(actors) {
        let actor = match actor {
            Ok(actor) => actor,
            Err(e) => {
                plans.push(Err(e));
                continue;
            }
        };
        let held = if actor.user_id().is_some_and(|u| removed_users.contains(&u)) {
            None
        } else if let Some(held) = held_by_token.get(&actor.token_id) {
            *held
        } else {
            let held = crate::auth::permissions_in(tx, &actor, org).await?;
            held_by_token.insert(actor.token_id, held);
            held
        };
        let Some(held) = held else {
            plans.push(Err(CoreError::not_found("organization", org)));
            continue;
        };
        let leaving = may_be_leaving(&actor, r).filter(|(target, me, _)| {
            find(target, &removed_ids).is_some_and(|m| m.user_id == Some(*me))
        });
        if let Some(refusal) = lacking(held, &actor, org, r, leaving.is_some()) {
            plans.push(Err(refusal));
            continue;
        }
        let mut members: Vec<Membership> = Vec::with_capacity(r.targets.len());
        // At most `SHARED_COMMIT_MAX_TARGETS` targets: a scan for duplicates is cheap.
        let mut missing: Vec<MemberRef> = Vec::new();
        for t in &r.targets {
            match find(t, &removed_ids) {
                Some(m) if !members.iter().any(|seen| seen.id == m.id) => members.push(m.clone()),
                Some(_) => {}
                None if !missing.contains(t) => missing.push(*t),
                None => {}
            }
        }
        let missing = (!missing.is_empty()).then(|| none_such(&r.targets, &missing));
        let refusal = match (missing, leaving) {
            (Some(missing), _) => Some(missing),
            (None, Some((_, me, refuse_only_organization))) => {
                leave_refusal(tx, me, r.options, refuse_only_organization).await?
            }
            (None, None) => self_removal(&actor, members.iter().map(|m| (m.id, m.user_id))),
        };
        if let Some(refusal) = refusal {
            plans.push(Err(refusal));
            continue;
        }
        let admins_removed = members.iter().filter(|m| m.is_active_admin()).count() as i64;
        if admins_removed > 0 {
            let admins = match active_admins {
                Some(n) => n,
                None => tx.count_active_admins(org).await?,
            };
            active_admins = Some(admins);
            if admins - admins_removed < 1 {
                let admins = members.iter().filter(|m| m.is_active_admin()).map(|m| m.id);
                plans.push(Err(last_admin(admins)));
                continue;
            }
            active_admins = Some(admins - admins_removed);
        }
        removed_ids.extend(members.iter().map(|m| m.id));
        removed_users.extend(members.iter().filter_map(|m| m.user_id));
        let action = if leaving.is_some() { LEFT } else { REMOVED };
        plans.push(Ok((actor, members, action)));
    }

    let wants_context = requests
        .iter()
        .zip(&plans)
        .any(|(r, plan)| r.include_context && plan.is_ok());
    let shared = if wants_context {
        let users: Vec<UserId> = requests
            .iter()
            .zip(&plans)
            .filter(|(r, _)| r.include_context)
            .filter_map(|(_, plan)| plan.as_ref().ok())
            .flat_map(|(_, members, _)| members.iter().filter_map(|m| m.user_id))
            .collect();
        Some(SharedContext::read(tx, org, &users, 0).await?)
    } else {
        None
    };

    let mut cascade = Cascade::default();
    if !removed_ids.is_empty() {
        let users: Vec<UserId> = removed_users.iter().copied().collect();
        let ids: Vec<MembershipId> = removed_ids.iter().copied().collect();
        cascade = delete_removed(tx, org, &users, &ids, RemovalOptions::default()).await?;
        let cascade = &cascade;
        // A shared batch is small (at most `SHARED_COMMIT_MAX_TARGETS` per request): its events
        // are written in one go.
        let events: Vec<AuditEvent> = requests
            .iter()
            .zip(&plans)
            .filter_map(|(r, plan)| Some((r, plan.as_ref().ok()?)))
            .flat_map(|(r, (actor, members, action))| {
                let audit = Audit {
                    ctx: &r.ctx,
                    actor,
                    action,
                };
                members
                    .iter()
                    .map(move |m| removal_event(&audit, org, m, r.options, cascade))
            })
            .collect();
        tx.insert_audit_events(&events).await?;
    }
    let mut removed_so_far = 0i64;
    Ok(requests
        .iter()
        .zip(plans)
        .map(|(r, plan)| {
            plan.map(|(_, removed, _)| {
                removed_so_far += removed.len() as i64;
                let context = shared
                    .as_ref()
                    .filter(|_| r.include_context)
                    .map(|s| s.context(removed.iter().filter_map(|m| m.user_id), removed_so_far));
                Removal {
                    cascade: cascade.of_users(removed.iter().filter_map(|m| m.user_id)),
                    removed: removed.into(),
                    context,
                }
            })
        })
        .collect())
}
