//! Removal: the room where every way of removing a membership is decided and written. A
//! removal request (`RemovalRequest`) names its caller, its targets and its options; the
//! rules that may refuse it live in `rules` and nowhere else; `resolve` reads what requests
//! name; `decide` is the one pure decision, from what was read to each request's outcome in
//! arrival order; `write` writes what was accepted (the cascade, the deletes, the audit trail);
//! `run` runs a request, or a batch of them, in one transaction through those steps. One request,
//! a 100,000-member bulk and a batch that group commit (`super::group_commit`) gathered all take
//! that one path.
//!
//! Like the rest of the core this knows no SQL and no HTTP.

mod decide;
mod resolve;
mod rules;
mod run;
mod write;

pub(in crate::service) use rules::{leaves_no_admin, no_such_member};
pub(in crate::service) use run::RemovalBatches;

use std::sync::atomic::Ordering;

use super::group_commit::{GroupCommitLayers, GroupCommitStats};
use super::{RequestContext, Roster};
use crate::auth::Caller;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::model::*;
use crate::permissions::Actor;
use crate::service::idempotency::commit;
use crate::store::Session;

/// The most targets one bulk removal may name (documented in the README and the OpenAPI
/// document): large enough for a real off-boarding, small enough for one transaction.
pub const MAX_BULK_REMOVAL: usize = 100_000;

/// Requests naming more targets than this run in a transaction of their own: a large bulk
/// removal gains nothing from sharing a commit, and would hold up the small ones.
const SHARED_COMMIT_MAX_TARGETS: usize = 100;

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
    /// Run the whole removal (the caller verified, every rule, the cascade) in a transaction
    /// of its own and roll it back: the answer is what the removal would be, and nothing
    /// changes (no row, no audit event, no event).
    pub dry_run: bool,
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
            dry_run: false,
        }
    }
}

