//! Finding the CUDA driver and NVRTC shared libraries without panicking.
//!
//! cudarc loads `libcuda` / `libnvrtc` by name through the system loader and
//! panics if none is found, so every entry point of this crate that reaches
//! cudarc first asks this module. Here:
//! - `DOTCOMPUTE_CUDA_LIB` / `DOTCOMPUTE_NVRTC_LIB` may name the library file
//!   (or its folder). It is loaded by absolute path and kept loaded for the
//!   life of the process; the loader then matches cudarc's later request by
//!   the library's soname (`libnvrtc.so.12`), so a pip-installed NVRTC works
//!   without `LD_LIBRARY_PATH` and without root.
//! - Otherwise the usual search applies (`LD_LIBRARY_PATH`, the loader cache).
//!
//! Invariant: [`cuda_driver`] and [`nvrtc`] return `Ok` only if cudarc's own
//! probe found the library, so a later cudarc call cannot panic for want of
//! it; each probe runs once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Environment variable naming libnvrtc (file or folder).
pub const NVRTC_LIB_ENV: &str = "DOTCOMPUTE_NVRTC_LIB";
/// Environment variable naming libcuda (file or folder).
pub const CUDA_LIB_ENV: &str = "DOTCOMPUTE_CUDA_LIB";

fn explicit_path(var: &str, file_names: &[&str]) -> Option<PathBuf> {
    let value = std::env::var_os(var)?;
    let path = PathBuf::from(value);
    if path.is_dir() {
        file_names.iter().map(|n| path.join(n)).find(|p| p.exists())
    } else {
        Some(path)
    }
}

fn preload(path: &Path) -> Result<(), String> {
    // SAFETY: loading a shared library runs its initialisers. The library is
    // the vendor's CUDA library the user pointed us to; loading it is what
    // using CUDA means, and it is kept loaded (leaked) for the process's
    // life, so no symbol from it can dangle.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    std::mem::forget(lib);
    Ok(())
}

/// Probes the CUDA driver library once; `Err` holds the reason in words.
pub fn cuda_driver() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            if let Some(p) = explicit_path(CUDA_LIB_ENV, &["libcuda.so.1", "libcuda.so", "nvcuda.dll"]) {
                preload(&p)?;
            }
            // SAFETY: cudarc's probe only tries to dlopen the candidate names
            // (see `preload` on what loading implies) and drops the handles.
            if unsafe { cudarc::driver::sys::is_culib_present() } {
                Ok(())
            } else {
                Err(format!(
                    "no CUDA driver (libcuda.so not found by the system loader; set {CUDA_LIB_ENV} to its path if it is installed elsewhere)"
                ))
            }
        })
        .clone()
}

/// Probes the NVRTC library once; `Err` holds the reason in words.
pub fn nvrtc() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            if let Some(p) = explicit_path(NVRTC_LIB_ENV, &["libnvrtc.so.12", "libnvrtc.so", "nvrtc64_120_0.dll"]) {
                preload(&p)?;
            }
            // SAFETY: as in `cuda_driver`.
            if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
                Ok(())
            } else {
                Err(format!(
                    "no NVRTC (libnvrtc.so.12 not found; run scripts/provision-cuda.sh and source its env file, or set {NVRTC_LIB_ENV})"
                ))
            }
        })
        .clone()
}
