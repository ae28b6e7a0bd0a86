//! A minimal blocking executor for the blocking APIs (`BlockingContext`,
//! `KernelHandle::*_blocking`).
//!
//! Invariant: [`block_on`] parks only the calling thread and is woken through
//! its own waker; it keeps no thread-local executor state, so it may be
//! called from any thread, including one already inside another executor's
//! `block_on` (where `futures::executor::block_on` would panic).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::thread;

use crate::queue::ThreadWaker;

/// Polls `future` to completion on the current thread, parking between polls.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    // The thread's cached unpark waker: no allocation per call.
    let waker = ThreadWaker::current();
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        // A wake between the poll and here leaves the unpark token set, so
        // this returns at once; spurious returns just poll again.
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_inside_another_block_on_and_across_threads() {
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            tx.send(7).ok();
        });
        let got = futures::executor::block_on(async { block_on(rx) });
        assert_eq!(got, Ok(7));
        sender.join().unwrap();
    }
}
