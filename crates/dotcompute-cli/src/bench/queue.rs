//! `dotcompute bench queue`: same-thread push+pop cost of the library's
//! queues beside `rtrb` and `crossbeam`, measured in the same run.
//!
//! Each case is a plain calibrated loop on one thread: `iterations` times
//! one push then one pop (or, batched, `batch` pushes then `batch` pops),
//! timed with `Instant`, best of `rounds`, in nanoseconds per item. The
//! queues are never contended: this is the cost of the operations
//! themselves (atomics, index arithmetic, copying the item), the floor under
//! any cross-thread figure.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use crossbeam_queue::ArrayQueue;
use dotcompute::ring::spsc::SpscRing;
use dotcompute::{Backpressure, MessageQueue};
use serde::Serialize;

use super::{goals, reference, BenchReport, Ping};
use crate::progress;
use crate::CliResult;

/// Slots in every queue.
const CAPACITY: usize = 1024;

/// Options of `dotcompute bench queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Push+pop pairs per round (items per round for the batched cases).
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: u64,
    /// Rounds per case; the best is kept.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Items per batch in the batched cases.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(2..=1024))]
    pub batch: u64,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// What one queue run measures.
#[derive(Debug, Clone)]
pub struct Params {
    pub iterations: u64,
    pub rounds: u32,
    pub batch: usize,
}

#[derive(Debug, Serialize)]
pub struct Config {
    iterations: u64,
    rounds: u32,
    batch: usize,
    capacity: usize,
    timing: &'static str,
}

impl Config {
    pub fn new(p: &Params) -> Self {
        Config {
            iterations: p.iterations,
            rounds: p.rounds,
            batch: p.batch,
            capacity: CAPACITY,
            timing: "one thread; Instant around `iterations` push+pop pairs (batched: batch pushes then batch pops); best of `rounds`; ns per item",
        }
    }
}

/// One queue with one item type.
#[derive(Debug, Clone, Serialize)]
pub struct QueueResult {
    /// `dotcompute SpscRing`, `dotcompute MessageQueue`, `rtrb`, ...
    pub queue: &'static str,
    /// `u64` or `Ping` (the benchmark message).
    pub item: &'static str,
    pub item_bytes: usize,
    /// The operations timed for one item.
    pub single_ops: &'static str,
    /// One push and one pop, ns.
    pub push_pop_ns: f64,
    /// The operations timed for a batch.
    pub batched_ops: &'static str,
    /// `batch` pushes then `batch` pops, ns per item.
    pub batched_ns_per_item: f64,
}

/// An item the loops can make cheaply from a counter.
trait Item: Copy + Send + 'static {
    const NAME: &'static str;
    /// What `make` copies from: the prepared message, or nothing.
    fn template(ping: &Ping) -> Self;
    fn make(template: &Self, i: u64) -> Self;
    fn value(&self) -> u64;
}

impl Item for u64 {
    const NAME: &'static str = "u64";
    fn template(_: &Ping) -> Self {
        0
    }
    #[inline(always)]
    fn make(_: &Self, i: u64) -> Self {
        i
    }
    #[inline(always)]
    fn value(&self) -> u64 {
        *self
    }
}

impl Item for Ping {
    const NAME: &'static str = "Ping";
    fn template(ping: &Ping) -> Self {
        *ping
    }
    /// A copy of one prepared message with a new sequence number: the loop
    /// measures the queue, not UUID generation.
    #[inline(always)]
    fn make(template: &Self, i: u64) -> Self {
        let mut p = *template;
        p.seq = i;
        p
    }
    #[inline(always)]
    fn value(&self) -> u64 {
        self.seq
    }
}

/// Best of `rounds` of `f(iterations)`, which returns the items it moved;
/// ns per item.
fn best_of(rounds: u32, iterations: u64, mut f: impl FnMut(u64) -> u64) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        let items = f(iterations);
        let ns = t.elapsed().as_nanos() as f64 / items.max(1) as f64;
        best = best.min(ns);
    }
    best
}

// Each queue's loop below is written out on purpose: folding them into one
// helper taking push/pop closures was tried and made SpscRing<Ping> push+pop
// read 13.6 ns instead of 8.1 ns (the 120-byte copy no longer optimised the
// same way), which would measure the helper rather than the queues.

