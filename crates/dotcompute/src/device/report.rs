//! [`report`]: what `dotcompute info` prints about devices and the CUDA
//! tool chain.
//!
//! Invariant: building a report never fails or panics; every component that
//! is missing is reported as unavailable with the reason.

use std::fmt;

use serde::Serialize;

use super::accelerator::{Accelerator, CudaStatus, DeviceInfo};
#[cfg(feature = "compiler")]
use super::compiler::{KernelCompiler, Ptxas};
#[cfg(feature = "compiler")]
use super::error::DeviceError;
#[cfg(feature = "nvml")]
use super::monitor::GpuMonitor;

/// Whether a component is there, its version, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// Whether it is usable.
    pub available: bool,
    /// Its version, when available.
    pub version: Option<String>,
    /// Further facts (path, supported architectures, driver version).
    pub detail: Option<String>,
    /// Why it is not available.
    pub reason: Option<String>,
}

impl Component {
    fn ok(version: Option<String>, detail: Option<String>) -> Self {
        Component {
            available: true,
            version,
            detail,
            reason: None,
        }
    }
    fn missing(reason: String) -> Self {
        Component {
            available: false,
            version: None,
            detail: None,
            reason: Some(reason),
        }
    }
}

/// The reason alone for an `Unavailable` error, the whole message otherwise.
#[cfg(feature = "compiler")]
fn reason_of(e: &DeviceError) -> String {
    match e {
        DeviceError::Unavailable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.available {
            write!(f, "available")?;
            if let Some(v) = &self.version {
                write!(f, ", version {v}")?;
            }
            if let Some(d) = &self.detail {
                write!(f, " ({d})")?;
            }
            Ok(())
        } else {
            write!(f, "not available: {}", self.reason.as_deref().unwrap_or("unknown"))
        }
    }
}

/// Devices and tool chain of this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceReport {
    /// Every device, the CPU first.
    pub devices: Vec<DeviceInfo>,
    /// The CUDA driver.
    pub cuda_driver: Component,
    /// NVRTC.
    pub nvrtc: Component,
    /// ptxas.
    pub ptxas: Component,
    /// NVML.
    pub nvml: Component,
    /// wgpu (Vulkan, Metal, DX12, GL): its adapters, or why there are none.
    #[cfg(feature = "wgpu")]
    pub wgpu: Component,
    /// The wgpu adapters in detail.
    #[cfg(feature = "wgpu")]
    pub wgpu_adapters: Vec<super::wgpu::WgpuAdapterInfo>,
}

/// Gathers a [`DeviceReport`].
///
/// ```
/// let r = dotcompute::device::report();
/// assert!(!r.devices.is_empty());
/// assert!(r.to_string().contains("CUDA driver"));
/// ```
pub fn report() -> DeviceReport {
    let acc = Accelerator::discover();
    let cuda_driver = match acc.cuda_status() {
        CudaStatus::Available {
            driver_version,
            device_count,
        } => Component::ok(
            Some(format!("{}.{}", driver_version / 1000, (driver_version % 1000) / 10)),
            Some(format!("{device_count} device(s)")),
        ),
        CudaStatus::Unavailable { reason } => Component::missing(reason.clone()),
    };
    #[cfg(feature = "compiler")]
    let nvrtc = match KernelCompiler::version() {
        Ok((a, b)) => {
            let archs = KernelCompiler::supported_archs()
                .map(|v| v.iter().map(|a| format!("sm_{a}")).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            Component::ok(Some(format!("{a}.{b}")), Some(format!("targets: {archs}")))
        }
        Err(e) => Component::missing(reason_of(&e)),
    };
    #[cfg(feature = "compiler")]
    let ptxas = match Ptxas::locate() {
        Ok(p) => Component::ok(p.version().ok(), Some(p.path().display().to_string())),
        Err(e) => Component::missing(reason_of(&e)),
    };
    #[cfg(not(feature = "compiler"))]
    let (nvrtc, ptxas) = (not_built("compiler"), not_built("compiler"));
    #[cfg(feature = "nvml")]
    let monitor = GpuMonitor::new();
    #[cfg(feature = "nvml")]
    let nvml = if monitor.is_available() {
        Component::ok(
            monitor.nvml_version().ok(),
            monitor
                .driver_version()
                .ok()
                .map(|d| format!("driver {d}, {} GPU(s)", monitor.device_count())),
        )
    } else {
        Component::missing(monitor.unavailable_reason().unwrap_or("unknown").to_string())
    };
    #[cfg(not(feature = "nvml"))]
    let nvml = not_built("nvml");
    #[cfg(feature = "wgpu")]
    let wgpu = match acc.wgpu_status() {
        super::wgpu::WgpuStatus::Available {
            adapter_count,
            searched,
        } => Component::ok(
            Some(format!("wgpu {}", WGPU_VERSION)),
            Some(format!("{adapter_count} adapter(s); searched {searched}")),
        ),
        super::wgpu::WgpuStatus::Unavailable { reason } => Component::missing(reason.clone()),
    };
    DeviceReport {
        devices: acc.devices().to_vec(),
        cuda_driver,
        nvrtc,
        ptxas,
        nvml,
        #[cfg(feature = "wgpu")]
        wgpu,
        #[cfg(feature = "wgpu")]
        wgpu_adapters: acc.wgpu_adapters().to_vec(),
    }
}

/// A component this build left out.
#[cfg(not(all(feature = "compiler", feature = "nvml")))]
fn not_built(feature: &str) -> Component {
    Component::missing(format!("built without the `{feature}` feature of dotcompute"))
}

/// The wgpu crate version this build uses.
#[cfg(feature = "wgpu")]
const WGPU_VERSION: &str = "30";

impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Devices:")?;
        for d in &self.devices {
            #[cfg(feature = "wgpu")]
            if let Some(a) = self.wgpu_adapters.iter().find(|a| a.device.id == d.id) {
                writeln!(f, "  {a}")?;
                continue;
            }
            writeln!(f, "  {d}")?;
        }
        writeln!(f, "CUDA driver: {}", self.cuda_driver)?;
        writeln!(f, "NVRTC:       {}", self.nvrtc)?;
        writeln!(f, "ptxas:       {}", self.ptxas)?;
        #[cfg(feature = "wgpu")]
        writeln!(f, "wgpu:        {}", self.wgpu)?;
        write!(f, "NVML:        {}", self.nvml)
    }
}
