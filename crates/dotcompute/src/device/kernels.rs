//! The kernels this crate ships: CUDA C sources (`crates/dotcompute/kernels/*.cu`,
//! compiled with NVRTC) and CPU equivalents with the same arguments, grid
//! semantics and floating-point operation order, so one launch can run on
//! either backend and the results be compared.
//!
//! | kernel | arguments | launch |
//! |---|---|---|
//! | `vector_add` | `a: &[f32], b: &[f32], c: &mut [f32], n: u32` | any 1-D grid (grid-stride) |
//! | `saxpy` | `a: f32, x: &[f32], y: &mut [f32], n: u32` (`y = a·x + y`) | any 1-D grid (grid-stride) |
//! | `reduce_sum` | `input: &[f32], partial: &mut [f32], n: u32` | 1-D, power-of-two block, `4·block` bytes of shared memory; `partial` has one slot per block |
//! | `matmul` | `a: &[f32], b: &[f32], c: &mut [f32], m, n, k: u32` (row-major `c = a·b`) | 16×16 blocks, grid `(⌈n/16⌉, ⌈m/16⌉)` |
//! | `pagerank_contrib` | `rank: &[f64], outdeg: &[u32], contrib: &mut [f64], partials: &mut [f64], damping: f64, n: u32` | [`pagerank_rows_config`] |
//! | `pagerank_spmv` | `offsets: &[u64], sources: &[u32], contrib: &[f64], rank: &[f64], outdeg: &[u32], next: &mut [f64], contrib_next: &mut [f64], partials: &mut [f64], base: f64, damping: f64, n: u32` | [`pagerank_rows_config`] |
//! | `pagerank_reduce` | `partials: &[f64], totals: &mut [f64], blocks: u32` | [`pagerank_reduce_config`] |
//!
//! The three `pagerank_*` kernels live in one file, `pagerank.cu`, whose
//! header states their formulas and floating-point order; the PageRank
//! driver (`dotcompute_workloads::pagerank::device`) runs them on any backend
//! through [`ShippedKernels`].
//!
//! Invariant: [`ALL`] lists every `.cu` file in the kernels folder (a test
//! checks the folder against it), so every shipped CUDA kernel is compiled
//! and assembled by the compile tests; a file with several entry points is
//! listed once per entry point.

use super::backend::{Backend, Dim3, LaunchConfig};
use super::cpu::{BlockCtx, CpuBackend, CpuKernel, OutputView, ThreadIdx};
#[cfg(feature = "cuda")]
use super::cuda::{CudaBackend, CudaSource};
use super::error::{DeviceError, DeviceResult};

/// A shipped CUDA C kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSource {
    /// The file name, used as NVRTC's program name.
    pub file: &'static str,
    /// The `extern "C"` entry point.
    pub entry: &'static str,
    /// The CUDA C source.
    pub source: &'static str,
}

/// `vector_add.cu`
pub const VECTOR_ADD: KernelSource = KernelSource {
    file: "vector_add.cu",
    entry: "vector_add",
    source: include_str!("../../kernels/vector_add.cu"),
};
/// `saxpy.cu`
pub const SAXPY: KernelSource = KernelSource {
    file: "saxpy.cu",
    entry: "saxpy",
    source: include_str!("../../kernels/saxpy.cu"),
};
/// `reduce_sum.cu`
pub const REDUCE_SUM: KernelSource = KernelSource {
    file: "reduce_sum.cu",
    entry: "reduce_sum",
    source: include_str!("../../kernels/reduce_sum.cu"),
};
/// `matmul.cu`
pub const MATMUL: KernelSource = KernelSource {
    file: "matmul.cu",
    entry: "matmul",
    source: include_str!("../../kernels/matmul.cu"),
};

/// `pagerank.cu`: starting contributions and dangling mass.
pub const PAGERANK_CONTRIB: KernelSource = KernelSource {
    file: "pagerank.cu",
    entry: "pagerank_contrib",
    source: include_str!("../../kernels/pagerank.cu"),
};
/// `pagerank.cu`: one fused power-iteration step (pull SpMV, residual,
/// next contributions, dangling mass).
pub const PAGERANK_SPMV: KernelSource = KernelSource {
    file: "pagerank.cu",
    entry: "pagerank_spmv",
    source: include_str!("../../kernels/pagerank.cu"),
};
/// `pagerank.cu`: folds the per-block partials into three totals.
pub const PAGERANK_REDUCE: KernelSource = KernelSource {
    file: "pagerank.cu",
    entry: "pagerank_reduce",
    source: include_str!("../../kernels/pagerank.cu"),
};

