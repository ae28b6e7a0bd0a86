//! The workloads' fuzz targets (`dotcompute_workloads::fuzzing`, driven by
//! cargo-fuzz in `fuzz/`) on stable, on every test run: each over its
//! committed corpus (`fuzz/corpus/<target>/`), then over a few thousand
//! random inputs (proptest). A target returns normally for every input; a
//! panic is a found bug.

use std::path::PathBuf;

use dotcompute_workloads::fuzzing;
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

#[test]
fn corpora_run_clean() {
    run_corpus("edge_list", fuzzing::edge_list);
    run_corpus("matrix_market", fuzzing::matrix_market);
    run_corpus("anomaly_values", fuzzing::anomaly_values);
}

fn lines_of_bytes() -> impl Strategy<Value = Vec<u8>> {
    // Mostly text made of the characters the parsers care about.
    let alphabet: Vec<u8> = b"0123456789 \t,\n\r#%-+.eE%xMatrixMarket".to_vec();
    (
        any::<u8>(),
        prop::collection::vec(prop::sample::select(alphabet), 0..300),
    )
        .prop_map(|(sel, mut body)| {
            body.insert(0, sel);
            body
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn edge_list_random(data in lines_of_bytes()) {
        fuzzing::edge_list(&data);
    }

    #[test]
    fn edge_list_random_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::edge_list(&data);
    }

    #[test]
    fn matrix_market_random(data in lines_of_bytes()) {
        fuzzing::matrix_market(&data);
        let mut with_banner = data.clone();
        with_banner[0] |= 0x80;
        fuzzing::matrix_market(&with_banner);
    }

    #[test]
    fn anomaly_values_random(data in lines_of_bytes()) {
        fuzzing::anomaly_values(&data);
    }
}
