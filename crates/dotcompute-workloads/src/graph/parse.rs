//! Loaders: edge lists (SNAP style, CSV) and Matrix Market coordinate files,
//! from a file, a gzip file (`.gz`) or standard input (`-`).
//!
//! Edge lists: one edge `src dst [weight]` per line; fields are separated by
//! spaces, tabs or commas; ids are non-negative integers up to `u64::MAX`
//! (renumbered `0..n`, see [`NodeIds`]); lines starting with `#` or `%` are
//! comments; blank lines and CRLF endings are accepted; a first line that
//! does not start with a number (`source,target,weight`) is a header and is
//! skipped. A third column is a weight (a finite, non-negative number), used
//! or refused as [`Weights`] says, never silently dropped: with
//! [`Weights::Use`] (the default) either every edge has one or none does,
//! and a fourth column is an error; [`Weights::Ignore`] reads the first two
//! columns of each line and skips the rest; [`Weights::Refuse`] accepts
//! exactly two. Anything else (a sign, a letter) is an error naming the
//! line, quoting at most 40 characters of the token.
//!
//! Matrix Market: the banner `%%MatrixMarket matrix coordinate FIELD SYMMETRY`
//! with FIELD `pattern`, `real`, `double` or `integer` and SYMMETRY `general`
//! or `symmetric` (keywords are case-insensitive); then `%` comments, the size
//! line `M N NNZ` (square: `M == N`), and `NNZ` entries `i j [value]` with
//! 1-based indices. Entry `(i, j)` is the edge `i -> j` and its value the
//! edge's weight (with [`Weights::Use`]); a symmetric file also gives `j -> i`
//! for every off-diagonal entry.
//!
//! Bounds, checked before anything is allocated for them: the input's size
//! against the [`MemoryLimit`] (a gzip stream is stopped when its output
//! passes it); a size line's entry count against what the bytes after it can
//! hold; the node and edge counts a header or the largest id implies against
//! the limit ([`graph_bytes`]). Buffers that grow with the input grow
//! fallibly, so running out of memory is an error.
//!
//! Parsing is byte-level and runs on the current rayon pool: the input is cut
//! at line boundaries into chunks that are parsed in parallel, and errors
//! carry the line number in the whole input (the earliest error wins).

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use super::{Graph, GraphError, NodeLabels, MAX_NODES};
use crate::limits::{graph_bytes, quote_token, try_push, try_reserve, try_vec, MemoryLimit};
use crate::progress::{Counted, Phase, Progress};

/// The file formats [`load_graph`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphFormat {
    /// `src dst [weight]` per line.
    EdgeList,
    /// Matrix Market coordinate format.
    Mtx,
}

impl GraphFormat {
    /// The format a file name suggests: `.mtx` (or `.mtx.gz`) is Matrix
    /// Market, anything else an edge list.
    pub fn from_path(path: &Path) -> GraphFormat {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".mtx") {
            GraphFormat::Mtx
        } else {
            GraphFormat::EdgeList
        }
    }

    /// The format of bytes whose name says nothing (standard input): Matrix
    /// Market if they start with its banner.
    pub fn sniff(bytes: &[u8]) -> GraphFormat {
        let head = &bytes[..bytes.len().min(14)];
        if head.eq_ignore_ascii_case(b"%%MatrixMarket") {
            GraphFormat::Mtx
        } else {
            GraphFormat::EdgeList
        }
    }
}

impl std::str::FromStr for GraphFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "edgelist" | "edge-list" | "edges" | "snap" => Ok(GraphFormat::EdgeList),
            "mtx" | "matrixmarket" | "matrix-market" => Ok(GraphFormat::Mtx),
            _ => Err(format!("unknown graph format {s:?} (expected edgelist or mtx)")),
        }
    }
}

/// How the ids of an edge list become node indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeIds {
    /// The ids that occur (any `u64`) are renumbered `0..n` in ascending
    /// order; output files print the original ids. The graph has exactly the
    /// nodes that appear in some edge (the default).
    #[default]
    Compact,
    /// Ids are indices: the graph has `max id + 1` nodes (so ids stay below
    /// `u32::MAX`), and ids that never occur are isolated nodes (they still
    /// get rank). Use it for graphs whose nodes are `0..n` by construction,
    /// such as exported generator output with isolated nodes.
    Dense,
}

impl std::str::FromStr for NodeIds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "compact" => Ok(NodeIds::Compact),
            "dense" => Ok(NodeIds::Dense),
            _ => Err(format!("unknown id mode {s:?} (expected compact or dense)")),
        }
    }
}

/// What happens to edge weights: a third edge-list column, or the values of
/// a `real`/`integer` Matrix Market file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// Weights make a weighted graph (weighted PageRank); a graph without
    /// them is unweighted. The default.
    #[default]
    Use,
    /// Every edge counts once: edge-list columns after the second are
    /// skipped, Matrix Market values are checked but not used.
    Ignore,
    /// Weights are an error: edge lists must have exactly two columns,
    /// Matrix Market files must be `pattern`.
    Refuse,
}

impl std::str::FromStr for Weights {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "use" => Ok(Weights::Use),
            "ignore" => Ok(Weights::Ignore),
            "refuse" => Ok(Weights::Refuse),
            _ => Err(format!("unknown weight policy {s:?} (expected use, ignore or refuse)")),
        }
    }
}

/// Options of [`load_graph`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadOptions {
    /// The format; `None` guesses from the name ([`GraphFormat::from_path`])
    /// or, for standard input, from the content ([`GraphFormat::sniff`]).
    pub format: Option<GraphFormat>,
    /// Id handling for edge lists (Matrix Market ids are always dense, 1-based).
    pub ids: NodeIds,
    /// With [`NodeIds::Dense`], the graph has at least this many nodes
    /// (for node sets that end in isolated nodes). Ignored otherwise.
    pub min_nodes: usize,
    /// Edge weights (default: used).
    pub weights: Weights,
    /// The most memory the input and the graph may take (default: the
    /// machine's, see [`MemoryLimit`]).
    pub memory_limit: MemoryLimit,
}

/// Reads a graph file; `-` is standard input, a name ending in `.gz` is
/// decompressed (gzip) as it is read.
///
/// ```
/// use dotcompute_workloads::graph::{load_graph, LoadOptions};
///
/// let path = std::env::temp_dir().join(format!("doc_graph_{}.txt", std::process::id()));
/// std::fs::write(&path, "# a triangle\n10 20\n20 30\n30 10\n").unwrap();
/// let g = load_graph(&path, &LoadOptions::default()).unwrap();
/// assert_eq!((g.num_nodes(), g.num_edges()), (3, 3));
/// assert_eq!(g.label(2), 30);
/// std::fs::remove_file(&path).unwrap();
/// ```
pub fn load_graph(path: &Path, options: &LoadOptions) -> Result<Graph, GraphError> {
    load_graph_observed(path, options, &Progress::new())
}

