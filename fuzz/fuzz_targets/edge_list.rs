//! `cargo +nightly fuzz run edge_list`: see `dotcompute::fuzzing::edge_list`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotcompute::fuzzing::edge_list(data));
