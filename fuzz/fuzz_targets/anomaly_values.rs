//! `cargo +nightly fuzz run anomaly_values`: see `dotcompute::fuzzing::anomaly_values`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotcompute::fuzzing::anomaly_values(data));
