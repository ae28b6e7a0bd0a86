//! igraph's PageRank, measured in the same run as ours by `dotcompute bench
//! pagerank`: the C PageRank library a Python user would pick
//! (`pip install igraph`; its PageRank is PRPACK).
//!
//! For each bench graph, a Python interpreter runs the embedded script
//! [`SCRIPT`] (`igraph_pagerank.py` beside this file) on the very edge-list
//! file our loader read: it times `Graph.Read_Edgelist` (load) and
//! `Graph.pagerank(damping=0.85)` (solve) separately, per repetition, and
//! writes igraph's ranks as raw little-endian f64. We then compare them with
//! our ranks from the accurate solve (dangling rank redistributed, L1 < 1e-10):
//! igraph computes true PageRank, so the two must agree.
//!
//! The interpreter is `$DOTCOMPUTE_PYTHON`, else `python3` on the `PATH`;
//! `scripts/provision-bench.sh` installs pinned wheels into `target/bench-tools`
//! and writes an env file that sets `DOTCOMPUTE_PYTHON` and `PYTHONPATH`.
//! Without Python or igraph the row says "not measured: <reason>", unless
//! `DOTCOMPUTE_REQUIRE_IGRAPH=1`, which makes that an error.

use std::path::{Path, PathBuf};
use std::process::Command;

use dotcompute_workloads::pagerank::BenchGraph;
use dotcompute_workloads::Timing;
use serde::{Deserialize, Serialize};

use crate::CliResult;

/// The Python side (see its docstring for what it times).
pub const SCRIPT: &str = include_str!("igraph_pagerank.py");

/// How igraph loads the graph.
pub const LOAD_METHOD: &str =
    "igraph.Graph.Read_Edgelist(path, directed=True) on the same edge-list file (+ add_vertices for trailing isolated nodes)";

/// How igraph solves it.
pub const SOLVE_METHOD: &str = "Graph.pagerank(damping=0.85, directed=True, implementation=\"prpack\")";

/// igraph's side of one bench size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IgraphOutcome {
    /// Measured.
    Measured(Box<IgraphMeasurement>),
    /// Not measured, and why.
    NotMeasured {
        /// Why (no interpreter, igraph not installed, the run failed).
        reason: String,
    },
}

impl IgraphOutcome {
    /// The measurement, if there is one.
    pub fn measured(&self) -> Option<&IgraphMeasurement> {
        match self {
            IgraphOutcome::Measured(m) => Some(m),
            IgraphOutcome::NotMeasured { .. } => None,
        }
    }
}

/// igraph's timings and its agreement with our ranks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IgraphMeasurement {
    /// `igraph.__version__`.
    pub igraph_version: String,
    /// The interpreter's version.
    pub python_version: String,
    /// The interpreter.
    pub python: String,
    /// What "load" times.
    pub load_method: &'static str,
    /// What "solve" times.
    pub solve_method: &'static str,
    /// `import igraph`, once, seconds (not in load or solve).
    pub import_seconds: f64,
    /// Load per repetition.
    pub load_seconds: Timing,
    /// Solve per repetition.
    pub solve_seconds: Timing,
    /// Load + solve of the same repetition.
    pub total_seconds: Timing,
    /// Vertices of igraph's graph.
    pub vertices: usize,
    /// Edges of igraph's graph.
    pub edges: usize,
    /// Σ of igraph's ranks.
    pub rank_sum: f64,
    /// max |igraph − ours| over the nodes.
    pub max_abs_diff: f64,
    /// max |igraph − ours| / ours over the nodes.
    pub max_rel_diff: f64,
    /// Our ranks compared with: their parameters.
    pub compared_with: String,
}

/// What the script prints.
#[derive(Debug, Deserialize)]
struct ScriptOutput {
    error: Option<String>,
    igraph_version: Option<String>,
    python_version: Option<String>,
    python: Option<String>,
    vertices: Option<usize>,
    edges: Option<usize>,
    import_seconds: Option<f64>,
    load_seconds: Option<Vec<f64>>,
    solve_seconds: Option<Vec<f64>>,
}

/// The interpreter to run: `$DOTCOMPUTE_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("DOTCOMPUTE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

/// Whether `DOTCOMPUTE_REQUIRE_IGRAPH=1`: not measuring is then an error.
pub fn required() -> bool {
    std::env::var("DOTCOMPUTE_REQUIRE_IGRAPH").is_ok_and(|v| v == "1")
}

