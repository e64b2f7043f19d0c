//! Sleeps shorter than a millisecond. Tokio's timer counts whole milliseconds (a 250 µs sleep
//! lasts 1–2 ms), too coarse to hold a group-commit batch that itself takes under a millisecond.
//!
//! On Linux a `FineTimer` is a timerfd registered with Tokio's reactor, like a socket: arming it
//! is one system call on the sleeper's own thread, and its expiry wakes the reactor within the
//! kernel's timer slack (about 50 µs). No other thread is involved: a thread keeping the
//! deadlines, as before, was woken about four times a batch, on machines with few cores the
//! work of a whole other task each time. Elsewhere, or should a timerfd not be had, the sleep is
//! Tokio's, and a hold only lasts longer than it should.
//!
//! Knows nothing of roster. Needs a Tokio runtime with I/O enabled (as every runtime roster
//! builds has).

use std::time::Instant;

/// One sleeper's timer: a worker keeps one for all its holds, so a hold costs no file
/// descriptor of its own. One sleep at a time (`sleep_until` takes it mutably).
pub(crate) struct FineTimer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl FineTimer {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(target_os = "linux")]
            fd: linux::timerfd().ok(),
        }
    }

    /// Resolves once `deadline` has passed. Dropping it early disarms the timer, so an expiry
    /// nobody waits for wakes no thread.
    pub(crate) async fn sleep_until(&mut self, deadline: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            if linux::sleep_until(fd, deadline).await.is_ok() {
                return;
            }
            // The timer failed (it should not): the rest of the sleep is Tokio's.
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::time::{Duration, Instant};

    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::unix::AsyncFd;

    pub(super) fn timerfd() -> io::Result<AsyncFd<OwnedFd>> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // `AsyncFd::new` is deprecated as unsound for a type whose descriptor could be closed or
        // swapped while registered (tokio#8587); its replacement, `register`, is the same call
        // marked `unsafe`, which roster forbids. An `OwnedFd` moved into the `AsyncFd` meets
        // `register`'s contract: it stays open, and the same descriptor, until dropped with it.
        #[expect(deprecated, reason = "sound for an OwnedFd; see above")]
        AsyncFd::new(fd)
    }

    pub(super) async fn sleep_until(fd: &AsyncFd<OwnedFd>, deadline: Instant) -> io::Result<()> {
        // Disarms the timer when the sleep ends or is dropped.
        struct Armed<'a>(&'a AsyncFd<OwnedFd>);
        impl Drop for Armed<'_> {
            fn drop(&mut self) {
                let _ = set(self.0, Duration::ZERO);
            }
        }
        // Readiness may be left over from an expiry of an earlier sleep that came just before
        // it disarmed: whatever wakes this one, it ends only once its deadline has passed.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            set(fd, left)?;
            let _armed = Armed(fd);
            let mut ready = fd.readable().await?;
            let mut expirations = [0u8; 8];
            match rustix::io::read(fd.get_ref(), &mut expirations) {
                Ok(_) | Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Arms the timer to expire once, `after` from now; `Duration::ZERO` disarms it. Arming
    /// also clears an expiry not yet read.
    fn set(fd: &AsyncFd<OwnedFd>, after: Duration) -> io::Result<()> {
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = Timespec {
            tv_sec: i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: after.subsec_nanos().into(),
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: value,
        };
        timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn sleep(timer: &mut FineTimer, duration: Duration) {
        timer.sleep_until(Instant::now() + duration).await;
    }

    #[tokio::test]
    async fn each_of_several_sleeps_lasts_at_least_its_own_duration() {
        let sleeps: Vec<_> = [3u64, 1, 2, 1]
            .into_iter()
            .map(|ms| {
                tokio::spawn(async move {
                    let mut timer = FineTimer::new();
                    let start = Instant::now();
                    sleep(&mut timer, Duration::from_millis(ms)).await;
                    start.elapsed() >= Duration::from_millis(ms)
                })
            })
            .collect();
        for s in sleeps {
            assert!(s.await.unwrap(), "a sleep ended before its deadline");
        }
    }

    #[tokio::test]
    async fn a_sleep_dropped_before_its_deadline_leaves_the_next_one_on_its_timer_working() {
        let mut timer = FineTimer::new();
        let cut_short = tokio::time::timeout(
            Duration::from_millis(1),
            sleep(&mut timer, Duration::from_secs(5)),
        );
        assert!(cut_short.await.is_err(), "a 5 s sleep ended within 1 ms");
        let start = Instant::now();
        sleep(&mut timer, Duration::from_micros(300)).await;
        assert!(start.elapsed() >= Duration::from_micros(300));
    }

    #[tokio::test]
    async fn an_expiry_left_from_an_earlier_sleep_does_not_end_a_later_one_early() {
        let mut timer = FineTimer::new();
        // Polled once (armed for 100 µs), then dropped; the runtime then polls its reactor past
        // that deadline, so an expiry the disarming missed would be seen as readiness of the
        // timer, left for the next sleep on it.
        {
            let first = sleep(&mut timer, Duration::from_micros(100));
            tokio::pin!(first);
            let ended_at_once = tokio::select! {
                biased;
                () = &mut first => true,
                () = std::future::ready(()) => false,
            };
            assert!(!ended_at_once, "a 100 µs sleep ended at once");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let start = Instant::now();
        sleep(&mut timer, Duration::from_millis(2)).await;
        assert!(
            start.elapsed() >= Duration::from_millis(2),
            "the later sleep ended at the earlier one's expiry"
        );
    }
}