/// Runs the benchmark.
pub fn run(args: &QueueArgs) -> CliResult<()> {
    crate::output::check_json_path(args.json.as_ref())?;
    let params = Params {
        iterations: args.iterations,
        rounds: args.rounds,
        batch: usize::try_from(args.batch)?,
    };
    let meter = crate::machine::CpuMeter::start();
    super::print_header("bench queue");
    let results = measure(&params)?;
    println!();
    reference::print_queue();
    let goals = goals::queue(&results);
    println!();
    goals::print(&goals);
    BenchReport::new("queue", Config::new(&params), results, reference::queue())
        .with_goals(goals)
        .with_noise(&meter)
        .write(args.json.as_ref())
}

type Case = (&'static str, fn(&Params, &Ping) -> QueueResult);

/// Measures every queue and prints the table.
pub fn measure(p: &Params) -> CliResult<Vec<QueueResult>> {
    println!(
        "same-thread push+pop, queues of {CAPACITY} slots; {} items per round, best of {} rounds; batched: {} pushes then {} pops",
        p.iterations, p.rounds, p.batch, p.batch
    );
    println!(
        "items: u64 (8 bytes) and Ping (the {}-byte benchmark message, copied from a prepared one)",
        std::mem::size_of::<Ping>()
    );
    println!();
    let template = Ping::new(0);
    let cases: [Case; 9] = [
        ("SpscRing<u64>", spsc::<u64>),
        ("SpscRing<Ping>", spsc::<Ping>),
        ("MessageQueue<Ping>", message_queue),
        ("rtrb<u64>", rtrb_ring::<u64>),
        ("rtrb<Ping>", rtrb_ring::<Ping>),
        ("ArrayQueue<u64>", array_queue::<u64>),
        ("ArrayQueue<Ping>", array_queue::<Ping>),
        ("channel<u64>", channel::<u64>),
        ("channel<Ping>", channel::<Ping>),
    ];
    let bar = progress::bar(cases.len() as u64, "queues");
    let mut results = Vec::new();
    for (name, case) in cases {
        bar.set_message(name);
        results.push(case(p, &template));
        bar.inc(1);
    }
    bar.finish_and_clear();
    print_table(&results);
    Ok(results)
}

pub fn print_table(results: &[QueueResult]) {
    let base = results
        .iter()
        .find(|r| r.queue == "dotcompute SpscRing" && r.item == "u64")
        .map(|r| r.push_pop_ns);
    println!(
        "{:<26} {:<5} {:>6} {:>14} {:>10} {:>15}",
        "queue", "item", "bytes", "push+pop (ns)", "vs SpscRing", "batched ns/item"
    );
    for r in results {
        let rel = base.map_or_else(|| "-".to_string(), |b| format!("{:.2}×", r.push_pop_ns / b));
        println!(
            "{:<26} {:<5} {:>6} {:>14.2} {:>10} {:>15.2}",
            r.queue, r.item, r.item_bytes, r.push_pop_ns, rel, r.batched_ns_per_item
        );
    }
    println!("(vs SpscRing: push+pop time relative to SpscRing<u64>)");
}

fn spsc<T: Item>(p: &Params, template: &Ping) -> QueueResult {
    let t = T::template(template);
    let (mut tx, mut rx) = SpscRing::<T>::new(CAPACITY).expect("a valid capacity");
    let single = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        for i in 0..n {
            let _ = tx.push(black_box(T::make(&t, i)));
            if let Ok(v) = rx.pop() {
                sum = sum.wrapping_add(v.value());
            }
        }
        black_box(sum);
        n
    });
    let b = p.batch;
    let mut src = vec![t; b];
    let mut dst = vec![t; b];
    let batched = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        let mut done = 0u64;
        while done < n {
            for (j, slot) in src.iter_mut().enumerate() {
                *slot = T::make(&t, done + j as u64);
            }
            let pushed = tx.push_slice(black_box(&src));
            let popped = rx.pop_into(&mut dst[..pushed]);
            for v in &dst[..popped] {
                sum = sum.wrapping_add(v.value());
            }
            done += popped as u64;
        }
        black_box(sum);
        done
    });
    result(
        "dotcompute SpscRing",
        T::NAME,
        "push + pop",
        single,
        "push_slice + pop_into",
        batched,
    )
}

