//! `cargo +nightly fuzz run matrix_market`: see `dotcompute_workloads::fuzzing::matrix_market`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotcompute_workloads::fuzzing::matrix_market(data));
