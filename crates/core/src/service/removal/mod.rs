//! Removal: the room where every way of removing a membership is decided and written. A
//! removal request (`RemovalRequest`) names its caller, its targets and its options; the
//! rules that may refuse it live in `rules` and nowhere else; `resolve` reads what a request
//! names; `run` runs one request, or decides a whole batch of plain ones in memory, in arrival
//! order, each as it would be alone; `write` is the unit of work every path ends in (the
//! last-admin guard, the cascade, the deletes, the audit trail). Group commit
//! (`super::group_commit`) schedules requests into batches and calls `run`.
//!
//! Like the rest of the core this knows no SQL and no HTTP.

mod resolve;
mod rules;
mod run;
mod write;

pub(in crate::service) use rules::{is_plain, last_admin, no_such_member};
pub(in crate::service) use run::{context_for, remove_one, remove_plain_together};
pub(in crate::service) use write::{Audit, remove_in};

use super::group_commit::SHARED_COMMIT_MAX_TARGETS;
use super::{RequestContext, Roster};
use crate::auth::Caller;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::model::*;
use crate::permissions::Actor;
use run::{Leaving, leave_in};

/// The most targets one bulk removal may name (documented in the README and the OpenAPI
/// document): large enough for a real off-boarding, small enough for one transaction.
pub const MAX_BULK_REMOVAL: usize = 100_000;

/// The audit actions of a removal: by someone else, or the member leaving.
const REMOVED: &str = "membership.removed";
const LEFT: &str = "membership.left";

/// One removal request.
#[derive(Clone, Debug)]
pub struct RemovalRequest {
    /// Who asks. A token claim is verified inside the batch's transaction, with one read for
    /// the tokens of the whole batch.
    pub caller: Caller,
    pub targets: Vec<MemberRef>,
    pub options: RemovalOptions,
    pub ctx: RequestContext,
    /// Also return the organization after the removal, the removed members' users and the
    /// roles (`Removal::context`); the caller must then also be allowed to read them.
    pub include_context: bool,
    /// The slug the caller named the organization by, where it named it so: the removal is
    /// then refused as not found unless the slug still names the organization under the
    /// batch's lock, so that an id read from the slug earlier, or kept from another request,
    /// is safe to use (`Roster::remove_in_organization_named`).
    pub org_slug: Option<String>,
    /// What naming the caller's own membership means.
    pub own_membership: OwnMembership,
    /// Answer a service token that lacks a permission the removal needs as if the organization
    /// were not there (not found), instead of forbidden: PlanetScale shows a token nothing its
    /// accesses do not cover. Decided in the batch, where the token is verified.
    pub forbidden_to_service_tokens_is_not_found: bool,
}

impl RemovalRequest {
    /// A removal of `targets` by `caller`, with the defaults: no context, the organization
    /// named by id, the caller's own membership refused, a lacking permission forbidden.
    pub fn new(
        caller: Caller,
        targets: Vec<MemberRef>,
        options: RemovalOptions,
        ctx: RequestContext,
    ) -> Self {
        RemovalRequest {
            caller,
            targets,
            options,
            ctx,
            include_context: false,
            org_slug: None,
            own_membership: OwnMembership::Refused,
            forbidden_to_service_tokens_is_not_found: false,
        }
    }
}

/// What a removal request naming the caller's own membership means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OwnMembership {
    /// Refused (`Rule::SelfRemoval`): leaving is a request of its own
    /// (`Roster::leave_organization`).
    #[default]
    Refused,
    /// A request whose one target is the caller's own membership is the caller leaving, with
    /// `leave_organization`'s rules and audit action, and needs no permission beyond being a
    /// member (PlanetScale: removing yourself is leaving). Naming it among others is still
    /// refused.
    Leaves { refuse_only_organization: bool },
}

