//! Bounds on what input may make the workloads allocate or spawn.
//!
//! Every size that comes from outside (a header's node and entry counts, a
//! node id that implies a node count, a generator's size, a stream length,
//! a thread count) is checked here *before* anything is allocated for it:
//! against what the input itself can hold (a Matrix Market file cannot
//! list more entries than its bytes allow) and against a [`MemoryLimit`]
//! (by default the machine's physical memory, or the cgroup's limit when
//! lower). Allocations whose size follows the input go through [`try_vec`]
//! and [`try_reserve`], so a failed allocation (under `ulimit -v`, say) is
//! an error, never an abort. Tokens quoted in errors are cut to a readable
//! length by [`quote_token`].
//!
//! Invariant: a check that passes leaves the estimate at or below the
//! limit; an estimate is computed with saturating arithmetic, so no user
//! count can overflow it into a small number.

use serde::Serialize;

/// A refused size: what was asked, what it would need, and the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} needs about {}, above the memory limit of {} ({hint})", fmt_bytes(*.needed), fmt_bytes(*.limit))]
pub struct LimitError {
    /// What was asked for (`"a graph of 4000000000 nodes and 1 edges"`).
    pub what: String,
    /// Bytes it would need (an estimate).
    pub needed: u64,
    /// The limit, bytes.
    pub limit: u64,
    /// How to change the limit.
    pub hint: &'static str,
}

/// Where a failed allocation happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate {} for {what}: out of memory", fmt_bytes(*.bytes))]
pub struct AllocError {
    /// What the memory was for.
    pub what: &'static str,
    /// Bytes asked for.
    pub bytes: u64,
}

/// The most memory a workload may plan to use, bytes.
///
/// ```
/// use dotcompute_workloads::limits::MemoryLimit;
///
/// let limit = MemoryLimit::bytes(1 << 20);
/// assert!(limit.check("a small thing", 1000).is_ok());
/// let err = limit.check("a big thing", 1 << 30).unwrap_err();
/// assert_eq!(err.to_string(), "a big thing needs about 1.00 GiB, above the memory limit of 1.00 MiB (--memory-limit)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryLimit(pub u64);

impl Default for MemoryLimit {
    /// The machine's physical memory (the cgroup's limit when lower).
    fn default() -> Self {
        MemoryLimit(physical_memory().unwrap_or(FALLBACK_MEMORY))
    }
}

/// The limit when the machine's memory cannot be read: 8 GiB.
pub const FALLBACK_MEMORY: u64 = 8 << 30;

impl MemoryLimit {
    /// A limit of `bytes`.
    pub fn bytes(bytes: u64) -> Self {
        MemoryLimit(bytes)
    }

    /// Refuses `needed` bytes for `what` if they exceed the limit.
    pub fn check(self, what: impl std::fmt::Display, needed: u64) -> Result<(), LimitError> {
        if needed > self.0 {
            Err(LimitError {
                what: what.to_string(),
                needed,
                limit: self.0,
                hint: "--memory-limit",
            })
        } else {
            Ok(())
        }
    }
}

/// Physical memory, or the cgroup (v2 or v1) limit when lower; `None` where
/// neither can be read.
pub fn physical_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    })?;
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .filter_map(|t| t.trim().parse::<u64>().ok())
    .min();
    Some(cgroup.map_or(total, |c| c.min(total)))
}

/// Bytes a graph of `nodes` nodes and `edges` edges needs while it is
/// built and solved (CSR arrays, the parallel build's histograms, the
/// solver's five rank vectors; weights when `weighted`), saturating.
pub fn graph_bytes(nodes: u64, edges: u64, weighted: bool) -> u64 {
    let per_node: u64 = if weighted { 80 } else { 72 };
    let per_edge: u64 = if weighted { 40 } else { 24 };
    nodes
        .saturating_mul(per_node)
        .saturating_add(edges.saturating_mul(per_edge))
}

/// The most threads a workload starts: the CPU cores this process may use.
/// More threads than cores only add switching to a CPU-bound solver.
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks a thread count against [`max_threads`].
pub fn check_threads(threads: usize) -> Result<(), String> {
    let max = max_threads();
    if threads == 0 {
        Err("must be at least 1".into())
    } else if threads > max {
        Err(format!(
            "must be at most {max}, the CPU cores available to this process (more threads than cores only slow a CPU-bound solver)"
        ))
    } else {
        Ok(())
    }
}

/// A vector of `n` copies of `value`, or an error instead of an abort when
/// the memory cannot be had.
pub fn try_vec<T: Clone>(n: usize, value: T, what: &'static str) -> Result<Vec<T>, AllocError> {
    let mut v = Vec::new();
    try_reserve(&mut v, n, what)?;
    v.resize(n, value);
    Ok(v)
}

