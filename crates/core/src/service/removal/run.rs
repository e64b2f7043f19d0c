//! Running removal requests in one transaction, whether one request or a batch of many, in one
//! organization or several: open (the organizations' locks, the callers' tokens), read what the
//! requests name, decide every outcome (`super::decide`), read the context the requests want,
//! write what was accepted (`super::write`), each phase once for the whole batch where the
//! store allows; then commit once. A batch that fails before its commit is run again a request at a
//! time, each in a transaction of its own, so that a failure (a database error) is its own
//! request's only. Group commit (`super::super::group_commit`) schedules the batches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::auth::Caller;
use crate::error::{CoreError, CoreResult};
use crate::ids::*;
use crate::model::*;
use crate::permissions::Actor;
use crate::service::idempotency::commit;
use crate::store::{Session, Store};

use super::RemovalRequest;
use super::decide::{Asked, Plan, Read, decide};
use super::resolve::Pool;
use super::rules::may_be_leaving;
use super::write::{Accepted, delete, record};
use crate::service::group_commit::Batches;

/// Runs removal batches on a store: what group commit schedules removals with.
#[derive(Clone)]
pub(in crate::service) struct RemovalBatches {
    pub store: Arc<dyn Store>,
    /// Batches run again a request at a time after a failure.
    pub restarts: Arc<AtomicU64>,
    /// How long a removed member's former-member record is kept.
    pub keep: Duration,
}

/// A removal request and the organization it removes from.
type Asking<'a> = (OrganizationId, &'a RemovalRequest);

impl Batches for RemovalBatches {
    /// A lane (`RemovalBatches::lane`): the organizations whose removals may share a batch.
    type Key = usize;
    type Work = (OrganizationId, RemovalRequest);
    type Outcome = CoreResult<Removal>;

    async fn run(&self, _lane: usize, batch: Vec<Self::Work>) -> Vec<Self::Outcome> {
        let asking: Vec<Asking<'_>> = batch.iter().map(|(org, r)| (*org, r)).collect();
        self.run_together(&asking).await
    }
}

/// How one transaction over a batch ended.
enum Ran {
    /// Committed (or with nothing to commit): every request's outcome.
    Done(Vec<CoreResult<Removal>>),
    /// Failed before its commit: nothing of it was kept.
    Undone(CoreError),
}

impl RemovalBatches {
    /// The lane of `org`'s removals. Removals in organizations of one lane share batches, and
    /// batches of different lanes run at once, over organizations that are never the same. A
    /// store with one writer has one lane, so that every waiting removal, whatever its
    /// organization, shares one commit.
    pub(in crate::service) fn lane(&self, org: OrganizationId) -> usize {
        let lanes = self.store.write_lanes().max(1) as u128;
        // The low bits of a UUID v7 are random.
        (org.0.as_u128() % lanes) as usize
    }

