//! Sleeps shorter than a millisecond. Tokio's timer counts whole milliseconds (a 250 µs sleep
//! lasts 1–2 ms), too coarse to hold a group-commit batch that itself takes under a millisecond.
//! One plain thread keeps the deadlines and answers each sleeper at its own, within the kernel's
//! timer slack (about 50 µs on Linux).
//!
//! Knows nothing of roster; the thread needs no runtime, and starts with the first sleep.

use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

type Deadline = (Instant, oneshot::Sender<()>);

static TIMER: OnceLock<mpsc::Sender<Deadline>> = OnceLock::new();

/// Resolves when `duration` has passed. Dropping it early costs nothing: the thread's answer to
/// a sleeper that has gone is dropped.
pub(crate) async fn sleep(duration: Duration) {
    let (done, elapsed) = oneshot::channel();
    let timer = TIMER.get_or_init(start);
    // If the thread could not be started or has gone, the sleep ends at once (its sender is
    // dropped): a hold cut short is only a smaller batch.
    let _ = timer.send((Instant::now() + duration, done));
    let _ = elapsed.await;
}

fn start() -> mpsc::Sender<Deadline> {
    let (deadlines, received) = mpsc::channel();
    // Should the thread not start (the process out of threads), `received` is dropped with the
    // closure, and every sleep ends at once.
    let _ = std::thread::Builder::new()
        .name("roster-fine-timer".into())
        .spawn(move || run(&received));
    deadlines
}

/// Few sleeps are pending at once (one per organization whose worker holds a batch), so they
/// are kept unordered and scanned.
fn run(received: &mpsc::Receiver<Deadline>) {
    let mut pending: Vec<Deadline> = Vec::new();
    loop {
        let now = Instant::now();
        let mut i = 0;
        while i < pending.len() {
            if pending[i].0 <= now {
                let (_, done) = pending.swap_remove(i);
                let _ = done.send(());
            } else {
                i += 1;
            }
        }
        let next = match pending.iter().map(|(at, _)| *at).min() {
            Some(at) => received.recv_timeout(at.saturating_duration_since(now)),
            None => received.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(deadline) => pending.push(deadline),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_of_several_sleeps_lasts_at_least_its_own_duration() {
        let sleeps: Vec<_> = [3u64, 1, 2, 1]
            .into_iter()
            .map(|ms| {
                tokio::spawn(async move {
                    let start = Instant::now();
                    sleep(Duration::from_millis(ms)).await;
                    start.elapsed() >= Duration::from_millis(ms)
                })
            })
            .collect();
        for s in sleeps {
            assert!(s.await.unwrap(), "a sleep ended before its deadline");
        }
    }

    #[tokio::test]
    async fn a_sleep_dropped_before_its_deadline_leaves_later_sleeps_working() {
        let cut_short =
            tokio::time::timeout(Duration::from_millis(1), sleep(Duration::from_secs(5)));
        assert!(cut_short.await.is_err(), "a 5 s sleep ended within 1 ms");
        let start = Instant::now();
        sleep(Duration::from_micros(300)).await;
        assert!(start.elapsed() >= Duration::from_micros(300));
    }
}