/// `v.try_reserve_exact(additional)`, as an [`AllocError`] naming `what`.
pub fn try_reserve<T>(v: &mut Vec<T>, additional: usize, what: &'static str) -> Result<(), AllocError> {
    v.try_reserve_exact(additional).map_err(|_| AllocError {
        what,
        bytes: (additional as u64).saturating_mul(std::mem::size_of::<T>() as u64),
    })
}

/// Pushes `x`, growing `v` fallibly (doubling) when it is full.
#[inline]
pub fn try_push<T>(v: &mut Vec<T>, x: T, what: &'static str) -> Result<(), AllocError> {
    if v.len() == v.capacity() {
        let more = v.len().max(64);
        v.try_reserve(more).map_err(|_| AllocError {
            what,
            bytes: (v.len().saturating_add(more) as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        })?;
    }
    v.push(x);
    Ok(())
}

/// The longest token an error message quotes, in characters.
pub const QUOTE_CHARS: usize = 40;

/// `"abc"`, or for a long token its first [`QUOTE_CHARS`] characters and
/// its size: `"aaaa…" (10485760 bytes)`. Invalid UTF-8 is shown lossily.
///
/// ```
/// use dotcompute_workloads::limits::quote_token;
/// assert_eq!(quote_token(b"x1"), "\"x1\"");
/// let long = vec![b'7'; 100];
/// assert_eq!(quote_token(&long), format!("\"{}…\" (100 bytes)", "7".repeat(40)));
/// ```
pub fn quote_token(token: &[u8]) -> String {
    let text = String::from_utf8_lossy(&token[..token.len().min(4 * QUOTE_CHARS)]);
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.next().is_none() && token.len() <= 4 * QUOTE_CHARS {
        format!("{head:?}")
    } else {
        let quoted = format!("{head:?}");
        format!("{}…\" ({} bytes)", &quoted[..quoted.len() - 1], token.len())
    }
}

/// `1.50 GiB`, `12.0 MiB`, `512 B`.
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

/// Parses a size: a number of bytes with an optional unit `K`, `M`, `G`,
/// `T` (powers of 1024; `KiB`, `KB`, `k` are accepted too).
///
/// ```
/// use dotcompute_workloads::limits::parse_bytes;
/// assert_eq!(parse_bytes("512"), Ok(512));
/// assert_eq!(parse_bytes("4G"), Ok(4 << 30));
/// assert_eq!(parse_bytes("1.5MiB"), Ok(1_572_864));
/// assert!(parse_bytes("lots").is_err());
/// ```
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (a number of bytes, optionally with K, M, G or T)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} in {s:?} (use K, M, G or T)")),
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_saturate_instead_of_wrapping() {
        assert_eq!(graph_bytes(u64::MAX, u64::MAX, true), u64::MAX);
        assert!(graph_bytes(4_000_000_000, 1, false) > 200 << 30);
        let limit = MemoryLimit::bytes(1 << 30);
        assert!(limit.check("x", graph_bytes(1000, 5000, false)).is_ok());
        let err = limit
            .check("a graph", graph_bytes(4_000_000_000, 1, false))
            .unwrap_err();
        assert_eq!(err.limit, 1 << 30);
        assert!(err.to_string().contains("above the memory limit of 1.00 GiB"), "{err}");
    }

    #[test]
    fn allocation_failures_are_errors() {
        let err = try_vec(usize::MAX / 2, 0u64, "a test").unwrap_err();
        assert_eq!(err.what, "a test");
        let mut v: Vec<u8> = Vec::new();
        assert!(try_reserve(&mut v, usize::MAX, "x").is_err());
        let mut w = Vec::new();
        for i in 0..1000 {
            try_push(&mut w, i, "w").unwrap();
        }
        assert_eq!(w.len(), 1000);
        assert_eq!(try_vec(3, 7u8, "ok").unwrap(), [7, 7, 7]);
    }

    #[test]
    fn tokens_are_cut_on_character_boundaries() {
        assert_eq!(quote_token(b""), "\"\"");
        let long = "é".repeat(100);
        let q = quote_token(long.as_bytes());
        assert!(q.starts_with(&format!("\"{}…\"", "é".repeat(40))), "{q}");
        assert!(q.ends_with("(200 bytes)"), "{q}");
        assert_eq!(quote_token(&[b'a'; 40]), format!("{:?}", "a".repeat(40)));
        assert!(quote_token(&[0xff; 50]).contains("(50 bytes)"));
    }

    #[test]
    fn threads_are_bounded_by_the_cores() {
        assert!(check_threads(0).is_err());
        assert!(check_threads(1).is_ok());
        assert!(check_threads(max_threads()).is_ok());
        assert!(check_threads(max_threads() + 1).unwrap_err().contains("CPU cores"));
        assert!(physical_memory().is_none_or(|m| m > 0));
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(3 << 29), "1.50 GiB");
        assert_eq!(parse_bytes("2k"), Ok(2048));
        assert!(parse_bytes("3 parsecs").is_err());
    }
}
