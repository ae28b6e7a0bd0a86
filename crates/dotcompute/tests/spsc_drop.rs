//! Ownership tests: every item is dropped exactly once, whichever half goes
//! first and whatever is left in the ring; abandonment is reported.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dotcompute::ring::spsc::{PopError, PushError, SpscRing};

#[derive(Debug)]
struct Counted {
    id: usize,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn counted(id: usize, drops: &Arc<AtomicUsize>) -> Counted {
    Counted {
        id,
        drops: Arc::clone(drops),
    }
}

#[test]
fn remaining_items_dropped_exactly_once() {
    for cap in [1usize, 2, 4, 8] {
        for pushed in 0..=cap {
            for popped in 0..=pushed {
                for producer_first in [false, true] {
                    let drops = Arc::new(AtomicUsize::new(0));
                    let (mut tx, mut rx) = SpscRing::new(cap).unwrap();
                    for i in 0..pushed {
                        tx.push(counted(i, &drops)).unwrap();
                    }
                    for i in 0..popped {
                        let item = rx.pop().unwrap();
                        assert_eq!(item.id, i);
                    }
                    assert_eq!(drops.load(Ordering::SeqCst), popped);
                    if producer_first {
                        drop(tx);
                        assert_eq!(drops.load(Ordering::SeqCst), popped);
                        drop(rx);
                    } else {
                        drop(rx);
                        assert_eq!(drops.load(Ordering::SeqCst), popped);
                        drop(tx);
                    }
                    assert_eq!(drops.load(Ordering::SeqCst), pushed, "cap {cap}");
                }
            }
        }
    }
}

#[test]
fn wrapped_items_dropped_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = SpscRing::new(4).unwrap();
    let mut created = 0;
    for round in 0..10 {
        while tx.push(counted(created, &drops)).is_ok() {
            created += 1;
        }
        created += 1; // the refused one was handed back and dropped
        for _ in 0..(round % 4) {
            drop(rx.pop().unwrap());
        }
    }
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), created);
}

#[test]
fn refused_value_is_handed_back_not_dropped() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = SpscRing::new(1).unwrap();
    tx.push(counted(0, &drops)).unwrap();
    let back = match tx.push(counted(1, &drops)) {
        Err(PushError::Full(v)) => v,
        Err(e) => panic!("unexpected refusal {e:?}"),
        Ok(()) => panic!("a full ring accepted a value"),
    };
    assert_eq!(back.id, 1);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    // The ring was not overwritten.
    assert_eq!(rx.pop().unwrap().id, 0);
    assert_eq!(rx.pop().unwrap_err(), PopError::Empty);
}

#[test]
fn pop_iter_partially_consumed_leaves_rest_in_ring() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = SpscRing::new(8).unwrap();
    for i in 0..6 {
        tx.push(counted(i, &drops)).unwrap();
    }
    {
        let mut it = rx.pop_iter(4);
        assert_eq!(it.next().unwrap().id, 0);
        assert_eq!(it.next().unwrap().id, 1);
    } // iterator dropped with 2 of its 4 unread
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(rx.len(), 4);
    // Each yielded item is released at once, not when the iterator ends.
    let mut it = rx.pop_iter(8);
    assert_eq!(it.next().unwrap().id, 2);
    assert_eq!(it.len(), 3);
    assert_eq!(rx.pop().unwrap().id, 3);
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

#[test]
fn batch_moves_drop_each_item_once_even_when_interrupted() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = SpscRing::new(4).unwrap();
    // An iterator that panics after two items: those two are in the ring.
    let source = (0..6).map(|i| {
        assert!(i < 2, "source fails at item {i}");
        counted(i, &drops)
    });
    let pushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.push_iter(source)));
    assert!(pushed.is_err());
    assert_eq!(rx.len(), 2, "the items written before the panic are published");
    assert_eq!(
        tx.push_iter((2..8).map(|i| counted(i, &drops))),
        2,
        "two slots were left"
    );
    // A receiver that panics on the second item: the first two are gone
    // (dropped by the receiver), the rest stay, and the ring has room again.
    let mut seen = Vec::new();
    let taken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rx.pop_each(4, |item| {
            seen.push(item.id);
            assert!(seen.len() < 2, "receiver fails at item {}", item.id);
        })
    }));
    assert!(taken.is_err());
    assert_eq!(seen, [0, 1]);
    // (The second source's other items were never pulled, so never made.)
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(rx.len(), 2);
    assert_eq!(tx.push_iter(std::iter::once(counted(9, &drops))), 1);
    let mut rest = Vec::new();
    assert_eq!(rx.pop_each(8, |item| rest.push(item.id)), 3);
    assert_eq!(rest, [2, 3, 9]);
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

#[test]
fn abandonment_is_reported_to_each_side() {
    let (tx, rx) = SpscRing::<u8>::new(2).unwrap();
    assert!(!tx.is_abandoned() && !rx.is_abandoned());
    drop(tx);
    assert!(rx.is_abandoned());
    assert!(rx.control_block().is_producer_closed());

    let (mut tx, rx) = SpscRing::<u8>::new(2).unwrap();
    drop(rx);
    assert!(tx.is_abandoned());
    // Pushing into an abandoned ring still works while there is room.
    assert_eq!(tx.push(1), Ok(()));
    assert_eq!(tx.push(2), Ok(()));
    assert_eq!(tx.push(3), Err(PushError::Full(3)));
}

#[test]
fn pop_with_gives_the_slot_back_when_f_panics() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = SpscRing::new(2).unwrap();
    tx.push(counted(0, &drops)).unwrap();
    tx.push(counted(1, &drops)).unwrap();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = rx.pop_with(|item: Counted| -> () { panic!("handler of item {} failed", item.id) });
    }));
    assert!(unwound.is_err());
    // The item was `f`'s: dropped once while unwinding, its slot given back.
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(rx.observed_len(), 1);
    assert_eq!(rx.pop_with(|item| item.id), Ok(1));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert!(matches!(rx.pop_with(|item| item.id), Err(PopError::Empty)));
    // Both slots are free again.
    tx.push(counted(2, &drops)).unwrap();
    tx.push(counted(3, &drops)).unwrap();
    drop((tx, rx));
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn halves_move_to_other_threads() {
    let (mut tx, mut rx) = SpscRing::<String>::new(4).unwrap();
    let t = std::thread::spawn(move || {
        tx.push("x".to_owned()).unwrap();
        tx
    });
    let tx = t.join().unwrap();
    let r = std::thread::spawn(move || rx.pop().unwrap());
    assert_eq!(r.join().unwrap(), "x");
    assert!(tx.is_abandoned());
}

#[test]
fn debug_output_is_informative() {
    let (mut tx, rx) = SpscRing::<u8>::new(4).unwrap();
    tx.push(1).unwrap();
    let s = format!("{tx:?} {rx:?} {:?}", tx.control_block());
    assert!(s.contains("capacity: 4"), "{s}");
    assert!(s.contains("len: 1"), "{s}");
    assert!(s.contains("tail: 1"), "{s}");
}
