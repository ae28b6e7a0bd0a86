//! wgpu adapter discovery and selection.
//!
//! Invariants: discovery never fails and never panics: no Vulkan loader, no
//! driver (ICD), or no adapter at all is a [`WgpuStatus::Unavailable`] with
//! the reason in words; adapters are listed in wgpu's enumeration order and
//! that order is their ordinal, so `--device N` names the same adapter as
//! the N-th line `dotcompute info` prints.

use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use crate::device::accelerator::DeviceInfo;
use crate::device::backend::BackendKind;
use crate::device::error::{DeviceError, DeviceResult};

/// A graphics API wgpu drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WgpuApi {
    /// Vulkan (Linux, Windows, Android; lavapipe on the CPU).
    Vulkan,
    /// Metal (macOS, iOS).
    Metal,
    /// Direct3D 12 (Windows).
    Dx12,
    /// OpenGL / OpenGL ES (compute shaders need GL 4.3 / ES 3.1).
    Gl,
    /// Something else wgpu reports (WebGPU in a browser, a no-op backend).
    Other,
}

impl WgpuApi {
    pub(crate) fn of(backend: wgpu::Backend) -> Self {
        match backend {
            wgpu::Backend::Vulkan => WgpuApi::Vulkan,
            wgpu::Backend::Metal => WgpuApi::Metal,
            wgpu::Backend::Dx12 => WgpuApi::Dx12,
            wgpu::Backend::Gl => WgpuApi::Gl,
            _ => WgpuApi::Other,
        }
    }

    /// The API's name as `dotcompute info` prints it.
    pub fn name(self) -> &'static str {
        match self {
            WgpuApi::Vulkan => "vulkan",
            WgpuApi::Metal => "metal",
            WgpuApi::Dx12 => "dx12",
            WgpuApi::Gl => "gl",
            WgpuApi::Other => "other",
        }
    }
}

impl fmt::Display for WgpuApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for WgpuApi {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(WgpuApi::Vulkan),
            "metal" | "mtl" => Ok(WgpuApi::Metal),
            "dx12" | "d3d12" => Ok(WgpuApi::Dx12),
            "gl" | "gles" | "opengl" => Ok(WgpuApi::Gl),
            _ => Err(format!(
                "unknown graphics API {s:?} (expected vulkan, metal, dx12 or gl)"
            )),
        }
    }
}

/// The limits of an adapter that matter for compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WgpuLimits {
    /// Largest buffer, bytes.
    pub max_buffer_size: u64,
    /// Largest storage-buffer binding, bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Storage buffers one shader may bind.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Workgroup (shared) memory, bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// Invocations (threads) in one workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Largest workgroup extent per dimension.
    pub max_compute_workgroup_size: [u32; 3],
    /// Most workgroups per dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Alignment of uniform-buffer binding offsets, bytes.
    pub min_uniform_buffer_offset_alignment: u32,
}

impl WgpuLimits {
    pub(crate) fn of(l: &wgpu::Limits) -> Self {
        WgpuLimits {
            max_buffer_size: l.max_buffer_size,
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_compute_workgroup_size: [
                l.max_compute_workgroup_size_x,
                l.max_compute_workgroup_size_y,
                l.max_compute_workgroup_size_z,
            ],
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            min_uniform_buffer_offset_alignment: l.min_uniform_buffer_offset_alignment,
        }
    }
}

/// One wgpu adapter: what `dotcompute info` prints about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WgpuAdapterInfo {
    /// Its properties as a device (`kind` is [`BackendKind::Wgpu`], `ordinal`
    /// its position among the wgpu adapters, `id` its position in the
    /// [`Accelerator`](crate::device::Accelerator)'s list).
    pub device: DeviceInfo,
    /// The graphics API.
    pub api: WgpuApi,
    /// "discrete gpu", "integrated gpu", "virtual gpu", "cpu" or "other".
    pub device_type: String,
    /// The driver's name (e.g. "llvmpipe").
    pub driver: String,
    /// The driver's version text (e.g. "Mesa 22.3.6 (LLVM 15.0.6)").
    pub driver_info: String,
    /// PCI vendor id (or the backend's equivalent).
    pub vendor: u32,
    /// Whether shaders may use `f64` (`SHADER_F64`).
    pub shader_f64: bool,
    /// Compute limits.
    pub limits: WgpuLimits,
}

impl fmt::Display for WgpuAdapterInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.limits;
        write!(
            f,
            "[{}] wgpu:{} {} ({}, {}, driver {} {}, f64 {}, {} threads/workgroup, {} KiB workgroup memory, \
             {} MiB max buffer, {} MiB max storage binding)",
            self.device.id,
            self.device.ordinal,
            self.device.name,
            self.api,
            self.device_type,
            if self.driver.is_empty() { "?" } else { &self.driver },
            self.driver_info,
            if self.shader_f64 { "yes" } else { "no" },
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_storage_size / 1024,
            l.max_buffer_size >> 20,
            l.max_storage_buffer_binding_size >> 20,
        )
    }
}

