//! `cargo +nightly fuzz run anomaly_values`: see `dotcompute_workloads::fuzzing::anomaly_values`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotcompute_workloads::fuzzing::anomaly_values(data));
