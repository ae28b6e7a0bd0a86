//! The bounds on numbers typed on the command line, as clap value parsers:
//! a value out of range is a usage error (exit 2) naming the option, the
//! value and the range, before anything runs.
//!
//! | option | range | why |
//! |---|---|---|
//! | `--threads` | 1 to the CPU cores | more threads than cores only slow a CPU-bound solver |
//! | `pagerank --generate`, `bench pagerank --sizes` | 1 to 4294967295 nodes | node ids are `u32`; memory is checked separately (`--memory-limit`) |
//! | `anomaly --synthetic`, `bench anomaly --points` | 1 to 2^32 points | memory is checked separately |
//! | `--batch`, `bench anomaly --batches` | 1 to 1048576 points | one batch is held in memory and sent as one message |
//! | `--depth` | 1 to 4096 batches | the kernel's queue capacity |
//! | `--repetitions` | 1 to 100 | |
//! | `bench latency/all --samples` | 1 to 100000000 | about ten minutes on the slowest tier |
//! | `bench latency/all --warmup` | 0 to 10000000 | |
//! | `demo --points` | 1000 to 100000000 | |
//! | `--memory-limit` | a size: `512M`, `4G`, bytes | |

use dotcompute_workloads::limits;

/// The most nodes a generated graph may have (node ids are `u32`).
pub const MAX_NODES: u64 = u32::MAX as u64;
/// The most points of a synthetic stream.
pub const MAX_POINTS: u64 = 1 << 32;
/// The largest batch of points.
pub const MAX_BATCH: u64 = 1 << 20;
/// The most batches in flight.
pub const MAX_DEPTH: u64 = 4096;
/// The most timed repetitions.
pub const MAX_REPETITIONS: u64 = 100;
/// The most measured round trips per latency case.
pub const MAX_SAMPLES: u64 = 100_000_000;
/// The most warm-up round trips per latency case.
pub const MAX_WARMUP: u64 = 10_000_000;

fn ranged(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let v: u64 = s
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if v < min || v > max {
        return Err(format!("{v} is not in {min}..={max}"));
    }
    Ok(v)
}

fn as_usize(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("{v} does not fit this machine's address size"))
}

/// `--threads`: 1 to the CPU cores this process may use.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    let v = as_usize(ranged(s, 1, u64::MAX)?)?;
    limits::check_threads(v).map(|()| v).map_err(|e| format!("{v}: {e}"))
}

/// Node counts.
pub fn parse_nodes(s: &str) -> Result<usize, String> {
    as_usize(ranged(s, 1, MAX_NODES)?)
}

/// Stream lengths.
pub fn parse_points(s: &str) -> Result<usize, String> {
    as_usize(ranged(s, 1, MAX_POINTS)?)
}

/// Batch sizes.
pub fn parse_batch(s: &str) -> Result<usize, String> {
    as_usize(ranged(s, 1, MAX_BATCH)?)
}

/// Batches in flight.
pub fn parse_depth(s: &str) -> Result<usize, String> {
    as_usize(ranged(s, 1, MAX_DEPTH)?)
}

/// Repetitions.
pub fn parse_repetitions(s: &str) -> Result<usize, String> {
    as_usize(ranged(s, 1, MAX_REPETITIONS)?)
}

/// Latency samples.
pub fn parse_samples(s: &str) -> Result<u64, String> {
    ranged(s, 1, MAX_SAMPLES)
}

/// Warm-up round trips.
pub fn parse_warmup(s: &str) -> Result<u64, String> {
    ranged(s, 0, MAX_WARMUP)
}

/// `--memory-limit`: a size with an optional unit.
pub fn parse_memory_limit(s: &str) -> Result<limits::MemoryLimit, String> {
    let b = limits::parse_bytes(s)?;
    if b == 0 {
        return Err("the memory limit must be above 0".into());
    }
    Ok(limits::MemoryLimit::bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_enforced_with_the_range_in_the_message() {
        assert_eq!(parse_samples("2000"), Ok(2000));
        let e = parse_samples("18446744073709551615").unwrap_err();
        assert!(e.contains("1..=100000000"), "{e}");
        assert!(parse_samples("lots").unwrap_err().contains("not a whole number"));
        assert!(parse_warmup("0").is_ok());
        assert!(parse_threads("0").is_err());
        assert!(parse_threads("5000").unwrap_err().contains("CPU cores"));
        assert_eq!(parse_threads("1"), Ok(1));
        assert!(parse_nodes("4294967296").is_err());
        assert!(parse_points("18446744073709551615").is_err());
        assert!(parse_memory_limit("0").is_err());
        assert_eq!(parse_memory_limit("1K"), Ok(limits::MemoryLimit::bytes(1024)));
    }
}
