//! Shared output helpers: JSON reports (with their envelope, to a file or
//! `-` for standard output) and human-readable figures with units.
//!
//! Every JSON report the tool writes starts with the same fields, described
//! in `docs/json.md`: `schema_version` ([`SCHEMA_VERSION`]), `tool`,
//! `version`, `command` and `command_line`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::CliResult;

/// The version of the JSON reports' layout; raised when a field changes
/// meaning or disappears (adding a field does not raise it).
pub const SCHEMA_VERSION: u32 = 1;

/// The fields every report starts with, then the report's own.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    schema_version: u32,
    tool: &'static str,
    version: &'static str,
    command: &'a str,
    command_line: Vec<String>,
    #[serde(flatten)]
    report: &'a T,
}

/// Whether `path` means standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// [`check_json_path`] for a command that can write its report to
/// standard output instead of its human report (`-`).
pub fn check_json_path_or_stdout(path: Option<&PathBuf>) -> CliResult<()> {
    match path {
        Some(p) if is_stdout(p) => Ok(()),
        other => check_json_path(other),
    }
}

/// Fails early, before a long run, if `path`'s directory does not exist;
/// `-` is refused (the command's human report is on standard output).
pub fn check_json_path(path: Option<&PathBuf>) -> CliResult<()> {
    let Some(path) = path else { return Ok(()) };
    if is_stdout(path) {
        return Err(crate::ending::usage(
            "this command prints its report on standard output: give the JSON a file name \
             (`--json -` is for pagerank and anomaly)",
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        )
        .into())
    }
}

/// Writes `value` as pretty JSON to `path` (`-`: standard output).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> CliResult<()> {
    let text = serde_json::to_string_pretty(value)?;
    if is_stdout(path) {
        println!("{text}");
        return Ok(());
    }
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

/// Writes the report of `command` with the common envelope to `path`
/// (`-`: standard output).
pub fn write_report<T: Serialize>(path: &Path, command: &str, report: &T) -> CliResult<()> {
    let envelope = Envelope {
        schema_version: SCHEMA_VERSION,
        tool: "dotcompute",
        version: env!("CARGO_PKG_VERSION"),
        command,
        command_line: std::env::args().collect(),
        report,
    };
    write_json(path, &envelope)
}

/// `1.50 GiB`, `12.0 MiB`, `512 B`.
pub fn fmt_bytes(b: u64) -> String {
    dotcompute_workloads::limits::fmt_bytes(b)
}

/// A duration given in seconds, with a unit (`5.15 ms`).
pub fn fmt_secs(s: f64) -> String {
    fmt_duration(Duration::from_secs_f64(s.max(0.0)))
}

/// A duration given in microseconds, with a unit (`5.15 ms`).
pub fn fmt_us(us: f64) -> String {
    fmt_ns(us * 1e3)
}

/// `1.23 ms`, `45.6 µs`, `1.234 s`.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.3} s", ns / 1e9)
    }
}

/// `1.23M`, `456.7K`, `12`.
pub fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1}K", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

/// `850 ns`, `12.34 µs`, `1.23 ms` (two decimals, for latency tables).
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// `12%`, or `-` when unknown.
pub fn fmt_pct(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_string(), |p| format!("{p:.0}%"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_formatted_with_units() {
        assert_eq!(fmt_duration(Duration::from_nanos(850)), "850 ns");
        assert_eq!(fmt_duration(Duration::from_micros(45)), "45.0 µs");
        assert_eq!(fmt_duration(Duration::from_millis(3)), "3.0 ms");
        assert_eq!(fmt_duration(Duration::from_millis(1234)), "1.234 s");
        assert_eq!(fmt_rate(12.0), "12");
        assert_eq!(fmt_rate(456_700.0), "456.7K");
        assert_eq!(fmt_rate(1_230_000.0), "1.23M");
        assert_eq!(fmt_ns(1_550.0), "1.55 µs");
        assert_eq!(fmt_ns(2_500_000.0), "2.50 ms");
        assert_eq!(fmt_pct(Some(12.4)), "12%");
        assert_eq!(fmt_pct(None), "-");
    }

    #[test]
    fn a_missing_directory_is_caught_before_the_run() {
        assert!(check_json_path(None).is_ok());
        assert!(check_json_path(Some(&PathBuf::from("report.json"))).is_ok());
        let err = check_json_path(Some(&PathBuf::from("/no/such/dir/report.json"))).unwrap_err();
        assert!(err.to_string().contains("/no/such/dir"), "{err}");
    }
}
