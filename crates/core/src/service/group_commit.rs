//! Group commit: a scheduler that runs the work submitted under one key (an organization) in
//! batches, so that concurrent work shares one transaction and one commit (one fsync). It knows
//! nothing of what the work is: `Batches::run` runs a batch and gives one outcome per piece of
//! work, in order. Work is served in arrival order, and a batch runs while the next one forms.
//!
//! A piece of work that finds its key idle starts at once, and work that arrives while a batch
//! is running forms the next batch. Before taking a batch the worker yields once, so that work
//! already arrived but not yet queued (its task ready on the worker's thread, its bytes waiting
//! for the runtime's next I/O poll) joins it. Nothing waits on a timer: holding a batch for the
//! requesters the last one answered, and beginning its transaction during that hold, were
//! measured on open-loop arrivals and on removals spread over many organizations, bought less
//! than 15% there, and were removed (docs/benchmarks.md).
//!
//! Batches run on a task of their own, so a client that goes away while waiting cancels nothing
//! that other work depends on.
//!
//! Like the rest of the core this knows no SQL and no HTTP; it needs a Tokio runtime to spawn on.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// What group commit schedules: work under a key, run a batch at a time.
pub(super) trait Batches: Send + Sync + 'static {
    type Key: Copy + Eq + Hash + Send + Sync + 'static;
    type Work: Send + 'static;
    type Outcome: Send + 'static;

    /// Runs `batch` (in one transaction) and gives one outcome per piece of work, in order.
    fn run(
        &self,
        key: Self::Key,
        batch: Vec<Self::Work>,
    ) -> impl Future<Output = Vec<Self::Outcome>> + Send;
}

/// The most pieces of work one batch takes: it bounds how long a batch holds its key (an
/// organization's lock), and so the wait of whatever else needs it.
const MAX_BATCH: usize = 64;

/// How many batches ran and how much work they served: their ratio is the mean batch size
/// (exported at `/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    pub transactions: u64,
    pub requests: u64,
    /// Batches started over a request at a time, after a failure that was not one request's
    /// refusal (counted by the removal room: the scheduler does not know).
    pub restarts: u64,
    /// Time spent running batches, from taking them off the queue to the last reply: divided by
    /// `transactions`, the mean time a batch holds its key.
    pub busy: Duration,
}

/// Which of group commit's layers run: all of them, unless a benchmark turns some off to
/// measure what each buys (`roster serve` reads `ROSTER_GROUP_COMMIT_OFF`; docs/benchmarks.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommitLayers {
    /// Small removals of one organization share a transaction at all (off: each its own).
    pub batching: bool,
}

impl Default for GroupCommitLayers {
    fn default() -> Self {
        GroupCommitLayers { batching: true }
    }
}

impl GroupCommitLayers {
    /// Every layer but those named in `off`, a comma-separated list (`batching`).
    pub fn without(off: &str) -> Result<Self, String> {
        let mut layers = GroupCommitLayers::default();
        for name in off.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "batching" => layers.batching = false,
                other => return Err(format!("unknown group-commit layer `{other}` (batching)")),
            }
        }
        Ok(layers)
    }
}

type Waiting<B> = (
    <B as Batches>::Work,
    oneshot::Sender<<B as Batches>::Outcome>,
);

/// The work waiting under each key. A key has an entry exactly while a worker task serves it,
/// so a piece of work either joins a running worker's queue or starts one.
pub(super) struct GroupCommit<B: Batches> {
    waiting: Mutex<HashMap<B::Key, Vec<Waiting<B>>>>,
    transactions: AtomicU64,
    requests: AtomicU64,
    busy_nanos: AtomicU64,
}

