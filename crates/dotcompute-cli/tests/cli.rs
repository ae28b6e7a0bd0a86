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

/// Checks one latency result's figures.
fn check_latency(r: &serde_json::Value, count: u64) {
    assert_eq!(r["count"], count, "{r}");
    let p50 = r["p50_ns"].as_u64().unwrap();
    assert!(p50 > 0, "{r}");
    for (lower, upper) in [
        ("p50_ns", "p95_ns"),
        ("p95_ns", "p99_ns"),
        ("p99_ns", "p999_ns"),
        ("p999_ns", "max_ns"),
    ] {
        assert!(
            r[upper].as_u64().unwrap() >= r[lower].as_u64().unwrap(),
            "{lower} <= {upper}: {r}"
        );
    }
    assert!(r["mean_ns"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["over_1ms"].as_u64().is_some(), "{r}");
    let curve = r["curve"].as_array().unwrap();
    assert!(curve.len() >= 2, "{r}");
    assert_eq!(curve.last().unwrap()["ns"], r["max_ns"], "{r}");
}

#[test]
fn bench_latency_writes_a_json_report() {
    let json = tmp_file("latency.json");
    let o = dotcompute(&[
        "bench",
        "latency",
        "--tier",
        "async",
        "--samples",
        "2000",
        "--warmup",
        "100",
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    assert!(
        out.contains("p50") && out.contains("p99.9") && out.contains("reference"),
        "{out}"
    );
    assert!(out.contains("goals"), "{out}");

    let report = read_json(&json);
    assert_eq!(report["benchmark"], "latency");
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(report["command_line"].as_array().unwrap().len() >= 2);
    assert!(report["reference"]["label"].as_str().unwrap().contains("reference"));
    assert_eq!(report["config"]["tiers"], serde_json::json!(["async"]));
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "2 runtimes × 2 methods");
    for r in results {
        assert_eq!(r["tier"], "async", "{r}");
        check_latency(r, 2000);
    }
    let hosts: Vec<&str> = results.iter().map(|r| r["host"].as_str().unwrap()).collect();
    assert_eq!(
        hosts,
        ["multi_thread", "multi_thread", "current_thread", "current_thread"]
    );
    assert!(report["goals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["goal"].as_str().unwrap().contains("async round trip p50")));
}

#[test]
fn bench_latency_runs_the_thread_and_spin_tiers_and_draws_an_svg() {
    let json = tmp_file("latency-tiers.json");
    let svg = tmp_file("latency-tiers.svg");
    let o = dotcompute(&[
        "bench",
        "latency",
        "--tier",
        "thread,spin",
        "--samples",
        "500",
        "--warmup",
        "50",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    let report = read_json(&json);
    let results = report["results"].as_array().unwrap();
    let cases: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r["tier"].as_str().unwrap(), r["host"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cases,
        [
            ("thread", "plain_thread"),
            ("thread", "multi_thread"),
            ("thread", "multi_thread"),
            ("spin", "plain_thread"),
            ("spin", "multi_thread"),
            ("spin", "multi_thread"),
            ("spin", "plain_thread")
        ]
    );
    for r in results {
        check_latency(r, 500);
    }
    assert_eq!(results[0]["method_label"], "send_blocking+receive_blocking");
    assert_eq!(results[2]["method"], "call", "an async host's call to a thread kernel");
    assert_eq!(results[5]["method"], "call", "an async host's call to a spin kernel");
    assert_eq!(results[6]["method"], "raw_ring", "the spin tier's no-runtime baseline");

    let chart = std::fs::read_to_string(&svg).expect("the SVG was written");
    assert!(
        chart.trim_start().starts_with("<svg"),
        "{}",
        &chart[..chart.len().min(200)]
    );
    assert!(chart.trim_end().ends_with("</svg>"));
    assert!(
        chart.contains("spin · thread · send_blocking+receive_blocking"),
        "a legend entry per case"
    );
    assert!(chart.contains("PyDotCompute"), "the reference lines are labelled");
}

#[test]
fn the_process_tier_runs_its_kernel_in_a_child_process() {
    let json = tmp_file("process.json");
    let o = dotcompute(&[
        "bench",
        "latency",
        "--tier",
        "process",
        "--samples",
        "300",
        "--warmup",
        "50",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(text.contains("\"process\""), "no process tier in {text}");
    assert!(v.to_string().contains("p50"), "{v}");
}

#[test]
fn bench_throughput_writes_a_json_report() {
    let json = tmp_file("throughput.json");
    let o = dotcompute(&[
        "bench",
        "throughput",
        "--tier",
        "async",
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
    assert_eq!(report["config"]["batch"], 64);
    let results = report["results"].as_array().unwrap();
    let workloads: Vec<&str> = results.iter().map(|r| r["workload"].as_str().unwrap()).collect();
    for w in [
        "one_way",
        "one_way_batched",
        "echo_pipelined",
        "echo_pipelined_batched",
        "echo_window",
        "scaling",
    ] {
        assert!(workloads.contains(&w), "{w} in {workloads:?}");
    }
    // Both schedulers for the async tier's pipelined echo.
    let pipelined_hosts: Vec<&str> = results
        .iter()
        .filter(|r| r["workload"] == "echo_pipelined")
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(pipelined_hosts, ["multi_thread", "current_thread"]);
    let kernels: Vec<u64> = results
        .iter()
        .filter(|r| r["workload"] == "scaling")
        .map(|r| r["kernels"].as_u64().unwrap())
        .collect();
    assert_eq!(kernels, vec![1, 2, 4, 8]);
    for r in results {
        assert_eq!(r["tier"], "async", "{r}");
        assert_eq!(r["messages"], 20000, "{r}");
        assert!(r["msg_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(
            r["batch"].is_null(),
            !r["workload"].as_str().unwrap().ends_with("batched"),
            "{r}"
        );
    }
}

#[test]
fn bench_throughput_runs_the_thread_and_spin_tiers_batched() {
    let json = tmp_file("throughput-tiers.json");
    let o = dotcompute(&[
        "bench",
        "throughput",
        "--tier",
        "thread,spin",
        "--messages",
        "5000",
        "--batch",
        "32",
        "--windows",
        "16",
        "--kernels",
        "1,2",
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    let report = read_json(&json);
    let results = report["results"].as_array().unwrap();
    for tier in ["thread", "spin"] {
        let of_tier: Vec<&serde_json::Value> = results.iter().filter(|r| r["tier"] == tier).collect();
        // one_way ×2, pipelined ×2, one window, two kernel counts.
        assert_eq!(of_tier.len(), 7, "{tier}: {of_tier:?}");
        for r in of_tier {
            assert_eq!(r["host"], "plain_thread", "{r}");
            assert!(r["msg_per_sec"].as_f64().unwrap() > 0.0, "{r}");
            if r["workload"].as_str().unwrap().ends_with("batched") {
                assert_eq!(r["batch"], 32, "{r}");
            }
        }
    }
}

#[test]
fn bench_queue_compares_the_queues_in_one_run() {
    let json = tmp_file("queue.json");
    let o = dotcompute(&[
        "bench",
        "queue",
        "--iterations",
        "20000",
        "--rounds",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    assert!(out.contains("push+pop") && out.contains("rtrb"), "{out}");
    let report = read_json(&json);
    assert_eq!(report["benchmark"], "queue");
    let results = report["results"].as_array().unwrap();
    let queues: Vec<&str> = results.iter().map(|r| r["queue"].as_str().unwrap()).collect();
    for q in [
        "dotcompute SpscRing",
        "dotcompute MessageQueue",
        "rtrb",
        "crossbeam ArrayQueue",
        "crossbeam_channel bounded",
    ] {
        assert!(queues.contains(&q), "{q} in {queues:?}");
    }
    for r in results {
        assert!(r["push_pop_ns"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["batched_ns_per_item"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(report["goals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["goal"].as_str().unwrap().contains("SPSC push+pop")));
}

#[test]
fn bench_all_writes_one_report_and_one_chart() {
    let json = tmp_file("all.json");
    let svg = tmp_file("all.svg");
    let o = dotcompute(&[
        "bench",
        "all",
        "--samples",
        "300",
        "--warmup",
        "20",
        "--messages",
        "2000",
        "--iterations",
        "10000",
        "--rounds",
        "1",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    for section in ["== latency", "== throughput", "== queue", "goals"] {
        assert!(out.contains(section), "{section} in:\n{out}");
    }
    let report = read_json(&json);
    assert_eq!(report["benchmark"], "all");
    let tiers: Vec<&str> = report["results"]["latency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tier"].as_str().unwrap())
        .collect();
    for t in ["async", "thread", "spin"] {
        assert!(tiers.contains(&t), "{t} in {tiers:?}");
    }
    assert!(!report["results"]["throughput"].as_array().unwrap().is_empty());
    assert_eq!(report["results"]["queue"].as_array().unwrap().len(), 9);
    assert!(report["reference"]["queue"]["label"]
        .as_str()
        .unwrap()
        .contains("not measured"));
    assert!(report["goals"].as_array().unwrap().len() >= 5);
    assert!(std::fs::read_to_string(&svg).unwrap().trim_start().starts_with("<svg"));
    // The noise (other processes' CPU share) of the run and of each section.
    if cfg!(target_os = "linux") {
        for noise in [
            &report["noise"],
            &report["results"]["noise"]["latency"],
            &report["results"]["noise"]["queue"],
        ] {
            let pct = noise["other_cpu_pct"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&pct), "{noise}");
        }
        assert!(out.contains("noise"), "{out}");
    }
}

#[test]
fn info_names_the_version_and_the_tiers() {
    let o = dotcompute(&["info"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    for tier in ["async ", "thread ", "spin "] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(tier)),
            "{tier} in:\n{out}"
        );
    }
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

    let o = dotcompute(&["bench", "latency", "--tier", "quantum"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("'quantum'") && err.contains("spin") && err.contains("gpu"),
        "{err}"
    );

    // The gpu tier exists; without an NVIDIA GPU it fails saying why.
    if dotcompute::device::dylib::cuda_driver().is_err() {
        let o = dotcompute(&["bench", "latency", "--tier", "gpu", "--samples", "10"]);
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(
            err.contains("gpu tier needs an NVIDIA GPU") && err.contains("no CUDA driver"),
            "{err}"
        );
    }

    let o = dotcompute(&["bench", "throughput", "--batch", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--batch"), "{}", stderr(&o));
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
