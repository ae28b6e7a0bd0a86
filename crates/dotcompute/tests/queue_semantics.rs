//! Behaviour of `MessageQueue`, one rule per test.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use dotcompute::queue::{
    Backpressure, MessageQueue, QueueConfig, QueueConfigError, QueueStats, RecvError, SendError, SendErrorKind,
    MAX_QUEUE_CAPACITY,
};
use dotcompute::{Message, MessageHeader, PriorityBand};
use futures::task::ArcWake;

#[derive(Debug, Clone, dotcompute::Message)]
struct M {
    n: u64,
    header: MessageHeader,
}

fn m(n: u64, priority: u8) -> M {
    M {
        n,
        header: MessageHeader::with_priority(priority),
    }
}

// One priority per band.
const LOW: u8 = 10;
const NORMAL: u8 = 128;
const HIGH: u8 = 200;
const SYSTEM: u8 = 250;

/// Generous bound for "it did not hang".
const HANG: Duration = Duration::from_secs(10);

fn queue(capacity: usize, backpressure: Backpressure) -> MessageQueue<M> {
    MessageQueue::with_capacity(capacity, backpressure).unwrap()
}

fn drain(q: &MessageQueue<M>) -> Vec<u64> {
    std::iter::from_fn(|| q.try_recv().ok()).map(|x| x.n).collect()
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Poller {
    count: Arc<CountingWaker>,
    waker: std::task::Waker,
}

impl Poller {
    fn new() -> Self {
        let count = Arc::new(CountingWaker::default());
        let waker = futures::task::waker(count.clone());
        Poller { count, waker }
    }

    fn poll<F: Future>(&self, fut: &mut Pin<Box<F>>) -> Poll<F::Output> {
        fut.as_mut().poll(&mut Context::from_waker(&self.waker))
    }

    fn wakes(&self) -> usize {
        self.count.0.load(Ordering::SeqCst)
    }
}

fn assert_consistent(stats: &QueueStats) {
    assert!(stats.is_consistent(), "{stats:?}");
    assert_eq!(
        stats.attempts(),
        stats.dequeued
            + stats.dropped
            + stats.depth as u64
            + stats.rejected
            + stats.timed_out
            + stats.closed_rejections,
        "{stats:?}"
    );
}

// ---- order -------------------------------------------------------------

#[test]
fn receives_highest_band_first_and_fifo_within_a_band() {
    let q = queue(16, Backpressure::Reject);
    let sends = [
        (1, LOW),
        (2, NORMAL),
        (3, SYSTEM),
        (4, HIGH),
        (5, LOW),
        (6, 64),  // normal (lower edge)
        (7, 255), // system
        (8, 159), // normal (upper edge)
        (9, 0),   // low
        (10, 224),
    ];
    for (n, p) in sends {
        q.try_send(m(n, p)).unwrap();
    }
    assert_eq!(q.stats().band_depths, [3, 3, 1, 3], "low, normal, high, system");
    assert_eq!(drain(&q), vec![3, 7, 10, 4, 2, 6, 8, 1, 5, 9]);
}

#[test]
fn capacity_counts_all_bands_together() {
    let q = queue(3, Backpressure::Reject);
    q.try_send(m(1, LOW)).unwrap();
    q.try_send(m(2, SYSTEM)).unwrap();
    q.try_send(m(3, HIGH)).unwrap();
    assert!(q.is_full());
    assert_eq!(q.len(), 3);
    assert!(q.try_send(m(4, SYSTEM)).unwrap_err().is_full());
}

// ---- backpressure ------------------------------------------------------

#[test]
fn reject_hands_the_message_back_at_once() {
    let q = queue(2, Backpressure::Reject);
    q.try_send(m(1, NORMAL)).unwrap();
    q.try_send(m(2, NORMAL)).unwrap();
    let err = q.try_send(m(3, SYSTEM)).unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::Full);
    assert_eq!(err.into_inner().n, 3);
    // The async and blocking sends do not wait either.
    let err = futures::executor::block_on(q.send(m(4, NORMAL))).unwrap_err();
    assert!(matches!(err, SendError::Full(ref x) if x.n == 4));
    let err = q
        .send_blocking_timeout(m(5, NORMAL), Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(err, SendError::Full(ref x) if x.n == 5));
    let s = q.stats();
    assert_eq!((s.enqueued, s.rejected, s.depth), (2, 3, 2));
    assert_consistent(&s);
    assert_eq!(drain(&q), vec![1, 2]);
}