/// What discovery found about wgpu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WgpuStatus {
    /// At least one adapter.
    Available {
        /// Number of adapters.
        adapter_count: usize,
        /// The APIs searched.
        searched: String,
    },
    /// No adapter; the reason in words.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// How to pick an adapter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AdapterSelector {
    /// The first adapter, preferring hardware: a discrete GPU, then an
    /// integrated one, then any other (lavapipe).
    #[default]
    Best,
    /// The adapter at this ordinal (its position among the wgpu adapters).
    Index(usize),
    /// The first adapter whose name contains this text (case-insensitive).
    Name(String),
    /// The best adapter of this graphics API.
    Api(WgpuApi),
}

impl fmt::Display for AdapterSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdapterSelector::Best => f.write_str("the best adapter"),
            AdapterSelector::Index(i) => write!(f, "adapter {i}"),
            AdapterSelector::Name(n) => write!(f, "an adapter named like {n:?}"),
            AdapterSelector::Api(a) => write!(f, "a {a} adapter"),
        }
    }
}

/// The APIs searched: `WGPU_BACKEND` (wgpu's own variable, e.g. `vulkan`,
/// `gl`, `metal,dx12`) when set, else Vulkan, Metal and DX12.
pub fn searched_backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

/// The process's wgpu instance (creating one loads the Vulkan loader and
/// enumerates physical devices, tens of milliseconds; it is done once).
pub(crate) fn instance() -> &'static wgpu::Instance {
    static INSTANCE: OnceLock<wgpu::Instance> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = searched_backends();
        desc.flags = wgpu::InstanceFlags::empty().with_env();
        wgpu::Instance::new(desc)
    })
}

/// Every adapter of the searched APIs, in wgpu's order (cached: adapters
/// are enumerated once per process, so ordinals stay stable).
pub(crate) fn adapters() -> Vec<wgpu::Adapter> {
    static ADAPTERS: Mutex<Option<Vec<wgpu::Adapter>>> = Mutex::new(None);
    let mut cached = ADAPTERS.lock().unwrap_or_else(|e| e.into_inner());
    cached
        .get_or_insert_with(|| {
            let found = std::panic::catch_unwind(|| {
                futures::executor::block_on(instance().enumerate_adapters(searched_backends()))
            });
            match found {
                Ok(list) => list,
                Err(_) => {
                    tracing::warn!("wgpu panicked while enumerating adapters; treating it as no adapter");
                    Vec::new()
                }
            }
        })
        .clone()
}

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete gpu",
        wgpu::DeviceType::IntegratedGpu => "integrated gpu",
        wgpu::DeviceType::VirtualGpu => "virtual gpu",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

pub(crate) fn describe(adapter: &wgpu::Adapter, ordinal: usize, id: usize) -> WgpuAdapterInfo {
    let info = adapter.get_info();
    let limits = adapter.limits();
    let l = WgpuLimits::of(&limits);
    WgpuAdapterInfo {
        device: DeviceInfo {
            id,
            kind: BackendKind::Wgpu,
            ordinal,
            name: info.name.clone(),
            compute_capability: None,
            // wgpu does not report memory sizes.
            total_memory: 0,
            multiprocessor_count: 0,
            max_threads_per_block: l.max_compute_invocations_per_workgroup,
            max_block_dims: l.max_compute_workgroup_size,
            max_grid_dims: [l.max_compute_workgroups_per_dimension; 3],
            warp_size: info.subgroup_max_size.max(1),
            shared_mem_per_block: u64::from(l.max_compute_workgroup_storage_size),
            clock_rate_khz: None,
            memory_clock_rate_khz: None,
            memory_bus_width_bits: None,
            l2_cache_bytes: None,
        },
        api: WgpuApi::of(info.backend),
        device_type: device_type_name(info.device_type).to_string(),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        vendor: info.vendor,
        shader_f64: adapter.features().contains(wgpu::Features::SHADER_F64),
        limits: l,
    }
}

/// Discovers every wgpu adapter; ids start at `first_id`.
pub fn discover(first_id: usize) -> (WgpuStatus, Vec<WgpuAdapterInfo>) {
    let list: Vec<WgpuAdapterInfo> = adapters()
        .iter()
        .enumerate()
        .map(|(i, a)| describe(a, i, first_id + i))
        .collect();
    let searched = backends_text(searched_backends());
    if list.is_empty() {
        (
            WgpuStatus::Unavailable {
                reason: why_no_adapter(),
            },
            list,
        )
    } else {
        (
            WgpuStatus::Available {
                adapter_count: list.len(),
                searched,
            },
            list,
        )
    }
}

