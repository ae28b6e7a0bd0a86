//! `cargo +nightly fuzz run matrix_market`: see `dotcompute::fuzzing::matrix_market`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotcompute::fuzzing::matrix_market(data));
