//! Issue 16's table, rows 1–10, and issue 14's "CLI for real data", run as
//! a user (or an attacker) would: sizes from input and arguments bounded
//! with clear errors (small `--memory-limit`s stand in for gigabytes),
//! streams processed as they arrive, closed and full pipes, exit codes.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dotcompute"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Exit code, and stderr checked for the absence of a panic.
fn code(o: &Output) -> i32 {
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "a panic: {err}");
    o.status.code().unwrap_or(-1)
}

#[test]
fn row1_a_size_line_beyond_the_memory_limit_is_refused_at_once() {
    let mtx = scratch("huge.mtx");
    std::fs::write(
        &mtx,
        "%%MatrixMarket matrix coordinate pattern general\n4000000000 4000000000 1\n1 2\n",
    )
    .unwrap();
    let t = Instant::now();
    let o = run(&["pagerank", "--input", mtx.to_str().unwrap(), "--memory-limit", "1G"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("4000000000 nodes") && err.contains("memory limit of 1.00 GiB"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(20));
    // Above what the process may allocate (ulimit -v), the allocation fails
    // as an error, not an abort.
    let big = scratch("big.mtx");
    std::fs::write(
        &big,
        "%%MatrixMarket matrix coordinate pattern general\n300000000 300000000 1\n1 2\n",
    )
    .unwrap();
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 1000000; exec '{}' pagerank --input '{}' --memory-limit 1T",
            env!("CARGO_BIN_EXE_dotcompute"),
            big.display()
        ))
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("cannot allocate"), "{}", text(&o.stderr));
}