/// What offboarding a person did (or, for a dry run, would do): each organization's removal,
/// in organization order, and how many of the user's own tokens were revoked.
#[derive(Clone, Debug)]
pub struct Offboarding {
    pub user: UserId,
    pub organizations: Vec<(OrganizationId, Removal)>,
    pub tokens_revoked: usize,
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
    /// Small requests share their transaction and commit with the other removals that arrive
    /// meanwhile (in the same organization, or in any where the store has one writer), each
    /// with its own outcome (see `group_commit`).
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
        if request.dry_run {
            // Never in a shared transaction: its rollback would undo the others.
            return self.removal_batches().dry_run(org, &request).await;
        }
        // A request whose commit is held (an idempotent one) runs in its own transaction, in
        // its own task, where its answer is then stored (`super::idempotency`).
        let shares_commit = request.targets.len() <= SHARED_COMMIT_MAX_TARGETS
            && self.layers().batching
            && !super::idempotency::commit_is_held();
        if shares_commit {
            let batches = self.removal_batches();
            let lane = batches.lane(org);
            let queued = self.queues.submit(batches, lane, (org, request));
            return queued.await.unwrap_or_else(|| {
                Err(CoreError::internal(
                    "the removal's worker stopped before answering; nothing was committed for it",
                ))
            });
        }
        self.removal_batches()
            .run_together(&[(org, &request)])
            .await
            .pop()
            .unwrap_or_else(|| Err(CoreError::internal("a removal batch answered nothing")))
    }

    /// Runs several removals in one organization in one transaction, in order: each request
    /// sees the ones before it (the last-admin guard counts them), a refused request changes
    /// nothing, and one commit covers the rest (a request that deletes credentials runs in a
    /// transaction of its own, in its place). Returns one outcome per request, in order. If the
    /// batch fails before its commit, each request runs again alone; if the commit fails,
    /// nothing is kept and every request gets that error.
    pub async fn remove_memberships_together(
        &self,
        org: OrganizationId,
        requests: &[RemovalRequest],
    ) -> Vec<CoreResult<Removal>> {
        let asking: Vec<_> = requests.iter().map(|r| (org, r)).collect();
        self.removal_batches().run_together(&asking).await
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
        dry_run: bool,
        ctx: &RequestContext,
    ) -> CoreResult<Removal> {
        let user = actor.user_id().ok_or_else(|| {
            CoreError::invalid(
                "actor",
                "only a user can leave an organization; use a user's token",
            )
        })?;
        let caller = Caller::Authenticated(actor.clone());
        let mut request =
            RemovalRequest::new(caller, vec![MemberRef::User(user)], options, ctx.clone());
        request.own_membership = OwnMembership::Leaves {
            refuse_only_organization,
        };
        request.dry_run = dry_run;
        self.remove(org, request).await
    }

    /// Offboards a person from everything at once (instance admins only): every membership of
    /// the user in every organization, each with its guards and cascade, all or nothing (an
    /// organization that would lose its last admin refuses the whole, naming the admin), and
    /// every token of the user's own revoked, in one transaction. With `dry_run`, the answer
    /// and nothing done.
    pub async fn offboard_user(
        &self,
        actor: &Actor,
        user: UserId,
        options: RemovalOptions,
        dry_run: bool,
        ctx: &RequestContext,
    ) -> CoreResult<Offboarding> {
        super::only_instance_admins(Some(actor), "users:offboard")?;
        let mut tx = self.store.begin().await?;
        tx.user(user)
            .await?
            .ok_or_else(|| CoreError::not_found("user", user))?;
        let mut orgs = tx.organizations_of_user(user).await?;
        orgs.sort_unstable();
        let requests: Vec<(OrganizationId, RemovalRequest)> = orgs
            .iter()
            .map(|&org| {
                let caller = Caller::Authenticated(actor.clone());
                let targets = vec![MemberRef::User(user)];
                (
                    org,
                    RemovalRequest::new(caller, targets, options, ctx.clone()),
                )
            })
            .collect();
        let asking: Vec<_> = requests.iter().map(|(org, r)| (*org, r)).collect();
        let removals =
            run::all_or_nothing_in(&mut *tx, &asking, self.former_member_retention).await?;
        let tokens_revoked = tx.delete_user_tokens(user).await?.len();
        tx.insert_audit_events(&[super::audit_event(
            ctx,
            Some(actor),
            None,
            "user.offboarded",
            ("user", user.to_string()),
            serde_json::json!({
                "organizations": orgs,
                "tokens_revoked": tokens_revoked,
                "delete_passwords": options.delete_passwords,
                "delete_service_tokens": options.delete_service_tokens,
            }),
        )])
        .await?;
        if !dry_run {
            commit(tx).await?;
        }
        Ok(Offboarding {
            user,
            organizations: orgs.into_iter().zip(removals).collect(),
            tokens_revoked,
        })
    }

    /// What runs removal batches for group commit (and for `remove_memberships_together`).
    fn removal_batches(&self) -> RemovalBatches {
        RemovalBatches {
            store: self.store.clone(),
            restarts: self.removal_restarts.clone(),
            keep: self.former_member_retention,
        }
    }

    /// What group commit has done since this `Roster` was made.
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            restarts: self.removal_restarts.load(Ordering::Relaxed),
            ..self.queues.stats()
        }
    }

    /// The group-commit layers that run (all, unless `set_group_commit_layers` said otherwise).
    fn layers(&self) -> GroupCommitLayers {
        self.layers.get().copied().unwrap_or_default()
    }

    /// Turns group-commit layers off, to measure what each buys; once, before any removal.
    pub fn set_group_commit_layers(&self, layers: GroupCommitLayers) {
        let _ = self.layers.set(layers);
    }
}

/// Removes the membership `m` of a user being deleted, inside the deletion's transaction
/// (which holds the organization's lock): no permission or self-removal rule (the deletion was
/// allowed as a whole), but the last-admin guard, the cascade and the audit trail of any
/// removal.
pub(in crate::service) async fn remove_deleted_users_membership(
    tx: &mut dyn Session,
    org: OrganizationId,
    m: Membership,
    actor: &Actor,
    ctx: &RequestContext,
) -> CoreResult<()> {
    if m.is_active_admin() {
        let admins = tx.count_active_admins(org).await?;
        if let Some(refusal) = leaves_no_admin(admins, [m.id].into_iter()) {
            return Err(refusal);
        }
    }
    let plan = decide::Plan {
        actor: actor.clone(),
        members: vec![m].into(),
        options: RemovalOptions::default(),
        action: REMOVED,
    };
    // Nothing is kept of a deleted person: no former-member record.
    write::write(tx, org, &[(ctx, &plan)], None).await.map(drop)
}
