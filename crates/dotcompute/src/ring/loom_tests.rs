//! Model-checked tests of the SPSC protocol. Only built with `--cfg loom`:
//! `RUSTFLAGS="--cfg loom" cargo test -p dotcompute --release --lib ring`
//! (see `scripts/loom.sh`). Models are kept tiny (capacity 1–2, 2–3 items)
//! so the exhaustive exploration finishes quickly.

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use loom::thread;

use super::spsc::{PopError, PushError, SpscRing};

/// Pushes `value`, yielding to the model scheduler while the ring is full.
fn push_blocking<T>(tx: &mut super::spsc::Producer<T>, mut value: T) {
    loop {
        match tx.push(value) {
            Ok(()) => return,
            Err(PushError::Full(v)) => {
                value = v;
                thread::yield_now();
            }
        }
    }
}

/// Pops one item, yielding to the model scheduler while the ring is empty.
fn pop_blocking<T>(rx: &mut super::spsc::Consumer<T>) -> T {
    loop {
        match rx.pop() {
            Ok(v) => return v,
            Err(PopError::Empty) => thread::yield_now(),
        }
    }
}

#[test]
fn items_arrive_once_in_order() {
    loom::model(|| {
        let (mut tx, mut rx) = SpscRing::<u32>::new(2).unwrap();
        let producer = thread::spawn(move || {
            for i in 0..3 {
                push_blocking(&mut tx, i);
            }
        });
        for i in 0..3 {
            assert_eq!(pop_blocking(&mut rx), i);
        }
        assert_eq!(rx.pop(), Err(PopError::Empty));
        producer.join().unwrap();
        assert_eq!(rx.pop(), Err(PopError::Empty));
    });
}

/// Pops one item through `pop_with`, yielding while the ring is empty.
fn pop_with_blocking<T>(rx: &mut super::spsc::Consumer<T>) -> T {
    loop {
        let mut place = None;
        match rx.pop_with(|v| place = Some(v)) {
            Ok(()) => {
                if let Some(v) = place {
                    return v;
                }
                unreachable!("pop_with returned Ok without calling f");
            }
            Err(PopError::Empty) => thread::yield_now(),
        }
    }
}

/// Two boxed items through a ring of capacity 1, popped with `pop`: the
/// producer's second push must wait for the slot the first pop gives back.
fn boxed_items_arrive_once_in_order(pop: fn(&mut super::spsc::Consumer<Box<u32>>) -> Box<u32>) {
    loom::model(move || {
        let (mut tx, mut rx) = SpscRing::<Box<u32>>::new(1).unwrap();
        let producer = thread::spawn(move || {
            for i in 0..2 {
                push_blocking(&mut tx, Box::new(i));
            }
        });
        for i in 0..2 {
            assert_eq!(*pop(&mut rx), i);
        }
        producer.join().unwrap();
    });
}

#[test]
fn non_copy_items_arrive_once_in_order() {
    // Boxed values: loom/ASAN-style checks catch a double read or a read of an
    // uninitialised slot as a causality violation or double free.
    boxed_items_arrive_once_in_order(pop_blocking);
}

#[test]
fn pop_with_gives_each_slot_back_after_its_read() {
    // `pop_with` gives the slot back only after moving the item out.
    boxed_items_arrive_once_in_order(pop_with_blocking);
}

