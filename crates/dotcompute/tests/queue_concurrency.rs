//! Producers and consumers racing on one queue: threads with the blocking
//! API, Tokio tasks with the async API, and both at once. Every run checks
//! that nothing is duplicated, invented or lost, and that the counters obey
//! the accounting invariant in every snapshot (a monitor samples them while
//! the run is in flight).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use dotcompute::queue::{Backpressure, MessageQueue, QueueStats, RecvError, SendError};
use dotcompute::{Message, MessageHeader};

#[derive(Debug, Clone, dotcompute::Message)]
struct M {
    n: u64,
    header: MessageHeader,
}

/// Generous bound for "it did not hang".
const HANG: Duration = Duration::from_secs(20);

/// Message numbers encode the producer: n = producer * STRIDE + i.
const STRIDE: u64 = 1 << 32;

fn priority(n: u64) -> u8 {
    (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

fn m(n: u64) -> M {
    M {
        n,
        header: MessageHeader::with_priority(priority(n)),
    }
}

/// What one consumer saw, in the order it saw it.
type Seen = Vec<(u64, u8)>;

struct Outcome {
    sent: u64,
    producers: u64,
    per_producer: u64,
    /// Messages handed back by failed sends.
    returned: Vec<u64>,
    consumers: Vec<Seen>,
    stats: QueueStats,
}

/// Runs `f` on its own thread and fails the test if it does not finish
/// within [`HANG`] (a lost wake-up would otherwise hang the test run).
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung for {HANG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the scenario panicked"),
    }
}

/// Samples `stats()` until stopped; returns the number of inconsistent snapshots.
fn monitor(q: MessageQueue<M>, stop: Arc<AtomicBool>) -> thread::JoinHandle<(u64, u64)> {
    thread::spawn(move || {
        let (mut samples, mut bad) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            let s = q.stats();
            samples += 1;
            if !s.is_consistent() || s.depth > s.capacity {
                bad += 1;
            }
            thread::yield_now();
        }
        (samples, bad)
    })
}

fn check(bp: Backpressure, out: Outcome) {
    let Outcome {
        sent,
        producers,
        per_producer,
        returned,
        consumers,
        stats,
    } = out;
    assert_eq!(sent, producers * per_producer);
    let valid = |n: u64| n / STRIDE < producers && n % STRIDE < per_producer;

    // Nothing duplicated, nothing invented.
    let mut received = HashSet::new();
    for &(n, p) in consumers.iter().flatten() {
        assert!(valid(n), "invented message {n}");
        assert_eq!(p, priority(n), "message {n} changed priority");
        assert!(received.insert(n), "message {n} received twice");
    }
    let mut returned_set = HashSet::new();
    for &n in &returned {
        assert!(valid(n), "invented returned message {n}");
        assert!(returned_set.insert(n), "message {n} returned twice");
        assert!(!received.contains(&n), "message {n} both returned and received");
    }

    // FIFO within a band, per producer, as each consumer saw it (pops are
    // serialised by the lock, so every consumer sees a subsequence of the
    // band's FIFO order).
    for seen in &consumers {
        let mut last: BTreeMap<(u64, usize), u64> = BTreeMap::new();
        for &(n, _) in seen {
            let key = (n / STRIDE, dotcompute::PriorityBand::of(priority(n)).index());
            if let Some(&prev) = last.get(&key) {
                assert!(prev < n, "band order broken: {prev} after {n}");
            }
            last.insert(key, n);
        }
    }

    // Accounting.
    assert!(stats.is_consistent(), "{stats:?}");
    assert_eq!(stats.depth, 0, "consumers drained the queue: {stats:?}");
    assert_eq!(stats.dequeued, received.len() as u64, "{stats:?}");
    assert_eq!(stats.attempts(), sent, "{stats:?}");
    assert_eq!(stats.timed_out, 0);
    assert_eq!(stats.closed_rejections, 0);
    match bp {
        Backpressure::Block => {
            assert!(returned.is_empty());
            assert_eq!(received.len() as u64, sent, "every message arrived");
            assert_eq!((stats.rejected, stats.dropped), (0, 0));
        }
        Backpressure::Reject => {
            assert_eq!(
                received.len() as u64 + returned.len() as u64,
                sent,
                "received + rejected == sent"
            );
            assert_eq!(stats.rejected, returned.len() as u64);
            assert_eq!(stats.dropped, 0);
        }
        Backpressure::DropOldest => {
            assert!(returned.is_empty());
            assert_eq!(stats.rejected, 0);
            assert_eq!(received.len() as u64 + stats.dropped, sent);
            assert_eq!(stats.enqueued, sent);
        }
    }
}

