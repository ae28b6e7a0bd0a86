//! The shipped kernels in WGSL (`crates/dotcompute/kernels/wgsl/`), with
//! the arguments, launch geometry and floating-point order of their CUDA
//! and CPU twins ([`crate::device::kernels`]), so one launch runs on any
//! backend and the results can be compared.
//!
//! | kernel | WGSL | precision |
//! |---|---|---|
//! | `vector_add`, `saxpy`, `reduce_sum`, `matmul` | `vector_add.wgsl`, ... | f32, as the CUDA kernels |
//! | `pagerank_contrib`, `pagerank_spmv`, `pagerank_reduce` | `pagerank_common.wgsl` + one file each | f64 with `SHADER_F64`; else the `_f32.wgsl` variants: f64 buffers read as bits, f32 arithmetic |
//!
//! Differences a caller sees: the WGSL kernels declare their workgroup
//! memory themselves (sized by the launch's block through the `block_x`
//! override), so a launch's `shared_mem_bytes` is only checked against the
//! device limit; `matmul` has the fixed 16×16 workgroup of `matmul_config`.
//!
//! Invariant: [`ALL`] has one WGSL source per entry of
//! [`crate::device::kernels::ALL`] (a test compiles every one with naga).

use super::shader::WgslSource;
use super::WgpuBackend;
use crate::device::error::{DeviceError, DeviceResult};
use crate::device::kernels::{KernelSource, ShippedKernels};

/// `vector_add.wgsl`
pub const VECTOR_ADD: &str = include_str!("../../../kernels/wgsl/vector_add.wgsl");
/// `saxpy.wgsl`
pub const SAXPY: &str = include_str!("../../../kernels/wgsl/saxpy.wgsl");
/// `reduce_sum.wgsl`
pub const REDUCE_SUM: &str = include_str!("../../../kernels/wgsl/reduce_sum.wgsl");
/// `matmul.wgsl`
pub const MATMUL: &str = include_str!("../../../kernels/wgsl/matmul.wgsl");
/// `pagerank_common.wgsl` + `pagerank_contrib.wgsl`
pub const PAGERANK_CONTRIB: &str = concat!(
    include_str!("../../../kernels/wgsl/pagerank_common.wgsl"),
    include_str!("../../../kernels/wgsl/pagerank_contrib.wgsl")
);
/// `pagerank_common.wgsl` + `pagerank_spmv.wgsl`
pub const PAGERANK_SPMV: &str = concat!(
    include_str!("../../../kernels/wgsl/pagerank_common.wgsl"),
    include_str!("../../../kernels/wgsl/pagerank_spmv.wgsl")
);
/// `pagerank_common.wgsl` + `pagerank_reduce.wgsl`
pub const PAGERANK_REDUCE: &str = concat!(
    include_str!("../../../kernels/wgsl/pagerank_common.wgsl"),
    include_str!("../../../kernels/wgsl/pagerank_reduce.wgsl")
);
/// The f32 variant of [`PAGERANK_CONTRIB`].
pub const PAGERANK_CONTRIB_F32: &str = concat!(
    include_str!("../../../kernels/wgsl/pagerank_common_f32.wgsl"),
    include_str!("../../../kernels/wgsl/pagerank_contrib_f32.wgsl")
);
/// The f32 variant of [`PAGERANK_SPMV`].
pub const PAGERANK_SPMV_F32: &str = concat!(
    include_str!("../../../kernels/wgsl/pagerank_common_f32.wgsl"),
    include_str!("../../../kernels/wgsl/pagerank_spmv_f32.wgsl")
);
/// The f32 variant of [`PAGERANK_REDUCE`].
pub const PAGERANK_REDUCE_F32: &str = concat!(
    include_str!("../../../kernels/wgsl/pagerank_common_f32.wgsl"),
    include_str!("../../../kernels/wgsl/pagerank_reduce_f32.wgsl")
);

/// Every shipped WGSL kernel: (entry point, f64-or-only source, f32 variant).
pub const ALL: &[(&str, &str, Option<&str>)] = &[
    ("vector_add", VECTOR_ADD, None),
    ("saxpy", SAXPY, None),
    ("reduce_sum", REDUCE_SUM, None),
    ("matmul", MATMUL, None),
    ("pagerank_contrib", PAGERANK_CONTRIB, Some(PAGERANK_CONTRIB_F32)),
    ("pagerank_spmv", PAGERANK_SPMV, Some(PAGERANK_SPMV_F32)),
    ("pagerank_reduce", PAGERANK_REDUCE, Some(PAGERANK_REDUCE_F32)),
];

/// The WGSL source of shipped kernel `kernel` (by its entry point).
///
/// # Errors
///
/// [`DeviceError::EntryNotFound`] for a kernel without a WGSL version.
pub fn source(kernel: &KernelSource) -> DeviceResult<WgslSource> {
    let (entry, text, f32) =
        ALL.iter()
            .find(|(e, _, _)| *e == kernel.entry)
            .ok_or_else(|| DeviceError::EntryNotFound {
                module: kernel.file.replace(".cu", ".wgsl"),
                entry: kernel.entry.to_string(),
            })?;
    Ok(WgslSource {
        name: format!("{entry}.wgsl"),
        source: (*text).into(),
        entry: (*entry).to_string(),
        f32_fallback: f32.map(Into::into),
    })
}

impl ShippedKernels for WgpuBackend {
    fn shipped_source(kernel: &KernelSource) -> DeviceResult<WgslSource> {
        source(kernel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_kernel_has_wgsl_that_validates() {
        for k in crate::device::kernels::ALL {
            let src = source(k).unwrap();
            super::super::shader::reflect(&src.name, &src.source, &src.entry, true)
                .unwrap_or_else(|e| panic!("{}: {e}", k.entry));
            if let Some(f32) = &src.f32_fallback {
                let (_, r) = super::super::shader::reflect(&src.name, f32, &src.entry, false)
                    .unwrap_or_else(|e| panic!("{} (f32): {e}", k.entry));
                assert!(!r.uses_f64);
            }
        }
        assert_eq!(ALL.len(), crate::device::kernels::ALL.len());
    }
}
