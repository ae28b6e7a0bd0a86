//! Model-based test: random operation sequences applied to a `MessageQueue`
//! and to a deliberately naive model (a `Vec` scanned on every operation)
//! must give identical results and identical stats.

use std::time::Duration;

use dotcompute::queue::{Backpressure, MessageQueue, QueueStats, RecvError, SendErrorKind};
use dotcompute::{MessageHeader, PriorityBand};
use proptest::prelude::*;

#[derive(Debug, Clone, dotcompute::Message)]
struct M {
    n: u64,
    header: MessageHeader,
}

#[derive(Debug, Clone)]
enum Op {
    TrySend(u8),
    /// `send_blocking_timeout` with a zero timeout: never waits, but a full
    /// `Block` queue answers `Timeout` instead of `Full`.
    SendZeroTimeout(u8),
    TryRecv,
    Batch(usize),
    Close,
    Pause,
    Resume,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        18 => any::<u8>().prop_map(Op::TrySend),
        3 => any::<u8>().prop_map(Op::SendZeroTimeout),
        12 => Just(Op::TryRecv),
        3 => (0usize..5).prop_map(Op::Batch),
        2 => Just(Op::Pause),
        4 => Just(Op::Resume),
        2 => Just(Op::Clear),
        // Rare, so that most sequences run open for a while.
        1 => Just(Op::Close),
    ]
}

fn band(p: u8) -> usize {
    PriorityBand::of(p).index()
}

/// The model: a plain list of (n, priority) in arrival order.
struct Model {
    capacity: usize,
    backpressure: Backpressure,
    items: Vec<(u64, u8)>,
    closed: bool,
    paused: bool,
    stats: QueueStats,
    receives: u64,
}

impl Model {
    fn new(capacity: usize, backpressure: Backpressure) -> Self {
        Model {
            capacity,
            backpressure,
            items: Vec::new(),
            closed: false,
            paused: false,
            stats: QueueStats {
                capacity,
                ..QueueStats::default()
            },
            receives: 0,
        }
    }

    fn admit(&mut self, n: u64, p: u8) {
        self.items.push((n, p));
        self.stats.enqueued += 1;
        self.stats.peak_depth = self.stats.peak_depth.max(self.items.len());
    }

    fn send(&mut self, n: u64, p: u8, zero_timeout: bool) -> Result<(), (SendErrorKind, u64)> {
        if self.closed {
            self.stats.closed_rejections += 1;
            return Err((SendErrorKind::Closed, n));
        }
        if self.items.len() < self.capacity {
            self.admit(n, p);
            return Ok(());
        }
        match self.backpressure {
            Backpressure::Block if zero_timeout => {
                self.stats.timed_out += 1;
                Err((SendErrorKind::Timeout, n))
            }
            Backpressure::Block | Backpressure::Reject => {
                self.stats.rejected += 1;
                Err((SendErrorKind::Full, n))
            }
            Backpressure::DropOldest => {
                let lowest = self.items.iter().map(|&(_, q)| band(q)).min();
                match lowest {
                    Some(lowest) if band(p) >= lowest => {
                        let victim = self
                            .items
                            .iter()
                            .position(|&(_, q)| band(q) == lowest)
                            .expect("the lowest band has an item");
                        self.items.remove(victim);
                        self.stats.dropped += 1;
                        self.admit(n, p);
                    }
                    _ => {
                        self.stats.enqueued += 1;
                        self.stats.dropped += 1;
                    }
                }
                Ok(())
            }
        }
    }

    fn recv(&mut self) -> Result<u64, RecvError> {
        let none = if self.closed {
            RecvError::Closed
        } else {
            RecvError::Empty
        };
        if self.paused {
            return Err(none);
        }
        let Some(top) = self.items.iter().map(|&(_, q)| band(q)).max() else {
            return Err(none);
        };
        let i = self
            .items
            .iter()
            .position(|&(_, q)| band(q) == top)
            .expect("the top band has an item");
        self.stats.dequeued += 1;
        self.receives += 1;
        Ok(self.items.remove(i).0)
    }

    fn clear(&mut self) -> Vec<u64> {
        let mut all = std::mem::take(&mut self.items);
        all.sort_by_key(|&(_, q)| std::cmp::Reverse(band(q))); // stable: FIFO within a band
        self.stats.dequeued += all.len() as u64;
        all.into_iter().map(|(n, _)| n).collect()
    }

    fn stats(&self) -> QueueStats {
        let mut s = self.stats.clone();
        s.depth = self.items.len();
        s.band_depths = [0; 4];
        for &(_, q) in &self.items {
            s.band_depths[band(q)] += 1;
        }
        s
    }
}

fn msg(n: u64, p: u8) -> M {
    M {
        n,
        header: MessageHeader::with_priority(p),
    }
}

