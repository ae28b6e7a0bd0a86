//! `MessageQueue` costs: same-thread `try_send` + `try_recv` (beside Tokio's
//! bounded `mpsc` doing the same), async `send` +
//! `recv` in one task, batch receive, and a cross-thread ping-pong round trip
//! with the blocking API.
//!
//! `cargo bench -p dotcompute --bench queue -- --quick`

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dotcompute::queue::{Backpressure, MessageQueue};
use dotcompute::MessageHeader;

#[derive(Debug, Clone, dotcompute::Message)]
struct M {
    n: u64,
    header: MessageHeader,
}

fn msg(n: u64) -> M {
    M {
        n,
        header: MessageHeader::with_priority(128),
    }
}

fn queue(capacity: usize) -> MessageQueue<M> {
    MessageQueue::with_capacity(capacity, Backpressure::Block).expect("valid capacity")
}

fn same_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue/same_thread");
    g.throughput(Throughput::Elements(1));

    let q = queue(1024);
    let m = msg(1);
    g.bench_function("try_send+try_recv", |b| {
        b.iter(|| {
            q.try_send(black_box(m.clone())).expect("room");
            black_box(q.try_recv().expect("a message").n)
        })
    });

    // The reference: Tokio's bounded channel, same message, same pattern.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<M>(1024);
    g.bench_function("tokio mpsc try_send+try_recv (reference)", |b| {
        b.iter(|| {
            tx.try_send(black_box(m.clone())).expect("room");
            black_box(rx.try_recv().expect("a message").n)
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    g.bench_function("async send+recv (one task)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    q.send(black_box(m.clone())).await.expect("room");
                    black_box(q.recv().await.expect("a message").n);
                }
                start.elapsed()
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("queue/batch");
    g.throughput(Throughput::Elements(64));
    let mut out = Vec::with_capacity(64);
    g.bench_function("64 x try_send + try_recv_batch(64)", |b| {
        b.iter_batched_ref(
            || (),
            |()| {
                for _ in 0..64 {
                    q.try_send(m.clone()).expect("room");
                }
                out.clear();
                black_box(q.try_recv_batch(64, &mut out))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue/cross_thread");
    g.throughput(Throughput::Elements(1));
    let ping = queue(16);
    let pong = queue(16);
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        thread::spawn(move || {
            while let Ok(m) = ping.recv_blocking() {
                if pong.send_blocking(m).is_err() {
                    break;
                }
            }
        })
    };
    let m = msg(1);
    g.bench_function("ping-pong round trip (blocking)", |b| {
        b.iter(|| {
            ping.send_blocking(m.clone()).expect("open");
            black_box(pong.recv_blocking().expect("echo").n)
        })
    });
    g.finish();
    ping.close();
    pong.close();
    let _ = echo.join();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = same_thread, ping_pong
}
criterion_main!(benches);
