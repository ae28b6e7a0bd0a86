//! `cargo +nightly fuzz run shm_open`: see `dotcompute::fuzzing::shm_open`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotcompute::fuzzing::shm_open(data));
