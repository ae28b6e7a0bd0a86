//! Workloads.
pub mod graph;
pub mod numpy_rng;
pub mod pagerank;
