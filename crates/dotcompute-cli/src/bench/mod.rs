//! `dotcompute bench ...`: measurements of the runtime.
//!
//! Each benchmark is one subcommand with its own options, prints a table on
//! stdout and, with `--json FILE`, writes a [`BenchReport`]. Add a benchmark
//! by adding a variant to [`BenchCommand`] and a module beside these.

mod latency;
mod reference;
mod throughput;

use std::path::PathBuf;

use clap::Subcommand;
use dotcompute::{Error, KernelContext, Message, MessageHeader};
use serde::Serialize;

use crate::machine::MachineInfo;
use crate::CliResult;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Round-trip latency host → echo kernel → host, one message in flight.
    Latency(latency::LatencyArgs),
    /// Messages per second: pipelined, windowed echo, and several kernels.
    Throughput(throughput::ThroughputArgs),
}

/// Runs one benchmark.
pub fn run(cmd: BenchCommand) -> CliResult<()> {
    match cmd {
        BenchCommand::Latency(args) => latency::run(&args),
        BenchCommand::Throughput(args) => throughput::run(&args),
    }
}

/// Bytes of payload in a benchmark message (besides its header).
pub const PAYLOAD_BYTES: usize = 64;

/// The benchmark message: a sequence number and a 64-byte payload.
#[derive(Debug, Clone, Message)]
pub struct Ping {
    pub seq: u64,
    pub payload: [u8; PAYLOAD_BYTES],
    pub header: MessageHeader,
}

impl Ping {
    pub fn new(seq: u64) -> Self {
        Ping {
            seq,
            payload: [seq as u8; PAYLOAD_BYTES],
            header: MessageHeader::new(),
        }
    }
}

/// Answers every `Ping` with a fresh `Ping` correlated to it (same sequence
/// number and payload), as a request/reply kernel would.
pub async fn echo(mut ctx: KernelContext<Ping, Ping>) -> Result<(), Error> {
    loop {
        let m = ctx.receive().await?;
        let reply = m.reply(Ping {
            seq: m.seq,
            payload: m.payload,
            header: MessageHeader::new(),
        });
        ctx.send(reply).await?;
    }
}

/// What `--json` writes, for every benchmark.
#[derive(Debug, Serialize)]
pub struct BenchReport<C: Serialize, R: Serialize> {
    /// Which benchmark (`latency`, `throughput`).
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
    /// Figures from PyDotCompute, for comparison: not measured by this run.
    pub reference: serde_json::Value,
}

impl<C: Serialize, R: Serialize> BenchReport<C, R> {
    pub fn new(benchmark: &'static str, config: C, results: R, reference: serde_json::Value) -> Self {
        BenchReport {
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
            reference,
        }
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