/// [`load_graph`], reporting the bytes read (and then the parse) to
/// `progress`.
pub(crate) fn load_graph_observed(
    path: &Path,
    options: &LoadOptions,
    progress: &Progress,
) -> Result<Graph, GraphError> {
    let limit = options.memory_limit;
    let io = |source| GraphError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let (bytes, name) = if path.as_os_str() == "-" {
        let stdin = std::io::stdin();
        progress.reading(None);
        let input = Counted {
            inner: stdin.lock(),
            progress,
        };
        (
            read_limited(input, 0, limit, "<stdin>").map_err(|e| e.into_graph(path))?,
            "<stdin>".to_string(),
        )
    } else {
        let file = std::fs::File::open(path).map_err(io)?;
        let name = path.display().to_string();
        let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let len = file.metadata().map_err(io)?.len();
        // Progress counts the file's bytes (compressed ones for gzip).
        progress.reading(Some(len));
        let file = Counted { inner: file, progress };
        let bytes = if gz {
            let decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
            read_limited(decoder, 0, limit, &name)
        } else {
            limit.check(format!("{name} ({len} bytes)"), len)?;
            read_limited(file, len, limit, &name)
        };
        (bytes.map_err(|e| e.into_graph(path))?, name)
    };
    let format = options.format.unwrap_or_else(|| {
        if path.as_os_str() == "-" {
            GraphFormat::sniff(&bytes)
        } else {
            GraphFormat::from_path(path)
        }
    });
    let options = LoadOptions {
        format: Some(format),
        ..options.clone()
    };
    progress.phase(Phase::Building);
    parse_graph(&bytes, &name, &options)
}

/// Why [`read_limited`] stopped.
enum ReadError {
    Io(std::io::Error),
    Limit(GraphError),
}

impl ReadError {
    fn into_graph(self, path: &Path) -> GraphError {
        match self {
            ReadError::Io(source) => GraphError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            },
            ReadError::Limit(e) => e,
        }
    }
}

/// Reads everything from `r` (expected to be about `hint` bytes), refusing
/// to hold more than `limit`.
fn read_limited(mut r: impl Read, hint: u64, limit: MemoryLimit, name: &str) -> Result<Vec<u8>, ReadError> {
    let mut bytes: Vec<u8> = Vec::new();
    let first = usize::try_from(hint.min(limit.0))
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    try_reserve(&mut bytes, first.min(1 << 30), "the input").map_err(|e| ReadError::Limit(e.into()))?;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        let total = bytes.len() as u64 + n as u64;
        if total > limit.0 {
            return Err(ReadError::Limit(
                limit
                    .check(format!("{name} (more than {} bytes so far)", bytes.len()), total)
                    .err()
                    .map_or_else(|| GraphError::TooLarge(name.to_string()), GraphError::from),
            ));
        }
        if bytes.len() + n > bytes.capacity() {
            let more = bytes.len().max(n);
            try_reserve(&mut bytes, more, "the input").map_err(|e| ReadError::Limit(e.into()))?;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Parses a graph held in memory; `name` is what errors call it. The
/// format must be given or is sniffed ([`GraphFormat::sniff`]).
pub fn parse_graph(bytes: &[u8], name: &str, options: &LoadOptions) -> Result<Graph, GraphError> {
    match options.format.unwrap_or_else(|| GraphFormat::sniff(bytes)) {
        GraphFormat::EdgeList => parse_edge_list_with(bytes, name, options),
        GraphFormat::Mtx => parse_matrix_market_with(bytes, name, options),
    }
}

/// Parses a strict two-column edge list held in memory (errors name the
/// input `<input>`): [`Weights::Refuse`], no memory limit beyond the
/// machine's.
///
/// ```
/// use dotcompute_workloads::graph::{parse_edge_list, NodeIds};
///
/// let g = parse_edge_list(b"0 1\n1 2\n", NodeIds::Dense).unwrap();
/// assert_eq!(g.num_nodes(), 3);
/// let err = parse_edge_list(b"0 1\n1 x\n", NodeIds::Dense).unwrap_err();
/// assert_eq!(err.to_string(), "<input>:2: expected a node id (a non-negative integer), found \"x\"");
/// ```
pub fn parse_edge_list(bytes: &[u8], ids: NodeIds) -> Result<Graph, GraphError> {
    let options = LoadOptions {
        ids,
        weights: Weights::Refuse,
        ..LoadOptions::default()
    };
    parse_edge_list_with(bytes, "<input>", &options)
}

/// Parses a Matrix Market file held in memory (errors name the input
/// `<input>`); values are checked but not used ([`Weights::Ignore`]).
pub fn parse_matrix_market(bytes: &[u8]) -> Result<Graph, GraphError> {
    let options = LoadOptions {
        weights: Weights::Ignore,
        ..LoadOptions::default()
    };
    parse_matrix_market_with(bytes, "<input>", &options)
}

/// What may follow the two ids on a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// Nothing (Matrix Market `pattern`, or an edge list read with
    /// [`Weights::Refuse`]).
    None,
    /// A Matrix Market integer.
    Integer,
    /// A Matrix Market real.
    Real,
    /// An edge list's optional weight column (and nothing after it).
    OptionalWeight,
    /// An edge list's further columns, skipped.
    Skip,
}

#[derive(Debug, Clone, Copy)]
struct LineRules {
    /// Smallest and largest id accepted.
    min_id: u64,
    max_id: u64,
    /// Why an id above `max_id` is refused.
    max_reason: MaxReason,
    value: Value,
    /// Whether values are kept as weights.
    keep: bool,
    /// Commas separate fields too (edge lists).
    commas: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MaxReason {
    /// A Matrix Market index beyond the size line.
    Range,
    /// A dense id that would make too many nodes.
    Dense,
}

struct Chunk {
    src: Vec<u64>,
    dst: Vec<u64>,
    weights: Vec<f64>,
    lines: u64,
    /// Largest id seen (0 for none).
    max_id: u64,
    /// First line (chunk-local) with a weight, and without one.
    first_weighted: Option<u64>,
    first_unweighted: Option<u64>,
    /// The first weight's token, quoted.
    first_weight_token: String,
}

struct ChunkError {
    line: u64,
    message: String,
}

impl From<crate::limits::AllocError> for ChunkError {
    fn from(e: crate::limits::AllocError) -> Self {
        ChunkError {
            line: 0,
            message: e.to_string(),
        }
    }
}

#[inline]
fn is_sep(b: u8, commas: bool) -> bool {
    b == b' ' || b == b'\t' || (commas && b == b',')
}

#[inline]
fn is_eol(bytes: &[u8], i: usize) -> bool {
    i >= bytes.len() || bytes[i] == b'\n' || (bytes[i] == b'\r' && (i + 1 >= bytes.len() || bytes[i + 1] == b'\n'))
}

/// The token at `at`, quoted and cut ([`quote_token`]), or "the end of the line".
fn token_at(bytes: &[u8], at: usize, commas: bool) -> String {
    let end = bytes[at.min(bytes.len())..]
        .iter()
        .position(|&b| is_sep(b, commas) || b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |p| at + p);
    if end <= at {
        if is_eol(bytes, at) {
            "the end of the line".to_string()
        } else {
            quote_token(&bytes[at..at + 1])
        }
    } else {
        quote_token(&bytes[at..end])
    }
}

#[inline]
fn skip_seps(bytes: &[u8], mut i: usize, commas: bool) -> usize {
    while i < bytes.len() && is_sep(bytes[i], commas) {
        i += 1;
    }
    i
}

/// Parses an unsigned id at `i`; returns the value and the index after it.
#[inline]
fn parse_id(bytes: &[u8], i: usize, rules: &LineRules) -> Result<(u64, usize), String> {
    let mut j = i;
    let mut v: u64 = 0;
    let mut overflow = false;
    while let Some(&b) = bytes.get(j) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        match v.checked_mul(10).and_then(|x| x.checked_add(u64::from(digit))) {
            Some(x) => v = x,
            None => overflow = true,
        }
        j += 1;
    }
    let ends_token = j >= bytes.len() || is_sep(bytes[j], rules.commas) || bytes[j] == b'\n' || bytes[j] == b'\r';
    if j == i || !ends_token {
        return Err(format!(
            "expected a node id (a non-negative integer), found {}",
            token_at(bytes, i, rules.commas)
        ));
    }
    if overflow {
        return Err(format!(
            "node id {} is too large (ids must be at most {})",
            token_at(bytes, i, rules.commas),
            u64::MAX
        ));
    }
    if v < rules.min_id || v > rules.max_id {
        return Err(match rules.max_reason {
            MaxReason::Range => format!("node id {v} is out of range {}..={}", rules.min_id, rules.max_id),
            MaxReason::Dense => format!(
                "node id {v} is too large for dense ids (at most {}: the node count is the largest id + 1); \
                 compact ids (the default) accept any id up to {}",
                rules.max_id,
                u64::MAX
            ),
        });
    }
    Ok((v, j))
}

/// Parses the value at `i` (which is not at the end of the line); returns
/// it and the index after it.
fn parse_value(bytes: &[u8], i: usize, kind: Value, commas: bool) -> Result<(f64, usize), String> {
    let end = bytes[i..]
        .iter()
        .position(|&b| is_sep(b, commas) || b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |p| i + p);
    let tok = std::str::from_utf8(&bytes[i..end]).unwrap_or("");
    let value = match kind {
        Value::Integer => {
            let digits = tok.strip_prefix(['-', '+']).unwrap_or(tok);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                tok.parse::<f64>().ok()
            } else {
                None
            }
        }
        _ => tok.parse::<f64>().ok().filter(|v| v.is_finite()),
    };
    match value {
        Some(v) if end > i => Ok((v, end)),
        _ => {
            let what = match kind {
                Value::Integer => "an integer value",
                Value::OptionalWeight => "a weight (a finite, non-negative number)",
                _ => "a number value",
            };
            Err(format!("expected {what}, found {}", token_at(bytes, i, commas)))
        }
    }
}

