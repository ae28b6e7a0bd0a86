//! `cargo +nightly fuzz run gpu_host_reader`: see `dotcompute::fuzzing::gpu_host_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotcompute::fuzzing::gpu_host_reader(data));
