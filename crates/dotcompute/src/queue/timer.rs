//! A small process-wide timer for the async timeouts, so they work on any
//! executor (Tokio, `futures::executor`, ...) and never panic for want of a
//! Tokio time driver.
//!
//! One background thread (`dotcompute-queue-timer`, started on first use)
//! keeps the pending deadlines in order and wakes each [`Sleep`] when its
//! deadline passes. A [`Sleep`] that is dropped early removes its entry.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

struct Timer {
    state: Mutex<TimerState>,
    changed: Condvar,
}

struct TimerState {
    /// Pending wake-ups, earliest first; the `u64` makes keys unique.
    entries: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
}

static TIMER: Timer = Timer {
    state: Mutex::new(TimerState {
        entries: BTreeMap::new(),
        next_id: 0,
    }),
    changed: Condvar::new(),
};

/// The timer, with its thread started; `None` if the thread could not be
/// spawned (then sleeps end at once: timeouts fire early rather than never).
fn timer() -> Option<&'static Timer> {
    static STARTED: OnceLock<bool> = OnceLock::new();
    let started = *STARTED.get_or_init(|| {
        match thread::Builder::new()
            .name("dotcompute-queue-timer".into())
            .spawn(|| TIMER.run())
        {
            Ok(_) => true,
            Err(err) => {
                tracing::error!(%err, "cannot start the queue timer thread; async queue timeouts will expire at once");
                false
            }
        }
    });
    started.then_some(&TIMER)
}

impl Timer {
    fn run(&self) {
        let mut state = self.state.lock();
        let mut due = Vec::new();
        loop {
            let now = Instant::now();
            while let Some(entry) = state.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            if !due.is_empty() {
                MutexGuard::unlocked(&mut state, || due.drain(..).for_each(Waker::wake));
                continue;
            }
            match state.entries.keys().next().map(|&(deadline, _)| deadline) {
                Some(deadline) => {
                    self.changed.wait_until(&mut state, deadline);
                }
                None => self.changed.wait(&mut state),
            }
        }
    }

    /// Registers (or refreshes) the waker for `deadline`; `id` keeps the key.
    fn register(&self, id: &mut Option<u64>, deadline: Instant, waker: &Waker) {
        let mut state = self.state.lock();
        if let Some(existing) = id.and_then(|id| state.entries.get_mut(&(deadline, id))) {
            if !existing.will_wake(waker) {
                existing.clone_from(waker);
            }
            return;
        }
        let new_id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        *id = Some(new_id);
        state.entries.insert((deadline, new_id), waker.clone());
        let earliest = state.entries.keys().next() == Some(&(deadline, new_id));
        drop(state);
        if earliest {
            self.changed.notify_one();
        }
    }

    fn cancel(&self, id: u64, deadline: Instant) {
        let removed = self.state.lock().entries.remove(&(deadline, id));
        drop(removed);
    }
}

/// A future that completes at `deadline`.
#[derive(Debug)]
pub(crate) struct Sleep {
    deadline: Instant,
    id: Option<u64>,
}

impl Sleep {
    pub(crate) fn until(deadline: Instant) -> Self {
        Sleep { deadline, id: None }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        match timer() {
            Some(timer) => {
                let deadline = self.deadline;
                timer.register(&mut self.id, deadline, cx.waker());
                Poll::Pending
            }
            None => Poll::Ready(()),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            TIMER.cancel(id, self.deadline);
        }
    }
}

/// Runs `work` for at most `timeout`: `None` if the time ran out first.
/// Works on any executor (and in `futures::executor::block_on`).
pub(crate) fn timeout<F: Future>(timeout: std::time::Duration, work: F) -> Timeout<F> {
    timeout_at(Instant::now().checked_add(timeout), work)
}

/// Runs `work` until `deadline` (for ever if `None`): `None` if the time
/// ran out first.
pub(crate) fn timeout_at<F: Future>(deadline: Option<Instant>, work: F) -> Timeout<F> {
    Timeout {
        work,
        sleep: deadline.map(Sleep::until),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`timeout_at`]: `work` and its sleep side by side, so
    /// it is as large as they are (an `async fn` holding `work` keeps it
    /// once as its argument and once pinned, and a wrapper around it once
    /// more: 936 bytes around a 272-byte receive, measured).
    pub(crate) struct Timeout<F> {
        #[pin]
        work: F,
        sleep: Option<Sleep>,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.work.poll(cx) {
            return Poll::Ready(Some(out));
        }
        let expired = this.sleep.as_mut().is_some_and(|s| Pin::new(s).poll(cx).is_ready());
        if expired {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sleeps_end_after_their_deadline_in_any_order() {
        let start = Instant::now();
        let deadlines = [30u64, 5, 20, 10].map(|ms| start + Duration::from_millis(ms));
        futures::executor::block_on(async {
            let sleeps = deadlines.map(Sleep::until);
            futures::future::join_all(sleeps).await;
        });
        assert!(Instant::now() >= start + Duration::from_millis(30));
    }

    #[test]
    fn dropped_sleeps_leave_no_entry() {
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut sleep = Sleep::until(deadline);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        let id = sleep.id.unwrap();
        assert!(TIMER.state.lock().entries.contains_key(&(deadline, id)));
        drop(sleep);
        assert!(!TIMER.state.lock().entries.contains_key(&(deadline, id)));
    }
}