/// Every shipped CUDA kernel (one entry per entry point).
pub const ALL: &[KernelSource] = &[
    VECTOR_ADD,
    SAXPY,
    REDUCE_SUM,
    MATMUL,
    PAGERANK_CONTRIB,
    PAGERANK_SPMV,
    PAGERANK_REDUCE,
];

/// A backend that can build every shipped kernel from its [`KernelSource`]:
/// CUDA compiles the `.cu` file, the CPU backend takes the Rust equivalent
/// from [`cpu`]. This is what lets one driver (e.g. the device PageRank) run
/// unchanged on either backend.
pub trait ShippedKernels: Backend {
    /// The backend's source for `kernel`, ready for [`Backend::compile`].
    fn shipped_source(kernel: &KernelSource) -> DeviceResult<Self::Source>;

    /// Compiles `kernel` on this backend.
    fn compile_shipped(&self, kernel: &KernelSource) -> DeviceResult<Self::Kernel> {
        self.compile(Self::shipped_source(kernel)?)
    }
}

#[cfg(feature = "cuda")]
impl ShippedKernels for CudaBackend {
    fn shipped_source(kernel: &KernelSource) -> DeviceResult<CudaSource> {
        Ok(CudaSource::shipped(*kernel))
    }
}

impl ShippedKernels for CpuBackend {
    fn shipped_source(kernel: &KernelSource) -> DeviceResult<CpuKernel> {
        Ok(match kernel.entry {
            "vector_add" => cpu::vector_add(),
            "saxpy" => cpu::saxpy(),
            "reduce_sum" => cpu::reduce_sum(),
            "matmul" => cpu::matmul(),
            "pagerank_contrib" => cpu::pagerank_contrib(),
            "pagerank_spmv" => cpu::pagerank_spmv(),
            "pagerank_reduce" => cpu::pagerank_reduce(),
            _ => {
                return Err(DeviceError::EntryNotFound {
                    module: kernel.file.to_string(),
                    entry: kernel.entry.to_string(),
                })
            }
        })
    }
}

/// Threads per block of the `pagerank_*` row kernels.
pub const PAGERANK_BLOCK: u32 = 256;
/// Most blocks of a `pagerank_*` row launch; larger graphs are grid-strided,
/// which bounds the partials the reduction reads at `3 · PAGERANK_MAX_BLOCKS`.
pub const PAGERANK_MAX_BLOCKS: u32 = 4096;
/// Threads of the single `pagerank_reduce` block.
pub const PAGERANK_REDUCE_BLOCK: u32 = 256;

fn pagerank_shared(block: u32) -> DeviceResult<u32> {
    if !block.is_power_of_two() || !(32..=1024).contains(&block) {
        return Err(DeviceError::InvalidLaunch(format!(
            "the pagerank kernels need a power-of-two block of 32 to 1024 threads, got {block}"
        )));
    }
    Ok(3 * block * 8)
}

/// The launch of `pagerank_contrib` / `pagerank_spmv` over `n` rows:
/// [`PAGERANK_BLOCK`] threads, `⌈n / block⌉` blocks capped at
/// [`PAGERANK_MAX_BLOCKS`], `3 · block · 8` bytes of shared memory. The
/// partials buffer needs `3 · grid.x` slots.
pub fn pagerank_rows_config(n: usize) -> DeviceResult<LaunchConfig> {
    let shared = pagerank_shared(PAGERANK_BLOCK)?;
    let blocks = n
        .div_ceil(PAGERANK_BLOCK as usize)
        .clamp(1, PAGERANK_MAX_BLOCKS as usize) as u32;
    Ok(LaunchConfig::new(blocks, PAGERANK_BLOCK).with_shared_mem(shared))
}

/// The launch of `pagerank_reduce`: one block of [`PAGERANK_REDUCE_BLOCK`]
/// threads with `3 · block · 8` bytes of shared memory.
pub fn pagerank_reduce_config() -> DeviceResult<LaunchConfig> {
    let shared = pagerank_shared(PAGERANK_REDUCE_BLOCK)?;
    Ok(LaunchConfig::new(1, PAGERANK_REDUCE_BLOCK).with_shared_mem(shared))
}

/// The tile edge of `matmul`.
pub const MATMUL_TILE: u32 = 16;