fn message_queue(p: &Params, template: &Ping) -> QueueResult {
    let q = MessageQueue::<Ping>::with_capacity(CAPACITY, Backpressure::Block).expect("a valid capacity");
    let single = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        for i in 0..n {
            let _ = q.try_send(black_box(Ping::make(template, i)));
            if let Ok(v) = q.try_recv() {
                sum = sum.wrapping_add(v.seq);
            }
        }
        black_box(sum);
        n
    });
    let b = p.batch;
    let mut out = Vec::with_capacity(b);
    let batched = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        let mut done = 0u64;
        while done < n {
            for j in 0..b as u64 {
                let _ = q.try_send(black_box(Ping::make(template, done + j)));
            }
            out.clear();
            let popped = q.try_recv_batch(b, &mut out);
            for v in &out {
                sum = sum.wrapping_add(v.seq);
            }
            done += popped as u64;
        }
        black_box(sum);
        done
    });
    result(
        "dotcompute MessageQueue",
        Ping::NAME,
        "try_send + try_recv",
        single,
        "try_send × batch + try_recv_batch",
        batched,
    )
}

fn rtrb_ring<T: Item>(p: &Params, template: &Ping) -> QueueResult {
    let t = T::template(template);
    let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(CAPACITY);
    let single = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        for i in 0..n {
            let _ = tx.push(black_box(T::make(&t, i)));
            if let Ok(v) = rx.pop() {
                sum = sum.wrapping_add(v.value());
            }
        }
        black_box(sum);
        n
    });
    let b = p.batch;
    let batched = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        let mut done = 0u64;
        while done < n {
            if let Ok(chunk) = tx.write_chunk_uninit(b) {
                chunk.fill_from_iter((0..b as u64).map(|j| black_box(T::make(&t, done + j))));
            }
            if let Ok(chunk) = rx.read_chunk(b) {
                for v in chunk {
                    sum = sum.wrapping_add(v.value());
                }
            }
            done += b as u64;
        }
        black_box(sum);
        done
    });
    result(
        "rtrb",
        T::NAME,
        "push + pop",
        single,
        "write_chunk_uninit + read_chunk",
        batched,
    )
}

fn array_queue<T: Item>(p: &Params, template: &Ping) -> QueueResult {
    let t = T::template(template);
    let q = ArrayQueue::<T>::new(CAPACITY);
    let single = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        for i in 0..n {
            let _ = q.push(black_box(T::make(&t, i)));
            if let Some(v) = q.pop() {
                sum = sum.wrapping_add(v.value());
            }
        }
        black_box(sum);
        n
    });
    let b = p.batch as u64;
    let batched = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        let mut done = 0u64;
        while done < n {
            for j in 0..b {
                let _ = q.push(black_box(T::make(&t, done + j)));
            }
            for _ in 0..b {
                if let Some(v) = q.pop() {
                    sum = sum.wrapping_add(v.value());
                }
            }
            done += b;
        }
        black_box(sum);
        done
    });
    result(
        "crossbeam ArrayQueue",
        T::NAME,
        "push + pop",
        single,
        "push × batch + pop × batch",
        batched,
    )
}

fn channel<T: Item>(p: &Params, template: &Ping) -> QueueResult {
    let t = T::template(template);
    let (tx, rx) = crossbeam_channel::bounded::<T>(CAPACITY);
    let single = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        for i in 0..n {
            let _ = tx.try_send(black_box(T::make(&t, i)));
            if let Ok(v) = rx.try_recv() {
                sum = sum.wrapping_add(v.value());
            }
        }
        black_box(sum);
        n
    });
    let b = p.batch as u64;
    let batched = best_of(p.rounds, p.iterations, |n| {
        let mut sum = 0u64;
        let mut done = 0u64;
        while done < n {
            for j in 0..b {
                let _ = tx.try_send(black_box(T::make(&t, done + j)));
            }
            for v in rx.try_iter().take(b as usize) {
                sum = sum.wrapping_add(v.value());
            }
            done += b;
        }
        black_box(sum);
        done
    });
    result(
        "crossbeam_channel bounded",
        T::NAME,
        "try_send + try_recv",
        single,
        "try_send × batch + try_iter",
        batched,
    )
}

fn result(
    queue: &'static str,
    item: &'static str,
    single_ops: &'static str,
    push_pop_ns: f64,
    batched_ops: &'static str,
    batched_ns_per_item: f64,
) -> QueueResult {
    QueueResult {
        queue,
        item,
        item_bytes: if item == "u64" { 8 } else { std::mem::size_of::<Ping>() },
        single_ops,
        push_pop_ns,
        batched_ops,
        batched_ns_per_item,
    }
}
