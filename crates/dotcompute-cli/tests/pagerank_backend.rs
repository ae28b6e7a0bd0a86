//! `dotcompute pagerank --backend cpu|cpu-device|cuda [--device N]`, run as a
//! user would: the report names the backend and device; without a GPU,
//! `--backend cuda` fails with the missing driver or device in its message.

use std::path::PathBuf;
use std::process::{Command, Output};

use dotcompute::device::Accelerator;

fn dotcompute(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dotcompute"))
        .args(args)
        .output()
        .expect("the dotcompute binary runs")
}

fn json_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-pagerank-{name}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn run_json(backend_args: &[&str], name: &str) -> (Output, Option<serde_json::Value>) {
    let json = json_path(name);
    let mut args = vec!["pagerank", "--generate", "3000", "--json", json.to_str().unwrap()];
    args.extend_from_slice(backend_args);
    let out = dotcompute(&args);
    let report = std::fs::read_to_string(&json)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("the JSON report parses"));
    (out, report)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn cpu_backend_still_works_and_is_named() {
    let (out, report) = run_json(&["--backend", "cpu"], "cpu");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("backend:    cpu ("), "{stdout}");
    let r = report.expect("report written");
    assert_eq!(r["backend"], "cpu");
    assert!(r["device"].as_str().is_some_and(|d| !d.is_empty()), "{r}");
    assert!(r["device_timings"].is_null());
    assert_eq!(r["converged"], true);
    // The default is the same solver.
    let (out, default) = run_json(&[], "default");
    assert!(out.status.success());
    let default = default.expect("report written");
    assert_eq!(default["backend"], "cpu");
    assert_eq!(default["iterations"], r["iterations"]);
}

#[test]
fn cpu_device_backend_agrees_with_the_cpu_solver() {
    let (out, cpu) = run_json(&["--backend", "cpu"], "cpu-ref");
    assert!(out.status.success());
    let (out, dev) = run_json(&["--backend", "cpu-device"], "cpu-device");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("backend:    cpu-device ("), "{stdout}");
    assert!(stdout.contains("launches"), "the device breakdown is printed: {stdout}");
    let (cpu, dev) = (cpu.unwrap(), dev.unwrap());
    assert_eq!(dev["backend"], "cpu-device");
    assert_eq!(dev["iterations"], cpu["iterations"]);
    let sum = |r: &serde_json::Value| r["rank_sum"].as_f64().unwrap();
    assert!((sum(&dev) - sum(&cpu)).abs() < 1e-12);
    assert!(dev["device_timings"]["iterate_seconds"].is_number());
}

#[test]
fn cuda_backend_runs_on_a_gpu_or_fails_clearly() {
    let (out, report) = run_json(&["--backend", "cuda"], "cuda");
    let (stdout, stderr) = text(&out);
    if Accelerator::discover().cuda_available() {
        assert!(out.status.success(), "{stderr}");
        let r = report.expect("report written");
        assert_eq!(r["backend"], "cuda:0");
        assert!(stdout.contains("backend:    cuda:0 ("), "{stdout}");
        return;
    }
    assert!(
        !out.status.success(),
        "--backend cuda succeeded without a GPU: {stdout}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(report.is_none(), "no report without a result");
    assert!(
        stderr.starts_with("error: ") && (stderr.contains("no CUDA driver") || stderr.contains("0 device(s)")),
        "{stderr}"
    );
    // It fails before generating the graph, with any device number.
    let (out, _) = run_json(&["--backend", "cuda", "--device", "2"], "cuda2");
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("CUDA") || stderr.contains("device 2"), "{stderr}");
}

#[test]
fn device_without_cuda_is_refused() {
    let (out, report) = run_json(&["--backend", "cpu", "--device", "1"], "cpu-device-1");
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(report.is_none());
    assert!(
        stderr.contains("--device selects a GPU; it needs --backend cuda"),
        "{stderr}"
    );
    // An unknown backend is clap's argument error (exit code 2).
    let out = dotcompute(&["pagerank", "--generate", "10", "--backend", "gpu"]);
    assert_eq!(out.status.code(), Some(2));
}