#[test]
fn rows2_to_6_counts_from_arguments_are_bounded() {
    let o = run(&[
        "pagerank",
        "--generate",
        "4294967295",
        "--edges-per-node",
        "0",
        "--memory-limit",
        "1G",
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("above the memory limit"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["anomaly", "--synthetic", "18446744073709551615"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("--synthetic"), "{}", text(&o.stderr));
    let o = run(&["anomaly", "--synthetic", "3000000000", "--memory-limit", "1G"]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("above the memory limit"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["demo", "--points", "18446744073709551615"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("1000..=100000000"), "{}", text(&o.stderr));
    for cmd in [["bench", "latency"], ["bench", "all"]] {
        let o = run(&[cmd[0], cmd[1], "--samples", "18446744073709551615"]);
        assert_eq!(code(&o), 2);
        assert!(text(&o.stderr).contains("1..=100000000"), "{}", text(&o.stderr));
    }
    let t = Instant::now();
    let o = run(&["pagerank", "--generate", "1000", "--threads", "5000"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("CPU cores"), "{}", text(&o.stderr));
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn row7_a_huge_malformed_token_is_quoted_cut() {
    let mut input = b"1\n2\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10 << 20));
    input.push(b'\n');
    let o = run_with_stdin(&["anomaly", "--input", "-"], &input);
    assert_eq!(code(&o), 1);
    let err = text(&o.stderr);
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    assert!(err.contains("<stdin>:3"), "{err}");
    // The same token in a graph file.
    let graph = scratch("token.txt");
    let mut g = b"1 2\n3 ".to_vec();
    g.extend(std::iter::repeat_n(b'y', 10 << 20));
    std::fs::write(&graph, g).unwrap();
    let o = run(&["pagerank", "--input", graph.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let err = text(&o.stderr);
    assert!(err.len() < 1000 && err.contains("(10485760 bytes)"), "{err}");
}

#[test]
fn row8_an_extreme_value_is_reported_and_later_anomalies_too_in_every_mode() {
    let mut values = String::new();
    for i in 0..3000 {
        let v = match i {
            1000 => 1e300,
            2000 => 50.0,
            _ => (i as f64 * 0.1).sin(),
        };
        values.push_str(&format!("{v}\n"));
    }
    let file = scratch("extreme.txt");
    std::fs::write(&file, values).unwrap();
    let mut reports = Vec::new();
    for mode in ["cpu", "batch", "actor", "actor-thread", "actor-spin"] {
        let out = scratch(&format!("extreme-{mode}.jsonl"));
        let o = run(&[
            "anomaly",
            "--input",
            file.to_str().unwrap(),
            "--window",
            "100",
            "--mode",
            mode,
            "--batch",
            "64",
            "--output",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{mode}: {}", text(&o.stderr));
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let indices: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
        assert!(
            indices.contains(&1000) && indices.contains(&2000),
            "{mode}: {indices:?}"
        );
        assert!(lines.iter().all(|l| l["score"].is_f64()), "{mode}: a non-finite score");
        reports.push(lines);
    }
    assert!(reports.iter().all(|r| *r == reports[0]), "the modes disagree");
}

/// Reads the child's stdout line by line on a thread, with arrival times.
fn lines_with_times(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn row9_a_slow_stream_reports_each_anomaly_as_it_arrives_in_bounded_memory() {
    let mut child = bin()
        .args(["anomaly", "--input", "-", "--window", "20", "--mode", "actor-thread"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let rx = lines_with_times(child.stdout.take().unwrap());
    for i in 0..200 {
        writeln!(stdin, "{}", (i as f64 * 0.3).sin()).unwrap();
    }
    writeln!(stdin, "1000").unwrap();
    stdin.flush().unwrap();
    let sent = Instant::now();
    // The spike's line arrives while the input is still open.
    let spike = loop {
        let (at, line) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the spike is reported before the input ends");
        if line.trim_start().starts_with("200 ") {
            break at;
        }
    };
    assert!(spike >= sent);
    // Then an endless stream: memory stays flat.
    let feeder = std::thread::spawn(move || {
        let chunk = "1.5\n".repeat(1 << 14);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(4) {
            if stdin.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
    });
    let rss = || {
        std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(1500));
    let early = rss();
    feeder.join().unwrap();
    let late = rss();
    assert!(late < early + 50_000, "RSS grew from {early} kB to {late} kB");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn row10_a_closed_or_full_stdout_is_not_a_panic() {
    // `| head -1`: the reader goes away; a quiet exit 0.
    let mut child = bin()
        .args(["anomaly", "--input", "-", "--window", "10", "--threshold", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    let feeder = std::thread::spawn(move || {
        for i in 0..2_000_000u64 {
            let v = if i % 50 == 0 { 100.0 } else { 0.0 };
            if writeln!(stdin, "{v}").is_err() {
                return;
            }
        }
    });
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    feeder.join().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "a closed pipe is quiet: {err}");
    assert_eq!(status.code(), Some(0));
    // Every command, through a closed pipe.
    for args in [
        &["info"][..],
        &["pagerank", "--generate", "200"][..],
        &["completions", "bash"][..],
    ] {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out.stderr));
    }
    // `> /dev/full`: an error, said once, exit 1.
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let out = bin()
            // (`info` would also probe the GPU drivers, which write their own lines.)
            .args(["completions", "bash"])
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(code(&out), 1);
        let err = text(&out.stderr);
        assert!(err.starts_with("error: cannot write to standard output"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn pagerank_reads_stdin_gzip_headers_and_weights() {
    let edges = "source,target,weight\n1,2,1\n2,3,1\n3,1,1\n1,3,1\n";
    let file = scratch("w.csv");
    std::fs::write(&file, edges).unwrap();
    let ranks_of = |o: &Output| -> Vec<(u64, f64)> {
        assert_eq!(code(o), 0, "{}", text(&o.stderr));
        text(&o.stdout)
            .lines()
            .map(|l| {
                let (n, r) = l.split_once('\t').unwrap();
                (n.parse().unwrap(), r.parse().unwrap())
            })
            .collect()
    };
    let from_file = ranks_of(&run(&["pagerank", "--input", file.to_str().unwrap(), "--output", "-"]));
    let from_stdin = ranks_of(&run_with_stdin(
        &["pagerank", "--input", "-", "--output", "-"],
        edges.as_bytes(),
    ));
    assert_eq!(from_file, from_stdin);
    let gz = scratch("w.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    enc.write_all(edges.as_bytes()).unwrap();
    enc.finish().unwrap();
    let from_gz = ranks_of(&run(&["pagerank", "--input", gz.to_str().unwrap(), "--output", "-"]));
    assert_eq!(from_file, from_gz);
    assert_eq!(from_file.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);

    // Weights matter: 1 -> 3 weighted 9 moves rank from 2 to 3.
    let heavy = scratch("heavy.csv");
    std::fs::write(&heavy, "1,2,1\n2,3,1\n3,1,1\n1,3,9\n").unwrap();
    let weighted = ranks_of(&run(&["pagerank", "--input", heavy.to_str().unwrap(), "--output", "-"]));
    assert!(
        weighted[2].1 > from_file[2].1 && weighted[1].1 < from_file[1].1,
        "{weighted:?} vs {from_file:?}"
    );
    let ignored = ranks_of(&run(&[
        "pagerank",
        "--input",
        heavy.to_str().unwrap(),
        "--weights",
        "ignore",
        "--output",
        "-",
    ]));
    assert_eq!(ignored, from_file);
    let o = run(&["pagerank", "--input", heavy.to_str().unwrap(), "--weights", "refuse"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("--weights refuse"), "{}", text(&o.stderr));
    let o = run(&[
        "pagerank",
        "--input",
        heavy.to_str().unwrap(),
        "--backend",
        "cpu-device",
    ]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("weighted"), "{}", text(&o.stderr));
    // Ids beyond u32.
    let big = ranks_of(&run_with_stdin(
        &["pagerank", "--input", "-", "--output", "-"],
        b"18446744073709551615 5\n5 18446744073709551615\n",
    ));
    assert_eq!(big.iter().map(|r| r.0).collect::<Vec<_>>(), [5, u64::MAX]);
}

#[test]
fn exit_codes_json_envelope_and_completions() {
    // Not converged: ranks and report written, exit 3.
    let json = scratch("nc.json");
    let o = run(&[
        "pagerank",
        "--generate",
        "2000",
        "--max-iter",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("not converged"), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["converged"], false);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["tool"], "dotcompute");
    assert_eq!(report["command"], "pagerank");
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    assert!(report["command_line"].as_array().unwrap().len() > 3);
    // Usage errors: 2, with the help hint; runtime errors: 1, each cause once.
    let o = run(&["pagerank"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("--input"), "{}", text(&o.stderr));
    let o = run(&["pagerank", "--input", "/nonexistent/graph.txt"]);
    assert_eq!(code(&o), 1);
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    let o = run(&["pagerank", "--generate", "100", "--json", "-", "--output", "-"]);
    assert_eq!(code(&o), 2);
    // --json - is the only thing on stdout.
    let o = run(&["anomaly", "--synthetic", "20000", "--json", "-"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert_eq!(report["command"], "anomaly");
    assert!(report["anomalies"].as_u64().unwrap() > 0);
    // All anomalies as CSV, not only the first 20; values shown as values.
    let csv = scratch("all.csv");
    let o = run(&["anomaly", "--synthetic", "20000", "--output", csv.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let rows = std::fs::read_to_string(&csv).unwrap();
    let mut lines = rows.lines();
    assert_eq!(lines.next(), Some("index,value,score"));
    assert_eq!(lines.count() as u64, report["anomalies"].as_u64().unwrap());
    let out = text(&o.stdout);
    assert!(out.contains("anomalies=") && !out.contains("Some("), "{out}");
    // Units are scaled and spaced: "12.34 µs", never "5148.7µs".
    let glued = out
        .char_indices()
        .any(|(i, c)| c == 'µ' && out[..i].ends_with(|p: char| p.is_ascii_digit()));
    assert!(!glued, "{out}");
    let o = run(&["pagerank", "--generate", "500"]);
    let out = text(&o.stdout);
    assert!(
        out.contains("nodes=500") && out.contains("redistribute") && !out.contains("Redistribute"),
        "{out}"
    );
    // Completions for every shell.
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert_eq!(code(&o), 0);
        assert!(text(&o.stdout).contains("pagerank"), "{shell}");
    }
}