fn backends_text(b: wgpu::Backends) -> String {
    let mut names = Vec::new();
    for (flag, name) in [
        (wgpu::Backends::VULKAN, "vulkan"),
        (wgpu::Backends::METAL, "metal"),
        (wgpu::Backends::DX12, "dx12"),
        (wgpu::Backends::GL, "gl"),
    ] {
        if b.contains(flag) {
            names.push(name);
        }
    }
    names.join(", ")
}

/// Why there is no adapter, as precisely as the machine lets us tell.
fn why_no_adapter() -> String {
    let searched = searched_backends();
    let mut reasons = Vec::new();
    if searched.contains(wgpu::Backends::VULKAN) && cfg!(any(target_os = "linux", target_os = "windows")) {
        reasons.push(vulkan_diagnosis());
    }
    if searched.contains(wgpu::Backends::METAL) && cfg!(target_vendor = "apple") {
        reasons.push("Metal: no Metal device found".to_string());
    }
    if searched.contains(wgpu::Backends::DX12) && cfg!(target_os = "windows") {
        reasons.push("DX12: no Direct3D 12 adapter found".to_string());
    }
    if reasons.is_empty() {
        reasons.push(format!(
            "no graphics API that wgpu supports on this platform was searched ({})",
            backends_text(searched)
        ));
    }
    format!(
        "no wgpu adapter found (searched {}): {}",
        backends_text(searched),
        reasons.join("; ")
    )
}

fn vulkan_diagnosis() -> String {
    let loader = if cfg!(target_os = "windows") {
        "vulkan-1.dll"
    } else {
        "libvulkan.so.1"
    };
    // SAFETY: loading the Vulkan loader runs its initialisers only, which
    // have no preconditions; the handle is dropped at once.
    let loaded = unsafe { libloading::Library::new(loader) };
    if let Err(e) = loaded {
        return format!(
            "Vulkan: no Vulkan loader ({loader}: {e}); on Debian/Ubuntu install libvulkan1 \
             and mesa-vulkan-drivers (lavapipe, Vulkan on the CPU), or run scripts/provision-vulkan.sh"
        );
    }
    if cfg!(target_os = "linux") {
        let dirs = [
            "/usr/share/vulkan/icd.d",
            "/etc/vulkan/icd.d",
            "/usr/local/share/vulkan/icd.d",
        ];
        let icds: Vec<String> = dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flat_map(|rd| rd.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned())))
            .collect();
        if icds.is_empty()
            && std::env::var_os("VK_ICD_FILENAMES").is_none()
            && std::env::var_os("VK_DRIVER_FILES").is_none()
        {
            return "Vulkan: the loader is installed but no driver (ICD) is: install mesa-vulkan-drivers \
                    (lavapipe) or your GPU's Vulkan driver"
                .to_string();
        }
        return format!(
            "Vulkan: the loader and drivers ({}) are installed but none offered a usable device",
            icds.join(", ")
        );
    }
    "Vulkan: the loader is installed but no driver offered a usable device".to_string()
}

/// Picks the adapter `selector` names among `adapters` (described as `infos`).
pub(crate) fn select(infos: &[WgpuAdapterInfo], selector: &AdapterSelector) -> DeviceResult<usize> {
    let rank = |i: &WgpuAdapterInfo| match i.device_type.as_str() {
        "discrete gpu" => 0,
        "integrated gpu" => 1,
        "virtual gpu" => 2,
        "cpu" => 3,
        _ => 4,
    };
    let best = |filter: &dyn Fn(&WgpuAdapterInfo) -> bool| {
        infos
            .iter()
            .enumerate()
            .filter(|(_, i)| filter(i))
            .min_by_key(|(n, i)| (rank(i), *n))
            .map(|(n, _)| n)
    };
    let found = match selector {
        AdapterSelector::Best => best(&|_| true),
        AdapterSelector::Index(n) => (*n < infos.len()).then_some(*n),
        AdapterSelector::Name(name) => {
            let needle = name.to_ascii_lowercase();
            infos
                .iter()
                .position(|i| i.device.name.to_ascii_lowercase().contains(&needle))
        }
        AdapterSelector::Api(api) => best(&|i| i.api == *api),
    };
    found.ok_or_else(|| {
        if infos.is_empty() {
            DeviceError::Unavailable {
                what: "wgpu adapter",
                reason: why_no_adapter(),
            }
        } else if let AdapterSelector::Index(n) = selector {
            DeviceError::DeviceNotFound {
                index: *n,
                count: infos.len(),
            }
        } else {
            DeviceError::invalid(
                "wgpu adapter",
                selector.to_string(),
                format!(
                    "no such adapter; there are: {}",
                    infos
                        .iter()
                        .map(|i| format!("{} ({})", i.device.name, i.api))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    })
}
