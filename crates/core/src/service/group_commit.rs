//! Group commit for removals. Concurrent removals in one organization run together: one
//! transaction, one organization lock and one commit (one fsync) for the lot, each request in
//! its own savepoint, so that a refused or failed request is undone alone and never affects the
//! others. Requests are served in arrival order, each seeing the ones before it, so every
//! outcome is the one the same requests would have had one after another.
//!
//! There is no timer: a request that finds its organization idle starts at once, and requests
//! that arrive while a batch is running form the next batch. Batches run on a task of their own,
//! so a client that goes away while waiting cancels nothing that other requests depend on.
//!
//! Like the rest of the core this knows no SQL and no HTTP; it needs a Tokio runtime to spawn on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::memberships::remove_one;
use super::{RequestContext, Roster};
use crate::error::{CoreError, CoreResult};
use crate::ids::OrganizationId;
use crate::model::{MemberRef, Removal, RemovalOptions};
use crate::permissions::Actor;

/// Requests naming more targets than this run in a transaction of their own: a large bulk
/// removal gains nothing from sharing a commit, and would hold up the small ones.
pub(super) const SHARED_COMMIT_MAX_TARGETS: usize = 100;

/// The most requests one shared transaction serves: it bounds how long a batch holds the
/// organization's lock, and so the wait of whatever else needs it.
const MAX_BATCH: usize = 64;

/// One removal request, as `Roster::remove_memberships` takes it.
#[derive(Clone, Debug)]
pub struct RemovalRequest {
    pub actor: Actor,
    pub targets: Vec<MemberRef>,
    pub options: RemovalOptions,
    pub ctx: RequestContext,
}

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
}

/// The requests waiting for each organization. An organization has an entry exactly while a
/// worker task serves it, so a request either joins a running worker's queue or starts one.
#[derive(Default)]
pub(super) struct Queues {
    waiting: Mutex<HashMap<OrganizationId, Vec<Waiting>>>,
    transactions: AtomicU64,
    requests: AtomicU64,
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, HashMap<OrganizationId, Vec<Waiting>>> {
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
                    queue.push(waiting);
                    false
                }
                None => {
                    queues.insert(org, vec![waiting]);
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
            let batch: Vec<Waiting> = {
                let mut queues = self.queues.lock();
                match queues.get_mut(&org) {
                    Some(queue) if !queue.is_empty() => {
                        let n = queue.len().min(MAX_BATCH);
                        queue.drain(..n).collect()
                    }
                    _ => {
                        queues.remove(&org);
                        guard.finished = true;
                        return;
                    }
                }
            };
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
        }
    }

    /// Runs several removals in one organization in one transaction, in order, each in its own
    /// savepoint: each request sees the ones before it (the last-admin guard counts them), a
    /// refused or failed request is undone alone, and one commit covers the rest. Returns one
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

    async fn run_together(
        &self,
        org: OrganizationId,
        requests: &[RemovalRequest],
    ) -> CoreResult<Vec<CoreResult<Removal>>> {
        let mut tx = self.store.begin().await?;
        if !tx.lock_organization(org).await? {
            return Ok(requests
                .iter()
                .map(|_| Err(CoreError::not_found("organization", org)))
                .collect());
        }
        // A request alone needs no savepoint: if it fails, the whole transaction is dropped.
        let alone = requests.len() == 1;
        let mut outcomes = Vec::with_capacity(requests.len());
        for r in requests {
            if !alone {
                tx.savepoint().await?;
            }
            let outcome = remove_one(&mut *tx, org, &r.actor, &r.targets, r.options, &r.ctx).await;
            if !alone {
                if outcome.is_ok() {
                    tx.release_savepoint().await?;
                } else {
                    tx.rollback_to_savepoint().await?;
                }
            }
            outcomes.push(outcome);
        }
        if outcomes.iter().any(Result::is_ok) {
            tx.commit().await?;
        }
        Ok(outcomes)
    }
}
