//! Two-thread stress tests: a million `u64`s through a small ring arrive in
//! order, none lost or duplicated, with the single-item and the batch APIs.

use std::thread;
use std::time::{Duration, Instant};

use dotcompute::ring::spsc::{Consumer, Producer, PushError, SpscRing};

const N: u64 = 1_000_000;
/// Generous bound so a hung test fails instead of blocking CI.
const DEADLINE: Duration = Duration::from_secs(60);

fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        // Only 2 cores, shared: let the other side run.
        thread::yield_now();
    }
}

fn produce_single(mut tx: Producer<u64>) {
    let start = Instant::now();
    for i in 0..N {
        let mut item = i;
        let mut spins = 0;
        while let Err(PushError::Full(v)) = tx.push(item) {
            item = v;
            assert!(!tx.is_abandoned(), "consumer went away");
            assert!(start.elapsed() < DEADLINE, "producer stuck");
            backoff(&mut spins);
        }
    }
}

fn produce_batched(mut tx: Producer<u64>, batch: usize) {
    let start = Instant::now();
    let mut next = 0u64;
    let mut buf = Vec::with_capacity(batch);
    while next < N {
        buf.clear();
        buf.extend(next..(next + batch as u64).min(N));
        let mut sent = 0;
        let mut spins = 0;
        while sent < buf.len() {
            let n = tx.push_slice(&buf[sent..]);
            if n == 0 {
                assert!(start.elapsed() < DEADLINE, "producer stuck");
                backoff(&mut spins);
            }
            sent += n;
        }
        next += buf.len() as u64;
    }
}

fn consume_single(mut rx: Consumer<u64>) {
    let start = Instant::now();
    let mut expected = 0u64;
    let mut spins = 0;
    while expected < N {
        match rx.pop() {
            Ok(v) => {
                assert_eq!(v, expected, "out of order, lost or duplicated");
                expected += 1;
                spins = 0;
            }
            Err(_) => {
                assert!(start.elapsed() < DEADLINE, "consumer stuck at {expected}");
                backoff(&mut spins);
            }
        }
    }
    finish(rx);
}

fn consume_batched(mut rx: Consumer<u64>, batch: usize) {
    let start = Instant::now();
    let mut expected = 0u64;
    let mut buf = vec![0u64; batch];
    let mut spins = 0;
    while expected < N {
        let n = rx.pop_into(&mut buf);
        if n == 0 {
            assert!(start.elapsed() < DEADLINE, "consumer stuck at {expected}");
            backoff(&mut spins);
            continue;
        }
        spins = 0;
        for &v in &buf[..n] {
            assert_eq!(v, expected, "out of order, lost or duplicated");
            expected += 1;
        }
    }
    finish(rx);
}

fn consume_iter(mut rx: Consumer<u64>, limit: usize) {
    let start = Instant::now();
    let mut expected = 0u64;
    let mut spins = 0;
    while expected < N {
        let before = expected;
        for v in rx.pop_iter(limit) {
            assert_eq!(v, expected, "out of order, lost or duplicated");
            expected += 1;
        }
        if expected == before {
            assert!(start.elapsed() < DEADLINE, "consumer stuck at {expected}");
            backoff(&mut spins);
        } else {
            spins = 0;
        }
    }
    finish(rx);
}

/// After the last item, the producer goes away and nothing extra shows up.
fn finish(mut rx: Consumer<u64>) {
    let start = Instant::now();
    while !rx.is_abandoned() {
        assert!(start.elapsed() < DEADLINE, "producer never dropped");
        thread::yield_now();
    }
    assert!(rx.pop().is_err(), "an item beyond N arrived");
    assert_eq!(rx.control_block().tail(), N);
    assert_eq!(rx.control_block().head(), N);
}

fn run(cap: usize, produce: impl FnOnce(Producer<u64>) + Send + 'static, consume: impl FnOnce(Consumer<u64>)) {
    let (tx, rx) = SpscRing::<u64>::new(cap).unwrap();
    let producer = thread::spawn(move || produce(tx));
    consume(rx);
    producer.join().unwrap();
}

#[test]
fn single_items_through_small_ring() {
    run(64, produce_single, consume_single);
}

#[test]
fn single_items_through_tiny_ring() {
    run(2, produce_single, consume_single);
}

#[test]
fn batches_through_small_ring() {
    run(64, |tx| produce_batched(tx, 48), |rx| consume_batched(rx, 32));
}

#[test]
fn batches_larger_than_ring() {
    run(16, |tx| produce_batched(tx, 100), |rx| consume_batched(rx, 7));
}

#[test]
fn batch_producer_single_consumer() {
    run(32, |tx| produce_batched(tx, 17), consume_single);
}

#[test]
fn single_producer_iter_consumer() {
    run(64, produce_single, |rx| consume_iter(rx, 24));
}
