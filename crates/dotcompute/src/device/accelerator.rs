//! Device discovery and selection: [`Accelerator`] and [`DeviceInfo`].
//!
//! Invariants: the CPU is always device 0, so discovery never yields an empty
//! list; CUDA devices follow in driver order. Discovery never fails and never
//! panics: a missing driver, a driver without devices, or a driver error is
//! recorded in [`CudaStatus`] and the CUDA devices are simply absent. Device
//! ids outside the list are a typed [`DeviceError::DeviceNotFound`].

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::backend::BackendKind;
use super::cpu::CpuBackend;
#[cfg(feature = "cuda")]
use super::cuda::{self, CudaBackend};
use super::error::{DeviceError, DeviceResult};

/// A device's properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Position in the [`Accelerator`]'s list.
    pub id: usize,
    /// The backend that drives it.
    pub kind: BackendKind,
    /// The backend's own index (the CUDA ordinal; 0 for the CPU).
    pub ordinal: usize,
    /// Marketing name.
    pub name: String,
    /// CUDA compute capability (major, minor); `None` for the CPU.
    pub compute_capability: Option<(u32, u32)>,
    /// Device memory in bytes (host RAM for the CPU; 0 if unknown).
    pub total_memory: u64,
    /// Streaming multiprocessors (logical cores for the CPU).
    pub multiprocessor_count: u32,
    /// Most threads in one block.
    pub max_threads_per_block: u32,
    /// Largest block extent per dimension.
    pub max_block_dims: [u32; 3],
    /// Largest grid extent per dimension.
    pub max_grid_dims: [u32; 3],
    /// Threads that execute in lock step (1 on the CPU: a block's threads run one after another).
    pub warp_size: u32,
    /// Dynamic shared memory available to one block, in bytes.
    pub shared_mem_per_block: u64,
    /// Core clock in kHz, if known.
    pub clock_rate_khz: Option<u32>,
    /// Memory clock in kHz, if known.
    pub memory_clock_rate_khz: Option<u32>,
    /// Memory bus width in bits, if known.
    pub memory_bus_width_bits: Option<u32>,
    /// L2 cache in bytes, if known.
    pub l2_cache_bytes: Option<u32>,
}

impl DeviceInfo {
    /// Compute capability as "8.9", or "n/a".
    pub fn compute_capability_str(&self) -> String {
        match self.compute_capability {
            Some((a, b)) => format!("{a}.{b}"),
            None => "n/a".into(),
        }
    }

    /// The NVRTC/ptxas architecture name, e.g. "sm_89".
    pub fn sm_arch(&self) -> Option<String> {
        self.compute_capability.map(|(a, b)| format!("sm_{a}{b}"))
    }

    /// Total memory in GiB.
    pub fn total_memory_gib(&self) -> f64 {
        self.total_memory as f64 / (1u64 << 30) as f64
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {} {} (cc {}, {:.1} GiB, {} SMs/cores, {} threads/block, warp {}",
            self.id,
            self.kind,
            self.name,
            self.compute_capability_str(),
            self.total_memory_gib(),
            self.multiprocessor_count,
            self.max_threads_per_block,
            self.warp_size
        )?;
        if let Some(c) = self.clock_rate_khz {
            write!(f, ", {} MHz", c / 1000)?;
        }
        f.write_str(")")
    }
}

/// What discovery found about CUDA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CudaStatus {
    /// The driver loaded and initialised.
    Available {
        /// The driver's CUDA version, e.g. 12040 for 12.4.
        driver_version: i32,
        /// Number of CUDA devices.
        device_count: usize,
    },
    /// No usable driver; the reason in words.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// The devices of this machine, with a current selection.
///
/// ```
/// use dotcompute::device::{Accelerator, BackendKind, DeviceError};
/// let acc = Accelerator::discover();
/// assert_eq!(acc.device(0).unwrap().kind, BackendKind::Cpu);
/// assert!(matches!(acc.device(999), Err(DeviceError::DeviceNotFound { index: 999, .. })));
/// ```
#[derive(Debug, Clone)]
pub struct Accelerator {
    devices: Vec<DeviceInfo>,
    cuda: CudaStatus,
    current: usize,
    #[cfg(feature = "wgpu")]
    wgpu: (super::wgpu::WgpuStatus, Vec<super::wgpu::WgpuAdapterInfo>),
}

