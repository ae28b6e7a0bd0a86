//! Shared output helpers: JSON reports and human-readable figures.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::CliResult;

/// Fails early, before a long run, if `path`'s directory does not exist.
pub fn check_json_path(path: Option<&PathBuf>) -> CliResult<()> {
    let Some(path) = path else { return Ok(()) };
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

/// Writes `value` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> CliResult<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()).into())
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