// ---- threads, blocking API ---------------------------------------------------

fn run_threads(bp: Backpressure, capacity: usize, producers: u64, consumers: usize, per_producer: u64) -> Outcome {
    let q = MessageQueue::<M>::with_capacity(capacity, bp).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mon = monitor(q.clone(), stop.clone());

    let consumer_handles: Vec<_> = (0..consumers)
        .map(|c| {
            let q = q.clone();
            thread::spawn(move || {
                let mut seen = Seen::new();
                let mut batch = Vec::new();
                for round in 0u64.. {
                    // Mix the receive flavours.
                    let got = match (round + c as u64) % 4 {
                        0 => {
                            batch.clear();
                            if q.try_recv_batch(3, &mut batch) > 0 {
                                seen.extend(batch.iter().map(|x| (x.n, x.priority())));
                                continue;
                            }
                            q.recv_blocking()
                        }
                        1 => q.recv_blocking_timeout(HANG),
                        _ => q.recv_blocking(),
                    };
                    match got {
                        Ok(x) => seen.push((x.n, x.priority())),
                        Err(RecvError::Closed) => break,
                        Err(e) => panic!("consumer {c}: {e}"),
                    }
                }
                seen
            })
        })
        .collect();

    let producer_handles: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                let mut returned = Vec::new();
                for i in 0..per_producer {
                    let n = p * STRIDE + i;
                    let r = if i % 3 == 0 {
                        q.send_blocking_timeout(m(n), HANG)
                    } else {
                        q.send_blocking(m(n))
                    };
                    match r {
                        Ok(()) => {}
                        Err(SendError::Full(x)) if bp == Backpressure::Reject => {
                            returned.push(x.n);
                            if returned.len() % 8 == 0 {
                                thread::yield_now();
                            }
                        }
                        Err(e) => panic!("producer {p}: {e} for {n}"),
                    }
                }
                returned
            })
        })
        .collect();

    let returned: Vec<u64> = producer_handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    q.close();
    let consumers: Vec<Seen> = consumer_handles.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let (samples, bad) = mon.join().unwrap();
    assert!(samples > 0);
    assert_eq!(bad, 0, "{bad} of {samples} snapshots broke the invariant");
    Outcome {
        sent: producers * per_producer,
        producers,
        per_producer,
        returned,
        consumers,
        stats: q.stats(),
    }
}

#[test]
fn threads_block() {
    check(
        Backpressure::Block,
        within(|| run_threads(Backpressure::Block, 4, 4, 3, 4_000)),
    );
}

#[test]
fn threads_reject() {
    check(
        Backpressure::Reject,
        within(|| run_threads(Backpressure::Reject, 4, 4, 3, 4_000)),
    );
}

#[test]
fn threads_drop_oldest() {
    check(
        Backpressure::DropOldest,
        within(|| run_threads(Backpressure::DropOldest, 4, 4, 3, 4_000)),
    );
}

#[test]
fn threads_block_capacity_one_single_consumer() {
    check(
        Backpressure::Block,
        within(|| run_threads(Backpressure::Block, 1, 3, 1, 3_000)),
    );
}

