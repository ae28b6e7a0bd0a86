//! `SpscRing` micro-benchmarks, one scenario per function:
//! same-thread push+pop, same-thread batches of 64, cross-thread throughput
//! and cross-thread ping-pong round trip.
//!
//! `cargo bench -p dotcompute --bench spsc -j 2` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dotcompute::ring::spsc::{Consumer, Producer, PushError, SpscRing};

const CAPACITY: usize = 1024;

/// Busy-wait step: spin briefly, then yield so that an oversubscribed
/// machine (2 shared cores here) still lets the other side run.
#[inline]
fn backoff(spins: &mut u32) {
    if *spins < SPIN_LIMIT {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

/// Spins before yielding in [`backoff`].
const SPIN_LIMIT: u32 = 128;

/// Pushes, waiting while the ring is full.
#[inline]
fn push_spin(tx: &mut Producer<u64>, mut value: u64) {
    let mut spins = 0;
    while let Err(PushError::Full(v)) = tx.push(value) {
        value = v;
        backoff(&mut spins);
    }
}

/// Pops, waiting while the ring is empty.
#[inline]
fn pop_spin(rx: &mut Consumer<u64>) -> u64 {
    let mut spins = 0;
    loop {
        if let Ok(v) = rx.pop() {
            return v;
        }
        backoff(&mut spins);
    }
}

fn same_thread_push_pop(c: &mut Criterion) {
    let (mut tx, mut rx) = SpscRing::<u64>::new(CAPACITY).unwrap();
    let mut g = c.benchmark_group("spsc");
    g.throughput(Throughput::Elements(1));
    g.bench_function("same_thread_push_pop", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(1);
            let _ = tx.push(black_box(i));
            black_box(rx.pop().ok())
        })
    });
    g.finish();
}

fn same_thread_batch_64(c: &mut Criterion) {
    let (mut tx, mut rx) = SpscRing::<u64>::new(CAPACITY).unwrap();
    let src: Vec<u64> = (0..64).collect();
    let mut dst = vec![0u64; 64];
    let mut g = c.benchmark_group("spsc");
    g.throughput(Throughput::Elements(64));
    g.bench_function("same_thread_push_slice_pop_into_64", |b| {
        b.iter(|| {
            let pushed = tx.push_slice(black_box(&src));
            let popped = rx.pop_into(black_box(&mut dst));
            black_box((pushed, popped))
        })
    });
    g.finish();
}

/// Sends `iters` items to a freshly spawned consumer thread and returns the
/// time until the consumer has received them all.
fn cross_thread_run(iters: u64, batch: Option<usize>) -> Duration {
    let (mut tx, mut rx) = SpscRing::<u64>::new(CAPACITY).unwrap();
    let consumer = thread::spawn(move || {
        let mut sum = 0u64;
        let mut got = 0u64;
        match batch {
            None => {
                while got < iters {
                    sum = sum.wrapping_add(pop_spin(&mut rx));
                    got += 1;
                }
            }
            Some(n) => {
                let mut spins = 0;
                let mut buf = vec![0u64; n];
                while got < iters {
                    let k = rx.pop_into(&mut buf);
                    if k == 0 {
                        backoff(&mut spins);
                    } else {
                        spins = 0;
                    }
                    sum = buf[..k].iter().fold(sum, |a, &v| a.wrapping_add(v));
                    got += k as u64;
                }
            }
        }
        sum
    });
    let start = Instant::now();
    match batch {
        None => {
            for i in 0..iters {
                push_spin(&mut tx, i);
            }
        }
        Some(n) => {
            let src: Vec<u64> = (0..n as u64).collect();
            let mut spins = 0;
            let mut sent = 0u64;
            while sent < iters {
                let want = (iters - sent).min(n as u64) as usize;
                let k = tx.push_slice(&src[..want]);
                if k == 0 {
                    backoff(&mut spins);
                } else {
                    spins = 0;
                }
                sent += k as u64;
            }
        }
    }
    black_box(consumer.join().unwrap());
    start.elapsed()
}

fn cross_thread_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cross_thread_throughput", |b| {
        b.iter_custom(|iters| cross_thread_run(iters, None))
    });
    g.finish();
}

fn cross_thread_throughput_batch_64(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cross_thread_throughput_batch_64", |b| {
        b.iter_custom(|iters| cross_thread_run(iters, Some(64)))
    });
    g.finish();
}

fn cross_thread_ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc");
    g.bench_function("cross_thread_ping_pong_round_trip", |b| {
        b.iter_custom(|iters| {
            let (mut ping_tx, mut ping_rx) = SpscRing::<u64>::new(2).unwrap();
            let (mut pong_tx, mut pong_rx) = SpscRing::<u64>::new(2).unwrap();
            let echo = thread::spawn(move || {
                for _ in 0..iters {
                    let v = pop_spin(&mut ping_rx);
                    push_spin(&mut pong_tx, v);
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                push_spin(&mut ping_tx, i);
                black_box(pop_spin(&mut pong_rx));
            }
            let elapsed = start.elapsed();
            echo.join().unwrap();
            elapsed
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = same_thread_push_pop,
        same_thread_batch_64,
        cross_thread_throughput,
        cross_thread_throughput_batch_64,
        cross_thread_ping_pong
}
criterion_main!(benches);
