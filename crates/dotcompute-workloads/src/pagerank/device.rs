//! PageRank on a compute device: the same power iteration as
//! [`pagerank`](super::pagerank), driven through the [`Backend`] trait with
//! the shipped `pagerank.cu` kernels, so it runs on the CUDA backend (NVRTC)
//! and, with the kernels' Rust equivalents, on the CPU backend.
//!
//! The graph's CSR (in-edge offsets, sources, out-degrees) is uploaded once
//! ([`DevicePagerank::new`]); a solve then allocates the rank and
//! contribution vectors on the device and, per iteration, launches
//! `pagerank_spmv` (pull SpMV over in-edges fused with the residual, the next
//! contributions and the dangling mass) and `pagerank_reduce`, and reads back
//! three numbers (L1 residual, L∞ residual, dangling mass). The host computes
//! the next step's constant term and decides convergence; ranks come back
//! once, at the end.
//!
//! Invariants:
//! - same semantics as the CPU solver: [`PagerankConfig`] (damping,
//!   tolerance, norm, `max_iterations`, [`Dangling`]) means
//!   the same, the returned iterate, iteration count, `converged` and
//!   residuals are defined the same way, and invalid options, an empty graph
//!   or a bad starting vector are the same [`PagerankError`]s;
//! - every row is computed with the CPU solver's operations in its order
//!   (sources ascending, summed from 0.0, plus the constant term; weights
//!   `d · (1/outdeg)`), so given the same constant term a row is
//!   bit-identical. Only the two sums over all nodes (dangling mass, L1
//!   residual) are reduced in another order (per-thread, then a fixed tree
//!   per block, then over blocks), so:
//!   - with [`Dangling::Ignore`] and the L∞ norm
//!     (a max, order-free) the ranks, residuals and iteration count equal the
//!     CPU solver's bit for bit;
//!   - otherwise ranks agree to rounding (relative differences ~1e-15, well
//!     inside 1e-12), and the iteration count is the same unless a residual
//!     lands within rounding of the tolerance;
//! - the CPU and CUDA backends run the same operations in the same order with
//!   the same launch geometry, so their results are meant to be identical bit
//!   for bit (checked by the GPU test where a GPU exists);
//! - the host reads back `3 · 8` bytes per iteration plus the dangling mass
//!   of the start vector and the ranks at the end, nothing else;
//! - device failures (no CUDA driver, out of device memory, a kernel fault)
//!   are [`PagerankError::Device`], never a panic.
//!
//! ```
//! use std::sync::Arc;
//! use dotcompute::device::CpuBackend;
//! use dotcompute_workloads::graph::Graph;
//! use dotcompute_workloads::pagerank::{device::pagerank_on, pagerank, PagerankConfig};
//!
//! let g = Graph::from_edges(4, &[0, 1, 2, 0], &[1, 2, 0, 3]).unwrap();
//! let cfg = PagerankConfig::default();
//! let on_device = pagerank_on(&Arc::new(CpuBackend::new()), &g, &cfg).unwrap();
//! let rayon = pagerank(&g, &cfg).unwrap();
//! assert_eq!(on_device.iterations, rayon.iterations);
//! for (a, b) in on_device.ranks.iter().zip(&rayon.ranks) {
//!     assert!((a - b).abs() <= 1e-12 * b);
//! }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::{check_initial, Dangling, Norm, PagerankBackend, PagerankConfig, PagerankError, PagerankResult};
use crate::graph::Graph;
use crate::progress::Progress;
use dotcompute::device::kernels::{self, ShippedKernels};
use dotcompute::device::{Backend, BackendStats, CpuBackend, CudaBackend, DeviceBuffer, DeviceError, KernelArg};

/// Where the time of a device solve went, and what crossed the bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DeviceTimings {
    /// Building the three kernels (NVRTC on CUDA, cached per backend), seconds.
    pub compile_seconds: f64,
    /// Uploading the CSR (offsets, sources, out-degrees), seconds.
    pub upload_seconds: f64,
    /// Allocating the vectors, uploading the start ranks and computing their
    /// contributions and dangling mass, seconds.
    pub setup_seconds: f64,
    /// The iterations, including each one's 24-byte read-back, seconds.
    pub iterate_seconds: f64,
    /// Reading the ranks back, seconds.
    pub download_seconds: f64,
    /// Kernel launches of the solve.
    pub launches: u64,
    /// Device-to-host copies of the solve (one per iteration, one for the
    /// start vector's dangling mass, one for the ranks).
    pub copies_to_host: u64,
    /// Device-to-host bytes of the solve.
    pub bytes_to_host: u64,
}

