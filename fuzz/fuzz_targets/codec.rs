//! `cargo +nightly fuzz run codec`: see `dotcompute::fuzzing::codec`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dotcompute::fuzzing::codec(data));