/// Parses one chunk that starts at a line start. Line numbers are local (1-based).
fn parse_chunk(bytes: &[u8], rules: LineRules) -> Result<Chunk, ChunkError> {
    // A rough capacity guess: ~12 bytes per edge line.
    let guess = bytes.len() / 12 + 1;
    let mut src = Vec::new();
    let mut dst = Vec::new();
    try_reserve(&mut src, guess, "the edges")?;
    try_reserve(&mut dst, guess, "the edges")?;
    let mut weights = Vec::new();
    if rules.keep {
        try_reserve(&mut weights, guess, "the edge weights")?;
    }
    let (mut first_weighted, mut first_unweighted) = (None, None);
    let mut first_weight_token = String::new();
    let mut line = 0u64;
    let mut i = 0usize;
    let mut max_id = 0u64;
    let n = bytes.len();
    let commas = rules.commas;
    while i < n {
        line += 1;
        let fail = |message: String| ChunkError { line, message };
        i = skip_seps(bytes, i, false);
        if i >= n {
            break;
        }
        match bytes[i] {
            b'\n' => {
                i += 1;
                continue;
            }
            b'\r' if i + 1 < n && bytes[i + 1] == b'\n' => {
                i += 2;
                continue;
            }
            b'#' | b'%' => {
                i = memchr_newline(bytes, i).map_or(n, |p| p + 1);
                continue;
            }
            _ => {}
        }
        let (s, j) = parse_id(bytes, i, &rules).map_err(fail)?;
        let k = skip_seps(bytes, j, commas);
        if k == j || is_eol(bytes, k) {
            return Err(fail("expected two node ids, found one".into()));
        }
        let (d, j) = parse_id(bytes, k, &rules).map_err(fail)?;
        let mut k = skip_seps(bytes, j, commas);
        let mut weight = None;
        match rules.value {
            Value::None => {}
            Value::Skip => {
                while !is_eol(bytes, k) {
                    k += 1;
                }
            }
            Value::Integer | Value::Real => {
                if k == j || is_eol(bytes, k) {
                    return Err(fail("expected a value after the two indices".into()));
                }
                let (v, end) = parse_value(bytes, k, rules.value, commas).map_err(fail)?;
                weight = Some(v);
                k = skip_seps(bytes, end, commas);
            }
            Value::OptionalWeight => {
                if k > j && !is_eol(bytes, k) {
                    let (v, end) = parse_value(bytes, k, rules.value, commas).map_err(fail)?;
                    weight = Some(v);
                    k = skip_seps(bytes, end, commas);
                }
            }
        }
        if !is_eol(bytes, k) {
            let what = match rules.value {
                Value::None if commas => "two node ids per line (weights are refused: --weights refuse)".to_string(),
                Value::None => "two indices per line".to_string(),
                Value::OptionalWeight => {
                    "at most three columns (source, target, weight); --weights ignore reads the first two only"
                        .to_string()
                }
                _ => "two indices and a value".to_string(),
            };
            return Err(fail(format!(
                "expected {what}, found more: {}",
                token_at(bytes, k, commas)
            )));
        }
        if rules.keep {
            if let Some(w) = weight {
                if w < 0.0 {
                    return Err(fail(format!(
                        "weight {} is negative: PageRank weights must be non-negative (--weights ignore drops them)",
                        token_at(bytes, skip_seps(bytes, j, commas), commas)
                    )));
                }
                if first_weighted.is_none() {
                    first_weighted = Some(line);
                    first_weight_token = token_at(bytes, skip_seps(bytes, j, commas), commas);
                }
            } else {
                first_unweighted.get_or_insert(line);
            }
            try_push(&mut weights, weight.unwrap_or(1.0), "the edge weights")?;
        }
        max_id = max_id.max(s).max(d);
        try_push(&mut src, s, "the edges")?;
        try_push(&mut dst, d, "the edges")?;
        if k < n && bytes[k] == b'\r' {
            k += 1;
        }
        i = k + 1;
    }
    Ok(Chunk {
        src,
        dst,
        weights,
        lines: line,
        max_id,
        first_weighted,
        first_unweighted,
        first_weight_token,
    })
}