#[test]
fn block_try_send_never_waits_and_counts_a_rejection() {
    let q = queue(1, Backpressure::Block);
    q.try_send(m(1, NORMAL)).unwrap();
    let err = q.try_send(m(2, NORMAL)).unwrap_err();
    assert!(matches!(err, SendError::Full(ref x) if x.n == 2));
    assert_eq!(q.stats().rejected, 1);
}

#[test]
fn drop_oldest_evicts_the_oldest_of_the_lowest_band() {
    let q = queue(4, Backpressure::DropOldest);
    q.try_send(m(1, HIGH)).unwrap();
    q.try_send(m(2, NORMAL)).unwrap();
    q.try_send(m(3, NORMAL)).unwrap();
    q.try_send(m(4, SYSTEM)).unwrap();
    // Full. A high message evicts the oldest normal one (2).
    q.try_send(m(5, HIGH)).unwrap();
    // A normal message competes with the lowest band (normal): evicts 3.
    q.try_send(m(6, NORMAL)).unwrap();
    let s = q.stats();
    assert_eq!((s.enqueued, s.dropped, s.depth), (6, 2, 4));
    assert_eq!(s.band_depths, [0, 1, 2, 1]);
    assert_consistent(&s);
    assert_eq!(drain(&q), vec![4, 1, 5, 6]);
}

#[test]
fn drop_oldest_drops_the_incoming_message_when_it_is_lower_than_everything_queued() {
    let q = queue(2, Backpressure::DropOldest);
    q.try_send(m(1, SYSTEM)).unwrap();
    q.try_send(m(2, NORMAL)).unwrap();
    // Low is below every queued band: the incoming message is the one dropped.
    assert!(q.try_send(m(3, LOW)).is_ok());
    assert_eq!(q.stats().dropped, 1);
    // Normal ties the lowest queued band: evicts 2.
    q.try_send(m(4, NORMAL)).unwrap();
    // Queue: system 1, normal 4. A low message never evicts a system message.
    q.try_send(m(5, LOW)).unwrap();
    let s = q.stats();
    assert_eq!((s.enqueued, s.dropped, s.depth), (5, 3, 2));
    assert_consistent(&s);
    assert_eq!(drain(&q), vec![1, 4]);

    // All-system queue: only system messages get in, evicting the oldest.
    let q = queue(2, Backpressure::DropOldest);
    q.try_send(m(1, SYSTEM)).unwrap();
    q.try_send(m(2, SYSTEM)).unwrap();
    for (n, p) in [(3, LOW), (4, NORMAL), (5, HIGH)] {
        q.try_send(m(n, p)).unwrap();
    }
    q.try_send(m(6, SYSTEM)).unwrap();
    assert_eq!(drain(&q), vec![2, 6]);
    assert_eq!(q.stats().dropped, 4);
}

#[test]
fn drop_oldest_never_waits_in_async_or_blocking_sends() {
    let q = queue(1, Backpressure::DropOldest);
    q.send_blocking(m(1, NORMAL)).unwrap();
    q.send_blocking(m(2, NORMAL)).unwrap();
    futures::executor::block_on(q.send(m(3, NORMAL))).unwrap();
    assert_eq!(drain(&q), vec![3]);
    assert_eq!(q.stats().dropped, 2);
}

// ---- Block: waiting for room -------------------------------------------

#[test]
fn block_async_send_waits_until_a_receive_frees_room() {
    let q = queue(1, Backpressure::Block);
    q.try_send(m(1, NORMAL)).unwrap();
    let p = Poller::new();
    let mut send = Box::pin(q.send(m(2, NORMAL)));
    assert!(p.poll(&mut send).is_pending(), "full: the send waits");
    assert!(p.poll(&mut send).is_pending());
    assert_eq!(p.wakes(), 0);
    assert_eq!(q.try_recv().unwrap().n, 1);
    assert!(p.wakes() >= 1, "the receive woke the sender");
    assert!(matches!(p.poll(&mut send), Poll::Ready(Ok(()))));
    assert_eq!(drain(&q), vec![2]);
    let s = q.stats();
    assert_eq!((s.enqueued, s.rejected, s.timed_out), (2, 0, 0));
}

