//! `dotcompute`: the command-line tool of the dotcompute ring-kernel runtime.
//!
//! - `dotcompute demo`: a streaming anomaly-detection pipeline of ring kernels;
//! - `dotcompute bench latency|throughput [--tier async|thread|spin|process|gpu|all]`:
//!   round trips and msg/s per runtime tier;
//! - `dotcompute bench queue`: same-thread cost of the queues beside rtrb and crossbeam;
//! - `dotcompute bench all --json FILE --svg FILE`: all three, one report and one chart;
//! - `dotcompute info`: version, tiers and CPU cores;
//! - `dotcompute pagerank` / `dotcompute anomaly`: the workloads, on files,
//!   gzip files or standard input;
//! - `dotcompute node --nats URL --name NAME` / `dotcompute demo --nats URL`:
//!   kernels served to other runtimes, and the demo across two nodes (feature `nats`);
//! - `dotcompute completions SHELL`: a shell completion script.
//!
//! How commands end is in [`ending`]: one `error: ...` line (and the causes
//! it does not already name) on stderr; exit code 1 for runtime errors, 2 for
//! usage errors (clap's and ours), 3 for a PageRank that did not converge, 0
//! when standard output is closed early by its reader.

// `println!`, `print!` and `eprintln!` in this crate are these, not std's:
// they never panic on a closed or full standard output (see `stdout`).
macro_rules! println {
    () => {
        $crate::stdout::print_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdout::print_line(format_args!($($arg)*))
    };
}
#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::stdout::print(format_args!($($arg)*))
    };
}
macro_rules! eprintln {
    () => {
        $crate::stdout::eprint_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdout::eprint_line(format_args!($($arg)*))
    };
}

mod bench;
mod demo;
mod ending;
mod info;
mod limits;
mod machine;
#[cfg(feature = "nats")]
mod nats;
mod output;
mod progress;
mod stdout;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Error type of the command implementations.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result type of the command implementations.
pub type CliResult<T> = Result<T, BoxError>;

/// The command-line tool of dotcompute (ring kernels: persistent actors with
/// typed, bounded, prioritised queues).
#[derive(Debug, Parser)]
#[command(
    name = "dotcompute",
    version,
    about = "Ring kernels for Rust: run the demo pipeline, PageRank and anomaly detection on your data, and the runtime's benchmarks",
    long_about = None,
    propagate_version = true,
    after_help = ending::EXIT_CODES_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a small streaming anomaly-detection pipeline of ring kernels and
    /// print its results and telemetry.
    Demo(demo::DemoArgs),
    /// Measure the runtime.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print the version, the runtime tiers in this build and the CPU cores.
    Info,
    /// The child side of the process-tier benchmarks (started by `bench`).
    #[command(name = "__ipc-kernel", hide = true)]
    IpcKernel {
        /// echo or sink.
        #[arg(long)]
        role: String,
    },
    /// Rank the nodes of a graph with PageRank (power iteration).
    Pagerank(workload::PagerankArgs),
    /// Find anomalies in a stream of values (streaming EMA z-score detector).
    Anomaly(workload::AnomalyArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    /// on stdout, e.g. `dotcompute completions bash > /etc/bash_completion.d/dotcompute`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Serve the workload kernels (anomaly detector, PageRank) and the
    /// demo's detector to other runtimes through NATS.
    #[cfg(feature = "nats")]
    Node(nats::NodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Info => info::run(),
        Command::IpcKernel { role } => match role.as_str() {
            "echo" => bench::kernels::ipc_kernel(bench::kernels::Role::Echo),
            "sink" => bench::kernels::ipc_kernel(bench::kernels::Role::Sink),
            other => Err(format!("unknown role {other:?}").into()),
        },
        Command::Pagerank(args) => workload::run_pagerank(&args),
        Command::Anomaly(args) => workload::run_anomaly(&args),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "dotcompute",
                &mut script,
            );
            print!("{}", String::from_utf8_lossy(&script));
            Ok(())
        }
        #[cfg(feature = "nats")]
        Command::Node(args) => nats::run_node(&args),
    };
    ending::finish(result)
}

/// Logs go to stderr; `RUST_LOG` selects them (default: warnings only).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Builds the tokio runtime the commands run on.
pub(crate) fn tokio_runtime(flavor: Flavor) -> CliResult<tokio::runtime::Runtime> {
    let rt = match flavor {
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    rt.map_err(|e| format!("cannot start the tokio runtime: {e}").into())
}

/// Which tokio scheduler the async tier runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Flavor {
    /// Multi-thread scheduler with 2 worker threads.
    MultiThread,
    /// Current-thread scheduler: the host and every kernel share one thread.
    CurrentThread,
}

impl Flavor {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Flavor::MultiThread => "tokio multi-thread (2 workers)",
            Flavor::CurrentThread => "tokio current-thread",
        }
    }

    /// Runs `work` to completion on a fresh runtime of this flavour, as a
    /// spawned task (as in a typical server: on a worker thread of the
    /// multi-thread scheduler, beside the kernels on the current-thread one).
    ///
    /// Not as the `block_on` future itself: with tokio's I/O driver enabled
    /// (this program's tokio has it, for signals), a `block_on` future woken
    /// by a task of its own runtime is polled again only after the driver
    /// has been polled, one `epoll_wait` system call per wait — on the
    /// current-thread scheduler, one per round trip (`bench latency --tier
    /// async`, tokio ct: 1.43 µs per round trip as the `block_on` future,
    /// 411 ns as a task): tokio's cost, not the runtime's, and one a program
    /// avoids by running its host loop as a task.
    pub(crate) fn run<F, T>(self, work: F) -> CliResult<T>
    where
        F: std::future::Future<Output = CliResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let rt = tokio_runtime(self)?;
        let task = rt.spawn(work);
        let out = rt
            .block_on(task)
            .map_err(|e| -> BoxError { format!("benchmark task failed: {e}").into() })
            .and_then(|r| r);
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
        out
    }
}