impl DeviceTimings {
    /// Setup, iterations and download: the solve, without the one-time
    /// compilation and CSR upload.
    pub fn solve_seconds(&self) -> f64 {
        self.setup_seconds + self.iterate_seconds + self.download_seconds
    }
}

/// A finished device solve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceSolve {
    /// The ranks and convergence data, as the CPU solver reports them.
    pub result: PagerankResult,
    /// Time and transfers. The counts come from the backend's counters, so
    /// other work on the same backend during the solve is included.
    pub timings: DeviceTimings,
}

/// A graph uploaded to a device with the PageRank kernels built, ready to
/// solve any number of times. See the [module docs](self).
pub struct DevicePagerank<B: ShippedKernels> {
    backend: Arc<B>,
    contrib: B::Kernel,
    spmv: B::Kernel,
    reduce: B::Kernel,
    offsets: DeviceBuffer<u64, B>,
    sources: DeviceBuffer<u32, B>,
    outdeg: DeviceBuffer<u32, B>,
    nodes: u32,
    edges: usize,
    compile_seconds: f64,
    upload_seconds: f64,
}

impl<B: ShippedKernels> fmt::Debug for DevicePagerank<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevicePagerank")
            .field("backend", &self.backend.kind())
            .field("device", &self.backend.device().name)
            .field("nodes", &self.nodes)
            .field("edges", &self.edges)
            .finish()
    }
}

fn stats_delta(before: &BackendStats, after: &BackendStats) -> (u64, u64, u64) {
    (
        after.launches.saturating_sub(before.launches),
        after.dtoh_count.saturating_sub(before.dtoh_count),
        after.dtoh_bytes.saturating_sub(before.dtoh_bytes),
    )
}

