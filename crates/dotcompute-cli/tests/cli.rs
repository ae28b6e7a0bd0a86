//! Runs the built `dotcompute` binary as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

fn dotcompute(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dotcompute"))
        .args(args)
        .output()
        .expect("the dotcompute binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp_file(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn read_json(path: &PathBuf) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the JSON report was written");
    serde_json::from_str(&text).expect("the JSON report parses")
}

#[test]
fn demo_finds_the_injected_spikes_and_prints_telemetry() {
    let json = tmp_file("demo.json");
    let o = dotcompute(&[
        "demo",
        "--points",
        "20000",
        "--seed",
        "7",
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    // The runtime's telemetry table.
    let header = out
        .lines()
        .find(|l| l.starts_with("kernel ") && l.contains("processed"))
        .unwrap_or_else(|| panic!("no telemetry table header in:\n{out}"));
    assert!(header.contains("received"), "{header}");
    assert!(out.lines().any(|l| l.starts_with("normalize ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("detect ")), "{out}");
    assert!(out.contains("shutdown: 2 kernels terminated"), "{out}");
    // "found F of I injected spikes"
    let line = out.lines().find(|l| l.starts_with("found ")).expect("a found line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let found: u64 = words[1].parse().unwrap();
    let injected: u64 = words[3].parse().unwrap();
    assert!(found > 0 && found <= injected, "{line}");

    let report = read_json(&json);
    assert_eq!(report["points"], 20000);
    assert_eq!(report["found"].as_u64(), Some(found));
    assert_eq!(report["final_status"]["samples"], 20000);
    assert_eq!(report["summary"]["kernel_count"], 2);
    assert!(report["readings_per_sec"].as_f64().unwrap() > 0.0);
    // The summary is taken once the counters settled: detect sent one alert
    // per anomaly, two Flushed markers and one Status reply.
    let kernels = report["summary"]["kernels"].as_array().unwrap();
    let detect = kernels.iter().find(|k| k["kernel_id"] == "detect").unwrap();
    let alerts = report["alerts"].as_array().unwrap().len() as u64;
    assert_eq!(detect["messages_sent"].as_u64(), Some(alerts + 3), "{detect}");
    assert_eq!(detect["messages_processed"], 20003, "{detect}");
}

#[test]
fn demo_is_deterministic_for_a_seed() {
    let run = || {
        let o = dotcompute(&["demo", "--points", "5000", "--seed", "11"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        out.lines()
            .skip_while(|l| !l.starts_with("anomalies"))
            .take_while(|l| !l.starts_with("telemetry"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let a = run();
    assert!(!a.is_empty());
    assert_eq!(a, run());
}

#[test]
fn bench_latency_writes_a_json_report() {
    let json = tmp_file("latency.json");
    let o = dotcompute(&[
        "bench",
        "latency",
        "--samples",
        "2000",
        "--warmup",
        "100",
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    assert!(out.contains("p50") && out.contains("reference"), "{out}");

    let report = read_json(&json);
    assert_eq!(report["benchmark"], "latency");
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(report["command_line"].as_array().unwrap().len() >= 2);
    assert!(report["reference"]["label"].as_str().unwrap().contains("reference"));
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "2 runtimes × 2 methods");
    for r in results {
        assert_eq!(r["count"], 2000, "{r}");
        let p50 = r["p50_ns"].as_u64().unwrap();
        assert!(p50 > 0, "{r}");
        assert!(r["p99_ns"].as_u64().unwrap() >= p50, "{r}");
        assert!(r["max_ns"].as_u64().unwrap() >= r["p99_ns"].as_u64().unwrap(), "{r}");
        assert!(r["mean_ns"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn bench_throughput_writes_a_json_report() {
    let json = tmp_file("throughput.json");
    let o = dotcompute(&[
        "bench",
        "throughput",
        "--messages",
        "20000",
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    assert!(out.contains("msg/s"), "{out}");

    let report = read_json(&json);
    assert_eq!(report["benchmark"], "throughput");
    let results = report["results"].as_array().unwrap();
    let workloads: Vec<&str> = results.iter().map(|r| r["workload"].as_str().unwrap()).collect();
    assert!(
        workloads.contains(&"pipelined") && workloads.contains(&"echo_window"),
        "{workloads:?}"
    );
    let kernels: Vec<u64> = results
        .iter()
        .filter(|r| r["workload"] == "scaling")
        .map(|r| r["kernels"].as_u64().unwrap())
        .collect();
    assert_eq!(kernels, vec![1, 2, 4, 8]);
    for r in results {
        assert_eq!(r["messages"], 20000, "{r}");
        assert!(r["msg_per_sec"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn info_names_the_version_and_the_async_tier() {
    let o = dotcompute(&["info"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    assert!(out.contains("async"), "{out}");
    assert!(out.contains("cpu cores:"), "{out}");
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let o = dotcompute(&["bench", "latency", "--samples", "lots"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("invalid value 'lots'") && err.contains("--samples"),
        "{err}"
    );

    let o = dotcompute(&["demo", "--points", "10"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--points"), "{}", stderr(&o));

    let o = dotcompute(&["bench", "nonsense"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nonsense"), "{}", stderr(&o));

    let o = dotcompute(&["bench", "throughput", "--windows", "0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--windows"), "{}", stderr(&o));
}

#[test]
fn an_unwritable_json_path_is_an_error_not_a_panic() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("no-such-dir")
        .join("out.json");
    let o = dotcompute(&["demo", "--points", "1000", "--json", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("error: cannot write"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