    /// Runs `asking` in arrival order, each outcome the one it would have had alone after the
    /// ones before it: in one transaction, but for a request that deletes credentials, which
    /// runs in a transaction of its own in its place (the service tokens it deletes may be a
    /// later request's caller, verified as its transaction opens).
    pub(in crate::service) async fn run_together(
        &self,
        asking: &[Asking<'_>],
    ) -> Vec<CoreResult<Removal>> {
        let deletes_credentials = |(_, r): &Asking<'_>| r.options != RemovalOptions::default();
        let mut outcomes = Vec::with_capacity(asking.len());
        let mut rest = asking;
        while let Some(first) = rest.first() {
            let n = if deletes_credentials(first) {
                1
            } else {
                rest.iter().take_while(|a| !deletes_credentials(a)).count()
            };
            let (batch, after) = rest.split_at(n);
            outcomes.extend(self.run_batch(batch).await);
            rest = after;
        }
        outcomes
    }

    /// Runs `asking` in one transaction. If it fails before its commit, each request runs
    /// again in a transaction of its own; if its commit fails, every request gets that error.
    async fn run_batch(&self, asking: &[Asking<'_>]) -> Vec<CoreResult<Removal>> {
        match self.run_transaction(asking).await {
            Ok(Ran::Done(outcomes)) => return outcomes,
            Ok(Ran::Undone(e)) if asking.len() == 1 => return vec![Err(e)],
            Ok(Ran::Undone(_)) => {}
            Err(e) => return asking.iter().map(|_| Err(e.clone())).collect(),
        }
        self.restarts.fetch_add(1, Ordering::Relaxed);
        let mut outcomes = Vec::with_capacity(asking.len());
        for one in asking {
            outcomes.push(
                match self.run_transaction(std::slice::from_ref(one)).await {
                    Ok(Ran::Done(mut one)) => one
                        .pop()
                        .unwrap_or_else(|| Err(CoreError::internal("a removal answered nothing"))),
                    Ok(Ran::Undone(e)) | Err(e) => Err(e),
                },
            );
        }
        outcomes
    }

    /// `request` run in a transaction of its own that is then rolled back: its outcome, and
    /// nothing kept.
    pub(in crate::service) async fn dry_run(
        &self,
        org: OrganizationId,
        request: &RemovalRequest,
    ) -> CoreResult<Removal> {
        let mut tx = self.store.begin_locking(&[org]).await?;
        let outcome = run_in(&mut *tx, &[(org, request)], self.keep).await;
        // Dropped uncommitted: rolled back, whatever it wrote.
        drop(tx);
        outcome?
            .pop()
            .unwrap_or_else(|| Err(CoreError::internal("a dry run answered nothing")))
    }

    /// One transaction over `asking`; `Err` if it could not begin or commit.
    async fn run_transaction(&self, asking: &[Asking<'_>]) -> CoreResult<Ran> {
        let mut tx = self.store.begin_locking(&organizations(asking)).await?;
        let outcomes = match run_in(&mut *tx, asking, self.keep).await {
            Ok(outcomes) => outcomes,
            Err(e) => return Ok(Ran::Undone(e)),
        };
        if outcomes.iter().any(Result::is_ok) {
            commit(tx).await?;
        }
        Ok(Ran::Done(outcomes))
    }
}

/// Runs `asking` in `tx`, all or nothing: every removal, or the first refusal (in the order
/// the batch decides them: organization by organization). The caller commits, or drops `tx`.
pub(in crate::service) async fn all_or_nothing_in(
    tx: &mut dyn Session,
    asking: &[Asking<'_>],
    keep: Duration,
) -> CoreResult<Vec<Removal>> {
    run_in(tx, asking, keep).await?.into_iter().collect()
}

/// The organizations `asking` removes from, in id order (the order their locks are taken in),
/// each once.
fn organizations(asking: &[Asking<'_>]) -> Vec<OrganizationId> {
    let mut orgs: Vec<OrganizationId> = asking.iter().map(|(org, _)| *org).collect();
    orgs.sort_unstable();
    orgs.dedup();
    orgs
}

/// One organization's requests within a batch: where each is in the batch, and then what was
/// decided for it.
struct Part<'a> {
    org: OrganizationId,
    at: Vec<usize>,
    requests: Vec<&'a RemovalRequest>,
}

/// Runs a batch inside its transaction, every phase once for all its organizations where the
/// store allows: open (every organization locked in id order, the order in which every
/// transaction that locks several takes them, so that none waits for another in a cycle; the
/// callers' tokens read with the locks), read, decide, delete (an organization at a time), and
/// record the audit events. The caller commits. Within an organization requests are decided in
/// arrival order; across organizations the batch is one serial order, organization by
/// organization. An `Err` means a read or a write failed: the caller must drop the transaction
/// (it may hold some of the writes).
async fn run_in(
    tx: &mut dyn Session,
    asking: &[Asking<'_>],
    keep: Duration,
) -> CoreResult<Vec<CoreResult<Removal>>> {
    let orgs = organizations(asking);
    let parts: Vec<Part<'_>> = orgs
        .iter()
        .map(|&org| {
            let at: Vec<usize> = (0..asking.len()).filter(|&i| asking[i].0 == org).collect();
            let requests = at.iter().map(|&i| asking[i].1).collect();
            Part { org, at, requests }
        })
        .collect();

    // Open.
    let claims: Vec<TokenId> = asking
        .iter()
        .filter_map(|(_, r)| r.caller.claim().map(|c| c.id))
        .collect();
    let (slugs, tokens) = tx.lock_organizations_reading_tokens(&orgs, &claims).await?;
    let slugs: HashMap<OrganizationId, String> = slugs.into_iter().collect();
    let tokens: HashMap<TokenId, Token> = tokens.into_iter().map(|t| (t.id, t)).collect();
    let callers: Vec<Vec<CoreResult<Actor>>> = parts
        .iter()
        .map(|part| verify(part, slugs.get(&part.org), &tokens))
        .collect();

    // Read.
    let asking_orgs: Vec<OrganizationId> = parts
        .iter()
        .zip(&callers)
        .filter(|(_, callers)| callers.iter().any(Result::is_ok))
        .map(|(part, _)| part.org)
        .collect();
    let mut targets: Vec<&MemberRef> = Vec::new();
    for (part, callers) in parts.iter().zip(&callers) {
        for (r, _) in part.requests.iter().zip(callers).filter(|(_, c)| c.is_ok()) {
            targets.extend(&r.targets);
        }
    }
    let mut pools = Pool::read(tx, &asking_orgs, targets.iter().copied()).await?;
    drop(targets);

    // Members who may be leaving with the rule that one's only organization is kept: their
    // rows locked in id order, so that batches in other lanes deciding by their memberships
    // wait for this one; and the memberships of theirs this batch removes counted as it goes.
    let mut leavers: Vec<UserId> = Vec::new();
    for (part, callers) in parts.iter().zip(&callers) {
        for (r, caller) in part.requests.iter().zip(callers) {
            let Ok(actor) = caller else { continue };
            if let Some(me) = may_be_leaving(actor, r).filter(|me| me.refuse_only_organization) {
                leavers.push(me.user);
            }
        }
    }
    leavers.sort_unstable();
    leavers.dedup();
    tx.lock_users(&leavers).await?;
    let mut removed_earlier: HashMap<UserId, usize> = HashMap::new();

    // Decide, and read what a part's decision or context needs, an organization at a time.
    let mut decided: Vec<(Vec<CoreResult<Plan>>, Option<SharedContext>)> =
        Vec::with_capacity(parts.len());
    for (part, callers) in parts.iter().zip(callers) {
        let Some(pool) = pools.remove(&part.org) else {
            // No caller here was verified (or the organization is not there): nothing was read.
            let refused = || CoreError::internal("a removal was decided without its reads");
            decided.push((
                callers.into_iter().map(|c| c.and(Err(refused()))).collect(),
                None,
            ));
            continue;
        };
        let plans = decide_in(tx, part, callers, pool, &removed_earlier).await?;
        if !leavers.is_empty() {
            let accepted = plans.iter().filter_map(|p| p.as_ref().ok());
            for user in accepted.flat_map(|p| p.members.user_ids()) {
                if leavers.binary_search(&user).is_ok() {
                    *removed_earlier.entry(user).or_default() += 1;
                }
            }
        }
        let shared = SharedContext::read_for(tx, part.org, &part.requests, &plans).await?;
        decided.push((plans, shared));
    }

    // Delete, an organization at a time, then record every organization's events at once.
    let mut cascades = Vec::with_capacity(parts.len());
    for (part, (plans, _)) in parts.iter().zip(&decided) {
        let accepted = plans.iter().filter_map(|p| p.as_ref().ok());
        cascades.push(delete(tx, part.org, accepted).await?);
    }
    let accepted: Vec<Accepted<'_>> = parts
        .iter()
        .zip(&decided)
        .zip(&cascades)
        .flat_map(|((part, (plans, _)), cascade)| {
            part.requests
                .iter()
                .zip(plans)
                .filter_map(move |(r, plan)| {
                    Some(Accepted {
                        org: part.org,
                        ctx: &r.ctx,
                        plan: plan.as_ref().ok()?,
                        cascade,
                    })
                })
        })
        .collect();
    // A retention of zero keeps no record at all, rather than records that expire at once.
    record(tx, &accepted, (!keep.is_zero()).then_some(keep)).await?;
    drop(accepted);

    // Answer.
    let mut outcomes: Vec<Option<CoreResult<Removal>>> = asking.iter().map(|_| None).collect();
    for ((part, (plans, shared)), cascade) in parts.into_iter().zip(decided).zip(cascades) {
        let answers = answers(&part.requests, plans, shared.as_ref(), cascade);
        for (i, answer) in part.at.into_iter().zip(answers) {
            outcomes[i] = Some(answer);
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(CoreError::internal("a removal answered nothing"))))
        .collect())
}
/// Each request's caller, verified against the tokens read: refused as not found where the
/// organization is not there (`slug` is `None`), or where the request named it by a slug that
/// no longer names it. The callers are verified first, so that a bad token is refused as such
/// even where the organization does not exist.
fn verify(
    part: &Part<'_>,
    slug: Option<&String>,
    tokens: &HashMap<TokenId, Token>,
) -> Vec<CoreResult<Actor>> {
    part.requests
        .iter()
        .map(|r| {
            let actor = match &r.caller {
                Caller::Authenticated(actor) => Ok(actor.clone()),
                Caller::Presenting(claim) => claim.verify(tokens.get(&claim.id)),
            };
            match (&r.org_slug, slug) {
                (_, None) => actor.and(Err(CoreError::not_found("organization", part.org))),
                (Some(named), Some(slug)) if named != slug => {
                    actor.and(Err(CoreError::not_found("organization", named)))
                }
                _ => actor,
            }
        })
        .collect()
}

/// One organization's outcomes: what the decision needs besides the targets (each caller's
/// permissions, the active admins if a target is one, whether a leaver's organization is their
/// only one, less the memberships of theirs the batch has `removed_earlier`), then `decide`.
async fn decide_in(
    tx: &mut dyn Session,
    part: &Part<'_>,
    callers: Vec<CoreResult<Actor>>,
    pool: Pool,
    removed_earlier: &HashMap<UserId, usize>,
) -> CoreResult<Vec<CoreResult<Plan>>> {
    let org = part.org;
    let mut read = Read::default();
    for (r, caller) in part.requests.iter().zip(&callers) {
        let Ok(actor) = caller else { continue };
        if let std::collections::hash_map::Entry::Vacant(held) = read.held.entry(actor.token_id) {
            held.insert(crate::auth::permissions_in(tx, actor, org).await?);
        }
        if let Some(me) = may_be_leaving(actor, r).filter(|me| me.refuse_only_organization) {
            let earlier = removed_earlier.get(&me.user).copied().unwrap_or(0);
            if tx.organizations_of_user(me.user).await?.len() <= 1 + earlier {
                read.only_organization.insert(me.user);
            }
        }
    }
    if pool.has_active_admins() {
        read.active_admins = Some(tx.count_active_admins(org).await?);
    }
    let asked: Vec<Asked<'_>> = if let [request] = part.requests.as_slice() {
        let caller = callers.into_iter().next().unwrap_or_else(|| {
            Err(CoreError::internal(
                "a removal request came without its caller",
            ))
        });
        let found = pool.into_found(&request.targets);
        vec![Asked {
            request,
            caller,
            found,
        }]
    } else {
        part.requests
            .iter()
            .zip(callers)
            .map(|(request, caller)| Asked {
                request,
                caller,
                found: pool.found_for(&request.targets),
            })
            .collect()
    };
    Ok(decide(org, asked, &read))
}

/// Each request's answer: its removal, its share of the cascade, and the context it asked for
/// (the member count less what the batch removed up to and including it).
fn answers(
    requests: &[&RemovalRequest],
    plans: Vec<CoreResult<Plan>>,
    shared: Option<&SharedContext>,
    mut cascade: Cascade,
) -> Vec<CoreResult<Removal>> {
    let one_accepted = plans.iter().filter(|p| p.is_ok()).count() == 1;
    let mut removed_so_far = 0i64;
    requests
        .iter()
        .zip(plans)
        .map(|(r, plan)| {
            plan.map(|plan| {
                removed_so_far += plan.members.len() as i64;
                let context = shared
                    .filter(|_| r.include_context)
                    .map(|s| s.context(plan.members.user_ids(), removed_so_far));
                let cascade = if one_accepted {
                    std::mem::take(&mut cascade)
                } else {
                    cascade.of_users(plan.members.user_ids())
                };
                Removal {
                    removed: plan.members,
                    cascade,
                    context,
                }
            })
        })
        .collect()
}

/// What the requests of one batch that want context (`RemovalRequest::include_context`) share,
/// read before the batch writes: a batch of removals changes neither the organization nor its
/// roles, and each request's member count is the one read less what the batch removed up to
/// and including the request.
struct SharedContext {
    organization: Organization,
    roles: Vec<Role>,
    count_before: i64,
    users: HashMap<UserId, User>,
}

impl SharedContext {
    /// Reads the context, with the users of every accepted request that wants it, if any does.
    async fn read_for(
        tx: &mut dyn Session,
        org: OrganizationId,
        requests: &[&RemovalRequest],
        plans: &[CoreResult<Plan>],
    ) -> CoreResult<Option<SharedContext>> {
        let wanting = requests
            .iter()
            .zip(plans)
            .filter(|(r, _)| r.include_context)
            .filter_map(|(_, plan)| plan.as_ref().ok());
        let users: HashSet<UserId> = wanting
            .clone()
            .flat_map(|plan| plan.members.user_ids())
            .collect();
        if wanting.count() == 0 {
            return Ok(None);
        }
        let users: Vec<UserId> = users.into_iter().collect();
        let users = if users.is_empty() {
            Vec::new()
        } else {
            tx.users_by_ids(&users).await?
        };
        let (organization, count_before, roles) = tx
            .organization_in_context(org)
            .await?
            .ok_or_else(|| CoreError::not_found("organization", org))?;
        Ok(Some(SharedContext {
            organization,
            roles,
            count_before,
            users: users.into_iter().map(|u| (u.id, u)).collect(),
        }))
    }

    /// The context of a removal of the memberships of `removed_users`, the batch having removed
    /// `removed_so_far` memberships with it.
    fn context(
        &self,
        removed_users: impl Iterator<Item = UserId>,
        removed_so_far: i64,
    ) -> RemovalContext {
        RemovalContext {
            organization: self.organization.clone(),
            member_count: self.count_before - removed_so_far,
            users: removed_users
                .filter_map(|u| self.users.get(&u).cloned())
                .collect(),
            roles: self.roles.clone(),
        }
    }
}