fn run(capacity: usize, backpressure: Backpressure, ops: &[Op]) -> Result<(), TestCaseError> {
    let q = MessageQueue::<M>::with_capacity(capacity, backpressure).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model = Model::new(capacity, backpressure);
    for (i, op) in ops.iter().enumerate() {
        let n = i as u64;
        match *op {
            Op::TrySend(p) | Op::SendZeroTimeout(p) => {
                let zero = matches!(op, Op::SendZeroTimeout(_));
                let got = if zero {
                    q.send_blocking_timeout(msg(n, p), Duration::ZERO)
                } else {
                    q.try_send(msg(n, p))
                };
                let got = got.map_err(|e| (e.kind(), e.into_inner().n));
                prop_assert_eq!(got, model.send(n, p, zero), "op {} {:?}", i, op);
            }
            Op::TryRecv => {
                let got = q.try_recv().map(|x| x.n);
                prop_assert_eq!(got, model.recv(), "op {} {:?}", i, op);
            }
            Op::Batch(max) => {
                let mut out = Vec::new();
                let taken = q.try_recv_batch(max, &mut out);
                prop_assert_eq!(taken, out.len());
                let got: Vec<u64> = out.into_iter().map(|x| x.n).collect();
                let want: Vec<u64> = std::iter::from_fn(|| model.recv().ok()).take(max).collect();
                prop_assert_eq!(got, want, "op {} {:?}", i, op);
            }
            Op::Close => {
                q.close();
                model.closed = true;
            }
            Op::Pause => {
                q.pause();
                model.paused = true;
            }
            Op::Resume => {
                q.resume();
                model.paused = false;
            }
            Op::Clear => {
                let got: Vec<u64> = q.clear().into_iter().map(|x| x.n).collect();
                prop_assert_eq!(got, model.clear(), "op {} {:?}", i, op);
            }
        }
        let stats = q.stats();
        prop_assert_eq!(&stats, &model.stats(), "stats after op {} {:?}", i, op);
        prop_assert!(stats.is_consistent(), "{:?}", stats);
        prop_assert_eq!(q.len(), model.items.len());
        prop_assert_eq!(q.is_empty(), model.items.is_empty());
        prop_assert_eq!(q.is_full(), model.items.len() == capacity);
        prop_assert_eq!(q.is_closed(), model.closed);
        prop_assert_eq!(q.is_paused(), model.paused);
    }
    prop_assert_eq!(q.wait_histogram().len(), model.receives);
    // Whatever is left drains in the model's order once resumed.
    q.resume();
    model.paused = false;
    let rest: Vec<u64> = std::iter::from_fn(|| q.try_recv().ok()).map(|x| x.n).collect();
    let want: Vec<u64> = std::iter::from_fn(|| model.recv().ok()).collect();
    prop_assert_eq!(rest, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_the_model(
        capacity in 1usize..6,
        backpressure in prop::sample::select(Backpressure::ALL.to_vec()),
        ops in prop::collection::vec(op(), 0..150),
    ) {
        run(capacity, backpressure, &ops)?;
    }
}

/// The model test is only as good as the model: pin a few hand-checked
/// sequences so a wrong model cannot agree with a wrong queue unnoticed.
#[test]
fn model_agrees_with_hand_checked_sequences() {
    let mut model = Model::new(2, Backpressure::DropOldest);
    assert_eq!(model.send(0, 250, false), Ok(()));
    assert_eq!(model.send(1, 100, false), Ok(()));
    assert_eq!(model.send(2, 10, false), Ok(())); // dropped on arrival
    assert_eq!(model.send(3, 100, false), Ok(())); // evicts 1
    assert_eq!(model.clear(), vec![0, 3]);
    assert_eq!(model.stats().dropped, 2);

    let mut model = Model::new(1, Backpressure::Block);
    assert_eq!(model.send(0, 1, false), Ok(()));
    assert_eq!(model.send(1, 1, false), Err((SendErrorKind::Full, 1)));
    assert_eq!(model.send(2, 1, true), Err((SendErrorKind::Timeout, 2)));
    model.paused = true;
    assert_eq!(model.recv(), Err(RecvError::Empty));
    model.closed = true;
    assert_eq!(model.recv(), Err(RecvError::Closed));
    model.paused = false;
    assert_eq!(model.recv(), Ok(0));
    assert_eq!(model.recv(), Err(RecvError::Closed));

    run(
        3,
        Backpressure::DropOldest,
        &[
            Op::TrySend(10),
            Op::TrySend(250),
            Op::TrySend(100),
            Op::TrySend(5),
            Op::TrySend(100),
            Op::Pause,
            Op::TryRecv,
            Op::Resume,
            Op::Batch(2),
            Op::Close,
            Op::TrySend(255),
            Op::TryRecv,
            Op::TryRecv,
        ],
    )
    .unwrap();
}