/// The launch `matmul` expects for an `m×n` result.
pub fn matmul_config(m: usize, n: usize) -> DeviceResult<LaunchConfig> {
    let blocks = |x: usize| {
        u32::try_from(x.div_ceil(MATMUL_TILE as usize).max(1))
            .map_err(|_| DeviceError::InvalidLaunch(format!("matrix dimension {x} too large")))
    };
    Ok(LaunchConfig::new(
        Dim3::xy(blocks(n)?, blocks(m)?),
        Dim3::xy(MATMUL_TILE, MATMUL_TILE),
    ))
}

/// The launch `reduce_sum` expects: `blocks` blocks of `block` threads
/// (a power of two) with `4·block` bytes of shared memory.
pub fn reduce_sum_config(blocks: u32, block: u32) -> DeviceResult<LaunchConfig> {
    if !block.is_power_of_two() {
        return Err(DeviceError::InvalidLaunch(format!(
            "reduce_sum needs a power-of-two block, got {block}"
        )));
    }
    Ok(LaunchConfig::new(blocks, block).with_shared_mem(block * 4))
}

/// CPU versions of the shipped kernels.
pub mod cpu {
    use super::*;

    /// `vector_add` for the CPU backend.
    pub fn vector_add() -> CpuKernel {
        CpuKernel::per_thread("vector_add", |args| {
            let a = args.input::<f32>(0)?;
            let b = args.input::<f32>(1)?;
            let c = args.output::<f32>(2)?;
            let n = args.scalar::<u32>(3)? as usize;
            Ok(Box::new(move |t: &ThreadIdx| {
                let stride = (t.block_dim.x * t.grid_dim.x) as usize;
                let mut i = t.global_x();
                while i < n {
                    c.store(i, a[i] + b[i]);
                    i += stride;
                }
            }))
        })
    }

    /// `saxpy` for the CPU backend (fused multiply-add, as CUDA contracts it).
    pub fn saxpy() -> CpuKernel {
        CpuKernel::per_thread("saxpy", |args| {
            let a = args.scalar::<f32>(0)?;
            let x = args.input::<f32>(1)?;
            let y = args.output::<f32>(2)?;
            let n = args.scalar::<u32>(3)? as usize;
            Ok(Box::new(move |t: &ThreadIdx| {
                let stride = (t.block_dim.x * t.grid_dim.x) as usize;
                let mut i = t.global_x();
                while i < n {
                    y.store(i, a.mul_add(x[i], y.load(i)));
                    i += stride;
                }
            }))
        })
    }