#[test]
fn batches_arrive_once_in_order() {
    loom::model(|| {
        let (mut tx, mut rx) = SpscRing::<u32>::new(2).unwrap();
        let producer = thread::spawn(move || {
            let items = [0, 1, 2];
            let mut sent = 0;
            while sent < items.len() {
                let n = tx.push_slice(&items[sent..]);
                if n == 0 {
                    thread::yield_now();
                }
                sent += n;
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u32; 2];
        while got.len() < 3 {
            let n = rx.pop_into(&mut buf);
            if n == 0 {
                thread::yield_now();
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, [0, 1, 2]);
        producer.join().unwrap();
    });
}

#[test]
fn pop_iter_sees_only_published_items() {
    loom::model(|| {
        let (mut tx, mut rx) = SpscRing::<u32>::new(2).unwrap();
        let producer = thread::spawn(move || {
            for i in 0..3 {
                push_blocking(&mut tx, i);
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            let before = got.len();
            got.extend(rx.pop_iter(2));
            if got.len() == before {
                thread::yield_now();
            }
        }
        assert_eq!(got, [0, 1, 2]);
        producer.join().unwrap();
    });
}

#[test]
fn batches_of_any_type_publish_once_and_arrive_once_in_order() {
    loom::model(|| {
        let (mut tx, mut rx) = SpscRing::<Box<u32>>::new(2).unwrap();
        let producer = thread::spawn(move || {
            let mut items = (0..3).map(Box::new).peekable();
            while items.peek().is_some() {
                if tx.push_iter(items.by_ref()) == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            if rx.pop_each(2, |v| got.push(*v)) == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(got, [0, 1, 2]);
        producer.join().unwrap();
    });
}

#[test]
fn full_edge_refuses_and_hands_value_back() {
    loom::model(|| {
        let (mut tx, mut rx) = SpscRing::<u32>::new(2).unwrap();
        tx.push(0).unwrap();
        tx.push(1).unwrap();
        let consumer = thread::spawn(move || {
            assert_eq!(rx.pop(), Ok(0));
            rx
        });
        let pushed = match tx.push(2) {
            Ok(()) => true,
            Err(PushError::Full(v)) => {
                assert_eq!(v, 2);
                false
            }
        };
        let mut rx = consumer.join().unwrap();
        assert_eq!(rx.pop(), Ok(1));
        if pushed {
            assert_eq!(rx.pop(), Ok(2));
        }
        assert_eq!(rx.pop(), Err(PopError::Empty));
    });
}

#[test]
fn empty_edge_sees_nothing_or_the_whole_item() {
    loom::model(|| {
        let (mut tx, mut rx) = SpscRing::<Box<u32>>::new(2).unwrap();
        let producer = thread::spawn(move || {
            tx.push(Box::new(7)).unwrap();
            tx
        });
        let first = rx.pop();
        let _tx = producer.join().unwrap();
        match first {
            Ok(v) => {
                assert_eq!(*v, 7);
                assert_eq!(rx.pop(), Err(PopError::Empty));
            }
            Err(PopError::Empty) => assert_eq!(rx.pop().map(|v| *v), Ok(7)),
        }
    });
}

#[test]
fn producer_dropped_while_consumer_works() {
    loom::model(|| {
        let (mut tx, mut rx) = SpscRing::<u32>::new(2).unwrap();
        let producer = thread::spawn(move || {
            tx.push(0).unwrap();
            tx.push(1).unwrap();
            drop(tx);
        });
        let mut got = Vec::new();
        loop {
            match rx.pop() {
                Ok(v) => got.push(v),
                Err(PopError::Empty) => {
                    // Abandoned and then empty: nothing more can ever arrive,
                    // so everything pushed must already have been seen.
                    if rx.is_abandoned() {
                        while let Ok(v) = rx.pop() {
                            got.push(v);
                        }
                        break;
                    }
                    thread::yield_now();
                }
            }
        }
        assert_eq!(got, [0, 1]);
        producer.join().unwrap();
    });
}

struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, StdOrdering::Relaxed);
    }
}

#[test]
fn consumer_dropped_while_producer_works() {
    loom::model(|| {
        // Leaked so the counter outlives the threads; one tiny leak per model run.
        let drops: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
        let (mut tx, mut rx) = SpscRing::<Counted<'static>>::new(2).unwrap();
        let consumer = thread::spawn(move || {
            let _first = rx.pop();
            drop(rx);
        });
        let mut created = 0;
        for _ in 0..3 {
            created += 1;
            // Refused values come back and are dropped here, counted too.
            let _ = tx.push(Counted(drops));
        }
        consumer.join().unwrap();
        assert!(tx.is_abandoned());
        drop(tx);
        assert_eq!(drops.load(StdOrdering::Relaxed), created);
    });
}
