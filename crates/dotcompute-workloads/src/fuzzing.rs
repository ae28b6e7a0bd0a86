//! Fuzz targets for the workloads' input surfaces: one function per parser
//! that takes arbitrary bytes and checks that it answers with a value or a
//! typed error, never a panic, a hang or an unbounded allocation, and that
//! what it accepts keeps its invariants (a CSR graph whose offsets and
//! sources are in range; a detector whose state stays finite).
//!
//! Not a stable API (hidden from the docs). The cargo-fuzz targets in
//! `fuzz/` and `tests/fuzz_targets.rs` (every test run: the committed
//! corpus plus random inputs) call them; the runtime's own targets are in
//! `dotcompute::fuzzing`.
//!
//! Invariant: each function returns normally for every input; a panic in
//! one is a bug in the code it drives (or a violated invariant it checks).

use crate::anomaly::stream::ValueReader;
use crate::anomaly::{Detector, DetectorConfig};
use crate::graph::{parse_graph, GraphFormat, LoadOptions, NodeIds, Weights};
use crate::limits::MemoryLimit;

/// The memory limit the graph targets parse under (so a size line cannot
/// make the fuzzer allocate gigabytes).
const FUZZ_MEMORY: u64 = 64 << 20;

fn graph_options(format: GraphFormat, selector: u8) -> LoadOptions {
    LoadOptions {
        format: Some(format),
        ids: if selector & 1 == 0 {
            NodeIds::Compact
        } else {
            NodeIds::Dense
        },
        min_nodes: 0,
        weights: match (selector >> 1) % 3 {
            0 => Weights::Use,
            1 => Weights::Ignore,
            _ => Weights::Refuse,
        },
        memory_limit: MemoryLimit::bytes(FUZZ_MEMORY),
    }
}

fn check_graph(g: &crate::graph::Graph) {
    let offsets = g.in_offsets();
    assert_eq!(offsets.len(), g.num_nodes() + 1);
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(offsets.last().copied(), Some(g.num_edges()));
    assert!(g.in_sources().iter().all(|&s| (s as usize) < g.num_nodes()));
    let out: u64 = g.out_degrees().iter().map(|&d| u64::from(d)).sum();
    assert_eq!(out, g.num_edges() as u64);
    if let Some(w) = g.in_weights() {
        assert_eq!(w.len(), g.num_edges());
        assert!(w.iter().all(|x| x.is_finite() && *x >= 0.0));
    }
}

/// The edge-list parser (first byte: id and weight options; the rest: the file).
pub fn edge_list(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    if let Ok(g) = parse_graph(body, "fuzz", &graph_options(GraphFormat::EdgeList, selector)) {
        check_graph(&g);
    }
}

/// The Matrix Market parser (first byte: options; the rest: the file, with
/// a banner prepended when the first byte's top bit is set, so the fuzzer
/// reaches the size line and entries).
pub fn matrix_market(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let options = graph_options(GraphFormat::Mtx, selector);
    let result = if selector & 0x80 != 0 {
        let fields = ["pattern", "real", "integer", "double"];
        let symmetry = if selector & 0x40 != 0 { "symmetric" } else { "general" };
        let mut text = format!(
            "%%MatrixMarket matrix coordinate {} {symmetry}\n",
            fields[usize::from(selector >> 4) & 3]
        )
        .into_bytes();
        text.extend_from_slice(body);
        parse_graph(&text, "fuzz", &options)
    } else {
        parse_graph(body, "fuzz", &options)
    };
    if let Ok(g) = result {
        check_graph(&g);
    }
}

/// The anomaly value reader, through a tiny buffer (lines span reads) and a
/// small line limit; the values it accepts go through the detector, whose
/// state must stay finite.
pub fn anomaly_values(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let column = usize::from(selector & 3);
    let buffer = usize::from(selector >> 2).max(1);
    let reader = std::io::BufReader::with_capacity(buffer, body);
    let mut values = ValueReader::new(reader, column, "fuzz").with_max_line(256);
    let mut detector = Detector::new(DetectorConfig {
        window: u32::from(selector) + 1,
        ..DetectorConfig::default()
    });
    let mut batch = Vec::new();
    loop {
        batch.clear();
        match values.next_batch(7, &mut batch) {
            Ok(more) => {
                if let Ok(d) = detector.as_mut() {
                    for &x in &batch {
                        assert!(x.is_finite());
                        let score = d.score(x);
                        let s = d.state();
                        assert!(score.is_finite() && s.mean.is_finite() && s.var.is_finite());
                    }
                }
                if !more {
                    break;
                }
            }
            Err(e) => {
                assert!(
                    e.to_string().len() < 1024,
                    "an error message of {} bytes",
                    e.to_string().len()
                );
                break;
            }
        }
    }
}