// ---- Tokio tasks, async API ------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn async_consumer(q: MessageQueue<M>, c: usize) -> Seen {
    let mut seen = Seen::new();
    for round in 0u64.. {
        let got = if (round + c as u64).is_multiple_of(3) {
            q.recv_timeout(HANG).await
        } else {
            q.recv().await
        };
        match got {
            Ok(x) => seen.push((x.n, x.priority())),
            Err(RecvError::Closed) => break,
            Err(e) => panic!("consumer {c}: {e}"),
        }
    }
    seen
}

async fn async_producer(q: MessageQueue<M>, p: u64, per_producer: u64) -> Vec<u64> {
    let bp = q.backpressure();
    let mut returned = Vec::new();
    for i in 0..per_producer {
        let n = p * STRIDE + i;
        let r = if i % 3 == 0 {
            q.send_timeout(m(n), HANG).await
        } else {
            q.send(m(n)).await
        };
        match r {
            Ok(()) => {}
            Err(SendError::Full(x)) if bp == Backpressure::Reject => returned.push(x.n),
            Err(e) => panic!("producer {p}: {e} for {n}"),
        }
        // Non-blocking strategies never yield on their own.
        if bp != Backpressure::Block && i % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    returned
}

fn run_tasks(bp: Backpressure, capacity: usize, producers: u64, consumers: usize, per_producer: u64) -> Outcome {
    let q = MessageQueue::<M>::with_capacity(capacity, bp).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mon = monitor(q.clone(), stop.clone());
    let (returned, consumers) = runtime().block_on(async {
        let cs: Vec<_> = (0..consumers)
            .map(|c| tokio::spawn(async_consumer(q.clone(), c)))
            .collect();
        let ps: Vec<_> = (0..producers)
            .map(|p| tokio::spawn(async_producer(q.clone(), p, per_producer)))
            .collect();
        let work = async {
            let mut returned = Vec::new();
            for p in ps {
                returned.extend(p.await.unwrap());
            }
            q.close();
            let mut seen = Vec::new();
            for c in cs {
                seen.push(c.await.unwrap());
            }
            (returned, seen)
        };
        tokio::time::timeout(HANG, work).await.expect("did not hang")
    });
    stop.store(true, Ordering::Relaxed);
    let (samples, bad) = mon.join().unwrap();
    assert_eq!(bad, 0, "{bad} of {samples} snapshots broke the invariant");
    Outcome {
        sent: producers * per_producer,
        producers,
        per_producer,
        returned,
        consumers,
        stats: q.stats(),
    }
}

#[test]
fn tasks_block() {
    check(Backpressure::Block, run_tasks(Backpressure::Block, 4, 4, 3, 4_000));
}

#[test]
fn tasks_reject() {
    check(Backpressure::Reject, run_tasks(Backpressure::Reject, 4, 4, 3, 4_000));
}

#[test]
fn tasks_drop_oldest() {
    check(
        Backpressure::DropOldest,
        run_tasks(Backpressure::DropOldest, 4, 4, 3, 4_000),
    );
}

// ---- mixed: async producers, blocking consumers ------------------------------------

#[test]
fn async_producers_and_thread_consumers_share_wake_ups() {
    within(|| {
        let bp = Backpressure::Block;
        let (producers, per_producer) = (3u64, 3_000u64);
        let q = MessageQueue::<M>::with_capacity(2, bp).unwrap();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut seen = Seen::new();
                    while let Ok(x) = q.recv_blocking() {
                        seen.push((x.n, x.priority()));
                    }
                    seen
                })
            })
            .collect();
        runtime().block_on(async {
            let ps: Vec<_> = (0..producers)
                .map(|p| tokio::spawn(async_producer(q.clone(), p, per_producer)))
                .collect();
            let all = async {
                for p in ps {
                    assert!(p.await.unwrap().is_empty());
                }
            };
            tokio::time::timeout(HANG, all).await.expect("did not hang");
        });
        q.close();
        let consumers = consumers.into_iter().map(|h| h.join().unwrap()).collect();
        check(
            bp,
            Outcome {
                sent: producers * per_producer,
                producers,
                per_producer,
                returned: Vec::new(),
                consumers,
                stats: q.stats(),
            },
        );
    });
}

