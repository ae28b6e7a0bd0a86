//! [`ComputeOrchestrator`]: named kernels on one backend, launched with a
//! launch configuration, with results, timings and a bounded history.
//!
//! Invariants: a kernel is compiled once, when registered, and launched by
//! name; every launch — successful or not — is recorded as a
//! [`KernelExecution`] (a failure is recorded and then returned as the
//! error); the history keeps at most `history_capacity` executions, dropping
//! the oldest.
//!
//! ```
//! use std::sync::Arc;
//! use dotcompute::device::{kernels, ComputeOrchestrator, CpuBackend, DeviceBuffer, KernelArg, LaunchConfig};
//! let cpu = Arc::new(CpuBackend::new());
//! let orch = ComputeOrchestrator::new(cpu.clone(), 16);
//! orch.register("saxpy", kernels::cpu::saxpy()).unwrap();
//! let x = DeviceBuffer::from_slice(&cpu, &[1.0f32, 2.0, 3.0]).unwrap();
//! let mut y = DeviceBuffer::from_slice(&cpu, &[1.0f32, 1.0, 1.0]).unwrap();
//! let cfg = LaunchConfig::linear(3, 64).unwrap();
//! let out = orch
//!     .launch_read::<f32>("saxpy", &cfg, &mut [KernelArg::scalar(2.0f32), x.arg(), y.arg_mut(), KernelArg::scalar(3u32)], 2)
//!     .unwrap();
//! assert_eq!(out.data, vec![3.0, 5.0, 7.0]);
//! assert!(out.execution.success);
//! assert_eq!(orch.history(None, None).len(), 1);
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytemuck::Pod;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use super::backend::{Backend, KernelArg, LaunchConfig};
use super::error::{DeviceError, DeviceResult};

/// The record of one launch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelExecution {
    /// Sequence number, from 1.
    pub id: u64,
    /// The registered name.
    pub kernel: String,
    /// The launch configuration.
    pub config: LaunchConfig,
    /// When it started (seconds since the Unix epoch).
    pub started_at_secs: f64,
    /// How long it ran (device-measured on CUDA, host-measured on the CPU);
    /// zero if it failed before running.
    pub duration: Duration,
    /// Whether it succeeded.
    pub success: bool,
    /// The error, if it failed.
    pub error: Option<String>,
}

impl KernelExecution {
    /// The duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.duration.as_secs_f64() * 1e3
    }
}

/// A launch's output buffer contents and its record.
#[derive(Debug, Clone)]
pub struct LaunchOutput<T> {
    /// The output buffer read back after the launch.
    pub data: Vec<T>,
    /// The launch's record.
    pub execution: KernelExecution,
}

/// Per-kernel totals over the executions still in the history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct KernelSummary {
    /// Launches.
    pub launches: usize,
    /// Failed launches.
    pub failures: usize,
    /// Total time of successful launches.
    pub total: Duration,
    /// Mean time of successful launches.
    pub mean: Duration,
}

/// See the [module docs](self).
pub struct ComputeOrchestrator<B: Backend> {
    backend: Arc<B>,
    stream: B::Stream,
    kernels: RwLock<HashMap<String, Arc<B::Kernel>>>,
    history: Mutex<VecDeque<KernelExecution>>,
    capacity: usize,
    next_id: AtomicU64,
}

impl<B: Backend> ComputeOrchestrator<B> {
    /// An orchestrator on `backend` keeping the last `history_capacity` launches.
    pub fn new(backend: Arc<B>, history_capacity: usize) -> Self {
        ComputeOrchestrator {
            stream: backend.default_stream(),
            backend,
            kernels: RwLock::new(HashMap::new()),
            history: Mutex::new(VecDeque::new()),
            capacity: history_capacity,
            next_id: AtomicU64::new(1),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Compiles `source` and registers it as `name`.
    pub fn register(&self, name: &str, source: B::Source) -> DeviceResult<()> {
        if self.kernels.read().contains_key(name) {
            return Err(DeviceError::KernelAlreadyRegistered(name.to_string()));
        }
        let kernel = self.backend.compile(source)?;
        self.register_compiled(name, kernel)
    }

    /// Registers an already compiled kernel as `name`.
    pub fn register_compiled(&self, name: &str, kernel: B::Kernel) -> DeviceResult<()> {
        let mut k = self.kernels.write();
        if k.contains_key(name) {
            return Err(DeviceError::KernelAlreadyRegistered(name.to_string()));
        }
        k.insert(name.to_string(), Arc::new(kernel));
        Ok(())
    }

    /// Removes `name`; whether it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        self.kernels.write().remove(name).is_some()
    }

    /// The registered names, sorted.
    pub fn kernel_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.kernels.read().keys().cloned().collect();
        v.sort();
        v
    }

