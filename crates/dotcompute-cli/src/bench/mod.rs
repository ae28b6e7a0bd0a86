//! `dotcompute bench ...`: measurements of the runtime.
//!
//! Each benchmark is one subcommand with its own options, prints a table on
//! stdout and, with `--json FILE`, writes a [`BenchReport`]. Add a benchmark
//! by adding a variant to [`BenchCommand`] and a module beside these.
//! `latency` and `throughput` run per tier ([`tier`]): the kernels are in
//! [`kernels`], the host side in [`host`].

mod all;
mod chart;
mod echo;
mod goals;
mod gpu;
mod host;
mod igraph;
pub(crate) mod kernels;
mod latency;
mod queue;
mod reference;
mod throughput;
mod tier;
mod wgpu;
mod workloads;

pub use tier::Tier;

use std::path::PathBuf;

use clap::Subcommand;
use dotcompute::{Message, MessageHeader};
use serde::Serialize;

use crate::machine::MachineInfo;
use crate::CliResult;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Round-trip latency host → echo kernel → host, one message in flight, per tier.
    Latency(latency::LatencyArgs),
    /// Messages per second per tier: one-way and echo, unbatched and batched, several kernels.
    Throughput(throughput::ThroughputArgs),
    /// Same-thread push+pop cost of the queues, beside rtrb and crossbeam.
    Queue(queue::QueueArgs),
    /// Latency, throughput and queue with moderate sizes; one JSON report and one chart.
    All(all::AllArgs),
    /// PageRank: generate, write, load and solve graphs of several sizes; igraph on the same files.
    Pagerank(workloads::PagerankBenchArgs),
    /// Anomaly detection: every mode at several batch sizes on one stream.
    Anomaly(workloads::AnomalyBenchArgs),
    /// Redraw the latency chart of a saved `bench latency` or `bench all` report.
    Chart {
        /// The report (`--json` of `bench latency` or `bench all`).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The SVG to write.
        #[arg(long, value_name = "FILE")]
        svg: PathBuf,
    },
}

/// Runs one benchmark.
pub fn run(cmd: BenchCommand) -> CliResult<()> {
    match cmd {
        BenchCommand::Latency(args) => latency::run(&args),
        BenchCommand::Throughput(args) => throughput::run(&args),
        BenchCommand::Queue(args) => queue::run(&args),
        BenchCommand::All(args) => all::run(&args),
        BenchCommand::Pagerank(args) => workloads::run_pagerank(&args),
        BenchCommand::Anomaly(args) => workloads::run_anomaly(&args),
        BenchCommand::Chart { from, svg } => {
            chart::latency_svg_from_report(&from, &svg)?;
            println!("wrote {}", svg.display());
            Ok(())
        }
    }
}

/// Bytes of payload in a benchmark message (besides its header).
pub const PAYLOAD_BYTES: usize = 64;

/// The benchmark message: a sequence number and a 64-byte payload (plus
/// its header: 120 bytes in all). `Copy`, so the rings' slice operations
/// apply to it too.
#[derive(Debug, Clone, Copy, Message, serde::Serialize, serde::Deserialize)]
pub struct Ping {
    pub seq: u64,
    #[serde(with = "payload_bytes")]
    pub payload: [u8; PAYLOAD_BYTES],
    pub header: MessageHeader,
}

/// The payload on the wire (process tier): one MessagePack `bin` of exactly
/// [`PAYLOAD_BYTES`] bytes.
mod payload_bytes {
    use super::PAYLOAD_BYTES;
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(payload: &[u8; PAYLOAD_BYTES], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(payload)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; PAYLOAD_BYTES], D::Error> {
        struct Bytes;
        impl de::Visitor<'_> for Bytes {
            type Value = [u8; PAYLOAD_BYTES];
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{PAYLOAD_BYTES} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

impl Ping {
    pub fn new(seq: u64) -> Self {
        Self::with_header(seq, MessageHeader::new())
    }

    fn with_header(seq: u64, header: MessageHeader) -> Self {
        Ping {
            seq,
            payload: [seq as u8; PAYLOAD_BYTES],
            header,
        }
    }

    /// Messages for the sequence numbers `seqs`, built together: their
    /// headers share one creation time ([`MessageHeader::sibling`]), one
    /// clock read for the batch.
    pub fn batch(seqs: impl Iterator<Item = u64>) -> Vec<Ping> {
        let header = MessageHeader::new();
        seqs.map(|seq| Self::with_header(seq, header.sibling())).collect()
    }
}

/// What `--json` writes, for every benchmark.
#[derive(Debug, Serialize)]
pub struct BenchReport<C: Serialize, R: Serialize> {
    /// The layout's version (`docs/json.md`).
    pub schema_version: u32,
    /// `dotcompute`.
    pub tool: &'static str,
    /// Which benchmark (`latency`, `throughput`, `queue`, `all`).
    pub benchmark: &'static str,
    /// Version of dotcompute.
    pub dotcompute_version: &'static str,
    /// The command line, as given.
    pub command_line: Vec<String>,
    /// When the run started, seconds since the Unix epoch.
    pub started_at_unix_secs: u64,
    /// Build profile of the binary (`release` or `debug`).
    pub build_profile: &'static str,
    /// The machine.
    pub machine: MachineInfo,
    /// The benchmark's parameters.
    pub config: C,
    /// Our measurements.
    pub results: R,
    /// How busy the machine was with other work during the run.
    pub noise: Option<crate::machine::Noise>,
    /// The goals beside our figures (and PyDotCompute's, as ratios).
    pub goals: Vec<goals::Goal>,
    /// Figures from PyDotCompute, for comparison: not measured by this run.
    pub reference: serde_json::Value,
}

impl<C: Serialize, R: Serialize> BenchReport<C, R> {
    pub fn new(benchmark: &'static str, config: C, results: R, reference: serde_json::Value) -> Self {
        BenchReport {
            schema_version: crate::output::SCHEMA_VERSION,
            tool: "dotcompute",
            benchmark,
            dotcompute_version: env!("CARGO_PKG_VERSION"),
            command_line: std::env::args().collect(),
            started_at_unix_secs: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            build_profile: if cfg!(debug_assertions) { "debug" } else { "release" },
            machine: MachineInfo::detect(),
            config,
            results,
            noise: None,
            goals: Vec::new(),
            reference,
        }
    }

    /// Records the run's noise and prints it.
    pub fn with_noise(mut self, meter: &crate::machine::CpuMeter) -> Self {
        self.noise = meter.finish();
        if let Some(n) = &self.noise {
            println!("noise: during these {:.1} s, {}", n.elapsed_secs, n.one_line());
        }
        self
    }

    pub fn with_goals(mut self, goals: Vec<goals::Goal>) -> Self {
        self.goals = goals;
        self
    }

    /// Writes the report as pretty JSON to `path`, if one was given.
    pub fn write(&self, path: Option<&PathBuf>) -> CliResult<()> {
        if let Some(path) = path {
            crate::output::write_json(path, self)?;
            println!("wrote {}", path.display());
        }
        Ok(())
    }
}

/// Prints the header every benchmark starts with.
pub fn print_header(title: &str) {
    let machine = MachineInfo::detect();
    println!("dotcompute {} · {title}", env!("CARGO_PKG_VERSION"));
    println!("machine: {}", machine.one_line());
    if cfg!(debug_assertions) {
        println!("note: this is a debug build; use --release for figures worth comparing");
    }
    println!();
}
