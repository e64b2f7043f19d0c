//! Load generation both tools share: a closed loop (`drive`: a fixed number of workers, each
//! sending its next request when the last is answered) and an open loop (`drive_open`: requests
//! arriving at random at a fixed rate, whatever became of the earlier ones), the latencies they
//! gather (`Run`), and the small generator that spreads arrivals and picks.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::client;

/// The header of the table `Run::row` fills.
pub const HEADER: &str = "| run | removals/s | p50 ms | p90 ms | p99 ms | max ms | errors |\n|---|---|---|---|---|---|---|";

/// Latencies of one run, and what they add up to.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    /// Requests answered with success within `elapsed`: in an open loop, a warm-up's too, if
    /// they were answered after it (a server behind its arrivals answers them then).
    pub answered: usize,
    pub elapsed: Duration,
}

impl Run {
    /// The latency (ms) that a share `p` of the run's answered requests did not exceed (0 for
    /// none).
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        nearest_rank(&self.latencies, p).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }

    /// A row of `HEADER`'s table.
    pub fn row(mut self, label: &str) -> String {
        let (p50, p90, p99) = (
            self.percentile_ms(0.50),
            self.percentile_ms(0.90),
            self.percentile_ms(0.99),
        );
        format!(
            "| {label} | {:.0} | {p50:.2} | {p90:.2} | {p99:.2} | {:.2} | {} |",
            self.rps(),
            self.percentile_ms(1.0),
            self.errors
        )
    }

    /// Answered requests a second.
    pub fn rps(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64()
    }
}

/// The value a share `p` of `sorted` does not exceed, by nearest rank: the smallest value that
/// at least that share of them is at or below (`None` for none).
pub fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// Runs `work(w, i)` for i in 0..n over `c` concurrent workers (`w` is the worker); each
/// returns whether it succeeded.
pub async fn drive<F, Fut>(n: usize, c: usize, work: F) -> Run
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..c {
        let (next, work) = (next.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                if work(worker, i).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            let answered = lat.len();
            (lat, errors, answered)
        }));
    }
    gather(tasks, started).await
}

/// The workers' latencies, errors and answers put together, the run timed from `started` to
/// the last.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize, usize)>>,
    started: Instant,
) -> Run {
    let mut run = Run {
        latencies: Vec::new(),
        errors: 0,
        answered: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (lat, errors, answered) = t.await.unwrap();
        run.latencies.extend(lat);
        run.errors += errors;
        run.answered += answered;
    }
    run.elapsed = started.elapsed();
    run
}

/// How long an open loop runs before it is measured: a server's first second at a rate pays
/// for what its connections and the database prepare once (a new PostgreSQL connection's
/// catalog caches, each statement's first preparation), which a server under steady load has
/// behind it; counted, it made up most of a one-second run's p99.
pub const OPEN_WARMUP: Duration = Duration::from_secs(1);

/// The arrivals in `OPEN_WARMUP` at `rate` a second.
pub fn open_warmup(rate: u32) -> usize {
    (OPEN_WARMUP.as_secs_f64() * f64::from(rate)).round() as usize
}

/// Runs `work(w, i)` for i in 0..warmup + n, the `i`th arriving at a time of its own whatever
/// became of the ones before (an open loop): arrivals at random at `rate` a second on average
/// (Poisson), served by `c` workers in arrival order. The first `warmup` are served like the
/// rest but their latencies are not counted; the run is timed from the first counted arrival,
/// and its rate counts every answer after that. Each latency counts from the arrival, so a
/// wait for a free worker is in it, as a client's would be.
pub async fn drive_open<F, Fut>(n: usize, warmup: usize, c: usize, rate: u32, work: F) -> Run
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let mut random = Xorshift(0x9E37_79B9_7F4A_7C15);
    let mut at = Duration::ZERO;
    let offsets: Vec<Duration> = (0..warmup + n)
        .map(|_| {
            at += Duration::from_secs_f64(random.exponential() / f64::from(rate));
            at
        })
        .collect();
    let (arrive, arrivals) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let started = Instant::now();
    let measured_from = started + offsets.get(warmup).copied().unwrap_or_default();
    // The arrivals are paced by a thread of their own: Tokio's timer counts whole
    // milliseconds, a thread's sleep is good to about 60 µs. An arrival the thread is late
    // for is sent at once, with the time it was due.
    let pacer = std::thread::spawn(move || {
        for (i, offset) in offsets.into_iter().enumerate() {
            let due = started + offset;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if arrive.send((i, due)).is_err() {
                return;
            }
        }
    });
    let arrivals = Arc::new(tokio::sync::Mutex::new(arrivals));
    let work = Arc::new(work);
    let mut tasks = Vec::new();
    for worker in 0..c {
        let (arrivals, work) = (arrivals.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut answered) = (Vec::new(), 0, 0);
            loop {
                let next = arrivals.lock().await.recv().await;
                let Some((i, due)) = next else { break };
                let ok = work(worker, i).await;
                if ok && Instant::now() >= measured_from {
                    answered += 1;
                }
                if i < warmup {
                    continue;
                }
                if ok {
                    lat.push(due.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors, answered)
        }));
    }
    let run = gather(tasks, measured_from).await;
    pacer.join().unwrap();
    run
}