    /// `reduce_sum` for the CPU backend: the same per-thread grid-stride sums
    /// and the same shared-memory tree, phase by phase.
    pub fn reduce_sum() -> CpuKernel {
        CpuKernel::per_block("reduce_sum", |args| {
            let input = args.input::<f32>(0)?;
            let partial = args.output::<f32>(1)?;
            let n = args.scalar::<u32>(2)? as usize;
            Ok(Box::new(move |blk: &mut BlockCtx<'_>| {
                let threads = blk.thread_count();
                let stride = threads * blk.grid_dim.x as usize;
                let base = blk.block.x as usize * threads;
                let block_x = blk.block.x as usize;
                let scratch = blk.shared::<f32>()?;
                if scratch.len() < threads {
                    return Err(DeviceError::KernelFault {
                        kernel: String::new(),
                        reason: format!(
                            "reduce_sum needs {} bytes of shared memory, the launch gave {}",
                            threads * 4,
                            scratch.len() * 4
                        ),
                    });
                }
                for (tid, slot) in scratch.iter_mut().enumerate().take(threads) {
                    let mut sum = 0.0f32;
                    let mut i = base + tid;
                    while i < n {
                        sum += input[i];
                        i += stride;
                    }
                    *slot = sum;
                }
                let mut s = threads / 2;
                while s > 0 {
                    for tid in 0..s {
                        scratch[tid] += scratch[tid + s];
                    }
                    s /= 2;
                }
                partial.store(block_x, scratch[0]);
                Ok(())
            }))
        })
    }

    /// `matmul` for the CPU backend (one thread per output element, products
    /// accumulated in `k` order with fused multiply-add).
    pub fn matmul() -> CpuKernel {
        CpuKernel::per_thread("matmul", |args| {
            let a = args.input::<f32>(0)?;
            let b = args.input::<f32>(1)?;
            let c = args.output::<f32>(2)?;
            let m = args.scalar::<u32>(3)? as usize;
            let n = args.scalar::<u32>(4)? as usize;
            let k = args.scalar::<u32>(5)? as usize;
            Ok(Box::new(move |t: &ThreadIdx| {
                let (row, col) = (t.global_y(), t.global_x());
                if row < m && col < n {
                    let mut acc = 0.0f32;
                    for i in 0..k {
                        acc = a[row * k + i].mul_add(b[i * n + col], acc);
                    }
                    c.store(row * n + col, acc);
                }
            }))
        })
    }

    fn pagerank_fault(what: String) -> DeviceError {
        DeviceError::KernelFault {
            kernel: String::new(),
            reason: what,
        }
    }

    /// The block's shared memory as three arrays of `threads` f64 (L1, L∞,
    /// dangling mass), after checking the block shape `pagerank.cu` needs.
    fn pagerank_scratch<'s>(blk: &'s mut BlockCtx<'_>) -> DeviceResult<(usize, &'s mut [f64])> {
        let threads = blk.thread_count();
        if !threads.is_power_of_two() || !(32..=1024).contains(&threads) || blk.block_dim.y != 1 || blk.block_dim.z != 1
        {
            return Err(pagerank_fault(format!(
                "the pagerank kernels need a 1-D power-of-two block of 32 to 1024 threads, got {}",
                blk.block_dim
            )));
        }
        let scratch = blk.shared::<f64>()?;
        if scratch.len() < 3 * threads {
            return Err(pagerank_fault(format!(
                "the pagerank kernels need {} bytes of shared memory, the launch gave {}",
                3 * threads * 8,
                scratch.len() * 8
            )));
        }
        Ok((threads, &mut scratch[..3 * threads]))
    }

    /// `pr_block_reduce` of `pagerank.cu`: the same tree (strides
    /// `threads/2, …, 1`, lower index on the left) over the three arrays;
    /// the block's result ends in slot 0 of each.
    fn pagerank_tree(scratch: &mut [f64], threads: usize) {
        let (l1, rest) = scratch.split_at_mut(threads);
        let (linf, mass) = rest.split_at_mut(threads);
        let mut s = threads / 2;
        while s > 0 {
            for tid in 0..s {
                l1[tid] += l1[tid + s];
                linf[tid] = linf[tid].max(linf[tid + s]);
                mass[tid] += mass[tid + s];
            }
            s /= 2;
        }
    }

    /// `pr_store_partials` of `pagerank.cu`: reduces the block's triples and
    /// stores them in the block's three partial slots.
    fn pagerank_store(scratch: &mut [f64], threads: usize, block: usize, grid: usize, partials: &OutputView<'_, f64>) {
        pagerank_tree(scratch, threads);
        partials.store(block, scratch[0]);
        partials.store(grid + block, scratch[threads]);
        partials.store(2 * grid + block, scratch[2 * threads]);
    }

    /// Checks that read-only buffer `name` has at least `need` elements (a
    /// CUDA kernel would read past it; here it is a clear argument error).
    fn pagerank_len(kernel: &str, index: usize, name: &str, len: usize, need: usize) -> DeviceResult<()> {
        if len < need {
            return Err(DeviceError::KernelArgument {
                kernel: kernel.to_string(),
                index,
                reason: format!("{name} has {len} elements, the launch needs {need}"),
            });
        }
        Ok(())
    }

    /// `pagerank_contrib` for the CPU backend.
    pub fn pagerank_contrib() -> CpuKernel {
        CpuKernel::per_block("pagerank_contrib", |args| {
            let rank = args.input::<f64>(0)?;
            let outdeg = args.input::<u32>(1)?;
            let contrib = args.output::<f64>(2)?;
            let partials = args.output::<f64>(3)?;
            let damping = args.scalar::<f64>(4)?;
            let n = args.scalar::<u32>(5)? as usize;
            pagerank_len("pagerank_contrib", 0, "rank", rank.len(), n)?;
            pagerank_len("pagerank_contrib", 1, "outdeg", outdeg.len(), n)?;
            Ok(Box::new(move |blk: &mut BlockCtx<'_>| {
                let (block, grid) = (blk.block.x as usize, blk.grid_dim.x as usize);
                let (threads, scratch) = pagerank_scratch(blk)?;
                let stride = threads * grid;
                for tid in 0..threads {
                    let mut mass = 0.0f64;
                    let mut u = block * threads + tid;
                    while u < n {
                        let k = outdeg[u];
                        if k != 0 {
                            contrib.store(u, (damping * (1.0 / f64::from(k))) * rank[u]);
                        } else {
                            contrib.store(u, 0.0);
                            mass += rank[u];
                        }
                        u += stride;
                    }
                    scratch[tid] = 0.0;
                    scratch[threads + tid] = 0.0;
                    scratch[2 * threads + tid] = mass;
                }
                pagerank_store(scratch, threads, block, grid, &partials);
                Ok(())
            }))
        })
    }

    /// `pagerank_spmv` for the CPU backend: each row sums its sources in CSR
    /// order from 0.0, then adds `base`, exactly as `pagerank.cu` (and the
    /// rayon solver) do.
    pub fn pagerank_spmv() -> CpuKernel {
        CpuKernel::per_block("pagerank_spmv", |args| {
            const NAME: &str = "pagerank_spmv";
            let offsets = args.input::<u64>(0)?;
            let sources = args.input::<u32>(1)?;
            let contrib = args.input::<f64>(2)?;
            let rank = args.input::<f64>(3)?;
            let outdeg = args.input::<u32>(4)?;
            let next = args.output::<f64>(5)?;
            let contrib_next = args.output::<f64>(6)?;
            let partials = args.output::<f64>(7)?;
            let base = args.scalar::<f64>(8)?;
            let damping = args.scalar::<f64>(9)?;
            let n = args.scalar::<u32>(10)? as usize;
            pagerank_len(NAME, 0, "offsets", offsets.len(), n + 1)?;
            let edges = offsets.get(n).copied().unwrap_or(0);
            let edges = usize::try_from(edges).unwrap_or(usize::MAX);
            pagerank_len(NAME, 1, "sources", sources.len(), edges)?;
            pagerank_len(NAME, 3, "rank", rank.len(), n)?;
            pagerank_len(NAME, 4, "outdeg", outdeg.len(), n)?;
            // A source past `contrib` or decreasing offsets panic in the body,
            // which the backend reports as a fault of the launch.
            Ok(Box::new(move |blk: &mut BlockCtx<'_>| {
                let (block, grid) = (blk.block.x as usize, blk.grid_dim.x as usize);
                let (threads, scratch) = pagerank_scratch(blk)?;
                let stride = threads * grid;
                for tid in 0..threads {
                    let (mut l1, mut linf, mut mass) = (0.0f64, 0.0f64, 0.0f64);
                    let mut v = block * threads + tid;
                    while v < n {
                        let mut sum = 0.0f64;
                        for &u in &sources[offsets[v] as usize..offsets[v + 1] as usize] {
                            sum += contrib[u as usize];
                        }
                        let value = base + sum;
                        let diff = (value - rank[v]).abs();
                        l1 += diff;
                        linf = linf.max(diff);
                        next.store(v, value);
                        let k = outdeg[v];
                        if k != 0 {
                            contrib_next.store(v, (damping * (1.0 / f64::from(k))) * value);
                        } else {
                            contrib_next.store(v, 0.0);
                            mass += value;
                        }
                        v += stride;
                    }
                    scratch[tid] = l1;
                    scratch[threads + tid] = linf;
                    scratch[2 * threads + tid] = mass;
                }
                pagerank_store(scratch, threads, block, grid, &partials);
                Ok(())
            }))
        })
    }

    /// `pagerank_reduce` for the CPU backend (run as one block).
    pub fn pagerank_reduce() -> CpuKernel {
        CpuKernel::per_block("pagerank_reduce", |args| {
            let partials = args.input::<f64>(0)?;
            let totals = args.output::<f64>(1)?;
            let blocks = args.scalar::<u32>(2)? as usize;
            pagerank_len("pagerank_reduce", 0, "partials", partials.len(), 3 * blocks)?;
            Ok(Box::new(move |blk: &mut BlockCtx<'_>| {
                let (threads, scratch) = pagerank_scratch(blk)?;
                for tid in 0..threads {
                    let (mut l1, mut linf, mut mass) = (0.0f64, 0.0f64, 0.0f64);
                    let mut i = tid;
                    while i < blocks {
                        l1 += partials[i];
                        linf = linf.max(partials[blocks + i]);
                        mass += partials[2 * blocks + i];
                        i += threads;
                    }
                    scratch[tid] = l1;
                    scratch[threads + tid] = linf;
                    scratch[2 * threads + tid] = mass;
                }
                pagerank_tree(scratch, threads);
                totals.store(0, scratch[0]);
                totals.store(1, scratch[threads]);
                totals.store(2, scratch[2 * threads]);
                Ok(())
            }))
        })
    }
}
