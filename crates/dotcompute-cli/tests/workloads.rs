//! `dotcompute pagerank` and `dotcompute anomaly`, run as a user would.

use std::process::Command;

fn dotcompute(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dotcompute"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dotcompute-cli-workloads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn pagerank_on_an_edge_list_writes_ranks_and_json() {
    let graph = scratch("triangle.txt");
    // 0 → 1 → 2 → 0 plus a dangling node 3 pointed at by 0.
    std::fs::write(&graph, "# a small graph\n0 1\n1 2\n2 0\n0 3\n").unwrap();
    let ranks = scratch("ranks.tsv");
    let json = scratch("pagerank.json");
    let out = dotcompute(&[
        "pagerank",
        "--input",
        graph.to_str().unwrap(),
        "--output",
        ranks.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<(u64, f64)> = std::fs::read_to_string(&ranks)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, r) = l.split_once('\t').unwrap();
            (n.parse().unwrap(), r.parse().unwrap())
        })
        .collect();
    assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    let sum: f64 = lines.iter().map(|l| l.1).sum();
    assert!((sum - 1.0).abs() < 1e-9, "ranks sum to {sum}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "nodes",
        "edges",
        "iterations",
        "converged",
        "residual",
        "load_seconds",
        "compute_seconds",
        "edges_per_second",
    ] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    assert_eq!(report["nodes"], 4);
    assert_eq!(report["edges"], 4);
}

#[test]
fn pagerank_reports_malformed_input_with_its_line() {
    let graph = scratch("bad.txt");
    std::fs::write(&graph, "0 1\n1 two\n").unwrap();
    let out = dotcompute(&["pagerank", "--input", graph.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2"), "no line number in: {err}");
}

#[test]
fn anomaly_modes_agree_on_the_synthetic_stream() {
    let mut counts = Vec::new();
    for mode in ["cpu", "batch", "actor", "actor-thread", "actor-spin"] {
        let json = scratch(&format!("anomaly-{mode}.json"));
        let out = dotcompute(&[
            "anomaly",
            "--synthetic",
            "50000",
            "--mode",
            mode,
            "--batch",
            "500",
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{mode}: {}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert!(report["points_per_second"].as_f64().unwrap() > 0.0);
        counts.push(report["anomalies"].as_u64().unwrap());
    }
    assert!(counts[0] > 0);
    assert!(counts.iter().all(|c| *c == counts[0]), "modes disagree: {counts:?}");
}

#[test]
fn anomaly_reads_a_column_from_stdin_and_rejects_garbage() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dotcompute"))
        .args([
            "anomaly",
            "--input",
            "-",
            "--column",
            "1",
            "--window",
            "10",
            "--threshold",
            "2",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for i in 0..200 {
        let v = if i == 150 { 100.0 } else { (i % 7) as f64 };
        input.push_str(&format!("{i},{v}\n"));
    }
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("150"), "the spike at 150 is not listed: {text}");

    let bad = scratch("values.txt");
    std::fs::write(&bad, "1\n2\nthree\n").unwrap();
    let out = dotcompute(&["anomaly", "--input", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(":3"));
}

/// The `<rect class="bar">` elements of a chart the benches wrote, after
/// checking the file is well-formed SVG: (all bars, reference bars).
fn svg_bars(path: &std::path::Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let bars: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("bar"))
        .collect();
    for b in &bars {
        let w: f64 = b.attribute("width").unwrap().parse().unwrap();
        assert!(w > 0.0, "a bar without width");
        assert!(b.children().any(|c| c.has_tag_name("title")), "a bar without its label");
    }
    let theirs = bars
        .iter()
        .filter(|b| b.attribute("data-theirs") == Some("true"))
        .count();
    (bars.len(), theirs)
}

#[test]
fn workload_benchmarks_report_json_and_svg() {
    let pr = scratch("bench-pagerank.json");
    let pr_svg = scratch("bench-pagerank.svg");
    let out = dotcompute(&[
        "bench",
        "pagerank",
        "--sizes",
        "2000,10000",
        "--repetitions",
        "1",
        "--json",
        pr.to_str().unwrap(),
        "--svg",
        pr_svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&pr).unwrap()).unwrap();
    assert_eq!(v["rows"][0]["nodes"], 2000);
    assert!(v["rows"][0]["edges_per_second"].as_f64().unwrap() > 0.0);
    assert!(v["rows"][0]["accurate"]["converged"].as_bool().unwrap());
    // igraph on the same graphs: measured (and agreeing with us) or not, saying why.
    let mut igraph_bars = 0;
    for row in v["rows"].as_array().unwrap() {
        let ig = &row["igraph"];
        match ig["status"].as_str().unwrap() {
            "measured" => {
                igraph_bars += 3;
                assert!(ig["max_abs_diff"].as_f64().unwrap() < 1e-6, "{ig}");
                assert!(ig["load_seconds"]["median"].as_f64().unwrap() > 0.0);
                assert!(row["speedup_vs_igraph"].as_f64().unwrap() > 0.0);
            }
            "not_measured" => {
                assert!(std::env::var("DOTCOMPUTE_REQUIRE_IGRAPH").as_deref() != Ok("1"));
                let reason = ig["reason"].as_str().unwrap();
                assert!(!reason.is_empty());
                eprintln!("igraph not measured: {reason}");
            }
            other => panic!("unknown igraph status {other}"),
        }
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("igraph"), "{text}");
    // Per size: 5 bars of ours, 3 of igraph's if measured; PyDotCompute's
    // figure exists for 10,000 nodes only.
    assert_eq!(svg_bars(&pr_svg), (2 * 5 + igraph_bars + 1, 1));

    let an = scratch("bench-anomaly.json");
    let an_svg = scratch("bench-anomaly.svg");
    let out = dotcompute(&[
        "bench",
        "anomaly",
        "--points",
        "20000",
        "--batches",
        "500",
        "--repetitions",
        "1",
        "--json",
        an.to_str().unwrap(),
        "--svg",
        an_svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&an).unwrap()).unwrap();
    assert_eq!(v["all_identical"], true);
    let modes: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes,
        ["cpu", "batch", "actor", "actor-thread", "actor-spin"],
        "one row per mode"
    );
    assert!(v["reference"]["results"].as_array().unwrap().len() >= 2);
    // One bar per mode, plus PyDotCompute's two figures for batches of 500.
    assert_eq!(svg_bars(&an_svg), (5 + 2, 2));
}