#[test]
fn block_blocking_send_waits_until_a_receive_frees_room() {
    let q = queue(2, Backpressure::Block);
    q.try_send(m(1, NORMAL)).unwrap();
    q.try_send(m(2, NORMAL)).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let sender = {
        let q = q.clone();
        thread::spawn(move || {
            let r = q.send_blocking(m(3, NORMAL));
            done_tx.send(()).unwrap();
            r
        })
    };
    // Give the sender time to block (not required for correctness).
    thread::sleep(Duration::from_millis(20));
    assert!(done_rx.try_recv().is_err(), "the sender waits while the queue is full");
    assert_eq!(q.recv_blocking().unwrap().n, 1);
    done_rx.recv_timeout(HANG).expect("the sender finished");
    sender.join().unwrap().unwrap();
    assert_eq!(drain(&q), vec![2, 3]);
}

#[test]
fn block_send_timeout_hands_the_message_back() {
    let q = queue(1, Backpressure::Block);
    q.try_send(m(1, NORMAL)).unwrap();

    let err = q
        .send_blocking_timeout(m(2, NORMAL), Duration::from_millis(5))
        .unwrap_err();
    assert!(matches!(err, SendError::Timeout(ref x) if x.n == 2));

    let err = futures::executor::block_on(q.send_timeout(m(3, NORMAL), Duration::from_millis(5))).unwrap_err();
    assert!(matches!(err, SendError::Timeout(ref x) if x.n == 3));

    // A zero timeout fails at once with Timeout.
    let err = q.send_blocking_timeout(m(4, NORMAL), Duration::ZERO).unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::Timeout);

    let s = q.stats();
    assert_eq!((s.enqueued, s.timed_out, s.rejected), (1, 3, 0));
    assert_consistent(&s);
}

#[test]
fn send_and_send_blocking_use_the_configured_send_timeout() {
    let config = QueueConfig::new(1).with_send_timeout(Duration::from_millis(5));
    let q: MessageQueue<M> = MessageQueue::new(config.clone()).unwrap();
    assert_eq!(q.config(), &config);
    q.send_blocking(m(1, NORMAL)).unwrap();
    let err = q.send_blocking(m(2, NORMAL)).unwrap_err();
    assert!(matches!(err, SendError::Timeout(ref x) if x.n == 2));
    let err = futures::executor::block_on(q.send(m(3, NORMAL))).unwrap_err();
    assert!(matches!(err, SendError::Timeout(ref x) if x.n == 3));
    assert_eq!(q.stats().timed_out, 2);
}

#[test]
fn tokio_send_waits_for_a_consumer_task() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let q = queue(1, Backpressure::Block);
        q.send(m(1, NORMAL)).await.unwrap();
        let consumer = {
            let q = q.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                q.recv().await.unwrap().n
            })
        };
        tokio::time::timeout(HANG, q.send(m(2, NORMAL)))
            .await
            .expect("did not hang")
            .unwrap();
        assert_eq!(consumer.await.unwrap(), 1);
        assert_eq!(q.recv().await.unwrap().n, 2);
    });
}

// ---- close ---------------------------------------------------------------

#[test]
fn close_fails_senders_and_lets_receivers_drain_then_closed() {
    let q = queue(4, Backpressure::Block);
    q.try_send(m(1, LOW)).unwrap();
    q.try_send(m(2, SYSTEM)).unwrap();
    assert!(!q.is_closed());
    q.close();
    q.close(); // idempotent
    assert!(q.is_closed());
    let err = q.try_send(m(3, NORMAL)).unwrap_err();
    assert!(matches!(err, SendError::Closed(ref x) if x.n == 3));
    let err = q.send_blocking(m(4, NORMAL)).unwrap_err();
    assert!(matches!(err, SendError::Closed(ref x) if x.n == 4));
    let err = futures::executor::block_on(q.send(m(5, NORMAL))).unwrap_err();
    assert!(matches!(err, SendError::Closed(ref x) if x.n == 5));

    assert_eq!(q.try_recv().unwrap().n, 2);
    assert_eq!(futures::executor::block_on(q.recv()).unwrap().n, 1);
    assert_eq!(q.try_recv().unwrap_err(), RecvError::Closed);
    assert_eq!(q.recv_blocking().unwrap_err(), RecvError::Closed);
    assert_eq!(
        q.recv_blocking_timeout(Duration::from_secs(60)).unwrap_err(),
        RecvError::Closed
    );
    assert_eq!(futures::executor::block_on(q.recv()).unwrap_err(), RecvError::Closed);
    let s = q.stats();
    assert_eq!((s.enqueued, s.dequeued, s.closed_rejections), (2, 2, 3));
    assert_consistent(&s);
}