#[inline]
fn memchr_newline(bytes: &[u8], from: usize) -> Option<usize> {
    bytes[from..].iter().position(|&b| b == b'\n').map(|p| from + p)
}

/// Cuts `bytes` into about `parts` pieces, each ending just after a newline
/// (the last may end without one).
fn split_lines(bytes: &[u8], parts: usize) -> Vec<&[u8]> {
    let parts = parts.max(1);
    let target = bytes.len() / parts + 1;
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    while start < bytes.len() {
        let want = (start + target).min(bytes.len());
        let end = if want >= bytes.len() {
            bytes.len()
        } else {
            memchr_newline(bytes, want).map_or(bytes.len(), |p| p + 1)
        };
        out.push(&bytes[start..end]);
        start = end;
    }
    out
}

/// The parsed edges of a body.
struct Body {
    src: Vec<u64>,
    dst: Vec<u64>,
    /// One per edge when weights are kept and some line had one.
    weights: Option<Vec<f64>>,
    lines: u64,
    /// Largest id (`None` without edges).
    max_id: Option<u64>,
}

/// Parses all edge lines of `bytes` in parallel. `first_line` is the line
/// number of `bytes`' first line minus one.
fn parse_body(bytes: &[u8], rules: LineRules, first_line: u64, input: &str) -> Result<Body, GraphError> {
    const MIN_CHUNK: usize = 1 << 20;
    let parts = (bytes.len() / MIN_CHUNK).clamp(1, 4 * rayon::current_num_threads());
    let pieces = split_lines(bytes, parts);
    let results: Vec<Result<Chunk, ChunkError>> = pieces.par_iter().map(|p| parse_chunk(p, rules)).collect();
    let mut line_base = first_line;
    let mut total = 0usize;
    let (mut weighted, mut unweighted) = (None, None);
    let mut weight_token = "";
    for r in &results {
        match r {
            Ok(c) => {
                if weighted.is_none() {
                    weighted = c.first_weighted.map(|l| line_base + l);
                    weight_token = &c.first_weight_token;
                }
                if unweighted.is_none() {
                    unweighted = c.first_unweighted.map(|l| line_base + l);
                }
                line_base += c.lines;
                total += c.src.len();
            }
            Err(e) => {
                return Err(GraphError::Parse {
                    input: input.to_string(),
                    line: line_base + e.line,
                    message: e.message.clone(),
                })
            }
        }
    }
    if let (Some(w), Some(u)) = (weighted, unweighted) {
        let (line, message) = if w < u {
            (
                u,
                format!(
                    "this edge has no weight, the edge on line {w} has one: give every edge a weight or none \
                     (--weights ignore reads two columns)"
                ),
            )
        } else {
            // The edges before this line set the shape: two columns.
            (w, format!("expected two node ids per line, found more: {weight_token}"))
        };
        return Err(GraphError::Parse {
            input: input.to_string(),
            line,
            message,
        });
    }
    let lines = line_base - first_line;
    let mut chunks: Vec<Chunk> = results.into_iter().flatten().collect();
    let max_id = chunks.iter().filter(|c| !c.src.is_empty()).map(|c| c.max_id).max();
    let keep_weights = weighted.is_some();
    if chunks.len() == 1 {
        if let Some(c) = chunks.pop() {
            return Ok(Body {
                src: c.src,
                dst: c.dst,
                weights: keep_weights.then_some(c.weights),
                lines,
                max_id,
            });
        }
    }
    let mut src = Vec::new();
    let mut dst = Vec::new();
    let mut weights = Vec::new();
    try_reserve(&mut src, total, "the edges")?;
    try_reserve(&mut dst, total, "the edges")?;
    if keep_weights {
        try_reserve(&mut weights, total, "the edge weights")?;
    }
    for c in chunks {
        src.extend_from_slice(&c.src);
        dst.extend_from_slice(&c.dst);
        if keep_weights {
            weights.extend_from_slice(&c.weights);
        }
    }
    Ok(Body {
        src,
        dst,
        weights: keep_weights.then_some(weights),
        lines,
        max_id,
    })
}

/// Skips a header: if the first line that is not blank or a comment does
/// not start with a digit, returns the offset after it and its line number.
fn skip_header(bytes: &[u8]) -> (usize, u64) {
    let mut pos = 0usize;
    let mut line = 0u64;
    while pos < bytes.len() {
        line += 1;
        let end = memchr_newline(bytes, pos).map_or(bytes.len(), |p| p + 1);
        let first = skip_seps(bytes, pos, false);
        match bytes.get(first) {
            None | Some(b'\n' | b'\r' | b'#' | b'%') => pos = end,
            Some(b) if b.is_ascii_digit() => return (0, 0),
            Some(_) => return (end, line),
        }
    }
    (0, 0)
}

fn parse_edge_list_with(bytes: &[u8], input: &str, options: &LoadOptions) -> Result<Graph, GraphError> {
    let (value, keep) = match options.weights {
        Weights::Use => (Value::OptionalWeight, true),
        Weights::Ignore => (Value::Skip, false),
        Weights::Refuse => (Value::None, false),
    };
    let (max_id, max_reason) = match options.ids {
        NodeIds::Dense => (MAX_NODES as u64 - 1, MaxReason::Dense),
        NodeIds::Compact => (u64::MAX, MaxReason::Range),
    };
    let rules = LineRules {
        min_id: 0,
        max_id,
        max_reason,
        value,
        keep,
        commas: true,
    };
    let (start, header_line) = skip_header(bytes);
    let body = parse_body(&bytes[start..], rules, header_line, input)?;
    let limit = options.memory_limit;
    let edges = body.src.len();
    let weighted = body.weights.is_some();
    match options.ids {
        NodeIds::Dense => {
            let n = body.max_id.map_or(0, |m| m as usize + 1).max(options.min_nodes);
            limit.check(
                format!("a graph of {n} nodes (the largest id + 1) and {edges} edges"),
                graph_bytes(n as u64, edges as u64, weighted),
            )?;
            let src = narrow(&body.src)?;
            drop(body.src);
            let dst = narrow(&body.dst)?;
            drop(body.dst);
            Graph::from_valid_parts(n, &src, &dst, body.weights.as_deref(), NodeLabels::Offset(0))
        }
        NodeIds::Compact => {
            let Some(max_id) = body.max_id else {
                return Graph::from_edges(0, &[], &[]);
            };
            limit.check(
                format!("a graph of {edges} edges"),
                graph_bytes((edges as u64).saturating_mul(2), edges as u64, weighted),
            )?;
            let (src, dst, labels) = compact_ids(&body.src, &body.dst, max_id)?;
            drop(body.src);
            drop(body.dst);
            Graph::from_valid_parts(
                labels.len(),
                &src,
                &dst,
                body.weights.as_deref(),
                NodeLabels::Explicit(labels),
            )
        }
    }
}

