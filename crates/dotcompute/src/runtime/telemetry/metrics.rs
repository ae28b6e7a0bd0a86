//! The runtime's telemetry through the [`metrics`] facade (cargo feature
//! `metrics`): whatever recorder the application installs (a Prometheus
//! exporter, StatsD, OpenTelemetry, its own) receives the same series as
//! [`RuntimeSummary::to_prometheus`], under the same names and labels.
//!
//! | series | kind | labels |
//! |---|---|---|
//! | `dotcompute_kernel_messages_{received,sent,processed,dropped,rejected,discarded,lost}_total`, `dotcompute_kernel_{errors,restarts}_total` | counter | `kernel` |
//! | `dotcompute_kernel_{input_queue_depth,input_queue_peak_depth,output_queue_depth,uptime_seconds,throughput_per_second}` | gauge | `kernel` |
//! | `dotcompute_kernel_state` | gauge, 1 for the kernel's state and 0 for the others | `kernel`, `state` |
//! | `dotcompute_kernel_{queue_wait,handler}_seconds` | gauge | `kernel`, `quantile` (0.5, 0.95, 0.99, 1) |
//! | `dotcompute_kernel_{queue_wait,handler}_seconds_count` | counter | `kernel` |
//!
//! Invariant: a recording is a snapshot. Counters are set to the kernel's
//! totals ([`metrics::Counter::absolute`]), never incremented here, so
//! recording twice, or from two exporters, never double-counts; gauges are
//! set. Nothing touches the message path: the runtime keeps its own
//! lock-free counters and this module reads them when asked (by
//! [`record`], [`RingKernelRuntime::record_metrics`] or a
//! [`MetricsExporter`]).
//!
//! ```
//! use dotcompute::telemetry::metrics::MetricsExporter;
//! use dotcompute::RingKernelRuntime;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // The application installs its recorder first (here: none, so the
//! // facade's no-op recorder takes the series).
//! let rt = RingKernelRuntime::new();
//! let exporter = MetricsExporter::start(rt.clone(), std::time::Duration::from_secs(10))?;
//! // ... kernels run; every 10 s the exporter records a snapshot ...
//! rt.record_metrics(); // or record one now
//! exporter.stop(); // records a last snapshot
//! rt.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

use super::{quantiles, RuntimeSummary, COUNTERS, GAUGES, LATENCIES};
use crate::runtime::state::KernelState;
use crate::RingKernelRuntime;

/// Registers the help text and unit of every series with the installed
/// recorder (exporters show them as `# HELP` lines). [`record`] calls it
/// once per recorder; calling it again is harmless.
pub fn describe() {
    for (name, help, _) in COUNTERS {
        describe_counter!(format!("dotcompute_kernel_{name}"), Unit::Count, help);
    }
    for (name, help, _) in GAUGES {
        let unit = if name.ends_with("_seconds") {
            Unit::Seconds
        } else {
            Unit::Count
        };
        describe_gauge!(format!("dotcompute_kernel_{name}"), unit, help);
    }
    describe_gauge!(
        "dotcompute_kernel_state",
        "Current state (1 for the state the kernel is in, 0 for the others)."
    );
    for (name, help, _) in LATENCIES {
        describe_gauge!(format!("dotcompute_kernel_{name}"), Unit::Seconds, help);
        describe_counter!(
            format!("dotcompute_kernel_{name}_count"),
            Unit::Count,
            "Messages measured."
        );
    }
}

/// Records one snapshot of `summary` into the installed recorder.
pub fn record(summary: &RuntimeSummary) {
    describe();
    for k in &summary.kernels {
        let id = k.kernel_id.clone();
        for (name, _, get) in COUNTERS {
            // The getters read u64 counters; f64 holds them exactly up to 2^53.
            counter!(format!("dotcompute_kernel_{name}"), "kernel" => id.clone()).absolute(get(k) as u64);
        }
        for (name, _, get) in GAUGES {
            gauge!(format!("dotcompute_kernel_{name}"), "kernel" => id.clone()).set(get(k));
        }
        for state in KernelState::ALL {
            let value = if state == k.state { 1.0 } else { 0.0 };
            gauge!("dotcompute_kernel_state", "kernel" => id.clone(), "state" => state.to_string()).set(value);
        }
        for (name, _, get) in LATENCIES {
            let l = get(k);
            for (q, ns) in quantiles(l) {
                gauge!(format!("dotcompute_kernel_{name}"), "kernel" => id.clone(), "quantile" => q)
                    .set(ns as f64 / 1e9);
            }
            counter!(format!("dotcompute_kernel_{name}_count"), "kernel" => id.clone()).absolute(l.count);
        }
    }
}

impl RingKernelRuntime {
    /// Records one snapshot of every kernel's telemetry into the installed
    /// [`metrics`] recorder (see [`telemetry::metrics`](self)).
    pub fn record_metrics(&self) {
        record(&self.summary());
    }
}

/// Why a [`MetricsExporter`] did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExporterError {
    /// The interval was zero.
    #[error("the metrics exporter needs a positive interval")]
    ZeroInterval,
    /// The exporter's thread could not be started.
    #[error("cannot start the metrics exporter thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Records a runtime's telemetry into the installed [`metrics`] recorder
/// every `interval`, from a thread of its own (no async runtime needed),
/// until stopped or dropped; stopping records a last snapshot.
#[derive(Debug)]
pub struct MetricsExporter {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsExporter {
    /// Starts recording `runtime`'s telemetry every `interval`.
    ///
    /// # Errors
    ///
    /// [`ExporterError::ZeroInterval`]; [`ExporterError::Spawn`] if the
    /// thread cannot be started.
    pub fn start(runtime: RingKernelRuntime, interval: Duration) -> Result<MetricsExporter, ExporterError> {
        if interval.is_zero() {
            return Err(ExporterError::ZeroInterval);
        }
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("dotcompute-metrics".into())
            .spawn(move || {
                let (lock, wake) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    runtime.record_metrics();
                    if *stopped {
                        return;
                    }
                    stopped = wake
                        .wait_timeout(stopped, interval)
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
            })
            .map_err(ExporterError::Spawn)?;
        Ok(MetricsExporter {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the exporter after a last snapshot, and waits for its thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsExporter {
    fn drop(&mut self) {
        self.halt();
    }
}