#[test]
fn close_wakes_a_blocked_async_sender_with_its_message() {
    let q = queue(1, Backpressure::Block);
    q.try_send(m(1, NORMAL)).unwrap();
    let p = Poller::new();
    let mut send = Box::pin(q.send(m(2, NORMAL)));
    assert!(p.poll(&mut send).is_pending());
    q.close();
    assert!(p.wakes() >= 1);
    match p.poll(&mut send) {
        Poll::Ready(Err(SendError::Closed(x))) => assert_eq!(x.n, 2),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_eq!(q.stats().closed_rejections, 1);
}

#[test]
fn close_wakes_blocked_thread_senders_and_receivers() {
    let full = queue(1, Backpressure::Block);
    full.try_send(m(0, NORMAL)).unwrap();
    let empty = queue(1, Backpressure::Block);
    let senders: Vec<_> = (1..=3)
        .map(|n| {
            let q = full.clone();
            thread::spawn(move || q.send_blocking(m(n, NORMAL)))
        })
        .collect();
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let q = empty.clone();
            thread::spawn(move || q.recv_blocking())
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    full.close();
    empty.close();
    let mut returned: Vec<u64> = senders
        .into_iter()
        .map(|h| match h.join().unwrap() {
            Err(SendError::Closed(x)) => x.n,
            other => panic!("expected Closed, got {other:?}"),
        })
        .collect();
    returned.sort_unstable();
    assert_eq!(returned, vec![1, 2, 3]);
    for h in receivers {
        assert_eq!(h.join().unwrap().unwrap_err(), RecvError::Closed);
    }
    // The queued message is still there to drain.
    assert_eq!(drain(&full), vec![0]);
}

#[test]
fn close_wakes_a_waiting_async_receiver() {
    let q = queue(1, Backpressure::Block);
    let p = Poller::new();
    let mut recv = Box::pin(q.recv());
    assert!(p.poll(&mut recv).is_pending());
    q.close();
    assert!(p.wakes() >= 1);
    assert!(matches!(p.poll(&mut recv), Poll::Ready(Err(RecvError::Closed))));
}

// ---- pause / resume ------------------------------------------------------

#[test]
fn pause_holds_messages_until_resume() {
    let q = queue(4, Backpressure::Reject);
    q.try_send(m(1, NORMAL)).unwrap();
    q.pause();
    assert!(q.is_paused());
    q.try_send(m(2, SYSTEM)).unwrap(); // sends still accepted
    assert_eq!(q.try_recv().unwrap_err(), RecvError::Empty);
    let mut out = Vec::new();
    assert_eq!(q.try_recv_batch(10, &mut out), 0);
    assert!(out.is_empty());
    assert_eq!(
        q.recv_blocking_timeout(Duration::from_millis(5)).unwrap_err(),
        RecvError::Timeout
    );
    assert_eq!(
        futures::executor::block_on(q.recv_timeout(Duration::from_millis(5))).unwrap_err(),
        RecvError::Timeout
    );

    // A waiting receive is woken by resume, not by sends.
    let p = Poller::new();
    let mut recv = Box::pin(q.recv());
    assert!(p.poll(&mut recv).is_pending());
    q.try_send(m(3, HIGH)).unwrap();
    assert!(p.poll(&mut recv).is_pending());
    assert_eq!(q.stats().dequeued, 0);
    q.resume();
    assert!(!q.is_paused());
    assert!(p.wakes() >= 1);
    match p.poll(&mut recv) {
        Poll::Ready(Ok(x)) => assert_eq!(x.n, 2),
        other => panic!("expected a message, got {other:?}"),
    }
    assert_eq!(drain(&q), vec![3, 1]);
}

#[test]
fn resume_wakes_a_blocked_thread_receiver() {
    let q = queue(4, Backpressure::Block);
    q.pause();
    q.try_send(m(1, NORMAL)).unwrap();
    let receiver = {
        let q = q.clone();
        thread::spawn(move || q.recv_blocking_timeout(HANG))
    };
    thread::sleep(Duration::from_millis(20));
    assert_eq!(q.len(), 1, "nothing delivered while paused");
    q.resume();
    assert_eq!(receiver.join().unwrap().unwrap().n, 1);
}

#[test]
fn closed_while_paused_receivers_get_closed_and_clear_returns_the_messages() {
    let q = queue(4, Backpressure::Block);
    q.try_send(m(1, LOW)).unwrap();
    q.try_send(m(2, HIGH)).unwrap();
    q.pause();
    let p = Poller::new();
    let mut recv = Box::pin(q.recv());
    assert!(p.poll(&mut recv).is_pending());
    q.close();
    assert!(matches!(p.poll(&mut recv), Poll::Ready(Err(RecvError::Closed))));
    assert_eq!(q.try_recv().unwrap_err(), RecvError::Closed);
    assert_eq!(q.recv_blocking().unwrap_err(), RecvError::Closed);
    assert_eq!(q.len(), 2);
    let cleared: Vec<u64> = q.clear().into_iter().map(|x| x.n).collect();
    assert_eq!(cleared, vec![2, 1]);
    let s = q.stats();
    assert_eq!((s.enqueued, s.dequeued, s.depth), (2, 2, 0));
}

// ---- clear, batch ----------------------------------------------------------

#[test]
fn clear_returns_everything_in_delivery_order_and_frees_room() {
    let q = queue(3, Backpressure::Block);
    q.try_send(m(1, LOW)).unwrap();
    q.try_send(m(2, SYSTEM)).unwrap();
    q.try_send(m(3, LOW)).unwrap();
    let p = Poller::new();
    let mut send = Box::pin(q.send(m(4, NORMAL)));
    assert!(p.poll(&mut send).is_pending());
    let cleared: Vec<u64> = q.clear().into_iter().map(|x| x.n).collect();
    assert_eq!(cleared, vec![2, 1, 3]);
    assert!(p.wakes() >= 1, "clear woke the waiting sender");
    assert!(matches!(p.poll(&mut send), Poll::Ready(Ok(()))));
    let s = q.stats();
    assert_eq!((s.enqueued, s.dequeued, s.depth), (4, 3, 1));
    assert_eq!(q.wait_histogram().len(), 0, "clear is not a receive");
    assert!(q.clear().into_iter().map(|x| x.n).eq([4]));
    assert!(q.is_empty());
}

#[test]
fn try_recv_batch_takes_in_band_order_up_to_max() {
    let q = queue(8, Backpressure::Reject);
    for (n, p) in [(1, LOW), (2, NORMAL), (3, SYSTEM), (4, NORMAL), (5, HIGH)] {
        q.try_send(m(n, p)).unwrap();
    }
    let mut out = vec![m(99, LOW)];
    assert_eq!(q.try_recv_batch(3, &mut out), 3);
    assert_eq!(out.iter().map(|x| x.n).collect::<Vec<_>>(), vec![99, 3, 5, 2]);
    out.clear();
    assert_eq!(q.try_recv_batch(0, &mut out), 0);
    assert_eq!(q.try_recv_batch(100, &mut out), 2);
    assert_eq!(out.iter().map(|x| x.n).collect::<Vec<_>>(), vec![4, 1]);
    assert_eq!(q.try_recv_batch(100, &mut out), 0);
    assert_eq!(q.wait_histogram().len(), 5);
    assert_eq!(q.stats().dequeued, 5);
}

// ---- stats and histogram ---------------------------------------------------

/// Every wait that goes to sleep is counted once: an async receive on an
/// empty queue, an async send into a full one, a blocked thread that
/// parks; polling a sleeping wait again counts nothing more, and a receive
/// or send that finds what it needs counts nothing.
#[test]
fn sleeps_count_the_waits_that_slept() {
    let q = Arc::new(queue(1, Backpressure::Block));
    let sleeps = |q: &MessageQueue<M>| {
        let s = q.stats();
        (s.receive_sleeps, s.send_sleeps)
    };
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);

    let mut recv = Box::pin(q.recv());
    assert!(recv.as_mut().poll(&mut cx).is_pending());
    assert!(recv.as_mut().poll(&mut cx).is_pending());
    assert_eq!(sleeps(&q), (1, 0));
    q.try_send(m(1, NORMAL)).unwrap();
    assert!(matches!(recv.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
    drop(recv);

    q.try_send(m(2, NORMAL)).unwrap();
    let mut send = Box::pin(q.send(m(3, NORMAL)));
    assert!(send.as_mut().poll(&mut cx).is_pending());
    assert!(send.as_mut().poll(&mut cx).is_pending());
    assert_eq!(sleeps(&q), (1, 1));
    assert_eq!(q.try_recv().unwrap().n, 2);
    assert!(matches!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    drop(send);
    assert_eq!(q.try_recv().unwrap().n, 3);
    assert_eq!(sleeps(&q), (1, 1), "finding a message or room sleeps nothing");

    // A thread that waits long enough parks (after its brief poll).
    let receiver = thread::spawn({
        let q = Arc::clone(&q);
        move || q.recv_blocking().map(|msg| msg.n)
    });
    // Sent only once the thread sleeps (not on a timer: a loaded machine
    // may start the thread late).
    let start = Instant::now();
    while sleeps(&q).0 < 2 {
        assert!(start.elapsed() < HANG, "the receiving thread never went to sleep");
        thread::sleep(Duration::from_millis(1));
    }
    q.try_send(m(4, NORMAL)).unwrap();
    assert_eq!(receiver.join().unwrap(), Ok(4));
    assert_eq!(sleeps(&q), (2, 1));
}

#[test]
fn stats_count_every_outcome() {
    let q = queue(3, Backpressure::Block);
    assert_eq!(
        q.stats(),
        QueueStats {
            capacity: 3,
            ..QueueStats::default()
        }
    );
    q.try_send(m(1, LOW)).unwrap();
    q.try_send(m(2, SYSTEM)).unwrap();
    q.try_send(m(3, SYSTEM)).unwrap();
    q.try_send(m(4, NORMAL)).unwrap_err(); // rejected
    q.send_blocking_timeout(m(5, NORMAL), Duration::ZERO).unwrap_err(); // timed out
    q.try_recv().unwrap();
    q.close();
    q.try_send(m(6, NORMAL)).unwrap_err(); // closed
    let s = q.stats();
    assert_eq!(
        s,
        QueueStats {
            capacity: 3,
            enqueued: 3,
            dequeued: 1,
            dropped: 0,
            rejected: 1,
            timed_out: 1,
            closed_rejections: 1,
            depth: 2,
            peak_depth: 3,
            band_depths: [1, 0, 0, 1],
            receive_sleeps: 0,
            send_sleeps: 0,
        }
    );
    assert_eq!(s.attempts(), 6);
    assert_consistent(&s);
    assert_eq!(
        s.band_depths[PriorityBand::System.index()],
        1,
        "indexed by PriorityBand::index"
    );
}

#[test]
fn wait_histogram_records_every_successful_receive() {
    let q = queue(8, Backpressure::Reject);
    for n in 0..5 {
        q.try_send(m(n, NORMAL)).unwrap();
    }
    assert_eq!(q.wait_histogram().len(), 0);
    let _ = q.try_recv().unwrap();
    let _ = q.recv_blocking().unwrap();
    let _ = futures::executor::block_on(q.recv()).unwrap();
    assert_eq!(q.try_recv_batch(10, &mut Vec::new()), 2);
    // Failed receives record nothing.
    assert_eq!(q.try_recv().unwrap_err(), RecvError::Empty);
    assert_eq!(q.wait_histogram().len(), 5);

    // The wait is measured from enqueue to dequeue, in nanoseconds.
    q.try_send(m(9, NORMAL)).unwrap();
    let before = Instant::now();
    thread::sleep(Duration::from_millis(3));
    let _ = q.try_recv().unwrap();
    let slept = before.elapsed();
    let hist = q.wait_histogram();
    assert_eq!(hist.len(), 6);
    assert!(hist.max() >= 3_000_000, "max {} ns", hist.max());
    // Upper bound only up to histogram precision (3 significant digits).
    assert!(hist.max() as u128 <= slept.as_nanos() * 1001 / 1000 + 1_000_000_000);
}

#[test]
fn wait_histogram_samples_one_message_in_n_when_configured() {
    for every in [0u32, 1, 3, 4] {
        let q = MessageQueue::new(QueueConfig::new(64).with_wait_sample_every(every)).unwrap();
        assert_eq!(q.config().wait_sample_every, every);
        // 30 in two bands, taken one at a time and in batches.
        for n in 0..30 {
            q.try_send(m(n, if n % 3 == 0 { HIGH } else { NORMAL })).unwrap();
        }
        let _ = q.try_recv().unwrap();
        let mut out = Vec::new();
        while q.try_recv_batch(7, &mut out) > 0 {}
        assert_eq!(out.len(), 29);
        let measured = if every == 0 {
            0
        } else {
            30u64.div_ceil(u64::from(every))
        };
        assert_eq!(q.wait_histogram().len(), measured, "one in {every}");
        let s = q.stats();
        assert_eq!((s.enqueued, s.dequeued), (30, 30), "counters stay exact");
    }
    assert_eq!(
        QueueConfig::new(1).wait_sample_every,
        1,
        "a queue measures every wait by default"
    );
}

// ---- cancel safety -----------------------------------------------------------

#[test]
fn dropping_a_notified_recv_future_passes_the_message_on() {
    let q = queue(4, Backpressure::Block);
    let pa = Poller::new();
    let pb = Poller::new();
    let mut a = Box::pin(q.recv());
    let mut b = Box::pin(q.recv());
    assert!(pa.poll(&mut a).is_pending());
    assert!(pb.poll(&mut b).is_pending());
    q.try_send(m(1, NORMAL)).unwrap();
    assert_eq!(pa.wakes(), 1, "the first waiter is notified");
    assert_eq!(pb.wakes(), 0);
    drop(a); // cancelled before it ran
    assert_eq!(pb.wakes(), 1, "the notification moved to the other waiter");
    match pb.poll(&mut b) {
        Poll::Ready(Ok(x)) => assert_eq!(x.n, 1),
        other => panic!("expected the message, got {other:?}"),
    }
}

#[test]
fn dropping_a_pending_recv_future_loses_nothing() {
    let q = queue(4, Backpressure::Block);
    let p = Poller::new();
    let mut recv = Box::pin(q.recv_timeout(HANG));
    assert!(p.poll(&mut recv).is_pending());
    drop(recv);
    q.try_send(m(1, NORMAL)).unwrap();
    assert_eq!(q.try_recv().unwrap().n, 1);
}

#[test]
fn dropping_a_notified_send_future_passes_the_room_on() {
    let q = queue(1, Backpressure::Block);
    q.try_send(m(0, NORMAL)).unwrap();
    let pa = Poller::new();
    let pb = Poller::new();
    let mut a = Box::pin(q.send(m(1, NORMAL)));
    let mut b = Box::pin(q.send(m(2, NORMAL)));
    assert!(pa.poll(&mut a).is_pending());
    assert!(pb.poll(&mut b).is_pending());
    assert_eq!(q.try_recv().unwrap().n, 0);
    assert_eq!(pa.wakes(), 1);
    drop(a);
    assert_eq!(pb.wakes(), 1);
    assert!(matches!(pb.poll(&mut b), Poll::Ready(Ok(()))));
    assert_eq!(drain(&q), vec![2]);
    // The cancelled send is not an attempt.
    let s = q.stats();
    assert_eq!((s.enqueued, s.attempts()), (2, 2));
}

#[test]
fn each_message_wakes_its_own_waiting_receiver() {
    let q = queue(4, Backpressure::Block);
    let (pa, pb) = (Poller::new(), Poller::new());
    let mut a = Box::pin(q.recv());
    let mut b = Box::pin(q.recv());
    assert!(pa.poll(&mut a).is_pending());
    assert!(pb.poll(&mut b).is_pending());
    // Two sends before either receiver runs: both must be woken (a second
    // wake-up must not be absorbed by the first, still pending one).
    q.try_send(m(1, NORMAL)).unwrap();
    q.try_send(m(2, NORMAL)).unwrap();
    assert_eq!((pa.wakes(), pb.wakes()), (1, 1));
    let got = [pa.poll(&mut a), pb.poll(&mut b)].map(|r| match r {
        Poll::Ready(Ok(x)) => x.n,
        other => panic!("expected a message, got {other:?}"),
    });
    assert_eq!(got, [1, 2]);
}

#[test]
fn each_freed_slot_wakes_its_own_waiting_sender() {
    let q = queue(2, Backpressure::Block);
    q.try_send(m(1, NORMAL)).unwrap();
    q.try_send(m(2, NORMAL)).unwrap();
    let (pa, pb) = (Poller::new(), Poller::new());
    let mut a = Box::pin(q.send(m(3, NORMAL)));
    let mut b = Box::pin(q.send(m(4, NORMAL)));
    assert!(pa.poll(&mut a).is_pending());
    assert!(pb.poll(&mut b).is_pending());
    assert_eq!(q.try_recv().unwrap().n, 1);
    assert_eq!(q.try_recv().unwrap().n, 2);
    assert_eq!((pa.wakes(), pb.wakes()), (1, 1));
    assert!(matches!(pa.poll(&mut a), Poll::Ready(Ok(()))));
    assert!(matches!(pb.poll(&mut b), Poll::Ready(Ok(()))));
    assert_eq!(drain(&q), vec![3, 4]);
}

// ---- timeouts ------------------------------------------------------------------

#[test]
fn receive_timeouts_expire_without_a_tokio_runtime() {
    let q = queue(1, Backpressure::Block);
    assert_eq!(
        futures::executor::block_on(q.recv_timeout(Duration::from_millis(5))).unwrap_err(),
        RecvError::Timeout
    );
    assert_eq!(
        q.recv_blocking_timeout(Duration::from_millis(5)).unwrap_err(),
        RecvError::Timeout
    );
    assert_eq!(q.recv_blocking_timeout(Duration::ZERO).unwrap_err(), RecvError::Timeout);
}

#[test]
fn a_message_arriving_during_a_timed_receive_is_delivered() {
    let q = queue(1, Backpressure::Block);
    let sender = {
        let q = q.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            q.try_send(m(1, NORMAL))
        })
    };
    assert_eq!(q.recv_blocking_timeout(HANG).unwrap().n, 1);
    sender.join().unwrap().unwrap();

    let sender = {
        let q = q.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            q.try_send(m(2, NORMAL))
        })
    };
    let got = futures::executor::block_on(q.recv_timeout(HANG)).unwrap();
    assert_eq!(got.n, 2);
    sender.join().unwrap().unwrap();
}

