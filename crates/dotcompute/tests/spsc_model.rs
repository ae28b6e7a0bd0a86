//! Property test: `SpscRing` driven single-threaded by random operation
//! sequences behaves exactly like a bounded `VecDeque`.

use std::collections::VecDeque;

use dotcompute::ring::spsc::{PopError, PushError, SpscRing};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Push(u32),
    Pop,
    PopWith,
    PushSlice(Vec<u32>),
    PopInto(usize),
    PopIter(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u32>().prop_map(Op::Push),
        Just(Op::Pop),
        Just(Op::PopWith),
        prop::collection::vec(any::<u32>(), 0..40).prop_map(Op::PushSlice),
        (0usize..40).prop_map(Op::PopInto),
        (0usize..40).prop_map(Op::PopIter),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn behaves_like_bounded_vecdeque(
        log2_cap in 0u32..6,
        ops in prop::collection::vec(op(), 0..200),
        want_room in 0usize..70,
    ) {
        let cap = 1usize << log2_cap;
        let (mut tx, mut rx) = SpscRing::<u32>::new(cap).unwrap();
        let mut model: VecDeque<u32> = VecDeque::new();

        for op in ops {
            match op {
                Op::Push(v) => {
                    let got = tx.push(v);
                    if model.len() < cap {
                        model.push_back(v);
                        prop_assert_eq!(got, Ok(()));
                    } else {
                        prop_assert_eq!(got, Err(PushError::Full(v)));
                    }
                }
                Op::Pop => {
                    let want = model.pop_front().ok_or(PopError::Empty);
                    prop_assert_eq!(rx.pop(), want);
                }
                Op::PopWith => {
                    let want = model.pop_front().ok_or(PopError::Empty);
                    let mut place = None;
                    let got = rx.pop_with(|v| place = Some(v));
                    prop_assert_eq!(got.map(|()| place), want.map(Some));
                }
                Op::PushSlice(vs) => {
                    let n = tx.push_slice(&vs);
                    let want = vs.len().min(cap - model.len());
                    prop_assert_eq!(n, want);
                    model.extend(&vs[..n]);
                }
                Op::PopInto(k) => {
                    let mut buf = vec![u32::MAX; k];
                    let n = rx.pop_into(&mut buf);
                    let want: Vec<u32> = model.drain(..k.min(model.len())).collect();
                    prop_assert_eq!(&buf[..n], &want[..]);
                    // The tail of the buffer is untouched.
                    prop_assert!(buf[n..].iter().all(|&x| x == u32::MAX));
                }
                Op::PopIter(k) => {
                    let it = rx.pop_iter(k);
                    let want_len = k.min(model.len());
                    prop_assert_eq!(it.len(), want_len);
                    let got: Vec<u32> = it.collect();
                    let want: Vec<u32> = model.drain(..want_len).collect();
                    prop_assert_eq!(got, want);
                }
            }
            // The consumer's cached view never runs ahead of the ring.
            prop_assert!(rx.observed_len() <= model.len());
            prop_assert_eq!(tx.has_room(), model.len() < cap);
            prop_assert_eq!(tx.room_for(want_room), want_room.min(cap - model.len()));
            prop_assert_eq!(tx.len(), model.len());
            prop_assert_eq!(rx.len(), model.len());
            prop_assert_eq!(tx.slots(), cap - model.len());
            prop_assert_eq!(rx.slots(), model.len());
            prop_assert_eq!(tx.is_empty(), model.is_empty());
            prop_assert_eq!(rx.is_empty(), model.is_empty());
            prop_assert_eq!(tx.is_full(), model.len() == cap);
            prop_assert_eq!(rx.is_full(), model.len() == cap);
            prop_assert_eq!(tx.capacity(), cap);
            prop_assert_eq!(rx.capacity(), cap);
        }
    }
}