/// A small xorshift generator: arrivals and picks need to be spread, not secure. A fixed seed
/// makes every run offer the same arrivals; `seeded` varies them (where a kill lands).
pub struct Xorshift(pub u64);

impl Xorshift {
    /// Seeded from the clock.
    pub fn seeded() -> Xorshift {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Xorshift(nanos | 1)
    }

    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Exponential with mean 1: the gap between two Poisson arrivals at rate 1.
    pub fn exponential(&mut self) -> f64 {
        -self.uniform().ln()
    }

    /// `items` in a random order (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.uniform() * (i + 1) as f64) as usize % (i + 1);
            items.swap(i, j);
        }
    }
}

/// `c` keep-alive connections to `addr`, one per worker.
pub async fn connections(addr: &str, c: usize) -> Arc<Vec<tokio::sync::Mutex<client::Conn>>> {
    let mut conns = Vec::with_capacity(c);
    for _ in 0..c {
        conns.push(tokio::sync::Mutex::new(
            client::Conn::open(addr).await.expect("connect to roster"),
        ));
    }
    Arc::new(conns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_open_loop_serves_its_warm_up_but_counts_only_the_arrivals_after_it() {
        let served = Arc::new(std::sync::Mutex::new(Vec::new()));
        let work = {
            let served = served.clone();
            move |_worker: usize, i: usize| {
                served.lock().unwrap().push(i);
                // Every seventh fails, so that errors are seen to be counted or not.
                std::future::ready(i % 7 != 0)
            }
        };
        let run = drive_open(50, 30, 4, 100_000, work).await;
        let mut served = served.lock().unwrap().clone();
        served.sort_unstable();
        assert_eq!(served, (0..80).collect::<Vec<_>>());
        let failed_after_warm_up = (30..80).filter(|i| i % 7 == 0).count();
        assert_eq!(run.errors, failed_after_warm_up);
        assert_eq!(run.latencies.len(), 50 - failed_after_warm_up);
        assert!(run.answered >= run.latencies.len());
    }

    #[tokio::test]
    async fn an_open_loop_behind_its_arrivals_counts_the_warm_ups_it_answers_after_it() {
        // One worker taking 2 ms a request, offered one every 0.1 ms: the warm-up's requests
        // are still being answered long after the warm-up's arrivals have ended.
        let work = |_worker: usize, _i: usize| async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            true
        };
        let run = drive_open(20, 20, 1, 10_000, work).await;
        assert_eq!(run.latencies.len(), 20);
        assert!(
            run.answered > 30,
            "the answers in the timed window: {}",
            run.answered
        );
    }

    #[test]
    fn nearest_rank_is_the_smallest_value_the_share_is_at_or_below() {
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 0.5), Some(50));
        assert_eq!(nearest_rank(&hundred, 0.99), Some(99));
        assert_eq!(nearest_rank(&hundred, 0.995), Some(100));
        assert_eq!(nearest_rank(&hundred, 1.0), Some(100));
        assert_eq!(nearest_rank(&hundred, 0.0), Some(1));
        assert_eq!(nearest_rank(&[7], 0.99), Some(7));
        assert_eq!(nearest_rank::<u32>(&[], 0.5), None);
    }
}
