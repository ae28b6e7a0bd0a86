//! The `dotcompute` command on the wgpu backend (lavapipe in CI): `info`
//! lists the adapter, `pagerank --backend wgpu` agrees with the CPU and
//! writes the same JSON, `anomaly --mode wgpu` finds the CPU's anomalies,
//! `bench latency|throughput --tier wgpu` runs. Without an adapter the tests
//! say why and pass, except in CI or with DOTCOMPUTE_REQUIRE_WGPU=1.

use std::path::PathBuf;
use std::process::{Command, Output};

fn dotcompute(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dotcompute"))
        .args(args)
        .output()
        .expect("the dotcompute binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn tmp_file(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-wgpu-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn read_json(path: &PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the JSON report was written")).expect("it parses")
}

/// Whether an adapter is there (from `dotcompute info`); panics where one is required.
fn adapter_or_skip() -> bool {
    let o = dotcompute(&["info"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("wgpu:"))
        .unwrap_or_else(|| panic!("no wgpu line in:\n{out}"));
    if line.contains("not available") {
        let required = std::env::var("CI").as_deref() == Ok("true")
            || std::env::var("DOTCOMPUTE_REQUIRE_WGPU").as_deref() == Ok("1");
        assert!(!required, "no wgpu adapter, and one is required: {line}");
        eprintln!("skipped: {line}");
        return false;
    }
    true
}

#[test]
fn info_lists_the_adapter_or_says_why_there_is_none() {
    let o = dotcompute(&["info"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("wgpu ")),
        "the wgpu tier in:\n{out}"
    );
    let line = out.lines().find(|l| l.starts_with("wgpu:")).expect("a wgpu line");
    if adapter_or_skip() {
        assert!(out.contains("wgpu:0 "), "{out}");
        assert!(line.contains("adapter(s)"), "{line}");
        if std::env::var("CI").as_deref() == Ok("true") {
            assert!(out.contains("llvmpipe"), "CI has lavapipe:\n{out}");
        }
    } else {
        assert!(line.contains("no wgpu adapter"), "{line}");
    }
}

#[test]
fn pagerank_on_wgpu_agrees_with_the_cpu_and_writes_the_same_json() {
    if !adapter_or_skip() {
        return;
    }
    let (cpu_json, gpu_json) = (tmp_file("pr-cpu.json"), tmp_file("pr-wgpu.json"));
    let common = ["pagerank", "--generate", "20000", "--top", "5"];
    let o = dotcompute(&[&common[..], &["--json", cpu_json.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{:?}", text(&o));
    let o = dotcompute(
        &[
            &common[..],
            &[
                "--backend",
                "wgpu",
                "--device",
                "0",
                "--json",
                gpu_json.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("backend:    wgpu:0"), "{out}");
    let (c, g) = (read_json(&cpu_json), read_json(&gpu_json));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&c), keys(&g), "the same JSON fields");
    assert_eq!(g["backend"], "wgpu:0");
    let nodes = |v: &serde_json::Value| {
        v["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["node"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(nodes(&c), nodes(&g));
    for (a, b) in c["top"].as_array().unwrap().iter().zip(g["top"].as_array().unwrap()) {
        let (a, b) = (a["rank"].as_f64().unwrap(), b["rank"].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-12 * a, "{a} vs {b}");
    }
    // A device that does not exist is a clear error, not a panic.
    let o = dotcompute(&["pagerank", "--generate", "100", "--backend", "wgpu", "--device", "99"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("device 99 not found"),
        "{err}"
    );
}

#[test]
fn anomaly_on_wgpu_finds_the_cpu_anomalies() {
    if !adapter_or_skip() {
        return;
    }
    let run = |mode: &str| {
        let json = tmp_file(&format!("anomaly-{mode}.json"));
        let o = dotcompute(&[
            "anomaly",
            "--synthetic",
            "50000",
            "--mode",
            mode,
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{mode}: {:?}", text(&o));
        read_json(&json)
    };
    let (cpu, gpu) = (run("cpu"), run("wgpu"));
    assert_eq!(gpu["mode"], "wgpu");
    assert_eq!(cpu["anomalies"], gpu["anomalies"]);
    let idx = |v: &serde_json::Value| {
        v["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["index"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(idx(&cpu), idx(&gpu));
    assert_eq!(cpu["final_state"]["seen"], gpu["final_state"]["seen"]);
}

#[test]
fn bench_latency_and_throughput_run_the_wgpu_tier() {
    if !adapter_or_skip() {
        return;
    }
    let json = tmp_file("latency.json");
    let o = dotcompute(&[
        "bench",
        "latency",
        "--tier",
        "wgpu",
        "--samples",
        "200",
        "--warmup",
        "20",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let report = read_json(&json);
    let results = report["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        3,
        "runtime send+receive, call, and the dispatch-per-message baseline"
    );
    for r in results {
        assert_eq!(r["tier"], "wgpu", "{r}");
        assert_eq!(r["count"], 200, "{r}");
    }
    let json = tmp_file("throughput.json");
    let o = dotcompute(&[
        "bench",
        "throughput",
        "--tier",
        "wgpu",
        "--messages",
        "3000",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let report = read_json(&json);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(results
        .iter()
        .all(|r| r["tier"] == "wgpu" && r["msg_per_sec"].as_f64().unwrap() > 0.0));
}
