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
//! bytes waiting for the runtime's next I/O poll) join it.
//!
//! Then it may hold the batch for the requesters it just answered (the cohort), as
//! PostgreSQL's `commit_delay` holds a commit: a client on a keep-alive connection often sends
//! its next removal at once, but over HTTP it arrives after the next batch has started, and the
//! connections split into halves that alternate, each half paying a commit. When every request
//! answered named its client (`RequestContext::client`: over HTTP, its connection), the worker
//! waits until each of those clients has its next request queued; a request from any other
//! client ends the hold at once, since the load is then not only the cohort's. Without client
//! keys it waits until as many requests are queued as it answered plus those already waiting.
//! While none is queued the hold delays no one (up to `MAX_HOLD`, then an idle worker ends).
//! Once one is, the hold lasts at most a batch's fixed cost (beginning, locking and committing,
//! measured on the last batch; never over `MAX_HOLD`): what a request saves by joining this
//! batch rather than paying for the next one, so a hold never costs the waiting requests more
//! than it can save them. Nor longer than twice what the worker's recent holds took from their
//! first request queued to their end (a moving average, never under `MIN_HOLD_BOUND`): a cohort
//! that comes back comes back within about that, so a hold that waits longer waits for clients
//! that have nothing to send (under open-loop load, say); one that runs out raises the average.
//! A hold that runs out is not tried for the next batch, and each one that runs out in a row
//! skips twice as many (up to `MAX_SKIP`) until a hold keeps requests waiting and is worth it:
//! requests that do not come back as a cohort (independent clients arriving at their own
//! times) lose little to holds, which for them are only a wait.
//!
//! Where a transaction just begun holds no lock (`Store::begins_without_locking`: PostgreSQL,
//! not SQLite, whose `BEGIN IMMEDIATE` takes the database's write lock), a worker whose last
//! hold saw its cohort come back begins the next batch's transaction while it holds, so that
//! its beginning (a round trip) is off the waiting requests' path; it counts in the batch's
//! fixed cost all the same. If no batch follows, the transaction is dropped, and so rolled
//! back. A worker's first hold begins nothing: in an organization with little traffic a
//! request is rarely followed within the hold.
//!
//! Batches run on a task of their own, so a client that goes away while waiting cancels nothing
//! that other requests depend on.
//!
//! Like the rest of the core this knows no SQL and no HTTP; it needs a Tokio runtime to spawn on,
//! with I/O enabled for the hold's timer (`fine_sleep`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};

use super::Roster;
use super::fine_sleep::FineTimer;
use super::removal::{RemovalRequest, context_for, is_plain, remove_one, remove_plain_together};
use crate::auth::Caller;
use crate::error::{CoreError, CoreResult};
use crate::ids::{OrganizationId, TokenId};
use crate::model::{Removal, Token};
use crate::permissions::Actor;
use crate::store::{Session, Store};

/// Requests naming more targets than this run in a transaction of their own: a large bulk
/// removal gains nothing from sharing a commit, and would hold up the small ones.
pub(super) const SHARED_COMMIT_MAX_TARGETS: usize = 100;

/// The most requests one shared transaction serves: it bounds how long a batch holds the
/// organization's lock, and so the wait of whatever else needs it.
const MAX_BATCH: usize = 64;

/// The longest a worker holds a batch for its cohort: an idle worker then ends, and a hold with
/// requests waiting never lasts longer (see the module's doc).
const MAX_HOLD: Duration = Duration::from_millis(1);

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
    /// Batches held for their cohort, and how many of those holds ran out before it was back.
    pub holds: u64,
    pub holds_run_out: u64,
    /// Batches that followed another of the same worker (one that did not idle out in
    /// between), and the time from that batch's last reply to taking this one, summed. Under a
    /// closed loop (each client sending its next removal once answered) it is how long the
    /// requesters answered take to come back: the round trip outside the core, which the batch
    /// time does not show.
    pub followed: u64,
    pub between: Duration,
    /// Transactions begun during a hold (`Store::begins_without_locking`), and those of them
    /// rolled back unused because no batch followed.
    pub begun_ahead: u64,
    pub begun_ahead_unused: u64,
}

