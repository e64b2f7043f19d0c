//! Group commit for removals. Concurrent removals in one organization run together: one
//! transaction, one organization lock and one commit (one fsync) for the lot, the requests kept
//! apart so that a refused or failed request is undone alone and never affects the others. Requests
//! are served in arrival order, each seeing the ones before it, so every outcome is the one the
//! same requests would have had one after another.
//!
//! Savepoints cost two statements per request, so a batch first runs without them: a refused
//! request (not found, forbidden, a rule) is refused before it writes anything, so there is
//! nothing of it to undo. Only a failure that may follow a write (a database error) makes the
//! batch start over in a fresh transaction with a savepoint per request.
//!
//! A batch of plain removals (no credential deletion) goes further: one read of
//! every target, every outcome decided in memory in arrival order, then one statement per table
//! for all the accepted ones (`removal::remove_plain_together`). On PostgreSQL, where each
//! statement is a round trip on the batch's one connection, that makes a batch's cost nearly
//! independent of its size.
//!
//! A request that finds its organization idle starts at once, and requests that arrive while a
//! batch is running form the next batch. Before taking a batch the worker yields once, so that
//! requests already arrived but not yet queued (their tasks ready on the worker's thread, their
//! bytes waiting for the runtime's next I/O poll) join it. Nothing waits on a timer: holding a
//! batch for the requesters the last one answered, and beginning its transaction during that
//! hold, were measured on open-loop arrivals and on removals spread over many organizations,
//! bought less than 15% there, and were removed (docs/benchmarks.md).
//!
//! Batches run on a task of their own, so a client that goes away while waiting cancels nothing
//! that other requests depend on.
//!
//! Like the rest of the core this knows no SQL and no HTTP; it needs a Tokio runtime to spawn on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Roster;
use super::removal::{RemovalRequest, context_for, is_plain, remove_one, remove_plain_together};
use crate::auth::Caller;
use crate::error::{CoreError, CoreResult};
use crate::ids::{OrganizationId, TokenId};
use crate::model::{Removal, Token};
use crate::permissions::Actor;

/// Requests naming more targets than this run in a transaction of their own: a large bulk
/// removal gains nothing from sharing a commit, and would hold up the small ones.
pub(super) const SHARED_COMMIT_MAX_TARGETS: usize = 100;

/// The most requests one shared transaction serves: it bounds how long a batch holds the
/// organization's lock, and so the wait of whatever else needs it.
const MAX_BATCH: usize = 64;

struct Waiting {
    request: RemovalRequest,
    reply: oneshot::Sender<CoreResult<Removal>>,
}

/// How many shared transactions ran and how many requests they served: their ratio is the
/// mean batch size (exported at `/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    pub transactions: u64,
    pub requests: u64,
    /// Batches started over with a savepoint per request, after a failure that may have
    /// followed a write.
    pub restarts: u64,
    /// Time spent running batches, from taking them off the queue to the last reply: divided by
    /// `transactions`, the mean time a batch holds its organization.
    pub busy: Duration,
}

/// One organization's waiting requests.
struct Queue {
    waiting: Vec<Waiting>,
}

/// Which of group commit's layers run: all of them, unless a benchmark turns some off to
/// measure what each buys (`roster serve` reads `ROSTER_GROUP_COMMIT_OFF`; docs/benchmarks.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommitLayers {
    /// Small removals of one organization share a transaction at all (off: each its own).
    pub batching: bool,
    /// A batch of plain removals is decided in memory, one statement a table (off: request by
    /// request, as a batch with credential deletion runs).
    pub plain_batch: bool,
}

impl Default for GroupCommitLayers {
    fn default() -> Self {
        GroupCommitLayers {
            batching: true,
            plain_batch: true,
        }
    }
}

impl GroupCommitLayers {
    /// Every layer but those named in `off`, a comma-separated list of `batching` and
    /// `plain-batch`.
    pub fn without(off: &str) -> Result<Self, String> {
        let mut layers = GroupCommitLayers::default();
        for name in off.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "batching" => layers.batching = false,
                "plain-batch" => layers.plain_batch = false,
                other => {
                    return Err(format!(
                        "unknown group-commit layer `{other}` (batching, plain-batch)"
                    ));
                }
            }
        }
        Ok(layers)
    }
}

/// The requests waiting for each organization. An organization has an entry exactly while a
/// worker task serves it, so a request either joins a running worker's queue or starts one.
#[derive(Default)]
pub(super) struct Queues {
    /// The layers that run (all by default).
    pub(super) layers: std::sync::OnceLock<GroupCommitLayers>,
    waiting: Mutex<HashMap<OrganizationId, Queue>>,
    transactions: AtomicU64,
    requests: AtomicU64,
    restarts: AtomicU64,
    busy_nanos: AtomicU64,
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, HashMap<OrganizationId, Queue>> {
        // A panic elsewhere cannot leave the map inconsistent: every change is one call.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Removes the organization's entry when its worker ends. On a normal end the worker has
/// already removed it (finding the queue empty, under the lock); after a panic this drops the
/// requests still waiting, which then fail instead of waiting forever.
struct WorkerGuard {
    queues: Arc<Queues>,
    org: OrganizationId,
    finished: bool,
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.queues.lock().remove(&self.org);
        }
    }
}