impl<B: Batches> GroupCommit<B> {
    pub(super) fn new() -> Self {
        GroupCommit {
            waiting: Mutex::default(),
            transactions: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<B::Key, Vec<Waiting<B>>>> {
        // A panic elsewhere cannot leave the map inconsistent: every change is one call.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What the scheduler has done (its `restarts` are zero: see `GroupCommitStats`).
    pub(super) fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            restarts: 0,
            busy: Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Queues `work` behind its key's running batch, or starts one that runs its batches with
    /// `batches`; its outcome, or `None` if the worker stopped (panicked) before running it.
    pub(super) async fn submit(
        self: &Arc<Self>,
        batches: B,
        key: B::Key,
        work: B::Work,
    ) -> Option<B::Outcome> {
        let (reply, outcome) = oneshot::channel();
        let start_worker = {
            let mut waiting = self.lock();
            match waiting.get_mut(&key) {
                Some(queue) => {
                    queue.push((work, reply));
                    false
                }
                None => {
                    waiting.insert(key, vec![(work, reply)]);
                    true
                }
            }
        };
        if start_worker {
            let this = self.clone();
            tokio::spawn(async move { this.serve(batches, key).await });
        }
        outcome.await.ok()
    }

    /// The worker: takes the waiting work in batches until none is left.
    async fn serve(self: Arc<Self>, batches: B, key: B::Key) {
        let mut guard = WorkerGuard {
            owner: &self,
            key,
            finished: false,
        };
        loop {
            // Before each batch, let this thread's other tasks run and the runtime poll for I/O:
            // work whose bytes have arrived, or whose client was just answered and has sent its
            // next request, joins this batch instead of waiting a whole batch for the next.
            tokio::task::yield_now().await;
            let batch: Vec<Waiting<B>> = {
                let mut waiting = self.lock();
                match waiting.get_mut(&key) {
                    Some(queue) if !queue.is_empty() => {
                        let n = queue.len().min(MAX_BATCH);
                        queue.drain(..n).collect()
                    }
                    _ => {
                        waiting.remove(&key);
                        guard.finished = true;
                        return;
                    }
                }
            };
            let started = Instant::now();
            let (work, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            self.transactions.fetch_add(1, Ordering::Relaxed);
            self.requests
                .fetch_add(work.len() as u64, Ordering::Relaxed);
            let outcomes = batches.run(key, work).await;
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // The requester may have gone away; its work stands, as it would have had the
                // commit come a moment before it left.
                let _ = reply.send(outcome);
            }
            let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.busy_nanos.fetch_add(busy, Ordering::Relaxed);
        }
    }
}

/// Removes the key's entry when its worker ends. On a normal end the worker has already removed
/// it (finding the queue empty, under the lock); after a panic this drops the work still
/// waiting, whose submitters then get `None` instead of waiting forever.
struct WorkerGuard<'a, B: Batches> {
    owner: &'a GroupCommit<B>,
    key: B::Key,
    finished: bool,
}

impl<B: Batches> Drop for WorkerGuard<'_, B> {
    fn drop(&mut self) {
        if !self.finished {
            self.owner.lock().remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers each piece of work with itself and the size of the batch it ran in, after
    /// waiting for `gate` the first time: work submitted meanwhile forms the next batch.
    #[derive(Clone)]
    struct Echo {
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Batches for Echo {
        type Key = u8;
        type Work = u32;
        type Outcome = (u32, usize);

        async fn run(&self, _key: u8, batch: Vec<u32>) -> Vec<(u32, usize)> {
            let _ = self.gate.acquire().await.map(|p| p.forget());
            let n = batch.len();
            batch.into_iter().map(|w| (w, n)).collect()
        }
    }

    #[test]
    fn layers_are_turned_off_by_name_and_an_unknown_name_is_refused() {
        assert_eq!(
            GroupCommitLayers::without(""),
            Ok(GroupCommitLayers::default())
        );
        assert!(!GroupCommitLayers::without(" batching ").unwrap().batching);
        assert!(GroupCommitLayers::without("plain-batch").is_err());
    }

    #[tokio::test]
    async fn work_arriving_while_a_batch_runs_forms_the_next_batch_in_order() {
        let gc = Arc::new(GroupCommit::new());
        let echo = Echo {
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        };
        let submit = |w: u32| {
            let (gc, echo) = (gc.clone(), echo.clone());
            tokio::spawn(async move { gc.submit(echo, 1, w).await })
        };
        let first = submit(0);
        // The first batch is now held at the gate with its one piece of work.
        while gc.stats().transactions == 0 {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = (1..=3).map(submit).collect();
        while gc.lock().get(&1).map_or(0, Vec::len) < 3 {
            tokio::task::yield_now().await;
        }
        echo.gate.add_permits(2);
        assert_eq!(first.await.unwrap(), Some((0, 1)));
        for (w, handle) in (1..=3).zip(rest) {
            assert_eq!(handle.await.unwrap(), Some((w, 3)));
        }
        let stats = gc.stats();
        assert_eq!((stats.transactions, stats.requests), (2, 4));
        // The worker, having answered, finds the queue empty and removes the key's entry.
        let idle = async {
            while !gc.lock().is_empty() {
                tokio::task::yield_now().await;
            }
        };
        let ended = tokio::time::timeout(Duration::from_secs(10), idle).await;
        assert!(ended.is_ok(), "an idle key keeps no entry");
    }
}