/// One organization's waiting requests.
struct Queue {
    waiting: Vec<Waiting>,
    /// While the worker holds the next batch, the number of waiting requests that wakes it
    /// (the first one, or the whole cohort); 0 otherwise.
    wake_at: usize,
    /// While the worker holds the next batch for the clients it answered (requests with a
    /// client key), those of them whose next request has not come yet.
    awaited: HashSet<u64>,
    /// Set when a request from a client not awaited arrives during such a hold: the load is
    /// not (only) the cohort's, and the hold ends.
    stranger: bool,
    /// Told when `waiting` reaches `wake_at`, or the last of `awaited` is back.
    filled: Arc<Notify>,
}

impl Queue {
    /// Leaves no hold behind: nothing awaited, nobody else seen, no count to wake at. Before a
    /// hold starts and however it ends, so that one hold's state never ends the next early.
    fn end_hold(&mut self) {
        self.wake_at = 0;
        self.awaited.clear();
        self.stranger = false;
    }
}

/// The requests waiting for each organization. An organization has an entry exactly while a
/// worker task serves it, so a request either joins a running worker's queue or starts one.
/// Which of group commit's layers run: all of them, unless a benchmark turns some off to
/// measure what each buys (`roster serve` reads `ROSTER_GROUP_COMMIT_OFF`; docs/benchmarks.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommitLayers {
    /// Small removals of one organization share a transaction at all (off: each its own).
    pub batching: bool,
    /// A batch of plain removals is decided in memory, one statement a table (off: request by
    /// request, as a batch with credential deletion runs).
    pub plain_batch: bool,
    /// A batch is held for the requesters the previous one answered.
    pub hold: bool,
    /// A held batch's transaction is begun during the hold, where the store allows.
    pub begin_ahead: bool,
}

impl Default for GroupCommitLayers {
    fn default() -> Self {
        GroupCommitLayers {
            batching: true,
            plain_batch: true,
            hold: true,
            begin_ahead: true,
        }
    }
}

impl GroupCommitLayers {
    /// Every layer but those named in `off`, a comma-separated list of `batching`,
    /// `plain-batch`, `hold` and `begin-ahead`.
    pub fn without(off: &str) -> Result<Self, String> {
        let mut layers = GroupCommitLayers::default();
        for name in off.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "batching" => layers.batching = false,
                "plain-batch" => layers.plain_batch = false,
                "hold" => layers.hold = false,
                "begin-ahead" => layers.begin_ahead = false,
                other => {
                    return Err(format!(
                        "unknown group-commit layer `{other}` (batching, plain-batch, hold, begin-ahead)"
                    ));
                }
            }
        }
        Ok(layers)
    }
}

