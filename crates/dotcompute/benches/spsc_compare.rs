//! `SpscRing` beside `rtrb::RingBuffer` and `crossbeam_queue::ArrayQueue`, in
//! the same run: same-thread push+pop, and cross-thread throughput.
//!
//! `cargo bench -p dotcompute --bench spsc_compare -j 2` (add `-- --quick`).

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use dotcompute::ring::spsc::SpscRing;

const CAPACITY: usize = 1024;

/// Spins before yielding in [`backoff`].
const SPIN_LIMIT: u32 = 128;

/// Busy-wait step, the same for every queue: spin briefly, then yield so that
/// an oversubscribed machine (2 shared cores here) still lets the other side run.
#[inline]
fn backoff(spins: &mut u32) {
    if *spins < SPIN_LIMIT {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

fn same_thread_push_pop(c: &mut Criterion) {
    let mut g = c.benchmark_group("compare_same_thread_push_pop");
    g.throughput(Throughput::Elements(1));

    let (mut tx, mut rx) = SpscRing::<u64>::new(CAPACITY).unwrap();
    g.bench_function("dotcompute_spsc", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(1);
            let _ = tx.push(black_box(i));
            black_box(rx.pop().ok())
        })
    });

    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    g.bench_function("rtrb", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(1);
            let _ = tx.push(black_box(i));
            black_box(rx.pop().ok())
        })
    });

    let q = ArrayQueue::<u64>::new(CAPACITY);
    g.bench_function("crossbeam_array_queue", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(1);
            let _ = q.push(black_box(i));
            black_box(q.pop())
        })
    });
    g.finish();
}

/// Times `iters` items from this thread to a freshly spawned consumer.
/// `push` returns false when full, `pop` returns `None` when empty; both
/// wait with [`backoff`].
fn cross_thread<P, C>(iters: u64, mut push: P, mut pop: C) -> Duration
where
    P: FnMut(u64) -> bool,
    C: FnMut() -> Option<u64> + Send + 'static,
{
    let consumer = thread::spawn(move || {
        let mut sum = 0u64;
        let mut got = 0;
        let mut spins = 0;
        while got < iters {
            match pop() {
                Some(v) => {
                    sum = sum.wrapping_add(v);
                    got += 1;
                    spins = 0;
                }
                None => backoff(&mut spins),
            }
        }
        sum
    });
    let start = Instant::now();
    for i in 0..iters {
        let mut spins = 0;
        while !push(i) {
            backoff(&mut spins);
        }
    }
    black_box(consumer.join().unwrap());
    start.elapsed()
}

fn cross_thread_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("compare_cross_thread_throughput");
    g.throughput(Throughput::Elements(1));

    g.bench_function("dotcompute_spsc", |b| {
        b.iter_custom(|iters| {
            let (mut tx, mut rx) = SpscRing::<u64>::new(CAPACITY).unwrap();
            cross_thread(iters, move |v| tx.push(v).is_ok(), move || rx.pop().ok())
        })
    });

    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
            cross_thread(iters, move |v| tx.push(v).is_ok(), move || rx.pop().ok())
        })
    });

    g.bench_function("crossbeam_array_queue", |b| {
        b.iter_custom(|iters| {
            let q = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
            let q2 = Arc::clone(&q);
            cross_thread(iters, move |v| q.push(v).is_ok(), move || q2.pop())
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
    targets = same_thread_push_pop, cross_thread_throughput
}
criterion_main!(benches);