impl<B: ShippedKernels> DevicePagerank<B> {
    /// Builds the kernels on `backend` and uploads `graph`'s CSR.
    pub fn new(backend: &Arc<B>, graph: &Graph) -> Result<Self, PagerankError> {
        let n = graph.num_nodes();
        if n == 0 {
            return Err(PagerankError::EmptyGraph);
        }
        if graph.is_weighted() {
            // Refused, never solved as if unweighted.
            return Err(PagerankError::InvalidOption {
                parameter: "backend",
                value: backend.device().name.clone(),
                reason: "the device kernels solve unweighted graphs only: weighted graphs run on the cpu backend \
                         (or read the graph with --weights ignore to solve it unweighted)"
                    .into(),
            });
        }
        let nodes = u32::try_from(n).map_err(|_| PagerankError::InvalidOption {
            parameter: "graph",
            value: format!("{n} nodes"),
            reason: "the device kernels index nodes with u32".into(),
        })?;
        let start = Instant::now();
        let contrib = backend.compile_shipped(&kernels::PAGERANK_CONTRIB)?;
        let spmv = backend.compile_shipped(&kernels::PAGERANK_SPMV)?;
        let reduce = backend.compile_shipped(&kernels::PAGERANK_REDUCE)?;
        let compile_seconds = start.elapsed().as_secs_f64();

        let start = Instant::now();
        let offsets: Vec<u64> = graph.in_offsets().iter().map(|&o| o as u64).collect();
        let offsets = DeviceBuffer::from_slice(backend, &offsets)?;
        // A graph without edges still gets a one-element sources buffer (never
        // read: every row is empty), so no backend sees a zero-sized argument.
        let sources = if graph.num_edges() == 0 {
            DeviceBuffer::from_slice(backend, &[0u32])?
        } else {
            DeviceBuffer::from_slice(backend, graph.in_sources())?
        };
        let outdeg = DeviceBuffer::from_slice(backend, graph.out_degrees())?;
        let upload_seconds = start.elapsed().as_secs_f64();
        Ok(DevicePagerank {
            backend: backend.clone(),
            contrib,
            spmv,
            reduce,
            offsets,
            sources,
            outdeg,
            nodes,
            edges: graph.num_edges(),
            compile_seconds,
            upload_seconds,
        })
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Nodes of the uploaded graph.
    pub fn nodes(&self) -> usize {
        self.nodes as usize
    }

    /// Edges of the uploaded graph.
    pub fn edges(&self) -> usize {
        self.edges
    }

    /// Runs the power iteration from `1/n` (or from `initial`, which must
    /// hold one finite, non-negative rank per node, as for
    /// [`pagerank_from`](super::pagerank_from)).
    pub fn solve(&self, config: &PagerankConfig, initial: Option<&[f64]>) -> Result<DeviceSolve, PagerankError> {
        self.solve_observed(config, initial, &Progress::new())
    }

    /// [`solve`](Self::solve), reporting each iteration to `progress`.
    pub(crate) fn solve_observed(
        &self,
        config: &PagerankConfig,
        initial: Option<&[f64]>,
        progress: &Progress,
    ) -> Result<DeviceSolve, PagerankError> {
        config.validate()?;
        let n = self.nodes as usize;
        if let Some(init) = initial {
            check_initial(init, n)?;
        }
        let b = &self.backend;
        let before = b.stats();
        let nf = n as f64;
        let d = config.damping;
        let teleport = (1.0 - d) / nf;
        let redistribute = config.dangling == Dangling::Redistribute;

        let start = Instant::now();
        let rows = kernels::pagerank_rows_config(n)?;
        let reduce = kernels::pagerank_reduce_config()?;
        let grid = rows.grid.x;
        let mut rank = match initial {
            Some(init) => DeviceBuffer::from_slice(b, init)?,
            None => DeviceBuffer::from_slice(b, &vec![1.0 / nf; n])?,
        };
        let mut next = DeviceBuffer::<f64, B>::alloc(b, n)?;
        let mut contrib = DeviceBuffer::<f64, B>::alloc(b, n)?;
        let mut contrib_next = DeviceBuffer::<f64, B>::alloc(b, n)?;
        let mut partials = DeviceBuffer::<f64, B>::alloc(b, 3 * grid as usize)?;
        let mut totals = DeviceBuffer::<f64, B>::alloc(b, 3)?;
        let stream = b.default_stream();
        let mut host = [0.0f64; 3];
        b.launch(
            &self.contrib,
            &rows,
            &mut [
                rank.arg(),
                self.outdeg.arg(),
                contrib.arg_mut(),
                partials.arg_mut(),
                KernelArg::scalar(d),
                KernelArg::scalar(self.nodes),
            ],
            &stream,
        )?;
        self.fold(&reduce, &partials, &mut totals, grid, &mut host)?;
        let mut dangling = host[2];
        let setup_seconds = start.elapsed().as_secs_f64();

        let start = Instant::now();
        let mut residual_l1 = f64::INFINITY;
        let mut residual_linf = f64::INFINITY;
        let mut iterations = config.max_iterations;
        let mut converged = false;
        for it in 0..config.max_iterations {
            let base = if redistribute {
                teleport + d * dangling / nf
            } else {
                teleport
            };
            b.launch(
                &self.spmv,
                &rows,
                &mut [
                    self.offsets.arg(),
                    self.sources.arg(),
                    contrib.arg(),
                    rank.arg(),
                    self.outdeg.arg(),
                    next.arg_mut(),
                    contrib_next.arg_mut(),
                    partials.arg_mut(),
                    KernelArg::scalar(base),
                    KernelArg::scalar(d),
                    KernelArg::scalar(self.nodes),
                ],
                &stream,
            )?;
            self.fold(&reduce, &partials, &mut totals, grid, &mut host)?;
            residual_l1 = host[0];
            residual_linf = host[1];
            dangling = host[2];
            std::mem::swap(&mut rank, &mut next);
            std::mem::swap(&mut contrib, &mut contrib_next);
            let residual = match config.norm {
                Norm::L1 => residual_l1,
                Norm::Linf => residual_linf,
            };
            progress.iterated(it + 1, residual);
            if residual < config.tolerance {
                iterations = it + 1;
                converged = true;
                break;
            }
        }
        let iterate_seconds = start.elapsed().as_secs_f64();

        let start = Instant::now();
        let ranks = rank.to_vec()?;
        let download_seconds = start.elapsed().as_secs_f64();
        let (launches, copies_to_host, bytes_to_host) = stats_delta(&before, &b.stats());
        let residual = match config.norm {
            Norm::L1 => residual_l1,
            Norm::Linf => residual_linf,
        };
        Ok(DeviceSolve {
            result: PagerankResult {
                ranks,
                iterations,
                converged,
                residual,
                residual_l1,
                residual_linf,
            },
            timings: DeviceTimings {
                compile_seconds: self.compile_seconds,
                upload_seconds: self.upload_seconds,
                setup_seconds,
                iterate_seconds,
                download_seconds,
                launches,
                copies_to_host,
                bytes_to_host,
            },
        })
    }

    /// Folds the per-block partials into `host` = (L1, L∞, dangling mass).
    fn fold(
        &self,
        config: &dotcompute::device::LaunchConfig,
        partials: &DeviceBuffer<f64, B>,
        totals: &mut DeviceBuffer<f64, B>,
        blocks: u32,
        host: &mut [f64; 3],
    ) -> Result<(), DeviceError> {
        self.backend.launch(
            &self.reduce,
            config,
            &mut [partials.arg(), totals.arg_mut(), KernelArg::scalar(blocks)],
            &self.backend.default_stream(),
        )?;
        totals.read(host)
    }
}

/// Runs PageRank on `backend` (see the [module docs](self)): uploads the
/// graph, iterates on the device and returns the ranks.
pub fn pagerank_on<B: ShippedKernels>(
    backend: &Arc<B>,
    graph: &Graph,
    config: &PagerankConfig,
) -> Result<PagerankResult, PagerankError> {
    config.validate()?;
    Ok(DevicePagerank::new(backend, graph)?.solve(config, None)?.result)
}

/// Runs PageRank on CUDA device `ordinal`. Without a CUDA driver or device
/// this is a [`PagerankError::Device`] (e.g. "CUDA driver is not available:
/// no CUDA driver (...)"), never a panic.
pub fn pagerank_cuda(graph: &Graph, config: &PagerankConfig, ordinal: usize) -> Result<DeviceSolve, PagerankError> {
    config.validate()?;
    if graph.num_nodes() == 0 {
        return Err(PagerankError::EmptyGraph);
    }
    let backend = Arc::new(CudaBackend::new(ordinal)?);
    DevicePagerank::new(&backend, graph)?.solve(config, None)
}

/// The solver a [`PagerankBackend`] names, opened (a CUDA context is created
/// here, before any graph is loaded, so a missing GPU fails fast).
pub(crate) enum Solver {
    /// The rayon solver.
    Cpu,
    /// The device driver on the CPU backend.
    CpuDevice(Arc<CpuBackend>),
    /// The device driver on a CUDA device.
    Cuda(Arc<CudaBackend>),
    /// The device driver on a wgpu adapter.
    #[cfg(feature = "wgpu")]
    Wgpu(Arc<dotcompute::device::wgpu::WgpuBackend>),
}

impl Solver {
    pub(crate) fn open(backend: PagerankBackend) -> Result<Self, PagerankError> {
        Ok(match backend {
            PagerankBackend::Cpu => Solver::Cpu,
            PagerankBackend::CpuDevice => Solver::CpuDevice(Arc::new(CpuBackend::new())),
            PagerankBackend::Cuda { device } => Solver::Cuda(Arc::new(CudaBackend::new(device)?)),
            #[cfg(feature = "wgpu")]
            PagerankBackend::Wgpu { device } => {
                use dotcompute::device::wgpu::{AdapterSelector, WgpuBackend};
                let selector = device.map_or(AdapterSelector::Best, AdapterSelector::Index);
                Solver::Wgpu(Arc::new(WgpuBackend::select(selector)?))
            }
        })
    }

