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
//!
//! Invariant: [`ALL`] lists every `.cu` file in the kernels folder (a test
//! checks the folder against it), so every shipped CUDA kernel is compiled
//! and assembled by the compile tests.

use super::backend::{Dim3, LaunchConfig};
use super::cpu::{BlockCtx, CpuKernel, ThreadIdx};
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

/// Every shipped CUDA kernel.
pub const ALL: &[KernelSource] = &[VECTOR_ADD, SAXPY, REDUCE_SUM, MATMUL];

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
}
