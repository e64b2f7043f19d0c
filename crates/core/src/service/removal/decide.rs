//! The decision: from what was read for a batch of removal requests, each request's outcome in
//! arrival order, with every rule of `super::rules`. It is pure (no store, no clock), so that
//! one request, a 100,000-member bulk and a batch of many requests are decided by the same
//! code: each outcome is the one the request would have had run alone after the requests
//! before it. A membership an earlier request removed is not found; a caller whose own
//! membership an earlier request removed no longer sees the organization; the last-admin
//! guard counts the admins removed so far.

use std::collections::{HashMap, HashSet};

use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, PermissionSet};
use crate::removed::Removed;

use super::resolve::Found;
use super::rules::{
    lacking, leave_refusal, leaves_no_admin, may_be_leaving, may_leave_holding_nothing, none_such,
    self_removal,
};
use super::{LEFT, REMOVED, RemovalRequest};

/// One request as read: who asks (verified, or why not), and what its targets named.
pub(in crate::service) struct Asked<'a> {
    pub request: &'a RemovalRequest,
    pub caller: CoreResult<Actor>,
    pub found: Found,
}

/// What the batch read besides each request's targets.
#[derive(Default)]
pub(in crate::service) struct Read {
    /// Each caller's permissions in the organization, by token; `None` for a caller who does
    /// not see it.
    pub held: HashMap<TokenId, Option<PermissionSet>>,
    /// The organization's active admins, if any target named one (otherwise not read).
    pub active_admins: Option<i64>,
    /// The users (callers who may be leaving it) whose only organization this is.
    pub only_organization: HashSet<UserId>,
}

/// An accepted request: who removes which memberships, audited as what.
pub(in crate::service) struct Plan {
    pub actor: Actor,
    pub members: Removed,
    pub options: RemovalOptions,
    pub action: &'static str,
}

/// Each request's outcome, in arrival order.
pub(in crate::service) fn decide(
    org: OrganizationId,
    asked: Vec<Asked<'_>>,
    read: &Read,
) -> Vec<CoreResult<Plan>> {
    let last = asked.len().saturating_sub(1);
    let mut gone: HashSet<MembershipId> = HashSet::new();
    let mut gone_users: HashSet<UserId> = HashSet::new();
    let mut active_admins = read.active_admins;
    let mut outcomes = Vec::with_capacity(asked.len());
    for (
        i,
        Asked {
            request,
            caller,
            found,
        },
    ) in asked.into_iter().enumerate()
    {
        let outcome =
            decide_one(org, request, caller, found, read, &gone, &gone_users).and_then(|plan| {
                let n = plan.members.active_admins().count() as i64;
                if n > 0 {
                    let admins = active_admins.ok_or_else(|| {
                        CoreError::internal("the active admins were not read before removing one")
                    })?;
                    if let Some(refusal) = leaves_no_admin(admins, plan.members.active_admins()) {
                        return Err(refusal);
                    }
                    active_admins = Some(admins - n);
                }
                Ok(plan)
            });
        // What the last request removes is seen by none after it: a 100,000-member removal
        // keeps no set of its ids.
        if let Ok(plan) = &outcome
            && i < last
        {
            gone.extend(plan.members.ids());
            gone_users.extend(plan.members.user_ids());
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// One request's outcome but for the last-admin guard, after the removals of `gone`.
fn decide_one(
    org: OrganizationId,
    request: &RemovalRequest,
    caller: CoreResult<Actor>,
    found: Found,
    read: &Read,
    gone: &HashSet<MembershipId>,
    gone_users: &HashSet<UserId>,
) -> CoreResult<Plan> {
    let actor = caller?;
    let (members, missing) = found.without(&request.targets, gone);
    let leaving = may_be_leaving(&actor, request)
        .filter(|me| missing.is_empty() && members.len() == 1 && members.user_ids().eq([me.user]));
    let held = if actor.user_id().is_some_and(|u| gone_users.contains(&u)) {
        None
    } else {
        read.held.get(&actor.token_id).copied().flatten()
    };
    // Leaving takes only one's own membership, even one that holds no permission.
    let held = match (held, &leaving) {
        (Some(held), _) => held,
        (None, Some(_)) if may_leave_holding_nothing(&members) => PermissionSet::EMPTY,
        (None, _) => return Err(CoreError::not_found("organization", org)),
    };
    if let Some(refusal) = lacking(held, &actor, org, request, leaving.is_some()) {
        return Err(refusal);
    }
    if !missing.is_empty() {
        return Err(none_such(&request.targets, &missing));
    }
    let refusal = match leaving {
        Some(me) => leave_refusal(
            me.user,
            request.options,
            me.refuse_only_organization,
            read.only_organization.contains(&me.user),
        ),
        None => self_removal(&actor, members.ids_and_users()),
    };
    if let Some(refusal) = refusal {
        return Err(refusal);
    }
    Ok(Plan {
        actor,
        members,
        options: request.options,
        action: if leaving.is_some() { LEFT } else { REMOVED },
    })
}