impl Roster {
    /// What group commit has done since this `Roster` was made.
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            transactions: self.queues.transactions.load(Ordering::Relaxed),
            requests: self.queues.requests.load(Ordering::Relaxed),
            restarts: self.queues.restarts.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.queues.busy_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Queues a removal behind the organization's running batch, or starts one.
    pub(super) async fn remove_in_shared_commit(
        &self,
        org: OrganizationId,
        request: RemovalRequest,
    ) -> CoreResult<Removal> {
        let (reply, outcome) = oneshot::channel();
        let start_worker = {
            let mut queues = self.queues.lock();
            let waiting = Waiting { request, reply };
            match queues.get_mut(&org) {
                Some(queue) => {
                    queue.waiting.push(waiting);
                    false
                }
                None => {
                    let queue = Queue {
                        waiting: vec![waiting],
                    };
                    queues.insert(org, queue);
                    true
                }
            }
        };
        if start_worker {
            let roster = self.clone();
            tokio::spawn(async move { roster.serve_queue(org).await });
        }
        outcome.await.unwrap_or_else(|_| {
            Err(CoreError::internal(
                "the removal's worker stopped before answering; nothing was committed for it",
            ))
        })
    }

    /// The worker: takes the waiting requests in batches until none are left.
    async fn serve_queue(self, org: OrganizationId) {
        let mut guard = WorkerGuard {
            queues: self.queues.clone(),
            org,
            finished: false,
        };
        loop {
            // Before each batch, let this thread's other tasks run and the runtime poll for I/O:
            // a request whose bytes have arrived, or whose client was just answered and has
            // sent its next one, joins this batch instead of waiting a whole batch for the next.
            tokio::task::yield_now().await;
            let batch: Vec<Waiting> = {
                let mut queues = self.queues.lock();
                match queues.get_mut(&org) {
                    Some(queue) if !queue.waiting.is_empty() => {
                        let n = queue.waiting.len().min(MAX_BATCH);
                        queue.waiting.drain(..n).collect()
                    }
                    _ => {
                        queues.remove(&org);
                        guard.finished = true;
                        return;
                    }
                }
            };
            let started = Instant::now();
            let (requests, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|w| (w.request, w.reply)).unzip();
            self.queues.transactions.fetch_add(1, Ordering::Relaxed);
            self.queues
                .requests
                .fetch_add(requests.len() as u64, Ordering::Relaxed);
            let outcomes = self.remove_memberships_together(org, &requests).await;
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // The requester may have gone away; its removal stands, as it would have had
                // the commit come a moment before it left.
                let _ = reply.send(outcome);
            }
            let busy = nanos(started.elapsed());
            self.queues.busy_nanos.fetch_add(busy, Ordering::Relaxed);
        }
    }

    /// The group-commit layers that run (all, unless `set_group_commit_layers` said otherwise).
    pub(super) fn layers(&self) -> GroupCommitLayers {
        self.queues.layers.get().copied().unwrap_or_default()
    }

    /// Turns group-commit layers off, to measure what each buys; once, before any removal.
    pub fn set_group_commit_layers(&self, layers: GroupCommitLayers) {
        let _ = self.queues.layers.set(layers);
    }

    /// Runs several removals in one organization in one transaction, in order: each request
    /// sees the ones before it (the last-admin guard counts them), a refused or failed request
    /// is undone alone (rolled back to its savepoint, or the batch started over with savepoints
    /// when it may have written; see the module's doc), and one commit covers the rest. Returns one
    /// outcome per request, in order. If the transaction itself fails (begin, savepoint,
    /// commit), nothing is kept and every request gets that error.
    pub async fn remove_memberships_together(
        &self,
        org: OrganizationId,
        requests: &[RemovalRequest],
    ) -> Vec<CoreResult<Removal>> {
        match self.run_together(org, requests).await {
            Ok(outcomes) => outcomes,
            Err(e) => requests.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// `remove_memberships_together`, failing as a whole if the transaction itself fails.
    async fn run_together(
        &self,
        org: OrganizationId,
        requests: &[RemovalRequest],
    ) -> CoreResult<Vec<CoreResult<Removal>>> {
        if requests.len() == 1 {
            return Ok(self
                .run_batch(org, requests, Isolation::Alone)
                .await?
                .unwrap_or_default());
        }
        let first = if self.layers().plain_batch && requests.iter().all(is_plain) {
            Isolation::Together
        } else {
            Isolation::Optimistic
        };
        if let Some(outcomes) = self.run_batch(org, requests, first).await? {
            return Ok(outcomes);
        }
        // Something failed after the batch may have begun to write: start over, a savepoint each.
        self.queues.restarts.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .run_batch(org, requests, Isolation::Savepoints)
            .await?
            .unwrap_or_default())
    }

    /// One transaction over `requests`; `None` if an optimistic run has to be started over.
    async fn run_batch(
        &self,
        org: OrganizationId,
        requests: &[RemovalRequest],
        isolation: Isolation,
    ) -> CoreResult<Option<Vec<CoreResult<Removal>>>> {
        let mut tx = self.store.begin().await?;
        // The batch's tokens are read as its organization is locked (in one statement where the
        // backend can). The callers are verified before the lock's outcome is looked at, so
        // that a bad token is a 401 even where the organization does not exist.
        let claims: Vec<TokenId> = requests
            .iter()
            .filter_map(|r| r.caller.claim().map(|c| c.id))
            .collect();
        let (slug, tokens) = tx.lock_organization_reading_tokens(org, &claims).await?;
        let tokens: HashMap<TokenId, Token> = tokens.into_iter().map(|t| (t.id, t)).collect();
        let actors: Vec<CoreResult<Actor>> = requests
            .iter()
            .map(|r| {
                let actor = match &r.caller {
                    Caller::Authenticated(actor) => Ok(actor.clone()),
                    Caller::Presenting(claim) => claim.verify(tokens.get(&claim.id)),
                };
                // Named by a slug that no longer names it: not this organization's request.
                match (&r.org_slug, &slug) {
                    (Some(named), Some(slug)) if named != slug => {
                        actor.and(Err(CoreError::not_found("organization", named)))
                    }
                    _ => actor,
                }
            })
            .collect();
        if slug.is_none() {
            return Ok(Some(
                actors
                    .into_iter()
                    .map(|a| a.and(Err(CoreError::not_found("organization", org))))
                    .collect(),
            ));
        }
        if isolation == Isolation::Together {
            return Ok(
                match remove_plain_together(&mut *tx, org, requests, actors).await {
                    Ok(outcomes) => {
                        if outcomes.iter().any(Result::is_ok) {
                            tx.commit().await?;
                        }
                        Some(outcomes)
                    }
                    // Some of the batch's writes may have happened: drop them all and start over.
                    Err(_) => None,
                },
            );
        }
        let mut outcomes = Vec::with_capacity(requests.len());
        // What the requests that want context share, and how many memberships the batch has
        // removed so far (see `context_for`).
        let (mut shared, mut removed) = (None, 0i64);
        for (r, actor) in requests.iter().zip(actors) {
            let actor = match actor {
                Ok(actor) => actor,
                Err(unauthenticated) => {
                    outcomes.push(Err(unauthenticated));
                    continue;
                }
            };
            if isolation == Isolation::Savepoints {
                tx.savepoint().await?;
            }
            let mut outcome = remove_one(&mut *tx, org, &actor, r).await;
            if r.include_context
                && let Ok(removal) = &mut outcome
            {
                let so_far = removed + removal.removed.len() as i64;
                match context_for(&mut *tx, org, requests, removal, so_far, &mut shared).await {
                    Ok(context) => removal.context = Some(context),
                    Err(e) => outcome = Err(e),
                }
            }
            match (&outcome, isolation) {
                (Ok(_), Isolation::Savepoints) => tx.release_savepoint().await?,
                (Err(_), Isolation::Savepoints) => {
                    tx.rollback_to_savepoint().await?;
                    // Shared reads made within the undone request may have seen its writes.
                    shared = None;
                }
                // Dropping the transaction undoes whatever the request wrote.
                (Err(e), Isolation::Optimistic) if may_have_written(e) => return Ok(None),
                _ => {}
            }
            if let Ok(removal) = &outcome {
                removed += removal.removed.len() as i64;
            }
            outcomes.push(outcome);
        }
        if outcomes.iter().any(Result::is_ok) {
            tx.commit().await?;
        }
        Ok(Some(outcomes))
    }
}