impl Accelerator {
    /// Discovers the CPU, every CUDA device and (with the `wgpu` feature)
    /// every wgpu adapter, in that order. The current device is the first
    /// CUDA device if there is one, else the CPU.
    pub fn discover() -> Self {
        #[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(unused_mut))]
        let mut devices = vec![cpu_info()];
        #[cfg(feature = "cuda")]
        let cuda = match cuda::discover_devices(1) {
            Ok((version, list)) => {
                let n = list.len();
                devices.extend(list);
                CudaStatus::Available {
                    driver_version: version,
                    device_count: n,
                }
            }
            Err(DeviceError::Unavailable { reason, .. }) => CudaStatus::Unavailable { reason },
            Err(e) => CudaStatus::Unavailable { reason: e.to_string() },
        };
        #[cfg(not(feature = "cuda"))]
        let cuda = CudaStatus::Unavailable {
            reason: "built without the `cuda` feature of dotcompute".to_string(),
        };
        let current = if devices.len() > 1 { 1 } else { 0 };
        #[cfg(feature = "wgpu")]
        let wgpu = {
            let (status, adapters) = super::wgpu::adapter::discover(devices.len());
            devices.extend(adapters.iter().map(|a| a.device.clone()));
            (status, adapters)
        };
        Accelerator {
            devices,
            cuda,
            current,
            #[cfg(feature = "wgpu")]
            wgpu,
        }
    }

    /// Every device; the CPU first.
    pub fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    /// Number of devices (at least 1).
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// The device with this id.
    pub fn device(&self, id: usize) -> DeviceResult<&DeviceInfo> {
        self.devices.get(id).ok_or(DeviceError::DeviceNotFound {
            index: id,
            count: self.devices.len(),
        })
    }

    /// Makes `id` the current device.
    pub fn select(&mut self, id: usize) -> DeviceResult<&DeviceInfo> {
        self.device(id)?;
        self.current = id;
        Ok(&self.devices[id])
    }

    /// The current device.
    pub fn current(&self) -> &DeviceInfo {
        &self.devices[self.current]
    }

    /// What discovery found about CUDA.
    pub fn cuda_status(&self) -> &CudaStatus {
        &self.cuda
    }

    /// Whether at least one CUDA device is usable.
    pub fn cuda_available(&self) -> bool {
        matches!(self.cuda, CudaStatus::Available { device_count, .. } if device_count > 0)
    }

    /// The CUDA devices only.
    pub fn cuda_devices(&self) -> impl Iterator<Item = &DeviceInfo> {
        self.devices.iter().filter(|d| d.kind == BackendKind::Cuda)
    }

    /// What discovery found about wgpu.
    #[cfg(feature = "wgpu")]
    #[cfg_attr(docsrs, doc(cfg(feature = "wgpu")))]
    pub fn wgpu_status(&self) -> &super::wgpu::WgpuStatus {
        &self.wgpu.0
    }

    /// The wgpu adapters, in their ordinal order (their `device.id` is
    /// their place in [`devices`](Self::devices)).
    #[cfg(feature = "wgpu")]
    pub fn wgpu_adapters(&self) -> &[super::wgpu::WgpuAdapterInfo] {
        &self.wgpu.1
    }

    /// A wgpu backend for device `id`, which must be a wgpu adapter.
    #[cfg(feature = "wgpu")]
    pub fn wgpu_backend(&self, id: usize) -> DeviceResult<Arc<super::wgpu::WgpuBackend>> {
        let info = self.device(id)?;
        let adapter = self.wgpu.1.iter().find(|a| a.device.id == id).ok_or_else(|| {
            DeviceError::invalid(
                "device",
                id,
                format!("device {id} is a {} device, not a wgpu adapter", info.kind),
            )
        })?;
        Ok(Arc::new(super::wgpu::WgpuBackend::from_info(adapter)?))
    }

    /// A CPU backend (device 0).
    pub fn cpu_backend(&self) -> Arc<CpuBackend> {
        Arc::new(CpuBackend::with_info(self.devices[0].clone()))
    }

    /// A CUDA backend for device `id`, which must be a CUDA device.
    #[cfg(feature = "cuda")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
    pub fn cuda_backend(&self, id: usize) -> DeviceResult<Arc<CudaBackend>> {
        let info = self.device(id)?;
        if info.kind != BackendKind::Cuda {
            return Err(DeviceError::invalid(
                "device",
                id,
                format!("device {id} is a {} device, not CUDA", info.kind),
            ));
        }
        Ok(Arc::new(CudaBackend::new_with_info(info.clone())?))
    }
}

/// The CPU's properties (always device 0), read from the OS where it
/// exposes them; without discovering any other device.
///
/// ```
/// let cpu = dotcompute::device::accelerator::cpu_info();
/// assert_eq!(cpu.id, 0);
/// assert!(cpu.multiprocessor_count >= 1);
/// ```
pub fn cpu_info() -> DeviceInfo {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let name = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let clock_rate_khz = field("cpu MHz")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|mhz| (mhz * 1000.0) as u32);
    let total_memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    DeviceInfo {
        id: 0,
        kind: BackendKind::Cpu,
        ordinal: 0,
        name,
        compute_capability: None,
        total_memory,
        multiprocessor_count: u32::try_from(cores).unwrap_or(u32::MAX),
        max_threads_per_block: 1024,
        max_block_dims: [1024, 1024, 64],
        max_grid_dims: [i32::MAX as u32, 65535, 65535],
        warp_size: 1,
        shared_mem_per_block: 48 * 1024,
        clock_rate_khz,
        memory_clock_rate_khz: None,
        memory_bus_width_bits: None,
        l2_cache_bytes: None,
    }
}