/// The largest absolute and relative differences between two rank vectors
/// (relative to `ours`; `None` when the lengths differ or one is empty).
pub fn max_diff(theirs: &[f64], ours: &[f64]) -> Option<(f64, f64)> {
    if theirs.len() != ours.len() || ours.is_empty() {
        return None;
    }
    let mut abs = 0.0f64;
    let mut rel = 0.0f64;
    for (t, o) in theirs.iter().zip(ours) {
        let d = (t - o).abs();
        // NaN never compares greater: make it win.
        if d.is_nan() || d > abs {
            abs = if d.is_nan() { f64::INFINITY } else { d };
        }
        let r = if *o != 0.0 { d / o.abs() } else { d };
        if r.is_nan() || r > rel {
            rel = if r.is_nan() { f64::INFINITY } else { r };
        }
    }
    Some((abs, rel))
}

/// Runs igraph on `graph`'s edge list, `repetitions` times, and compares its
/// ranks with `graph.ranks`. `Ok(NotMeasured)` when Python or igraph is
/// missing or the run fails; that is an error with
/// `DOTCOMPUTE_REQUIRE_IGRAPH=1`.
pub fn measure(graph: &BenchGraph<'_>, repetitions: usize) -> CliResult<IgraphOutcome> {
    let outcome = run_script(graph, repetitions);
    match outcome {
        Ok(m) => Ok(IgraphOutcome::Measured(Box::new(m))),
        Err(reason) if required() => {
            Err(format!("igraph comparison required (DOTCOMPUTE_REQUIRE_IGRAPH=1) but not measured: {reason}").into())
        }
        Err(reason) => Ok(IgraphOutcome::NotMeasured { reason }),
    }
}

/// A scratch file removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run_script(graph: &BenchGraph<'_>, repetitions: usize) -> Result<IgraphMeasurement, String> {
    run_script_with(graph, repetitions, &python())
}

fn run_script_with(graph: &BenchGraph<'_>, repetitions: usize, python: &str) -> Result<IgraphMeasurement, String> {
    let python = python.to_string();
    let ranks_path = Scratch(ranks_file(graph.path));
    let output = Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(graph.path)
        .arg(graph.nodes.to_string())
        .arg(graph.ranks_config.damping.to_string())
        .arg(repetitions.max(1).to_string())
        .arg(&ranks_path.0)
        .output()
        .map_err(|e| format!("cannot run {python}: {e} (set DOTCOMPUTE_PYTHON, or run scripts/provision-bench.sh)"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed: Option<ScriptOutput> = stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok());
    if let Some(ScriptOutput { error: Some(e), .. }) = &parsed {
        return Err(format!(
            "{e} (with {python}; run scripts/provision-bench.sh and source its env file)"
        ));
    }
    let parsed = match (output.status.success(), parsed) {
        (true, Some(p)) => p,
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!("{python} failed ({}): {}", output.status, tail.join(" | ")));
        }
    };
    let missing = |what: &str| format!("the igraph script's output lacks {what}");
    let loads = parsed.load_seconds.ok_or_else(|| missing("load_seconds"))?;
    let solves = parsed.solve_seconds.ok_or_else(|| missing("solve_seconds"))?;
    let vertices = parsed.vertices.ok_or_else(|| missing("vertices"))?;
    let edges = parsed.edges.ok_or_else(|| missing("edges"))?;
    if vertices != graph.graph.num_nodes() || edges != graph.graph.num_edges() {
        return Err(format!(
            "igraph read {vertices} vertices and {edges} edges, we read {} and {}",
            graph.graph.num_nodes(),
            graph.graph.num_edges()
        ));
    }
    let theirs = read_f64s(&ranks_path.0)?;
    let (max_abs_diff, max_rel_diff) = max_diff(&theirs, graph.ranks)
        .ok_or_else(|| format!("igraph gave {} ranks for {} nodes", theirs.len(), graph.ranks.len()))?;
    let totals: Vec<f64> = loads.iter().zip(&solves).map(|(l, s)| l + s).collect();
    let c = graph.ranks_config;
    Ok(IgraphMeasurement {
        igraph_version: parsed.igraph_version.unwrap_or_default(),
        python_version: parsed.python_version.unwrap_or_default(),
        python: parsed.python.unwrap_or(python),
        load_method: LOAD_METHOD,
        solve_method: SOLVE_METHOD,
        import_seconds: parsed.import_seconds.unwrap_or(0.0),
        load_seconds: Timing::of(&loads),
        solve_seconds: Timing::of(&solves),
        total_seconds: Timing::of(&totals),
        vertices,
        edges,
        rank_sum: theirs.iter().sum(),
        max_abs_diff,
        max_rel_diff,
        compared_with: format!(
            "dotcompute, damping {}, dangling {:?}, {:?} residual < {:e}",
            c.damping, c.dangling, c.norm, c.tolerance
        )
        .to_lowercase(),
    })
}