#[derive(Default)]
pub(super) struct Queues {
    /// The layers that run (all by default).
    pub(super) layers: std::sync::OnceLock<GroupCommitLayers>,
    waiting: Mutex<HashMap<OrganizationId, Queue>>,
    transactions: AtomicU64,
    requests: AtomicU64,
    restarts: AtomicU64,
    busy_nanos: AtomicU64,
    holds: AtomicU64,
    holds_run_out: AtomicU64,
    followed: AtomicU64,
    between_nanos: AtomicU64,
    begun_ahead: AtomicU64,
    begun_ahead_unused: AtomicU64,
    /// What the last committed batch spent beginning, locking and committing, whatever its
    /// size: what a request saves by joining a batch rather than starting the next one, and
    /// so the longest a hold makes a queued request wait (see `Cohort`).
    fixed_nanos: AtomicU64,
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
            holds: self.queues.holds.load(Ordering::Relaxed),
            holds_run_out: self.queues.holds_run_out.load(Ordering::Relaxed),
            followed: self.queues.followed.load(Ordering::Relaxed),
            between: Duration::from_nanos(self.queues.between_nanos.load(Ordering::Relaxed)),
            begun_ahead: self.queues.begun_ahead.load(Ordering::Relaxed),
            begun_ahead_unused: self.queues.begun_ahead_unused.load(Ordering::Relaxed),
        }
    }

    /// Queues a removal behind the organization's running batch, or starts one.
    pub(super) async fn remove_in_shared_commit(
        &self,
        org: OrganizationId,
        request: RemovalRequest,
    ) -> CoreResult<Removal> {
        let (reply, outcome) = oneshot::channel();
        let client = request.ctx.client;
        let start_worker = {
            let mut queues = self.queues.lock();
            let waiting = Waiting { request, reply };
            match queues.get_mut(&org) {
                Some(queue) => {
                    queue.waiting.push(waiting);
                    // During a hold for clients: the last of them back, or someone else.
                    let mut ends_hold = false;
                    if !queue.awaited.is_empty() {
                        if client.is_some_and(|c| queue.awaited.remove(&c)) {
                            ends_hold = queue.awaited.is_empty();
                        } else {
                            queue.stranger = true;
                            ends_hold = true;
                        }
                    }
                    if ends_hold || (queue.wake_at > 0 && queue.waiting.len() >= queue.wake_at) {
                        queue.wake_at = 0;
                        queue.filled.notify_waiters();
                    }
                    false
                }
                None => {
                    let queue = Queue {
                        waiting: vec![waiting],
                        wake_at: 0,
                        awaited: HashSet::new(),
                        stranger: false,
                        filled: Arc::default(),
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
        let mut cohort = Cohort::default();
        let mut timer = FineTimer::new();
        // When the worker's last batch sent its last reply.
        let mut replied: Option<Instant> = None;
        loop {
            // Before each batch, let this thread's other tasks run and the runtime poll for I/O:
            // a request whose bytes have arrived, or whose client was just answered and has
            // sent its next one, joins this batch instead of waiting a whole batch for the next.
            tokio::task::yield_now().await;
            let fixed = Duration::from_nanos(self.queues.fixed_nanos.load(Ordering::Relaxed));
            // A transaction begun during the hold, where the store allows (see the module's
            // doc); dropped, and so rolled back, if no batch follows.
            let mut begun = None;
            let layers = self.layers();
            if let Some(bound) = cohort.hold(fixed).filter(|_| layers.hold) {
                let hold = self.hold_for(
                    org,
                    cohort.answered,
                    cohort.clients.as_ref(),
                    bound,
                    &mut timer,
                );
                let (held, waited) = if layers.begin_ahead
                    && cohort.begins_ahead()
                    && self.store.begins_without_locking()
                {
                    let (hold, ahead) = tokio::join!(hold, Begun::begin(&*self.store));
                    if ahead.is_some() {
                        self.queues.begun_ahead.fetch_add(1, Ordering::Relaxed);
                    }
                    begun = ahead;
                    hold
                } else {
                    hold.await
                };
                cohort.held(held, waited);
                self.queues.holds.fetch_add(1, Ordering::Relaxed);
                if held == Held::RanOut {
                    self.queues.holds_run_out.fetch_add(1, Ordering::Relaxed);
                }
            }
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
                        if begun.is_some() {
                            self.queues
                                .begun_ahead_unused
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                }
            };
            let started = Instant::now();
            if let Some(replied) = replied {
                self.queues.followed.fetch_add(1, Ordering::Relaxed);
                let between = nanos(started.duration_since(replied));
                self.queues
                    .between_nanos
                    .fetch_add(between, Ordering::Relaxed);
            }
            let (requests, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|w| (w.request, w.reply)).unzip();
            self.queues.transactions.fetch_add(1, Ordering::Relaxed);
            self.queues
                .requests
                .fetch_add(requests.len() as u64, Ordering::Relaxed);
            let outcomes = self.outcomes_together(org, &requests, begun).await;
            // Counted before the replies go out: a requester answered may be back at once.
            let still_waiting = self.queues.lock().get(&org).map_or(0, |q| q.waiting.len());
            cohort.answered = (requests.len() + still_waiting).min(MAX_BATCH);
            // The clients answered, if every request named one (over HTTP, each does).
            cohort.clients = requests.iter().map(|r| r.ctx.client).collect();
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // The requester may have gone away; its removal stands, as it would have had
                // the commit come a moment before it left.
                let _ = reply.send(outcome);
            }
            let done = Instant::now();
            replied = Some(done);
            let busy = nanos(done.duration_since(started));
            self.queues.busy_nanos.fetch_add(busy, Ordering::Relaxed);
        }
    }

    /// Waits until each of `clients` has a request queued for `org` or, without clients,
    /// until `wanted` requests are; returns whether they were, and whether any request waited
    /// for the others. While none is queued the wait delays no one, and lasts up to
    /// `MAX_HOLD`; from the moment one is queued, at most `bound` more. Also returns how long
    /// the hold lasted from then, unless another client's request ended it.
    async fn hold_for(
        &self,
        org: OrganizationId,
        wanted: usize,
        clients: Option<&HashSet<u64>>,
        bound: Duration,
        timer: &mut FineTimer,
    ) -> (Held, Option<Duration>) {
        let filled = {
            let mut queues = self.queues.lock();
            let Some(queue) = queues.get_mut(&org) else {
                return (Held::Free, None);
            };
            queue.end_hold();
            if let Some(clients) = clients {
                // Those back already (during the worker's yield) are not awaited.
                queue.awaited.extend(clients);
                for w in &queue.waiting {
                    if let Some(c) = w.request.ctx.client {
                        queue.awaited.remove(&c);
                    }
                }
            }
            queue.filled.clone()
        };
        // Back, or a full batch queued already: the next batch could take no more.
        let back = |queue: &Queue| {
            queue.waiting.len() >= MAX_BATCH
                || match clients {
                    Some(_) => queue.awaited.is_empty(),
                    None => queue.waiting.len() >= wanted,
                }
        };
        let idle_until = Instant::now() + MAX_HOLD;
        let mut first_queued: Option<Instant> = None;
        loop {
            let notified = filled.notified();
            tokio::pin!(notified);
            // Enabled before `wake_at` is set, so a request queued between the two still wakes it.
            notified.as_mut().enable();
            let until = {
                let mut queues = self.queues.lock();
                let Some(queue) = queues.get_mut(&org) else {
                    return (Held::Free, None);
                };
                match queue.waiting.len() {
                    _ if back(queue) => {
                        // Nothing awaited any more (it may be, when a full batch ended it).
                        queue.end_hold();
                        return match first_queued {
                            Some(first) => (Held::Waited, Some(first.elapsed())),
                            None => (Held::Free, None),
                        };
                    }
                    _ if queue.stranger => {
                        queue.end_hold();
                        return (Held::RanOut, None);
                    }
                    0 => {
                        queue.wake_at = 1;
                        idle_until
                    }
                    _ => {
                        // Woken by the count, or by the last awaited client.
                        queue.wake_at = if clients.is_some() { 0 } else { wanted };
                        *first_queued.get_or_insert_with(Instant::now) + bound
                    }
                }
            };
            let ran_out = tokio::select! {
                () = &mut notified => false,
                () = timer.sleep_until(until) => true,
            };
            if ran_out {
                let mut queues = self.queues.lock();
                let back = queues.get_mut(&org).is_none_or(|queue| {
                    let back = back(queue);
                    queue.end_hold();
                    back
                });
                let waited = first_queued.map(|first| first.elapsed());
                return if back {
                    (Held::Waited, waited)
                } else {
                    (Held::RanOut, waited)
                };
            }
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
        self.outcomes_together(org, requests, None).await
    }

    /// `remove_memberships_together`, in `begun` if the worker has begun the transaction.
    async fn outcomes_together(
        &self,
        org: OrganizationId,
        requests: &[RemovalRequest],
        begun: Option<Begun>,
    ) -> Vec<CoreResult<Removal>> {
        match self.run_together(org, requests, begun).await {
            Ok(outcomes) => outcomes,
            Err(e) => requests.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// `outcomes_together`, failing as a whole if the transaction itself fails.
    async fn run_together(
        &self,
        org: OrganizationId,
        requests: &[RemovalRequest],
        begun: Option<Begun>,
    ) -> CoreResult<Vec<CoreResult<Removal>>> {
        if requests.len() == 1 {
            return Ok(self
                .run_batch(org, requests, Isolation::Alone, begun)
                .await?
                .unwrap_or_default());
        }
        let first = if self.layers().plain_batch && requests.iter().all(is_plain) {
            Isolation::Together
        } else {
            Isolation::Optimistic
        };
        if let Some(outcomes) = self.run_batch(org, requests, first, begun).await? {
            return Ok(outcomes);
        }
        // Something failed after the batch may have begun to write: start over, a savepoint each.
        self.queues.restarts.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .run_batch(org, requests, Isolation::Savepoints, None)
            .await?
            .unwrap_or_default())
    }

    /// One transaction over `requests`; `None` if an optimistic run has to be started over.
    async fn run_batch(
        &self,
        org: OrganizationId,
        requests: &[RemovalRequest],
        isolation: Isolation,
        begun: Option<Begun>,
    ) -> CoreResult<Option<Vec<CoreResult<Removal>>>> {
        let opening = Instant::now();
        let (mut tx, begun_in) = match begun {
            Some(Begun { tx, took }) => (tx, took),
            None => (self.store.begin().await?, Duration::ZERO),
        };
        // The batch's tokens are read as its organization is locked (in one statement where the
        // backend can). The callers are verified before the lock's outcome is looked at, so
        // that a bad token is a 401 even where the organization does not exist.
        let claims: Vec<TokenId> = requests
            .iter()
            .filter_map(|r| r.caller.claim().map(|c| c.id))
            .collect();
        let (slug, tokens) = tx.lock_organization_reading_tokens(org, &claims).await?;
        // The batch's fixed cost counts its beginning, wherever that happened.
        let opened = begun_in + opening.elapsed();
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
                            self.commit_timed(tx, opened).await?;
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
            self.commit_timed(tx, opened).await?;
        }
        Ok(Some(outcomes))
    }

    /// Commits, and keeps what the batch's fixed part took (`Queues::fixed_nanos`).
    async fn commit_timed(&self, tx: Box<dyn Session>, opened: Duration) -> CoreResult<()> {
        let committing = Instant::now();
        tx.commit().await?;
        let fixed = nanos(opened + committing.elapsed());
        self.queues.fixed_nanos.store(fixed, Ordering::Relaxed);
        Ok(())
    }
}

/// A duration as the nanoseconds the counters keep (saturating: 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What a worker knows of the requesters it just answered (see the module's doc on holding).
#[derive(Default)]
struct Cohort {
    /// The requests of the last batch plus those that were waiting when it was answered: how
    /// many the next batch is held for when its requests named no client. 0 before the first
    /// batch.
    answered: usize,
    /// The clients of the last batch, if each of its requests named one: the next batch is
    /// held for these to be back, whatever else arrives.
    clients: Option<HashSet<u64>>,
    /// Batches still to be taken without a hold, after holds that ran out.
    skip: u32,
    /// How many batches the next hold that runs out makes the worker take without one: 1 after
    /// a hold that kept requests waiting and was worth it, doubled by each that runs out.
    backoff: u32,
    /// How long recent holds lasted from their first request queued (a moving average, `None`
    /// before the first): a cohort that comes back comes back within about this.
    cohort_wait: Option<Duration>,
    /// The last hold ended with its cohort back (not run out, nor ended by another client).
    came_back: bool,
}

/// The least a hold lasts once a request is queued, however quickly recent cohorts came back.
const MIN_HOLD_BOUND: Duration = Duration::from_micros(50);

/// The most batches taken without a hold after holds that ran out: under load that does not
/// come back as a cohort, a hold is tried about once in this many batches.
const MAX_SKIP: u32 = 32;

/// A transaction the worker began before taking its batch, and what beginning it took.
struct Begun {
    tx: Box<dyn Session>,
    took: Duration,
}

impl Begun {
    /// `None` if the store fails to begin: the batch then begins on its own, and meets the
    /// failure there if it lasts.
    async fn begin(store: &dyn Store) -> Option<Begun> {
        let beginning = Instant::now();
        let tx = store.begin().await.ok()?;
        Some(Begun {
            tx,
            took: beginning.elapsed(),
        })
    }
}

/// How a hold ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    /// The cohort was back, and nobody had waited for the others (one was wanted, or none was
    /// queued until they all were): a hold that cost nothing and says nothing.
    Free,
    /// The cohort was back while requests waited for it: the hold was worth it.
    Waited,
    /// It ran out before the cohort was back, or another client's request ended it (the load
    /// is not only the cohort's): whoever was queued waited for nothing.
    RanOut,
}

impl Cohort {
    /// Whether to hold the next batch, and for how long at most once a request is waiting:
    /// a batch's fixed cost (`fixed`), since holding longer than a commit takes costs the
    /// waiting requests more than a batch of their own would; and twice as long as recent
    /// cohorts took to come back.
    fn hold(&mut self, fixed: Duration) -> Option<Duration> {
        if self.answered == 0 {
            return None;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        let bound = fixed.min(MAX_HOLD);
        Some(match self.cohort_wait {
            Some(cohort_wait) => bound.min((cohort_wait * 2).max(MIN_HOLD_BOUND)),
            None => bound,
        })
    }

    /// Whether to begin the next batch's transaction during this hold (where the store
    /// allows): only after a hold its cohort came back for. A worker's first hold, and one after
    /// a hold that ran out, begin nothing: the transaction would mostly be rolled back unused
    /// when the worker idles out, and a request that nobody follows (the usual case in an
    /// organization with little traffic) would pay a `BEGIN`, a `ROLLBACK` and a connection kept
    /// from the pool for the hold.
    fn begins_ahead(&self) -> bool {
        self.came_back
    }

    /// Holds that run out in a row are a load that does not come back as a cohort (clients
    /// independent of each other, arriving at their own times), for which a hold is only a
    /// wait: each one skips twice as many batches as the one before, until a hold is worth it.
    /// `waited`: how long the hold lasted from its first request queued, if one was and the
    /// hold ended by the cohort's return or its bound (not by another client's request).
    fn held(&mut self, held: Held, waited: Option<Duration>) {
        if let Some(w) = waited {
            self.cohort_wait = Some(match self.cohort_wait {
                Some(s) => (s * 3 + w) / 4,
                None => w,
            });
        }
        self.came_back = held != Held::RanOut;
        match held {
            Held::Free => {}
            Held::Waited => self.backoff = 0,
            Held::RanOut => {
                self.backoff = (self.backoff * 2).clamp(1, MAX_SKIP);
                self.skip = self.backoff;
            }
        }
    }
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

    const FIXED: Duration = Duration::from_micros(300);

    /// How many of the next `batches` batches `cohort` holds, were every hold to end as `held`.
    fn holds_among(cohort: &mut Cohort, batches: usize, held: Held) -> usize {
        (0..batches)
            .filter(|_| {
                let hold = cohort.hold(FIXED).is_some();
                if hold {
                    cohort.held(held, None);
                }
                hold
            })
            .count()
    }

    #[test]
    fn a_cohort_that_comes_back_is_held_for_before_every_batch() {
        let mut cohort = Cohort {
            answered: 8,
            ..Cohort::default()
        };
        assert_eq!(holds_among(&mut cohort, 100, Held::Waited), 100);
        assert_eq!(holds_among(&mut cohort, 100, Held::Free), 100);
        assert_eq!(cohort.hold(FIXED), Some(FIXED), "bounded by the fixed cost");
    }

    #[test]
    fn a_transaction_is_begun_during_a_hold_only_after_a_hold_its_cohort_came_back_for() {
        let mut cohort = Cohort {
            answered: 1,
            ..Cohort::default()
        };
        assert!(
            !cohort.begins_ahead(),
            "a worker's first hold begins nothing"
        );
        cohort.held(Held::Free, None);
        assert!(cohort.begins_ahead());
        cohort.held(Held::Waited, Some(Duration::from_micros(100)));
        assert!(cohort.begins_ahead());
        cohort.held(Held::RanOut, None);
        assert!(!cohort.begins_ahead(), "nor one after a hold that ran out");
        cohort.held(Held::Waited, None);
        assert!(cohort.begins_ahead());
    }

    #[test]
    fn holds_that_run_out_in_a_row_are_tried_ever_more_rarely_until_one_is_worth_it() {
        let mut cohort = Cohort {
            answered: 8,
            ..Cohort::default()
        };
        // Held, then 1, 2, 4, 8, 16, 32, 32… batches without: 7 holds in the first 70 batches.
        let pattern: Vec<bool> = (0..70)
            .map(|_| {
                let hold = cohort.hold(FIXED).is_some();
                if hold {
                    cohort.held(Held::RanOut, None);
                }
                hold
            })
            .collect();
        let held_at: Vec<usize> = (0..70).filter(|&i| pattern[i]).collect();
        assert_eq!(held_at, [0, 2, 5, 10, 19, 36, 69]);
        // Held for nothing, it is tried at most once in MAX_SKIP + 1 batches from then on.
        assert_eq!(holds_among(&mut cohort, 33 * 10, Held::RanOut), 10);
        // A hold that was worth it restores holding before every batch, after the skip running.
        while cohort.hold(FIXED).is_none() {}
        cohort.held(Held::Waited, None);
        assert_eq!(holds_among(&mut cohort, 50, Held::Waited), 50);
        // From there a hold that runs out skips one batch, the next one two…
        cohort.held(Held::RanOut, None);
        assert_eq!(cohort.hold(FIXED), None);
        assert!(cohort.hold(FIXED).is_some());
        cohort.held(Held::RanOut, None);
        assert_eq!([cohort.hold(FIXED), cohort.hold(FIXED)], [None, None]);
        // …and a hold that cost nobody a wait says nothing either way: the next that runs out
        // skips four.
        assert!(cohort.hold(FIXED).is_some());
        cohort.held(Held::Free, None);
        assert!(cohort.hold(FIXED).is_some());
        cohort.held(Held::RanOut, None);
        assert_eq!(holds_among(&mut cohort, 4, Held::RanOut), 0);
        assert!(cohort.hold(FIXED).is_some());
    }

    #[test]
    fn a_hold_lasts_about_twice_as_long_as_recent_cohorts_took_to_come_back() {
        let mut cohort = Cohort {
            answered: 8,
            ..Cohort::default()
        };
        let us = Duration::from_micros;
        assert_eq!(cohort.hold(FIXED), Some(FIXED), "nothing known yet");
        cohort.held(Held::Waited, Some(us(60)));
        assert_eq!(cohort.hold(FIXED), Some(us(120)));
        // A moving average: a slower return moves it a quarter of the way.
        cohort.held(Held::Waited, Some(us(100)));
        assert_eq!(cohort.hold(FIXED), Some(us(140)));
        // Never beyond the fixed cost, never under the least bound.
        cohort.held(Held::Waited, Some(us(2000)));
        assert_eq!(cohort.hold(FIXED), Some(FIXED));
        for _ in 0..40 {
            cohort.held(Held::Waited, Some(us(1)));
        }
        assert_eq!(cohort.hold(FIXED), Some(MIN_HOLD_BOUND));
        // A hold that ran out at its bound raises the bound of the next (after its skip).
        let mut cohort = Cohort {
            answered: 8,
            ..Cohort::default()
        };
        cohort.held(Held::Waited, Some(us(60)));
        cohort.held(Held::RanOut, Some(us(120)));
        assert_eq!(cohort.hold(FIXED), None, "skipped after running out");
        assert_eq!(cohort.hold(FIXED), Some(us(150)));
    }

    #[test]
    fn layers_are_turned_off_by_name_and_an_unknown_name_is_refused() {
        assert_eq!(
            GroupCommitLayers::without(""),
            Ok(GroupCommitLayers::default())
        );
        let off = GroupCommitLayers::without("hold, begin-ahead").unwrap();
        assert_eq!(
            (off.batching, off.plain_batch, off.hold, off.begin_ahead),
            (true, true, false, false)
        );
        let none = GroupCommitLayers::without("batching,plain-batch").unwrap();
        assert!(!none.batching && !none.plain_batch && none.hold);
        assert!(GroupCommitLayers::without("holds").is_err());
    }

    #[test]
    fn nothing_is_held_before_the_first_batch() {
        let mut cohort = Cohort::default();
        assert_eq!(cohort.hold(FIXED), None);
    }
}