// ---- close and pause under load --------------------------------------------------------

/// Producers blocked on a full queue while it closes: each gets its message
/// back; everything else was either received or is still queued.
#[test]
fn close_under_load_returns_or_delivers_every_message() {
    within(|| {
        let q = MessageQueue::<M>::with_capacity(2, Backpressure::Block).unwrap();
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 0.. {
                        let n = p * STRIDE + i;
                        match q.send_blocking(m(n)) {
                            Ok(()) => {}
                            Err(SendError::Closed(x)) => return (i, x.n),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    unreachable!()
                })
            })
            .collect();
        let consumer = {
            let q = q.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                // A slow consumer: stops after a while, leaving producers blocked.
                for _ in 0..500 {
                    match q.recv_blocking() {
                        Ok(x) => got.push(x.n),
                        Err(_) => break,
                    }
                }
                got
            })
        };
        let received = consumer.join().unwrap();
        thread::sleep(Duration::from_millis(10));
        q.close();
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || {
            let r: Vec<(u64, u64)> = producers.into_iter().map(|h| h.join().unwrap()).collect();
            let _ = done_tx.send(r);
        });
        let ends = done_rx.recv_timeout(HANG).expect("blocked senders woke on close");
        let left: Vec<u64> = q.clear().into_iter().map(|x| x.n).collect();

        let mut all: Vec<u64> = received.iter().chain(&left).copied().collect();
        let mut expected = Vec::new();
        for (p, &(count, returned)) in ends.iter().enumerate() {
            let p = p as u64;
            assert_eq!(
                returned,
                p * STRIDE + count,
                "the failing send handed back its own message"
            );
            expected.extend((0..count).map(|i| p * STRIDE + i));
        }
        all.sort_unstable();
        expected.sort_unstable();
        assert_eq!(all, expected, "every accepted message was received or is still queued");
        let s = q.stats();
        assert!(s.is_consistent(), "{s:?}");
        assert_eq!(s.closed_rejections, 4);
        assert_eq!(s.enqueued, expected.len() as u64);
    });
}

/// After `pause()` returns, no receive succeeds until `resume()`, even with
/// consumers spinning on every receive flavour.
#[test]
fn no_receive_succeeds_while_paused_under_load() {
    within(|| {
        let q = MessageQueue::<M>::with_capacity(64, Backpressure::Block).unwrap();
        let total = 4_000u64;
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                for i in 0..total {
                    q.send_blocking(m(i)).unwrap();
                }
            })
        };
        let consumers: Vec<_> = (0..2)
            .map(|c| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut got = 0u64;
                    let mut batch = Vec::new();
                    loop {
                        let r = match c {
                            0 => q.recv_blocking(),
                            _ => {
                                batch.clear();
                                got += q.try_recv_batch(4, &mut batch) as u64;
                                q.recv_blocking_timeout(Duration::from_millis(1))
                            }
                        };
                        match r {
                            Ok(_) => got += 1,
                            Err(RecvError::Closed) => return got,
                            Err(_) => {}
                        }
                    }
                })
            })
            .collect();
        for _ in 0..5 {
            thread::sleep(Duration::from_millis(2));
            q.pause();
            let frozen = q.stats().dequeued;
            thread::sleep(Duration::from_millis(5));
            assert_eq!(q.try_recv().unwrap_err(), RecvError::Empty);
            assert_eq!(q.stats().dequeued, frozen, "a receive succeeded while paused");
            q.resume();
        }
        producer.join().unwrap();
        q.close();
        let got: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(got, total);
        let s = q.stats();
        assert_eq!((s.enqueued, s.dequeued, s.depth), (total, total, 0));
    });
}
