//! Idempotent requests: a keyed request runs with its change's commit held, and its answer is
//! stored in that very transaction, so that a crash keeps both or neither and a repeat of the
//! request gets the answer instead of a second change.
//!
//! Every write commits through `commit`, which in a request whose commit is held (inside
//! `Roster::run_holding_commit`) keeps the transaction instead of committing it; the surface
//! renders its answer and hands both to `Roster::commit_with_answer`. A request that commits
//! nothing (refused, failed, a dry run) keeps nothing: a repeat runs again, and changes
//! nothing again unless what refused it changed. Within one process a key runs once at a time;
//! across processes, the second to commit finds the first's record and rolls back.

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use super::Roster;
use crate::error::{CoreError, CoreResult};
use crate::idempotency::{IdempotencyRecord, IdempotentRequest, StoredResponse};
use crate::store::Session;
use crate::timestamp::Timestamp;

tokio::task_local! {
    /// The transaction of the request this task serves, once it committed, when its commit is
    /// held.
    static HELD: RefCell<Option<Box<dyn Session>>>;
}

/// Commits `tx`; in a request whose commit is held, keeps it for `Roster::commit_with_answer`
/// instead (a use-case commits once: a second commit in such a request is refused).
pub(super) async fn commit(tx: Box<dyn Session>) -> CoreResult<()> {
    let mut tx = Some(tx);
    let kept = HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        if held.is_none() {
            *held = tx.take();
        }
    });
    match (tx, kept) {
        (None, _) => Ok(()),
        (Some(tx), Err(_)) => tx.commit().await,
        (Some(_), Ok(())) => Err(CoreError::internal(
            "a request whose commit is held committed twice; the second change was rolled back",
        )),
    }
}

/// Whether this task serves a request whose commit is held: its change must run in the
/// task's own transaction, never in a batch another task commits.
pub(super) fn commit_is_held() -> bool {
    HELD.try_with(|_| ()).is_ok()
}

/// The keys being run in this process now, by caller.
pub(super) type RunningKeys = Mutex<HashSet<(String, String)>>;

/// What a keyed request finds before it runs.
#[derive(Debug)]
pub enum Earlier {
    /// Nothing: it runs, and the claim keeps this process's other requests with the key out
    /// until it is dropped.
    Nothing(KeyClaim),
    /// The same request ran and changed something: its answer.
    Answered(StoredResponse),
    /// The key was used for a different request (method, path or body).
    Reused,
    /// A request with the key is still running.
    Running,
}

/// A key claimed by a running request in this process.
#[derive(Debug)]
pub struct KeyClaim {
    request: IdempotentRequest,
    running: Arc<RunningKeys>,
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        let id = (
            self.request.actor.clone(),
            self.request.key.as_str().to_owned(),
        );
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// A change made by a request whose commit was held: its open transaction.
pub struct HeldChange(Box<dyn Session>);

impl std::fmt::Debug for HeldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldChange")
    }
}

impl Roster {
    /// What `request`'s key finds: an answer to replay, a refusal, or a claim to run it.
    ///
    /// The key is claimed first and its record read after: a request that ran with it has
    /// committed its record before giving its claim up, so a claim taken after it always
    /// finds that record (read the other way round, a repeat could miss both the record, not
    /// yet committed, and the claim, given up just after, and run a second time).
    pub async fn earlier(&self, request: IdempotentRequest) -> CoreResult<Earlier> {
        let id = (request.actor.clone(), request.key.as_str().to_owned());
        let newly = self
            .running_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
        if !newly {
            return Ok(Earlier::Running);
        }
        let claim = KeyClaim {
            request,
            running: self.running_keys.clone(),
        };
        let mut s = self.store.read().await?;
        let found = s
            .idempotency_record(
                &claim.request.actor,
                claim.request.key.as_str(),
                Timestamp::now(),
            )
            .await?;
        Ok(match found {
            // The claim goes with the early answers: nothing runs.
            Some(record) if record.request.repeats(&claim.request) => {
                Earlier::Answered(record.response)
            }
            Some(_) => Earlier::Reused,
            None => Earlier::Nothing(claim),
        })
    }

    /// Runs `work` (the handling of the request `claim` is for) with its commit held: what it
    /// answered, and the change it made, if it made one. The claim is not read: asking for it
    /// means a held commit only ever runs for a request that holds its key.
    pub async fn run_holding_commit<F: Future>(
        &self,
        _claim: &KeyClaim,
        work: F,
    ) -> (F::Output, Option<HeldChange>) {
        HELD.scope(RefCell::new(None), async {
            let answer = work.await;
            let held = HELD.with(|held| held.borrow_mut().take());
            (answer, held.map(HeldChange))
        })
        .await
    }

    /// Stores `response` with the held change, and commits the two. `None` once committed;
    /// if a record of the key got there first (the same request, run at once by another
    /// process), nothing is committed and what that record says is returned.
    pub async fn commit_with_answer(
        &self,
        claim: KeyClaim,
        held: HeldChange,
        response: StoredResponse,
    ) -> CoreResult<Option<Earlier>> {
        let HeldChange(mut tx) = held;
        let now = Timestamp::now();
        let record = IdempotencyRecord {
            request: claim.request.clone(),
            response,
            created_at: now,
            expires_at: now.plus(self.idempotency_retention),
        };
        if tx.insert_idempotency_record(&record).await? {
            tx.commit().await?;
            return Ok(None);
        }
        drop(tx);
        let request = claim.request.clone();
        drop(claim);
        Ok(Some(match self.earlier(request).await? {
            // Expired in between: the change was rolled back all the same; ask again.
            Earlier::Nothing(_) => Earlier::Running,
            earlier => earlier,
        }))
    }

    /// Purges the records whose day (or the operator's window) is over; how many went.
    pub async fn purge_expired_idempotency_records(&self) -> CoreResult<u64> {
        let mut tx = self.store.begin().await?;
        let n = tx
            .purge_expired_idempotency_records(Timestamp::now())
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}
