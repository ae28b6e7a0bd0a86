//! [`GpuMonitor`]: per-device utilisation, memory, temperature and power
//! from NVML (nvml-wrapper, loaded at run time).
//!
//! Invariants: constructing a monitor never fails; without NVML (no driver,
//! no GPU) it is in the `Unavailable` state with the reason, every sampling
//! call returns an empty list, and the reason is logged once, not per call.
//! A metric a device does not support is `None` in its [`GpuSample`], not an
//! error.

use std::fmt::Write as _;
use std::time::SystemTime;

use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::Nvml;
use serde::Serialize;

use super::error::{DeviceError, DeviceResult};

/// Environment variable naming libnvidia-ml (default: `libnvidia-ml.so.1`).
pub const NVML_LIB_ENV: &str = "DOTCOMPUTE_NVML_LIB";

/// One reading of one GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuSample {
    /// NVML device index.
    pub index: u32,
    /// Device name.
    pub name: Option<String>,
    /// Percent of time a kernel was running.
    pub gpu_utilization_pct: Option<u32>,
    /// Percent of time device memory was read or written.
    pub memory_utilization_pct: Option<u32>,
    /// Memory in use, bytes.
    pub memory_used_bytes: Option<u64>,
    /// Memory installed, bytes.
    pub memory_total_bytes: Option<u64>,
    /// GPU temperature, °C.
    pub temperature_c: Option<u32>,
    /// Power draw, watts.
    pub power_watts: Option<f64>,
    /// When the sample was taken (seconds since the Unix epoch).
    pub timestamp_secs: f64,
}

enum State {
    Available(Box<Nvml>),
    Unavailable(String),
}

/// NVML-backed GPU monitor. See the [module docs](self).
///
/// ```
/// use dotcompute::device::GpuMonitor;
/// let monitor = GpuMonitor::new();
/// if !monitor.is_available() {
///     assert!(monitor.sample_all().is_empty()); // a clean state, not an error
///     assert!(monitor.unavailable_reason().is_some());
/// }
/// ```
pub struct GpuMonitor {
    state: State,
}

impl Default for GpuMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl GpuMonitor {
    /// Loads and initialises NVML, or records why it cannot.
    pub fn new() -> Self {
        let lib = std::env::var_os(NVML_LIB_ENV);
        let result = match &lib {
            Some(path) => Nvml::builder().lib_path(path).init(),
            None => Nvml::init(),
        };
        let state = match result {
            Ok(nvml) => State::Available(Box::new(nvml)),
            Err(e) => {
                let reason = format!("cannot load or initialise NVML: {e}");
                tracing::debug!(%reason, "GPU monitor disabled");
                State::Unavailable(reason)
            }
        };
        GpuMonitor { state }
    }

    /// Whether NVML is loaded.
    pub fn is_available(&self) -> bool {
        matches!(self.state, State::Available(_))
    }

    /// Why NVML is not available, if it is not.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match &self.state {
            State::Available(_) => None,
            State::Unavailable(r) => Some(r),
        }
    }

    fn nvml(&self) -> DeviceResult<&Nvml> {
        match &self.state {
            State::Available(n) => Ok(n),
            State::Unavailable(reason) => Err(DeviceError::Unavailable {
                what: "NVML",
                reason: reason.clone(),
            }),
        }
    }

    /// Number of GPUs NVML sees (0 when unavailable).
    pub fn device_count(&self) -> u32 {
        self.nvml().ok().and_then(|n| n.device_count().ok()).unwrap_or(0)
    }

    /// The driver version string, e.g. "550.54.15".
    pub fn driver_version(&self) -> DeviceResult<String> {
        self.nvml()?.sys_driver_version().map_err(|e| DeviceError::Nvml {
            operation: "nvmlSystemGetDriverVersion",
            message: e.to_string(),
        })
    }

    /// NVML's own version string.
    pub fn nvml_version(&self) -> DeviceResult<String> {
        self.nvml()?.sys_nvml_version().map_err(|e| DeviceError::Nvml {
            operation: "nvmlSystemGetNVMLVersion",
            message: e.to_string(),
        })
    }

    /// One reading of device `index`.
    pub fn sample(&self, index: u32) -> DeviceResult<GpuSample> {
        let nvml = self.nvml()?;
        let dev = nvml.device_by_index(index).map_err(|e| DeviceError::Nvml {
            operation: "nvmlDeviceGetHandleByIndex",
            message: e.to_string(),
        })?;
        let util = dev.utilization_rates().ok();
        let mem = dev.memory_info().ok();
        Ok(GpuSample {
            index,
            name: dev.name().ok(),
            gpu_utilization_pct: util.as_ref().map(|u| u.gpu),
            memory_utilization_pct: util.as_ref().map(|u| u.memory),
            memory_used_bytes: mem.as_ref().map(|m| m.used),
            memory_total_bytes: mem.as_ref().map(|m| m.total),
            temperature_c: dev.temperature(TemperatureSensor::Gpu).ok(),
            power_watts: dev.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
            timestamp_secs: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        })
    }

    /// A reading of every device (empty when NVML is unavailable; a device
    /// that cannot be read is skipped).
    pub fn sample_all(&self) -> Vec<GpuSample> {
        (0..self.device_count()).filter_map(|i| self.sample(i).ok()).collect()
    }
}

/// Samples as Prometheus gauges (text format 0.0.4), for appending to the
/// runtime's telemetry export. Metrics a device did not report are omitted.
pub fn to_prometheus(samples: &[GpuSample]) -> String {
    type Get = fn(&GpuSample) -> Option<f64>;
    let gauges: [(&str, &str, Get); 6] = [
        ("gpu_utilization_percent", "GPU busy time, percent.", |s| {
            s.gpu_utilization_pct.map(f64::from)
        }),
        (
            "gpu_memory_utilization_percent",
            "GPU memory busy time, percent.",
            |s| s.memory_utilization_pct.map(f64::from),
        ),
        ("gpu_memory_used_bytes", "GPU memory in use.", |s| {
            s.memory_used_bytes.map(|v| v as f64)
        }),
        ("gpu_memory_total_bytes", "GPU memory installed.", |s| {
            s.memory_total_bytes.map(|v| v as f64)
        }),
        ("gpu_temperature_celsius", "GPU temperature.", |s| {
            s.temperature_c.map(f64::from)
        }),
        ("gpu_power_watts", "GPU power draw.", |s| s.power_watts),
    ];
    let mut out = String::new();
    for (name, help, get) in gauges {
        let values: Vec<(u32, f64)> = samples.iter().filter_map(|s| get(s).map(|v| (s.index, v))).collect();
        if values.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP dotcompute_{name} {help}");
        let _ = writeln!(out, "# TYPE dotcompute_{name} gauge");
        for (gpu, v) in values {
            let _ = writeln!(out, "dotcompute_{name}{{gpu=\"{gpu}\"}} {v}");
        }
    }
    out
}