/// `ids` as `u32` (each is known to fit).
fn narrow(ids: &[u64]) -> Result<Vec<u32>, GraphError> {
    let mut out = try_vec(ids.len(), 0u32, "the edges")?;
    out.par_chunks_mut(1 << 16)
        .zip(ids.par_chunks(1 << 16))
        .for_each(|(o, i)| o.iter_mut().zip(i).for_each(|(o, &i)| *o = i as u32));
    Ok(out)
}

/// Renumbered edges (sources, destinations) and the original ids, ascending.
type Compacted = (Vec<u32>, Vec<u32>, Vec<u64>);

/// Renumbers the ids in `src`/`dst` to `0..k` by ascending id; returns the
/// renumbered edges and the original ids, ascending.
fn compact_ids(src: &[u64], dst: &[u64], max_id: u64) -> Result<Compacted, GraphError> {
    let edges = src.len();
    let mut out_src = try_vec(edges, 0u32, "the edges")?;
    let mut out_dst = try_vec(edges, 0u32, "the edges")?;
    let dense_span = (4 * edges as u64).saturating_add(1 << 20);
    let labels = if max_id < dense_span {
        // Dense lookup table: mark (in parallel), number, map (in parallel).
        let span = max_id as usize + 1;
        let mut marks: Vec<AtomicBool> = Vec::new();
        try_reserve(&mut marks, span, "the node id table")?;
        marks.extend((0..span).map(|_| AtomicBool::new(false)));
        src.par_chunks(1 << 16).chain(dst.par_chunks(1 << 16)).for_each(|c| {
            for &x in c {
                marks[x as usize].store(true, Ordering::Relaxed);
            }
        });
        let mut index = try_vec(span, u32::MAX, "the node id table")?;
        let mut labels = Vec::new();
        for (id, (slot, mark)) in index.iter_mut().zip(marks).enumerate() {
            if mark.into_inner() {
                *slot = labels.len() as u32;
                labels.push(id as u64);
            }
        }
        let map = |o: &mut [u32], i: &[u64]| o.iter_mut().zip(i).for_each(|(o, &i)| *o = index[i as usize]);
        out_src
            .par_chunks_mut(1 << 16)
            .zip(src.par_chunks(1 << 16))
            .for_each(|(o, i)| map(o, i));
        out_dst
            .par_chunks_mut(1 << 16)
            .zip(dst.par_chunks(1 << 16))
            .for_each(|(o, i)| map(o, i));
        labels
    } else {
        // Sparse ids: sort the distinct ids and search.
        let mut ids: Vec<u64> = Vec::new();
        try_reserve(&mut ids, 2 * edges, "the node id table")?;
        ids.extend_from_slice(src);
        ids.extend_from_slice(dst);
        ids.par_sort_unstable();
        ids.dedup();
        if ids.len() > MAX_NODES {
            return Err(GraphError::TooLarge(format!(
                "{} distinct node ids; at most {MAX_NODES}",
                ids.len()
            )));
        }
        let map = |o: &mut [u32], i: &[u64]| {
            o.iter_mut()
                .zip(i)
                .for_each(|(o, x)| *o = ids.binary_search(x).map_or(u32::MAX, |k| k as u32))
        };
        out_src
            .par_chunks_mut(1 << 16)
            .zip(src.par_chunks(1 << 16))
            .for_each(|(o, i)| map(o, i));
        out_dst
            .par_chunks_mut(1 << 16)
            .zip(dst.par_chunks(1 << 16))
            .for_each(|(o, i)| map(o, i));
        ids
    };
    Ok((out_src, out_dst, labels))
}

#[derive(Debug)]
struct MtxHeader {
    value: Value,
    symmetric: bool,
}

fn parse_banner(line: &[u8], input: &str) -> Result<MtxHeader, GraphError> {
    let err = |message: String| GraphError::Parse {
        input: input.to_string(),
        line: 1,
        message,
    };
    let words: Vec<Vec<u8>> = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    if words.first().map(Vec::as_slice) != Some(b"%%matrixmarket".as_slice()) {
        return Err(err(
            "not a Matrix Market file: the first line must start with %%MatrixMarket".into(),
        ));
    }
    if words.len() != 5 {
        return Err(err(format!(
            "the banner needs 4 words after %%MatrixMarket (matrix coordinate FIELD SYMMETRY), found {}",
            words.len() - 1
        )));
    }
    if words[1] != b"matrix" {
        return Err(err(format!(
            "unsupported object {} (only matrix)",
            quote_token(&words[1])
        )));
    }
    if words[2] != b"coordinate" {
        return Err(err(format!(
            "unsupported format {}: a graph needs the sparse coordinate format",
            quote_token(&words[2])
        )));
    }
    let value = match words[3].as_slice() {
        b"pattern" => Value::None,
        b"integer" => Value::Integer,
        b"real" | b"double" => Value::Real,
        other => {
            return Err(err(format!(
                "unsupported field {} (expected pattern, real, double or integer)",
                quote_token(other)
            )))
        }
    };
    let symmetric = match words[4].as_slice() {
        b"general" => false,
        b"symmetric" => true,
        other => {
            return Err(err(format!(
                "unsupported symmetry {} (expected general or symmetric)",
                quote_token(other)
            )))
        }
    };
    Ok(MtxHeader { value, symmetric })
}

/// The line at `pos` without its line ending; advances `pos` and `line_no`.
fn next_line<'a>(bytes: &'a [u8], pos: &mut usize, line_no: &mut u64) -> Option<(u64, &'a [u8])> {
    if *pos >= bytes.len() {
        return None;
    }
    let end = memchr_newline(bytes, *pos).unwrap_or(bytes.len());
    let mut l = &bytes[*pos..end];
    if l.last() == Some(&b'\r') {
        l = &l[..l.len() - 1];
    }
    *pos = (end + 1).min(bytes.len());
    *line_no += 1;
    Some((*line_no, l))
}

