//! Loaders: plain edge lists (SNAP style) and Matrix Market coordinate files.
//!
//! Edge lists: one edge `src dst` per line, ids are non-negative integers
//! below `u32::MAX`, separated by spaces or tabs; lines starting with `#`
//! or `%` are comments; blank lines and CRLF endings are accepted. Any other
//! content (a third column, a sign, a letter) is an error naming the line.
//!
//! Matrix Market: the banner `%%MatrixMarket matrix coordinate FIELD SYMMETRY`
//! with FIELD `pattern`, `real`, `double` or `integer` and SYMMETRY `general`
//! or `symmetric` (keywords are case-insensitive); then `%` comments, the size
//! line `M N NNZ` (square: `M == N`), and `NNZ` entries `i j [value]` with
//! 1-based indices. Entry `(i, j)` is the edge `i -> j`; a symmetric file also
//! gives `j -> i` for every off-diagonal entry. Values are checked to be
//! numbers but not used: every stored entry is one unweighted edge.
//!
//! Parsing is byte-level and runs on the current rayon pool: the input is cut
//! at line boundaries into chunks that are parsed in parallel, and errors
//! carry the line number in the whole input (the earliest error wins).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use super::{Graph, GraphError, NodeLabels, MAX_NODES};

/// The file formats [`load_graph`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphFormat {
    /// `src dst` per line.
    EdgeList,
    /// Matrix Market coordinate format.
    Mtx,
}

impl GraphFormat {
    /// The format a file name suggests: `.mtx` is Matrix Market, anything
    /// else an edge list.
    pub fn from_path(path: &Path) -> GraphFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("mtx") => GraphFormat::Mtx,
            _ => GraphFormat::EdgeList,
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
    /// The ids that occur are renumbered `0..n` in ascending order; output
    /// files print the original ids. The graph has exactly the nodes that
    /// appear in some edge (the default).
    #[default]
    Compact,
    /// Ids are indices: the graph has `max id + 1` nodes, and ids that never
    /// occur are isolated nodes (they still get rank). Use it for graphs
    /// whose nodes are `0..n` by construction, such as exported generator
    /// output with isolated nodes.
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

/// Options of [`load_graph`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadOptions {
    /// The format; `None` guesses from the extension ([`GraphFormat::from_path`]).
    pub format: Option<GraphFormat>,
    /// Id handling for edge lists (Matrix Market ids are always dense, 1-based).
    pub ids: NodeIds,
    /// With [`NodeIds::Dense`], the graph has at least this many nodes
    /// (for node sets that end in isolated nodes). Ignored otherwise.
    pub min_nodes: usize,
}

/// Reads a graph file.
///
/// ```
/// use dotcompute::workloads::graph::{load_graph, LoadOptions};
///
/// let path = std::env::temp_dir().join(format!("doc_graph_{}.txt", std::process::id()));
/// std::fs::write(&path, "# a triangle\n10 20\n20 30\n30 10\n").unwrap();
/// let g = load_graph(&path, &LoadOptions::default()).unwrap();
/// assert_eq!((g.num_nodes(), g.num_edges()), (3, 3));
/// assert_eq!(g.label(2), 30);
/// std::fs::remove_file(&path).unwrap();
/// ```
pub fn load_graph(path: &Path, options: &LoadOptions) -> Result<Graph, GraphError> {
    let bytes = std::fs::read(path).map_err(|source| GraphError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    match options.format.unwrap_or_else(|| GraphFormat::from_path(path)) {
        GraphFormat::EdgeList => parse_edge_list_named(&bytes, options.ids, options.min_nodes, &name),
        GraphFormat::Mtx => parse_matrix_market_named(&bytes, &name),
    }
}

/// Parses an edge list held in memory (errors name the input `<input>`).
///
/// ```
/// use dotcompute::workloads::graph::{parse_edge_list, NodeIds};
///
/// let g = parse_edge_list(b"0 1\n1 2\n", NodeIds::Dense).unwrap();
/// assert_eq!(g.num_nodes(), 3);
/// let err = parse_edge_list(b"0 1\n1 x\n", NodeIds::Dense).unwrap_err();
/// assert_eq!(err.to_string(), "<input>:2: expected a node id (a non-negative integer), found \"x\"");
/// ```
pub fn parse_edge_list(bytes: &[u8], ids: NodeIds) -> Result<Graph, GraphError> {
    parse_edge_list_named(bytes, ids, 0, "<input>")
}

/// Parses a Matrix Market file held in memory (errors name the input `<input>`).
pub fn parse_matrix_market(bytes: &[u8]) -> Result<Graph, GraphError> {
    parse_matrix_market_named(bytes, "<input>")
}

/// What may follow the two ids on a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    None,
    Integer,
    Real,
}