    fn get(&self, name: &str) -> DeviceResult<Arc<B::Kernel>> {
        self.kernels
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| DeviceError::KernelNotRegistered {
                name: name.to_string(),
                known: self.kernel_names(),
            })
    }

    fn record(&self, e: KernelExecution) {
        if self.capacity == 0 {
            return;
        }
        let mut h = self.history.lock();
        while h.len() >= self.capacity {
            h.pop_front();
        }
        h.push_back(e);
    }

    /// Launches `name`, waits for it, records and returns the execution.
    pub fn launch(
        &self,
        name: &str,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, B>],
    ) -> DeviceResult<KernelExecution> {
        let kernel = self.get(name)?;
        let started = SystemTime::now();
        let outcome = self.backend.launch_timed(&kernel, config, args, &self.stream);
        let exec = KernelExecution {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            kernel: name.to_string(),
            config: *config,
            started_at_secs: started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            duration: outcome.as_ref().copied().unwrap_or_default(),
            success: outcome.is_ok(),
            error: outcome.as_ref().err().map(|e| e.to_string()),
        };
        self.record(exec.clone());
        outcome.map(|_| exec)
    }

    /// Launches `name` and reads back argument `output` (a writable buffer of `T`).
    pub fn launch_read<T: Pod>(
        &self,
        name: &str,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, B>],
        output: usize,
    ) -> DeviceResult<LaunchOutput<T>> {
        let kernel_err = |reason: String| DeviceError::KernelArgument {
            kernel: name.to_string(),
            index: output,
            reason,
        };
        match args.get(output) {
            Some(KernelArg::BufferMut { elem, .. }) if elem.is::<T>() => {}
            Some(a) => {
                return Err(kernel_err(format!(
                    "output must be a writable buffer of {}, got {}",
                    std::any::type_name::<T>(),
                    a.describe()
                )))
            }
            None => {
                return Err(kernel_err(format!(
                    "no argument {output}; the launch has {}",
                    args.len()
                )))
            }
        }
        let execution = self.launch(name, config, args)?;
        let Some(KernelArg::BufferMut { memory, len, .. }) = args.get(output) else {
            return Err(kernel_err("output argument disappeared".into()));
        };
        let mut data = vec![T::zeroed(); *len];
        self.backend
            .copy_dtoh(memory, 0, bytemuck::cast_slice_mut(&mut data), &self.stream)?;
        Ok(LaunchOutput { data, execution })
    }

    /// The history, newest last, optionally only for `kernel` and only the
    /// last `limit` entries.
    pub fn history(&self, limit: Option<usize>, kernel: Option<&str>) -> Vec<KernelExecution> {
        let h = self.history.lock();
        let mut v: Vec<KernelExecution> = h
            .iter()
            .filter(|e| kernel.is_none_or(|k| e.kernel == k))
            .cloned()
            .collect();
        if let Some(l) = limit {
            let skip = v.len().saturating_sub(l);
            v.drain(..skip);
        }
        v
    }

    /// Empties the history.
    pub fn clear_history(&self) {
        self.history.lock().clear();
    }

    /// Totals for `kernel` over the history.
    pub fn summary(&self, kernel: &str) -> KernelSummary {
        let h = self.history.lock();
        let mut s = KernelSummary::default();
        for e in h.iter().filter(|e| e.kernel == kernel) {
            s.launches += 1;
            if e.success {
                s.total += e.duration;
            } else {
                s.failures += 1;
            }
        }
        let ok = (s.launches - s.failures) as u32;
        if ok > 0 {
            s.mean = s.total / ok;
        }
        s
    }
}
