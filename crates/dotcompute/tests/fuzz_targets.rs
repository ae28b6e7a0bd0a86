//! The runtime's fuzz targets (`dotcompute::fuzzing`, driven by cargo-fuzz in
//! `fuzz/`) on stable, on every test run: each over its committed corpus
//! (`fuzz/corpus/<target>/`), then over a few thousand random inputs
//! (proptest), and the codec over mutations of a valid encoding. A target
//! returns normally for every input; a panic is a found bug.

use std::path::PathBuf;

use dotcompute::fuzzing;
use proptest::prelude::*;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!inputs.is_empty(), "{} has no seeds", dir.display());
    inputs
}

fn run_corpus(target: &str, f: fn(&[u8])) {
    for input in corpus(target) {
        f(&input);
    }
}

fn valid_message() -> Vec<u8> {
    let m = fuzzing::FuzzMessage {
        id: 7,
        name: "sensor-α".into(),
        values: vec![1.5, -0.0, f64::MAX],
        tags: Some(vec!["a".into(), String::new()]),
        header: dotcompute::MessageHeader::new(),
    };
    dotcompute::codec::encode(&m).unwrap()
}

#[test]
fn corpora_run_clean() {
    run_corpus("codec", fuzzing::codec);
    #[cfg(all(feature = "process", target_os = "linux"))]
    run_corpus("shm_open", fuzzing::shm_open);
    #[cfg(feature = "gpu")]
    run_corpus("gpu_host_reader", fuzzing::gpu_host_reader);
}

#[test]
fn codec_survives_every_truncation_and_bit_flip_of_a_valid_message() {
    let valid = valid_message();
    fuzzing::codec(&valid);
    for cut in 0..valid.len() {
        fuzzing::codec(&valid[..cut]);
    }
    for i in 0..valid.len() * 8 {
        let mut m = valid.clone();
        m[i / 8] ^= 1 << (i % 8);
        fuzzing::codec(&m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn codec_random(data in prop::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::codec(&data);
    }

    #[cfg(feature = "gpu")]
    #[test]
    fn gpu_host_reader_random(data in prop::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::gpu_host_reader(&data);
    }
}

#[cfg(all(feature = "process", target_os = "linux"))]
proptest! {
    // Each case creates and maps a file: fewer cases.
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn shm_open_random(mut data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::shm_open(&data);
        if let Some(first) = data.first_mut() {
            *first |= 1;
        }
        fuzzing::shm_open(&data);
    }
}

/// Writes the codec's valid seed into the corpus (`cargo test -p dotcompute
/// --test fuzz_targets -- --ignored`), after a change of the wire format.
#[test]
#[ignore]
fn write_codec_seed() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/codec/valid_message");
    std::fs::write(path, valid_message()).unwrap();
}
