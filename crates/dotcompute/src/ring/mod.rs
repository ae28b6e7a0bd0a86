//! Ring transports: fixed-layout, lock-free rings between exactly two parties.
//!
//! - [`spsc`]: [`SpscRing`](spsc::SpscRing), the bounded wait-free
//!   single-producer / single-consumer ring with a `#[repr(C)]` control block,
//!   designed to be reused unchanged in shared memory and host-mapped GPU
//!   memory.
//!
//! Invariant: between the two parties, `head ≤ tail ≤ head + capacity` at
//! every instant; each slot is written only by the producer while it is free
//! and read only by the consumer after the `tail` store (release) that
//! published it, so every message is received exactly once, in order.
//!
//! `unsafe` code of the ring tier lives only in this module. Under
//! `--cfg loom` the atomics and cells come from `loom` (see `sync`) and the
//! `loom_tests` model-check the protocol; run them with `scripts/loom.sh`.

pub mod spsc;
pub(crate) mod sync;

#[cfg(all(test, loom))]
mod loom_tests;