#[derive(Debug, Clone, Copy)]
struct LineRules {
    /// Smallest and largest id accepted.
    min_id: u32,
    max_id: u32,
    value: Value,
}

struct Chunk {
    src: Vec<u32>,
    dst: Vec<u32>,
    lines: u64,
    /// Largest id seen (0 for none).
    max_id: u32,
}

struct ChunkError {
    line: u64,
    message: String,
}

/// `"..."`-quoted, at most 40 characters, of the token starting at `at`.
fn token_at(bytes: &[u8], at: usize) -> String {
    let end = bytes[at..]
        .iter()
        .position(|&b| b == b' ' || b == b'\t' || b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |p| at + p);
    let tok = String::from_utf8_lossy(&bytes[at..end.min(at + 40)]);
    if end == at {
        if at >= bytes.len() || bytes[at] == b'\n' || bytes[at] == b'\r' {
            "the end of the line".to_string()
        } else {
            format!("{:?}", tok)
        }
    } else {
        format!("{:?}", tok)
    }
}

#[inline]
fn skip_blanks(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    i
}

/// Parses an unsigned id at `i`; returns the value and the index after it.
#[inline]
fn parse_id(bytes: &[u8], i: usize, rules: &LineRules) -> Result<(u32, usize), String> {
    let mut j = i;
    let mut v: u64 = 0;
    while let Some(&b) = bytes.get(j) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(digit));
        j += 1;
    }
    let ends_token = j >= bytes.len() || matches!(bytes[j], b' ' | b'\t' | b'\n' | b'\r');
    if j == i || !ends_token {
        return Err(format!(
            "expected a node id (a non-negative integer), found {}",
            token_at(bytes, i)
        ));
    }
    // Up to 10 digits cannot overflow a u64; more are too large anyway.
    if j - i > 10 || v > u64::from(u32::MAX) {
        return Err(format!(
            "node id {} is too large (ids must be below {})",
            token_at(bytes, i),
            u32::MAX
        ));
    }
    let v = v as u32;
    if v < rules.min_id || v > rules.max_id {
        return Err(format!(
            "node id {v} is out of range {}..={}",
            rules.min_id, rules.max_id
        ));
    }
    Ok((v, j))
}