/// A duration as the nanoseconds the counters keep (saturating: 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How the requests of one transaction are kept apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isolation {
    /// One request: if it fails, the whole transaction is dropped.
    Alone,
    /// Plain requests only (`is_plain`): every outcome decided from one read of all the targets,
    /// then one write per table for the lot (`remove_plain_together`). A failure starts the
    /// batch over with `Savepoints`.
    Together,
    /// No savepoints (two statements fewer per request): a refusal is decided before the
    /// request writes anything (`remove_one`), so it leaves nothing to undo; a failure that
    /// may come after a write makes the batch start over, with `Savepoints`.
    Optimistic,
    /// A savepoint per request, rolled back if the request fails.
    Savepoints,
}

/// Whether a failed removal may have written before it failed. The unit of work decides every
/// refusal (not found, forbidden, a rule) from reads, before its first write; a write can only
/// fail as a conflict or an internal error.
fn may_have_written(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::Internal(_) | CoreError::Unavailable(_) | CoreError::Conflict { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_turned_off_by_name_and_an_unknown_name_is_refused() {
        assert_eq!(
            GroupCommitLayers::without(""),
            Ok(GroupCommitLayers::default())
        );
        let off = GroupCommitLayers::without("plain-batch").unwrap();
        assert_eq!((off.batching, off.plain_batch), (true, false));
        let none = GroupCommitLayers::without(" batching, plain-batch ").unwrap();
        assert!(!none.batching && !none.plain_batch);
        assert!(GroupCommitLayers::without("hold").is_err());
    }
}