#[test]
fn huge_timeouts_do_not_overflow() {
    let q = queue(1, Backpressure::Block);
    q.send_blocking_timeout(m(1, NORMAL), Duration::MAX).unwrap();
    assert_eq!(q.recv_blocking_timeout(Duration::MAX).unwrap().n, 1);
    futures::executor::block_on(q.send_timeout(m(2, NORMAL), Duration::MAX)).unwrap();
    let got = futures::executor::block_on(q.recv_timeout(Duration::MAX)).unwrap();
    assert_eq!(got.n, 2);

    // Far, but representable, deadlines: the waits still end on a message.
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    let sender = {
        let q = q.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            q.try_send(m(3, NORMAL)).unwrap();
            thread::sleep(Duration::from_millis(10));
            q.try_send(m(4, NORMAL)).unwrap();
        })
    };
    assert_eq!(q.recv_blocking_timeout(century).unwrap().n, 3);
    let got = futures::executor::block_on(q.recv_timeout(century)).unwrap();
    assert_eq!(got.n, 4);
    sender.join().unwrap();
}

// ---- construction, handles, drops ------------------------------------------------

#[test]
fn invalid_capacities_are_rejected() {
    assert_eq!(
        MessageQueue::<M>::with_capacity(0, Backpressure::Block).unwrap_err(),
        QueueConfigError::ZeroCapacity
    );
    assert_eq!(
        MessageQueue::<M>::new(QueueConfig::new(MAX_QUEUE_CAPACITY + 1)).unwrap_err(),
        QueueConfigError::CapacityTooLarge {
            requested: MAX_QUEUE_CAPACITY + 1,
            max: MAX_QUEUE_CAPACITY
        }
    );
    let q = MessageQueue::<M>::with_capacity(MAX_QUEUE_CAPACITY, Backpressure::DropOldest).unwrap();
    assert_eq!(q.capacity(), MAX_QUEUE_CAPACITY);
    assert_eq!(q.backpressure(), Backpressure::DropOldest);
    assert!(QueueConfigError::ZeroCapacity.to_string().contains("at least 1"));
}

