//! `cargo +nightly fuzz run edge_list`: see `dotcompute_workloads::fuzzing::edge_list`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotcompute_workloads::fuzzing::edge_list(data));