    /// The device's name.
    pub(crate) fn device_name(&self) -> String {
        match self {
            Solver::Cpu => dotcompute::device::accelerator::cpu_info().name,
            Solver::CpuDevice(b) => b.device().name.clone(),
            Solver::Cuda(b) => b.device().name.clone(),
            #[cfg(feature = "wgpu")]
            Solver::Wgpu(b) => {
                let a = b.adapter_info();
                let precision = if b.supports_f64() { "f64" } else { "f32 (no SHADER_F64)" };
                format!("{} ({}, {}, {precision})", a.device.name, a.api, a.driver_info)
            }
        }
    }

    /// Solves `graph`; device backends also return their timings.
    pub(crate) fn solve(
        &self,
        graph: &Graph,
        config: &PagerankConfig,
        progress: &Progress,
    ) -> Result<(PagerankResult, Option<DeviceTimings>), PagerankError> {
        fn on<B: ShippedKernels>(
            b: &Arc<B>,
            graph: &Graph,
            config: &PagerankConfig,
            progress: &Progress,
        ) -> Result<(PagerankResult, Option<DeviceTimings>), PagerankError> {
            config.validate()?;
            let s = DevicePagerank::new(b, graph)?.solve_observed(config, None, progress)?;
            Ok((s.result, Some(s.timings)))
        }
        match self {
            Solver::Cpu => Ok((super::pagerank_observed(graph, config, None, progress)?, None)),
            Solver::CpuDevice(b) => on(b, graph, config, progress),
            Solver::Cuda(b) => on(b, graph, config, progress),
            #[cfg(feature = "wgpu")]
            Solver::Wgpu(b) => on(b, graph, config, progress),
        }
    }
}