fn ranks_file(edge_list: &Path) -> PathBuf {
    let mut name = edge_list.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".igraph-ranks.f64");
    edge_list.with_file_name(name)
}

fn read_f64s(path: &Path) -> Result<Vec<f64>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read igraph's ranks {}: {e}", path.display()))?;
    if !bytes.len().is_multiple_of(8) {
        return Err(format!(
            "igraph's ranks file has {} bytes, not a multiple of 8",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dotcompute_workloads::pagerank::{bench_with, PagerankBenchOptions, PagerankConfig};

    #[test]
    fn max_diff_is_absolute_and_relative_and_sees_nan() {
        assert_eq!(
            max_diff(&[0.5, 0.25], &[0.5, 0.2]),
            Some((0.04999999999999999, 0.24999999999999994))
        );
        assert_eq!(max_diff(&[0.1], &[0.1, 0.2]), None);
        assert_eq!(max_diff(&[], &[]), None);
        assert_eq!(max_diff(&[f64::NAN, 0.1], &[0.1, 0.1]).unwrap().0, f64::INFINITY);
    }

    /// igraph's ranks agree with ours within 1e-6 on a small generated graph,
    /// when igraph is there (`scripts/provision-bench.sh`); otherwise the test
    /// says why it skips (and fails with `DOTCOMPUTE_REQUIRE_IGRAPH=1`).
    #[test]
    fn igraph_agrees_with_our_ranks() {
        let options = PagerankBenchOptions {
            sizes: vec![2_000],
            repetitions: 1,
            ..PagerankBenchOptions::default()
        };
        let (report, outcomes) =
            bench_with(&options, |g| measure(g, 1)).expect("the bench runs (or igraph is required and missing)");
        assert_eq!(report.rows.len(), 1);
        match &outcomes[0] {
            IgraphOutcome::NotMeasured { reason } => {
                assert!(!required());
                eprintln!("skipped: igraph not measured: {reason}");
            }
            IgraphOutcome::Measured(m) => {
                assert_eq!((m.vertices, m.edges), (2_000, 10_000));
                assert!((m.rank_sum - 1.0).abs() < 1e-9, "igraph's ranks sum to {}", m.rank_sum);
                assert!(m.max_abs_diff < 1e-6, "max |Δrank| {:e}", m.max_abs_diff);
                assert!(m.max_rel_diff < 1e-6, "max relative Δrank {:e}", m.max_rel_diff);
                assert!(m.load_seconds.min > 0.0 && m.solve_seconds.min > 0.0);
                assert!(m.compared_with.contains("1e-10"), "{}", m.compared_with);
            }
        }
        // Our loose default (L∞ < 1e-6 with the dangling rank dropped) is not
        // true PageRank, and the same comparison tells (so it can fail).
        let loose = PagerankBenchOptions {
            config: PagerankConfig::pydotcompute(),
            accurate: None,
            ..options
        };
        let (_, outcomes) = bench_with(&loose, |g| measure(g, 1)).expect("the bench runs");
        if let IgraphOutcome::Measured(m) = &outcomes[0] {
            assert!(
                m.max_rel_diff > 1e-3,
                "dropping the dangling rank went unnoticed: {:e}",
                m.max_rel_diff
            );
        }
    }

    #[test]
    fn a_missing_interpreter_is_not_measured_with_a_reason() {
        let options = PagerankBenchOptions {
            sizes: vec![50],
            repetitions: 1,
            accurate: None,
            ..PagerankBenchOptions::default()
        };
        // An interpreter that cannot exist, whatever the environment says.
        let (_, outcomes) = bench_with(&options, |g| -> CliResult<Result<IgraphMeasurement, String>> {
            Ok(run_script_with(g, 1, "/nonexistent/python-for-dotcompute-tests"))
        })
        .unwrap();
        let reason = outcomes[0].as_ref().unwrap_err();
        assert!(
            reason.contains("cannot run /nonexistent/python-for-dotcompute-tests"),
            "{reason}"
        );
    }
}