fn parse_matrix_market_with(bytes: &[u8], input: &str, options: &LoadOptions) -> Result<Graph, GraphError> {
    let perr = |line: u64, message: String| GraphError::Parse {
        input: input.to_string(),
        line,
        message,
    };
    let mut pos = 0usize;
    let mut line_no = 0u64;
    let (_, banner) = next_line(bytes, &mut pos, &mut line_no)
        .ok_or_else(|| perr(1, "empty file: expected a %%MatrixMarket banner".into()))?;
    let header = parse_banner(banner, input)?;
    if header.value != Value::None && options.weights == Weights::Refuse {
        return Err(perr(
            1,
            "the file has values (edge weights), which --weights refuse does not accept".into(),
        ));
    }
    // Skip comments and blank lines up to the size line.
    let (size_line_no, size_line) = loop {
        let Some((no, l)) = next_line(bytes, &mut pos, &mut line_no) else {
            return Err(perr(line_no + 1, "expected the size line M N NNZ".into()));
        };
        let t = l.trim_ascii();
        if t.is_empty() || t.starts_with(b"%") {
            continue;
        }
        break (no, t);
    };
    let parts: Vec<&[u8]> = size_line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let nums: Vec<u64> = parts
        .iter()
        .filter_map(|p| std::str::from_utf8(p).ok()?.parse::<u64>().ok())
        .collect();
    if parts.len() != 3 || nums.len() != 3 {
        return Err(perr(
            size_line_no,
            format!(
                "expected the size line M N NNZ (three non-negative integers), found {}",
                quote_token(size_line)
            ),
        ));
    }
    let (rows, cols, nnz) = (nums[0], nums[1], nums[2]);
    if rows != cols {
        return Err(perr(
            size_line_no,
            format!("the matrix is {rows} x {cols}: an adjacency matrix must be square"),
        ));
    }
    if rows > MAX_NODES as u64 || rows >= u64::from(u32::MAX) {
        return Err(GraphError::TooLarge(format!("{rows} nodes; node ids are u32")));
    }
    let body = &bytes[pos.min(bytes.len())..];
    // An entry line takes at least "i j\n" (4 bytes), "i j v\n" with a value
    // (6); the last may lack its newline.
    let min_line: u64 = if header.value == Value::None { 4 } else { 6 };
    // The promised count is never trusted for an allocation: the estimate
    // takes at most what the bytes can hold, and the entries found are
    // compared with the promise after parsing.
    let can_hold = (body.len() as u64 + 1) / min_line;
    let keep = header.value != Value::None && options.weights == Weights::Use;
    let entries = nnz.min(can_hold);
    let edges = if header.symmetric {
        entries.saturating_mul(2)
    } else {
        entries
    };
    options.memory_limit.check(
        format!("a graph of {rows} nodes and {edges} edges (the size line)"),
        graph_bytes(rows, edges, keep),
    )?;
    let rules = LineRules {
        min_id: 1,
        max_id: rows,
        max_reason: MaxReason::Range,
        value: header.value,
        keep,
        commas: false,
    };
    let rules = if rows == 0 {
        // No valid index exists; any entry line is out of range.
        LineRules { max_id: 0, ..rules }
    } else {
        rules
    };
    let parsed = parse_body(body, rules, size_line_no, input)?;
    let found = parsed.src.len() as u64;
    if found != nnz {
        return Err(perr(
            size_line_no + parsed.lines.max(1),
            if nnz > can_hold {
                format!(
                    "the size line promises {nnz} entries, the file has {found} (its {} bytes after the size line could hold at most {can_hold})",
                    body.len()
                )
            } else {
                format!("the size line promises {nnz} entries, the file has {found}")
            },
        ));
    }
    let mut src = narrow(&parsed.src)?;
    drop(parsed.src);
    let mut dst = narrow(&parsed.dst)?;
    drop(parsed.dst);
    let mut weights = if keep {
        Some(parsed.weights.unwrap_or_else(|| vec![1.0; src.len()]))
    } else {
        None
    };
    src.par_iter_mut().chain(dst.par_iter_mut()).for_each(|x| *x -= 1);
    if header.symmetric {
        let mirrored: Vec<usize> = (0..src.len()).filter(|&i| src[i] != dst[i]).collect();
        try_reserve(&mut src, mirrored.len(), "the edges")?;
        try_reserve(&mut dst, mirrored.len(), "the edges")?;
        if let Some(w) = weights.as_mut() {
            try_reserve(w, mirrored.len(), "the edge weights")?;
        }
        for i in mirrored {
            let (s, d) = (src[i], dst[i]);
            src.push(d);
            dst.push(s);
            if let Some(w) = weights.as_mut() {
                let wi = w[i];
                w.push(wi);
            }
        }
    }
    Graph::from_valid_parts(rows as usize, &src, &dst, weights.as_deref(), NodeLabels::Offset(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_line(r: Result<Graph, GraphError>) -> (u64, String) {
        match r {
            Err(GraphError::Parse { line, message, .. }) => (line, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn edge_list_comments_blanks_crlf_and_tabs() {
        let text = b"# SNAP header\n% other comment\n\n0\t1\r\n  1 2  \n2 0\n\n";
        let g = parse_edge_list(text, NodeIds::Dense).unwrap();
        assert_eq!((g.num_nodes(), g.num_edges()), (3, 3));
        assert_eq!(g.in_neighbors(0), &[2]);
        // No trailing newline.
        let g = parse_edge_list(b"0 1\n1 0", NodeIds::Dense).unwrap();
        assert_eq!(g.num_edges(), 2);
        // Empty input: an empty graph.
        let g = parse_edge_list(b"# nothing\n", NodeIds::Compact).unwrap();
        assert_eq!(g.num_nodes(), 0);
    }

    #[test]
    fn edge_list_errors_name_the_line() {
        assert_eq!(
            err_line(parse_edge_list(b"0 1\n# c\n\n1 -2\n", NodeIds::Dense)),
            (4, "expected a node id (a non-negative integer), found \"-2\"".into())
        );
        assert_eq!(err_line(parse_edge_list(b"0 1\n7\n", NodeIds::Dense)).0, 2);
        assert!(err_line(parse_edge_list(b"0 1\n7\n", NodeIds::Dense))
            .1
            .contains("found one"));
        let (line, msg) = err_line(parse_edge_list(b"0 1\n1 2 3\n", NodeIds::Dense));
        assert_eq!(line, 2);
        assert!(msg.contains("found more: \"3\""), "{msg}");
        let (line, msg) = err_line(parse_edge_list(b"\n\n1 99999999999\n", NodeIds::Dense));
        assert_eq!(line, 3);
        assert!(msg.contains("too large"), "{msg}");
        assert_eq!(err_line(parse_edge_list(b"1 2x\n", NodeIds::Dense)).0, 1);
        assert_eq!(err_line(parse_edge_list(b"1.5 2\n", NodeIds::Dense)).0, 1);
    }

    #[test]
    fn line_numbers_survive_parallel_chunks() {
        // Big enough to be cut into several chunks; the bad line is late.
        let mut text = String::new();
        for i in 0..400_000u32 {
            text.push_str(&format!("{} {}\n", i, (i * 7 + 1) % 400_000));
        }
        text.push_str("5 oops\n");
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let (line, _) = pool.install(|| err_line(parse_edge_list(text.as_bytes(), NodeIds::Dense)));
        assert_eq!(line, 400_001);
        // And a good file gives the same graph whatever the chunking.
        let good = &text.as_bytes()[..text.len() - 7];
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let a = one.install(|| parse_edge_list(good, NodeIds::Dense).unwrap());
        let b = pool.install(|| parse_edge_list(good, NodeIds::Dense).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.num_edges(), 400_000);
    }

    #[test]
    fn compact_and_dense_ids() {
        let text = b"10 30\n30 1000000\n";
        let c = parse_edge_list(text, NodeIds::Compact).unwrap();
        assert_eq!(c.num_nodes(), 3);
        assert_eq!((c.label(0), c.label(1), c.label(2)), (10, 30, 1_000_000));
        assert_eq!(c.in_neighbors(2), &[1]);
        let d = parse_edge_list(text, NodeIds::Dense).unwrap();
        assert_eq!(d.num_nodes(), 1_000_001);
        assert_eq!(d.in_neighbors(30), &[10]);
        // Very sparse ids take the sorting path.
        let s = parse_edge_list(b"4000000000 7\n", NodeIds::Compact).unwrap();
        assert_eq!(s.num_nodes(), 2);
        assert_eq!((s.label(0), s.label(1)), (7, 4_000_000_000));
        assert_eq!(s.in_neighbors(0), &[1]);
    }

    #[test]
    fn matrix_market_variants() {
        let general = b"%%MatrixMarket matrix coordinate pattern general\n% c\n3 3 3\n1 2\n2 3\n3 1\n";
        let g = parse_matrix_market(general).unwrap();
        assert_eq!((g.num_nodes(), g.num_edges()), (3, 3));
        assert_eq!(g.in_neighbors(1), &[0]);
        assert_eq!(g.label(0), 1);

        let real = b"%%MatrixMarket MATRIX Coordinate REAL General\n3 3 2\n1 2 0.5\n3 3 -1e3\n";
        let g = parse_matrix_market(real).unwrap();
        assert_eq!(g.num_edges(), 2);
        assert_eq!(g.self_loop_count(), 1);

        let int_sym = b"%%MatrixMarket matrix coordinate integer symmetric\n4 4 3\n2 1 7\n3 3 1\n4 2 -2\n";
        let g = parse_matrix_market(int_sym).unwrap();
        // Off-diagonal entries are mirrored, the diagonal one is not.
        assert_eq!(g.num_edges(), 5);
        assert_eq!(g.in_neighbors(0), &[1]);
        assert_eq!(g.in_neighbors(1), &[0, 3]);
        assert_eq!(g.in_neighbors(3), &[1]);
    }

    #[test]
    fn matrix_market_errors() {
        let cases: Vec<(&[u8], u64, &str)> = vec![
            (b"3 3 1\n1 2\n", 1, "%%MatrixMarket"),
            (b"%%MatrixMarket matrix array real general\n2 2\n", 1, "coordinate"),
            (b"%%MatrixMarket matrix coordinate complex general\n", 1, "complex"),
            (b"%%MatrixMarket matrix coordinate real hermitian\n", 1, "hermitian"),
            (
                b"%%MatrixMarket matrix coordinate pattern general\n%c\n3 4 1\n",
                3,
                "square",
            ),
            (b"%%MatrixMarket matrix coordinate pattern general\n3 3\n", 2, "M N NNZ"),
            (
                b"%%MatrixMarket matrix coordinate pattern general\n3 3 2\n1 2\n4 1\n",
                4,
                "out of range 1..=3",
            ),
            (
                b"%%MatrixMarket matrix coordinate pattern general\n3 3 2\n0 2\n",
                3,
                "out of range",
            ),
            (
                b"%%MatrixMarket matrix coordinate real general\n3 3 1\n1 2\n",
                3,
                "value",
            ),
            (
                b"%%MatrixMarket matrix coordinate real general\n3 3 1\n1 2 abc\n",
                3,
                "number",
            ),
            (
                b"%%MatrixMarket matrix coordinate integer general\n3 3 1\n1 2 2.5\n",
                3,
                "integer",
            ),
            (
                b"%%MatrixMarket matrix coordinate pattern general\n3 3 3\n1 2\n2 3\n",
                4,
                "promises 3",
            ),
            (
                b"%%MatrixMarket matrix coordinate pattern general\n3 3 1\n1 2\n2 3\n",
                4,
                "promises 1",
            ),
        ];
        for (text, line, needle) in cases {
            let (l, msg) = err_line(parse_matrix_market(text));
            assert!(msg.contains(needle), "{:?}: {msg}", String::from_utf8_lossy(text));
            assert_eq!(l, line, "{:?}: {msg}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn format_names_and_guessing() {
        assert_eq!("mtx".parse::<GraphFormat>().unwrap(), GraphFormat::Mtx);
        assert_eq!("edgelist".parse::<GraphFormat>().unwrap(), GraphFormat::EdgeList);
        assert!("csv".parse::<GraphFormat>().is_err());
        assert_eq!(GraphFormat::from_path(Path::new("a/b.MTX")), GraphFormat::Mtx);
        assert_eq!(
            GraphFormat::from_path(Path::new("web-Google.txt")),
            GraphFormat::EdgeList
        );
        assert_eq!("dense".parse::<NodeIds>().unwrap(), NodeIds::Dense);
    }

    #[test]
    fn missing_file_is_an_io_error_with_the_path() {
        let err = load_graph(Path::new("/nonexistent/graph.txt"), &LoadOptions::default()).unwrap_err();
        assert!(matches!(err, GraphError::Io { action: "read", .. }));
        assert!(err.to_string().contains("/nonexistent/graph.txt"));
    }

    fn opts(weights: Weights) -> LoadOptions {
        LoadOptions {
            format: Some(GraphFormat::EdgeList),
            weights,
            ..LoadOptions::default()
        }
    }

    #[test]
    fn headers_commas_and_weights() {
        let text = b"source,target,weight\n10,20,0.5\n20, 30, 2\n30\t10\t1e1\n";
        let g = parse_graph(text, "t", &opts(Weights::Use)).unwrap();
        assert!(g.is_weighted());
        assert_eq!((g.num_nodes(), g.num_edges()), (3, 3));
        assert_eq!(g.out_weights().unwrap(), &[0.5, 2.0, 10.0]);
        // Ignored: unweighted, third column not even parsed.
        let g = parse_graph(b"1 2 x y\n2 1 z\n", "t", &opts(Weights::Ignore)).unwrap();
        assert!(!g.is_weighted());
        assert_eq!(g.num_edges(), 2);
        // Refused: the line and the token.
        let (line, msg) = err_line(parse_graph(b"# c\n1 2 3\n", "t", &opts(Weights::Refuse)));
        assert_eq!(line, 2);
        assert!(msg.contains("--weights refuse") && msg.contains("\"3\""), "{msg}");
        // Mixed, negative, a fourth column.
        let (line, msg) = err_line(parse_graph(b"1 2 0.5\n2 3\n", "t", &opts(Weights::Use)));
        assert_eq!(line, 2);
        assert!(msg.contains("no weight"), "{msg}");
        let (line, msg) = err_line(parse_graph(b"1 2\n2 3 4\n", "t", &opts(Weights::Use)));
        assert_eq!(line, 2);
        assert!(msg.contains("found more: \"4\""), "{msg}");
        assert!(err_line(parse_graph(b"1 2 -1\n", "t", &opts(Weights::Use)))
            .1
            .contains("negative"));
        assert!(err_line(parse_graph(b"1 2 1 9\n", "t", &opts(Weights::Use)))
            .1
            .contains("at most three columns"));
        assert!(err_line(parse_graph(b"1 2 inf\n", "t", &opts(Weights::Use)))
            .1
            .contains("weight"));
        // A header is only the first content line.
        assert_eq!(err_line(parse_graph(b"1 2\nfrom to\n", "t", &opts(Weights::Use))).0, 2);
    }

    #[test]
    fn ids_up_to_u64_max_are_renumbered() {
        let text = format!("{} 0\n0 {}\n", u64::MAX, u64::MAX - 1);
        let g = parse_graph(text.as_bytes(), "t", &opts(Weights::Use)).unwrap();
        assert_eq!(g.num_nodes(), 3);
        assert_eq!((g.label(0), g.label(1), g.label(2)), (0, u64::MAX - 1, u64::MAX));
        let (_, msg) = err_line(parse_graph(b"18446744073709551616 1\n", "t", &opts(Weights::Use)));
        assert!(msg.contains("too large"), "{msg}");
        let dense = LoadOptions {
            ids: NodeIds::Dense,
            ..opts(Weights::Use)
        };
        let (_, msg) = err_line(parse_graph(b"4294967295 1\n", "t", &dense));
        assert!(msg.contains("dense ids"), "{msg}");
    }

    #[test]
    fn sizes_from_the_input_are_checked_against_the_limit() {
        // Issue 16 row 1: an 80-byte file whose size line promises 4e9 nodes.
        let mtx = b"%%MatrixMarket matrix coordinate pattern general\n4000000000 4000000000 1\n1 2\n";
        let small = LoadOptions {
            memory_limit: MemoryLimit::bytes(1 << 30),
            ..LoadOptions::default()
        };
        match parse_graph(mtx, "t", &small) {
            Err(GraphError::Limit(e)) => {
                assert!(e.what.contains("4000000000 nodes"), "{e}");
                assert_eq!(e.limit, 1 << 30);
            }
            other => panic!("expected a limit error, got {other:?}"),
        }
        // A promise beyond what the bytes can hold is never trusted.
        let lying = b"%%MatrixMarket matrix coordinate pattern general\n3 3 18446744073709551615\n1 2\n";
        let (_, msg) = err_line(parse_graph(lying, "t", &small));
        assert!(msg.contains("could hold at most 1"), "{msg}");
        // A dense id implies the node count.
        let dense = LoadOptions {
            ids: NodeIds::Dense,
            memory_limit: MemoryLimit::bytes(1 << 20),
            ..LoadOptions::default()
        };
        assert!(matches!(
            parse_graph(b"0 4000000\n", "t", &dense),
            Err(GraphError::Limit(_))
        ));
        // A long token is cut in the message.
        let mut long = b"1 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 1 << 20));
        let (_, msg) = err_line(parse_graph(&long, "t", &opts(Weights::Use)));
        assert!(msg.len() < 200 && msg.contains("(1048576 bytes)"), "{msg}");
        let mut banner = b"%%MatrixMarket matrix coordinate ".to_vec();
        banner.extend(std::iter::repeat_n(b'q', 1 << 20));
        banner.extend(b" general\n");
        assert!(err_line(parse_graph(&banner, "t", &small)).1.len() < 200);
    }

    #[test]
    fn matrix_market_values_are_weights() {
        let real = b"%%MatrixMarket matrix coordinate real symmetric\n3 3 2\n2 1 0.25\n3 3 4\n";
        let g = parse_graph(real, "t", &LoadOptions::default()).unwrap();
        assert!(g.is_weighted());
        assert_eq!(g.num_edges(), 3);
        assert_eq!(g.in_neighbor_weights(0), Some(&[0.25][..]));
        assert_eq!(g.in_neighbor_weights(1), Some(&[0.25][..]));
        assert_eq!(g.out_weights().unwrap(), &[0.25, 0.25, 4.0]);
        let refuse = LoadOptions {
            weights: Weights::Refuse,
            ..LoadOptions::default()
        };
        assert_eq!(err_line(parse_graph(real, "t", &refuse)).0, 1);
        let negative = b"%%MatrixMarket matrix coordinate integer general\n2 2 1\n1 2 -3\n";
        assert!(err_line(parse_graph(negative, "t", &LoadOptions::default()))
            .1
            .contains("negative"));
    }

    #[test]
    fn gzip_files_and_sniffing() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("dc_parse_gz_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.mtx.gz");
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
        enc.write_all(b"%%MatrixMarket matrix coordinate pattern general\n2 2 1\n1 2\n")
            .unwrap();
        enc.finish().unwrap();
        let g = load_graph(&path, &LoadOptions::default()).unwrap();
        assert_eq!((g.num_nodes(), g.num_edges()), (2, 1));
        // A gzip stream is stopped once its output passes the limit.
        let bomb = dir.join("bomb.txt.gz");
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&bomb).unwrap(), flate2::Compression::best());
        for _ in 0..64 {
            enc.write_all(&[b'\n'; 1 << 16]).unwrap();
        }
        enc.finish().unwrap();
        let small = LoadOptions {
            memory_limit: MemoryLimit::bytes(1 << 20),
            ..LoadOptions::default()
        };
        assert!(matches!(load_graph(&bomb, &small), Err(GraphError::Limit(_))));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(GraphFormat::sniff(b"%%matrixmarket matrix"), GraphFormat::Mtx);
        assert_eq!(GraphFormat::sniff(b"1 2\n"), GraphFormat::EdgeList);
        assert_eq!(GraphFormat::from_path(Path::new("a.MTX.gz")), GraphFormat::Mtx);
    }
}