#[test]
fn clones_are_handles_to_the_same_queue() {
    let a = queue(2, Backpressure::Reject);
    let b = a.clone();
    assert!(a.same_queue(&b));
    assert!(!a.same_queue(&queue(2, Backpressure::Reject)));
    a.try_send(m(1, NORMAL)).unwrap();
    assert_eq!(b.try_recv().unwrap().n, 1);
    b.close();
    assert!(a.is_closed());
    let debug = format!("{a:?}");
    assert!(
        debug.contains("MessageQueue") && debug.contains("closed: true"),
        "{debug}"
    );
}

/// A message whose destructor uses the queue: it must not run under the lock.
#[derive(Message)]
struct Reentrant {
    header: MessageHeader,
    queue: Option<MessageQueue<Reentrant>>,
    drops: Arc<AtomicUsize>,
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        if let Some(q) = self.queue.take() {
            let _ = q.len();
            let _ = q.stats();
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn evicted_messages_are_dropped_outside_the_lock() {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let q = MessageQueue::<Reentrant>::with_capacity(1, Backpressure::DropOldest).unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let msg = |p| Reentrant {
            header: MessageHeader::with_priority(p),
            queue: Some(q.clone()),
            drops: drops.clone(),
        };
        q.try_send(msg(NORMAL)).unwrap(); // queued
        q.try_send(msg(NORMAL)).unwrap(); // evicts the first
        q.try_send(msg(LOW)).unwrap(); // dropped on arrival
        let _ = tx.send(drops.load(Ordering::SeqCst));
        // Break the handle cycle so the test does not leak.
        for mut r in q.clear() {
            drop(r.queue.take());
        }
    });
    assert_eq!(rx.recv_timeout(HANG).expect("no deadlock"), 2);
}
