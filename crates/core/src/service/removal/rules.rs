//! The rules that may refuse a removal, each decided in one function here and nowhere else:
//! the permission it needs, self-removal, the last active admin, the rules of leaving, and
//! what a target that names nothing is answered. Each is a pure function of what was read;
//! `super::decide` applies them in order, and the demotion of the last admin
//! (`update_membership`) asks `leaves_no_admin` too.

use crate::error::{CoreError, Rule};
use crate::ids::*;
use crate::model::*;
use crate::permissions::{Actor, Permission, PermissionSet, Principal};

use super::{OwnMembership, RemovalRequest};

const LAST_ADMIN: &str = "an organization must keep at least one active admin";

/// The refusal of `user` leaving with `options`, if the rules refuse it: credential deletion is
/// for removing others, and with `refuse_only_organization` (PlanetScale's rule) nobody leaves
/// their only organization (`only_organization`: whether this one is, as read). The last-admin
/// guard is the removal's own, checked after these.
pub(in crate::service) fn leave_refusal(
    user: UserId,
    options: RemovalOptions,
    refuse_only_organization: bool,
    only_organization: bool,
) -> Option<CoreError> {
    if options.delete_passwords || options.delete_service_tokens {
        return Some(CoreError::rule(
            Rule::CredentialFlagsOnSelf,
            "delete_passwords and delete_service_tokens are only available when removing other members",
            Some(user.to_string()),
        ));
    }
    if refuse_only_organization && only_organization {
        return Some(CoreError::rule(
            Rule::OnlyOrganization,
            "you cannot leave your only organization",
            Some(user.to_string()),
        ));
    }
    None
}

/// A caller who may be leaving: their user, and whether their only organization is kept.
#[derive(Clone, Copy, Debug)]
pub(in crate::service) struct MayLeave {
    pub user: UserId,
    pub refuse_only_organization: bool,
}

/// Whether `request` by `actor` may be the caller leaving (`OwnMembership::Leaves`): a user
/// caller and one target, not another user. It is, if the target is the caller's own
/// membership.
pub(in crate::service) fn may_be_leaving(
    actor: &Actor,
    request: &RemovalRequest,
) -> Option<MayLeave> {
    let OwnMembership::Leaves {
        refuse_only_organization,
    } = request.own_membership
    else {
        return None;
    };
    let me = actor.user_id()?;
    match request.targets.as_slice() {
        [MemberRef::User(other)] if *other != me => None,
        [_] => Some(MayLeave {
            user: me,
            refuse_only_organization,
        }),
        _ => None,
    }
}

/// Whether a caller who holds no permission in the organization may still leave it by
/// `members` (their own membership): one still an invitation may be left (declined), but not
/// a deactivated one. Deactivation suspends a member from everything in the organization,
/// their own membership included: it stays, for an admin (or the identity provider) to
/// reactivate or remove, and the member is answered as anyone without standing there.
pub(in crate::service) fn may_leave_holding_nothing(members: &crate::removed::Removed) -> bool {
    members.iter().all(|m| m.is_active)
}

/// The refusal of a caller who holds `held` and may not make `request`. What the context shows
/// is checked first: a caller who may not read the members learns nothing from the order of
/// refusals. A caller `leaving` needs no permission to remove. A service token is told the
/// organization is not there where the request asks so
/// (`RemovalRequest::forbidden_to_service_tokens_is_not_found`).
pub(in crate::service) fn lacking(
    held: PermissionSet,
    actor: &Actor,
    org: OrganizationId,
    request: &RemovalRequest,
    leaving: bool,
) -> Option<CoreError> {
    let reads: &[Permission] = if request.include_context {
        &[Permission::MembersRead, Permission::OrganizationRead]
    } else {
        &[]
    };
    let removes: &[Permission] = if leaving {
        &[]
    } else {
        &[Permission::MembersDelete]
    };
    reads
        .iter()
        .chain(removes)
        .find(|p| !held.contains(**p))
        .map(|p| {
            let concealed = request.forbidden_to_service_tokens_is_not_found
                && matches!(actor.principal, Principal::ServiceToken { .. });
            if concealed {
                CoreError::not_found("organization", org)
            } else {
                CoreError::Forbidden {
                    permission: p.key(),
                }
            }
        })
}

/// The refusal of a removal of `members` (their ids and users) that names the caller's own
/// membership, if it does.
pub(in crate::service) fn self_removal(
    actor: &Actor,
    mut members: impl Iterator<Item = (MembershipId, Option<UserId>)>,
) -> Option<CoreError> {
    let me = actor.user_id()?;
    let (own, _) = members.find(|(_, user)| *user == Some(me))?;
    Some(CoreError::rule(
        Rule::SelfRemoval,
        "You cannot remove yourself from an organization",
        Some(own.to_string()),
    ))
}

/// The refusal of a removal (or demotion) of the active admins `taken` from an organization
/// that has `active_admins` (as the change finds it), if none would be left.
pub(in crate::service) fn leaves_no_admin(
    active_admins: i64,
    taken: impl Iterator<Item = MembershipId> + Clone,
) -> Option<CoreError> {
    let n = taken.clone().count() as i64;
    (n > 0 && active_admins - n < 1).then(|| last_admin(taken))
}

/// The refusal of a removal (or demotion) that would leave no active admin, naming the active
/// admins it removes: the first as `id`, all of them (up to `MAX_NAMED_NOT_FOUND`) as `ids`.
fn last_admin(admins: impl IntoIterator<Item = MembershipId>) -> CoreError {
    let ids: Vec<String> = admins
        .into_iter()
        .take(crate::error::MAX_NAMED_NOT_FOUND)
        .map(|id| id.to_string())
        .collect();
    CoreError::RuleViolated {
        rule: Rule::LastAdmin,
        message: LAST_ADMIN.to_owned(),
        id: ids.first().cloned(),
        ids,
    }
}

/// The refusal of a request whose `missing` targets (in request order, each once) name no
/// membership: one target's not found, or for a request naming several every such target in
/// one error (the first `MAX_NAMED_NOT_FOUND`, and the count), so that a list is cleaned in
/// one round trip. Both the batched and the one-by-one path answer through it.
pub(in crate::service) fn none_such(targets: &[MemberRef], missing: &[MemberRef]) -> CoreError {
    if let ([_], [only]) = (targets, missing) {
        return no_such_member(*only);
    }
    CoreError::NotFoundAmong {
        kind: "membership",
        ids: missing
            .iter()
            .take(crate::error::MAX_NAMED_NOT_FOUND)
            .map(|t| match t {
                MemberRef::Membership(id) => id.to_string(),
                MemberRef::User(user) => user.to_string(),
            })
            .collect(),
        count: missing.len(),
    }
}

/// The not-found error for a target that names no membership of the organization.
pub(in crate::service) fn no_such_member(target: MemberRef) -> CoreError {
    match target {
        MemberRef::Membership(id) => CoreError::not_found("membership", id),
        MemberRef::User(user) => CoreError::not_found("membership", user),
    }
}
