//! Workloads.
pub mod numpy_rng;