fn parse_value(bytes: &[u8], i: usize, kind: Value) -> Result<usize, String> {
    let end = bytes[i..]
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .map_or(bytes.len(), |p| i + p);
    let tok = std::str::from_utf8(&bytes[i..end]).unwrap_or("");
    let ok = match kind {
        Value::None => false,
        Value::Integer => {
            let digits = tok.strip_prefix(['-', '+']).unwrap_or(tok);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        Value::Real => tok.parse::<f64>().is_ok_and(f64::is_finite),
    };
    if ok && end > i {
        Ok(end)
    } else {
        let what = if kind == Value::Integer {
            "an integer"
        } else {
            "a number"
        };
        Err(format!("expected {what} value, found {}", token_at(bytes, i)))
    }
}

/// Parses one chunk that starts at a line start. Line numbers are local (1-based).
fn parse_chunk(bytes: &[u8], rules: LineRules) -> Result<Chunk, ChunkError> {
    // A rough capacity guess: ~12 bytes per edge line.
    let guess = bytes.len() / 12 + 1;
    let mut src = Vec::with_capacity(guess);
    let mut dst = Vec::with_capacity(guess);
    let mut line = 0u64;
    let mut i = 0usize;
    let mut max_id = 0u32;
    let n = bytes.len();
    while i < n {
        line += 1;
        let fail = |message: String| ChunkError { line, message };
        i = skip_blanks(bytes, i);
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
        let k = skip_blanks(bytes, j);
        if k == j || k >= n || bytes[k] == b'\n' || bytes[k] == b'\r' {
            return Err(fail("expected two node ids, found one".into()));
        }
        let (d, mut j) = parse_id(bytes, k, &rules).map_err(fail)?;
        let mut k = skip_blanks(bytes, j);
        if rules.value != Value::None {
            if k == j || k >= n || bytes[k] == b'\n' || bytes[k] == b'\r' {
                return Err(fail("expected a value after the two indices".into()));
            }
            j = parse_value(bytes, k, rules.value).map_err(fail)?;
            k = skip_blanks(bytes, j);
        }
        if k < n && bytes[k] == b'\r' && k + 1 < n && bytes[k + 1] == b'\n' {
            k += 1;
        }
        if k < n && bytes[k] != b'\n' {
            let what = if rules.value == Value::None {
                "two node ids"
            } else {
                "two indices and a value"
            };
            return Err(fail(format!(
                "expected {what} per line, found more: {}",
                token_at(bytes, k)
            )));
        }
        max_id = max_id.max(s).max(d);
        src.push(s);
        dst.push(d);
        i = k + 1;
    }
    Ok(Chunk {
        src,
        dst,
        lines: line,
        max_id,
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

/// Parses all edge lines of `body` in parallel. `first_line` is the line
/// number of `body`'s first line minus one.
/// The parsed edges of a body: sources, destinations, the number of lines,
/// and the largest id (`None` without edges).
type Body = (Vec<u32>, Vec<u32>, u64, Option<u32>);

fn parse_body(bytes: &[u8], rules: LineRules, first_line: u64, input: &str) -> Result<Body, GraphError> {
    const MIN_CHUNK: usize = 1 << 20;
    let parts = (bytes.len() / MIN_CHUNK).clamp(1, 4 * rayon::current_num_threads());
    let pieces = split_lines(bytes, parts);
    let results: Vec<Result<Chunk, ChunkError>> = pieces.par_iter().map(|p| parse_chunk(p, rules)).collect();
    let mut line_base = first_line;
    let mut total = 0usize;
    for r in &results {
        match r {
            Ok(c) => {
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
    let lines = line_base - first_line;
    let mut chunks: Vec<Chunk> = results.into_iter().flatten().collect();
    let max_id = chunks.iter().filter(|c| !c.src.is_empty()).map(|c| c.max_id).max();
    if chunks.len() == 1 {
        let c = chunks.pop().map(|c| (c.src, c.dst));
        let (s, d) = c.unwrap_or_default();
        return Ok((s, d, lines, max_id));
    }
    let mut src = Vec::with_capacity(total);
    let mut dst = Vec::with_capacity(total);
    for c in chunks {
        src.extend_from_slice(&c.src);
        dst.extend_from_slice(&c.dst);
    }
    Ok((src, dst, lines, max_id))
}

fn parse_edge_list_named(bytes: &[u8], ids: NodeIds, min_nodes: usize, input: &str) -> Result<Graph, GraphError> {
    let rules = LineRules {
        min_id: 0,
        max_id: u32::MAX - 1,
        value: Value::None,
    };
    let (mut src, mut dst, _, max_id) = parse_body(bytes, rules, 0, input)?;
    match ids {
        NodeIds::Dense => {
            let n = max_id.map_or(0, |m| m as usize + 1).max(min_nodes);
            Graph::from_valid_edges(n, &src, &dst, NodeLabels::Offset(0))
        }
        NodeIds::Compact => {
            let Some(max_id) = max_id else {
                return Graph::from_edges(0, &[], &[]);
            };
            let labels = compact_ids(&mut src, &mut dst, max_id);
            Graph::from_valid_edges(labels.len(), &src, &dst, NodeLabels::Explicit(labels))
        }
    }
}

/// Renumbers the ids in `src`/`dst` to `0..k` by ascending id; returns the
/// original ids, ascending.
fn compact_ids(src: &mut [u32], dst: &mut [u32], max_id: u32) -> Vec<u64> {
    let span = max_id as usize + 1;
    let edges = src.len();
    if span <= 4 * edges + (1 << 20) {
        // Dense lookup table: mark (in parallel), number, map (in parallel).
        let marks: Vec<AtomicBool> = (0..span).map(|_| AtomicBool::new(false)).collect();
        src.par_chunks(1 << 16).chain(dst.par_chunks(1 << 16)).for_each(|c| {
            for &x in c {
                marks[x as usize].store(true, Ordering::Relaxed);
            }
        });
        let mut index = vec![u32::MAX; span];
        let mut labels = Vec::new();
        for (id, (slot, mark)) in index.iter_mut().zip(marks).enumerate() {
            if mark.into_inner() {
                *slot = labels.len() as u32;
                labels.push(id as u64);
            }
        }
        src.par_chunks_mut(1 << 16)
            .chain(dst.par_chunks_mut(1 << 16))
            .for_each(|c| {
                for x in c {
                    *x = index[*x as usize];
                }
            });
        labels
    } else {
        // Sparse ids: sort the distinct ids and search.
        let mut ids: Vec<u32> = src.iter().chain(dst.iter()).copied().collect();
        ids.par_sort_unstable();
        ids.dedup();
        src.par_iter_mut()
            .chain(dst.par_iter_mut())
            .for_each(|x| *x = ids.binary_search(x).map_or(u32::MAX, |i| i as u32));
        ids.into_iter().map(u64::from).collect()
    }
}

#[derive(Debug)]
struct MtxHeader {
    value: Value,
    symmetric: bool,
}

fn parse_banner(line: &str, input: &str) -> Result<MtxHeader, GraphError> {
    let err = |message: String| GraphError::Parse {
        input: input.to_string(),
        line: 1,
        message,
    };
    let words: Vec<String> = line.split_whitespace().map(str::to_ascii_lowercase).collect();
    if words.first().map(String::as_str) != Some("%%matrixmarket") {
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
    if words[1] != "matrix" {
        return Err(err(format!("unsupported object {:?} (only matrix)", words[1])));
    }
    if words[2] != "coordinate" {
        return Err(err(format!(
            "unsupported format {:?}: a graph needs the sparse coordinate format",
            words[2]
        )));
    }
    let value = match words[3].as_str() {
        "pattern" => Value::None,
        "integer" => Value::Integer,
        "real" | "double" => Value::Real,
        other => {
            return Err(err(format!(
                "unsupported field {other:?} (expected pattern, real, double or integer)"
            )))
        }
    };
    let symmetric = match words[4].as_str() {
        "general" => false,
        "symmetric" => true,
        other => {
            return Err(err(format!(
                "unsupported symmetry {other:?} (expected general or symmetric)"
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

fn parse_matrix_market_named(bytes: &[u8], input: &str) -> Result<Graph, GraphError> {
    let perr = |line: u64, message: String| GraphError::Parse {
        input: input.to_string(),
        line,
        message,
    };
    let mut pos = 0usize;
    let mut line_no = 0u64;
    let (_, banner) = next_line(bytes, &mut pos, &mut line_no)
        .ok_or_else(|| perr(1, "empty file: expected a %%MatrixMarket banner".into()))?;
    let header = parse_banner(&String::from_utf8_lossy(banner), input)?;
    // Skip comments and blank lines up to the size line.
    let (size_line_no, size_line) = loop {
        let Some((no, l)) = next_line(bytes, &mut pos, &mut line_no) else {
            return Err(perr(line_no + 1, "expected the size line M N NNZ".into()));
        };
        let t = String::from_utf8_lossy(l);
        let t = t.trim();
        if t.is_empty() || t.starts_with('%') {
            continue;
        }
        break (no, t.to_string());
    };
    let parts: Vec<&str> = size_line.split_whitespace().collect();
    let nums: Vec<u64> = parts.iter().filter_map(|p| p.parse::<u64>().ok()).collect();
    if parts.len() != 3 || nums.len() != 3 {
        return Err(perr(
            size_line_no,
            format!("expected the size line M N NNZ (three non-negative integers), found {size_line:?}"),
        ));
    }
    let (rows, cols, nnz) = (nums[0], nums[1], nums[2]);
    if rows != cols {
        return Err(perr(
            size_line_no,
            format!("the matrix is {rows} x {cols}: an adjacency matrix must be square"),
        ));
    }
    if rows as usize > MAX_NODES || rows >= u64::from(u32::MAX) {
        return Err(GraphError::TooLarge(format!("{rows} nodes; node ids are u32")));
    }
    let body_first_line = size_line_no;
    let rules = LineRules {
        min_id: 1,
        max_id: rows as u32,
        value: header.value,
    };
    let body = &bytes[pos.min(bytes.len())..];
    let (mut src, mut dst, lines, _) = if rows == 0 {
        // No valid index exists; any entry line is out of range.
        let r = LineRules { max_id: 0, ..rules };
        parse_body(body, r, body_first_line, input)?
    } else {
        parse_body(body, rules, body_first_line, input)?
    };
    let found = src.len() as u64;
    if found != nnz {
        return Err(perr(
            body_first_line + lines.max(1),
            format!("the size line promises {nnz} entries, the file has {found}"),
        ));
    }
    src.par_iter_mut().chain(dst.par_iter_mut()).for_each(|x| *x -= 1);
    if header.symmetric {
        let mirrored: Vec<(u32, u32)> = src
            .iter()
            .zip(&dst)
            .filter(|(s, d)| s != d)
            .map(|(&s, &d)| (d, s))
            .collect();
        src.reserve(mirrored.len());
        dst.reserve(mirrored.len());
        for (s, d) in mirrored {
            src.push(s);
            dst.push(d);
        }
    }
    Graph::from_valid_edges(rows as usize, &src, &dst, NodeLabels::Offset(1))
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
}