impl Roster {
    /// Removes one or many memberships, all or nothing: every target is checked first, and one
    /// that is missing, foreign or protected by a rule refuses the whole request, naming it.
    /// A caller cannot remove themselves here (that is `leave_organization`).
    pub async fn remove_memberships(
        &self,
        actor: &Actor,
        org: OrganizationId,
        targets: &[MemberRef],
        options: RemovalOptions,
        ctx: &RequestContext,
    ) -> CoreResult<Removal> {
        let caller = Caller::Authenticated(actor.clone());
        let request = RemovalRequest::new(caller, targets.to_vec(), options, ctx.clone());
        self.remove(org, request).await
    }

    /// Runs one removal request (see `remove_memberships`); the caller may still be a token
    /// claim, verified in the removal's transaction.
    ///
    /// Small requests share their transaction and commit with the other removals in the same
    /// organization that arrive meanwhile, each with its own outcome (see `group_commit`).
    pub async fn remove(
        &self,
        org: OrganizationId,
        request: RemovalRequest,
    ) -> CoreResult<Removal> {
        if request.targets.len() > MAX_BULK_REMOVAL {
            // Refused before any read, but still only after the caller is known.
            request.caller.authenticate(&*self.store).await?;
            return Err(CoreError::invalid(
                "membership_ids",
                format!("at most {MAX_BULK_REMOVAL} memberships can be removed in one request"),
            ));
        }
        if request.targets.len() <= SHARED_COMMIT_MAX_TARGETS && self.layers().batching {
            return self.remove_in_shared_commit(org, request).await;
        }
        // A large request runs in a transaction of its own: a batch of one.
        self.remove_memberships_together(org, std::slice::from_ref(&request))
            .await
            .pop()
            .unwrap_or_else(|| Err(CoreError::internal("a removal batch answered nothing")))
    }

    /// `remove` in the organization `slug` names (PlanetScale names organizations by slug).
    /// The slug's id is taken from what was last read of it, when anything was, so that the
    /// request queues at once; the batch's transaction refuses it as not found unless the slug
    /// still names that organization, and then the id is read again and the removal tried once
    /// more. A slug naming nothing: not found, once the caller is verified (a bad token is
    /// refused as such whatever the slug names).
    pub async fn remove_in_organization_named(
        &self,
        slug: &str,
        mut request: RemovalRequest,
    ) -> CoreResult<Removal> {
        request.org_slug = Some(slug.to_owned());
        let kept = self.slug_ids.get(slug);
        if let Some(org) = kept {
            match self.remove(org, request.clone()).await {
                Err(CoreError::NotFound {
                    kind: "organization",
                    ..
                }) => {
                    self.slug_ids.forget(slug, org);
                }
                answered => return answered,
            }
        }
        match self.organization_id_by_slug(slug).await? {
            // Read again to the same id: the refusal stands (the caller may not see it).
            Some(org) if Some(org) == kept => Err(CoreError::not_found("organization", slug)),
            Some(org) => self.remove(org, request).await,
            None => {
                request.caller.authenticate(&*self.store).await?;
                Err(CoreError::not_found("organization", slug))
            }
        }
    }

    /// The caller leaves an organization. The last active admin cannot leave; with
    /// `refuse_only_organization` (PlanetScale's rule) nor can a user whose only organization
    /// it is. Credential deletion is for removing others, so asking for it here is refused.
    pub async fn leave_organization(
        &self,
        actor: &Actor,
        org: OrganizationId,
        options: RemovalOptions,
        refuse_only_organization: bool,
        ctx: &RequestContext,
    ) -> CoreResult<Removal> {
        let user = actor.user_id().ok_or_else(|| {
            CoreError::invalid(
                "actor",
                "only a user can leave an organization; use a user's token",
            )
        })?;
        let mut tx = self.store.begin().await?;
        if !tx.lock_organization(org).await? {
            return Err(CoreError::not_found("organization", org));
        }
        let own = tx
            .membership_by_user(org, user)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", org))?;
        let leaving = Leaving {
            own,
            options,
            refuse_only_organization,
        };
        let removal = leave_in(&mut *tx, org, actor, leaving, ctx).await?;
        tx.commit().await?;
        Ok(removal)
    }
}
