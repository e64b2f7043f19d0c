//! Log output off the request path. `tracing`'s formatter writes each line to a shared buffer
//! (a lock and a copy); a thread of its own writes the buffer to stderr. A line that finds the
//! thread idle wakes it and is written at once (so `roster listening` shows without delay); while
//! lines keep coming the thread writes what gathered every `GATHER`, many lines a write.
//!
//! Why: written straight to stderr, the access log line was one `write` system call per request
//! on an async worker thread, about 15% of a removal's throughput over HTTP on two cores
//! (measured when this landed; see its commit). Nothing is dropped: if stderr stops taking lines and
//! the buffer reaches `MAX_BUFFERED`, writers wait, as they did on stderr itself.
//!
//! Depends on nothing of roster's.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread lets lines gather after a write, while more keep coming.
const GATHER: Duration = Duration::from_millis(5);

/// Past this many buffered bytes, whoever logs waits for the writer thread.
const MAX_BUFFERED: usize = 1 << 20;

#[derive(Default)]
struct State {
    buffer: Vec<u8>,
    /// The writer thread waits for lines (and must be woken for the next one).
    idle: bool,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when a line comes to an idle writer thread, and on close.
    lines: Condvar,
    /// Signalled when the writer thread has taken the buffer.
    taken: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is complete under one lock: a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `MakeWriter` to give `tracing_subscriber::fmt().with_writer(…)`.
#[derive(Clone)]
pub struct BufferedLog {
    shared: Arc<Shared>,
}

/// Writes what is still buffered and stops the writer thread when dropped: keep it alive for as
/// long as anything may log.
#[must_use = "dropping the guard stops the log's writer thread"]
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A buffered log over `out` (stderr in `roster`) and the guard that flushes it.
pub fn buffered<W: Write + Send + 'static>(out: W) -> (BufferedLog, LogGuard) {
    let shared = Arc::new(Shared::default());
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("roster-log".into())
            .spawn(move || write_until_closed(&shared, out))
            .expect("start the log writer thread")
    };
    (
        BufferedLog {
            shared: shared.clone(),
        },
        LogGuard {
            shared,
            thread: Some(thread),
        },
    )
}

fn write_until_closed<W: Write>(shared: &Shared, mut out: W) {
    let mut taken = Vec::new();
    loop {
        {
            let mut state = shared.lock();
            while state.buffer.is_empty() && !state.closed {
                state.idle = true;
                state = shared.lines.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            state.idle = false;
            if state.buffer.is_empty() && state.closed {
                return;
            }
            std::mem::swap(&mut state.buffer, &mut taken);
        }
        shared.taken.notify_all();
        // A log that cannot be written has nowhere to report that; the lines are dropped.
        let _ = out.write_all(&taken).and_then(|()| out.flush());
        taken.clear();
        // Let the next lines gather, unless this was the last write.
        if !shared.lock().closed {
            std::thread::sleep(GATHER);
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.lines.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One line's writer: `tracing`'s formatter writes a whole line in one `write_all`.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl<'a> MakeWriter<'a> for BufferedLog {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        while state.buffer.len() >= MAX_BUFFERED && !state.closed {
            state = self
                .shared
                .taken
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        state.buffer.extend_from_slice(bytes);
        if state.idle {
            state.idle = false;
            drop(state);
            self.shared.lines.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log filter from `RUST_LOG`. Unset, empty or blank means `info`, as does a filter that
/// does not parse: an empty filter would silence everything, the `roster listening` line too.
pub fn filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    rust_log
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"))
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::filter::LevelFilter;

    use super::*;

    /// An output that keeps what it is given, and counts the writes.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Kept {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut kept = self.0.lock().unwrap();
            kept.0.extend_from_slice(bytes);
            kept.1 += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_lines(log: &BufferedLog, from: usize, to: usize) {
        for i in from..to {
            log.make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
    }

    #[test]
    fn every_line_reaches_the_output_in_order_once_the_guard_is_dropped() {
        let kept = Kept::default();
        let (log, guard) = buffered(kept.clone());
        log_lines(&log, 0, 20_000);
        drop(guard);
        let (bytes, _) = &*kept.0.lock().unwrap();
        let expected: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8_lossy(bytes), expected);
    }

    #[test]
    fn a_line_to_an_idle_log_is_written_without_waiting_for_more() {
        let kept = Kept::default();
        let (log, _guard) = buffered(kept.clone());
        log_lines(&log, 0, 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while kept.0.lock().unwrap().0.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was not written"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(kept.0.lock().unwrap().0, b"line 0\n");
    }

    #[test]
    fn lines_that_come_while_the_thread_writes_share_a_write() {
        let kept = Kept::default();
        let (log, guard) = buffered(kept.clone());
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || log_lines(&log, t * 10_000, (t + 1) * 10_000))
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        drop(guard);
        let (bytes, writes) = &*kept.0.lock().unwrap();
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 20_000);
        assert!(*writes < 1_000, "{writes} writes for 20,000 lines");
    }

    #[test]
    fn an_empty_or_unset_rust_log_logs_at_info() {
        for unset in [None, Some(""), Some("  ")] {
            assert_eq!(
                filter(unset).max_level_hint(),
                Some(LevelFilter::INFO),
                "{unset:?}"
            );
        }
        assert_eq!(
            filter(Some("debug")).max_level_hint(),
            Some(LevelFilter::DEBUG)
        );
    }
}
