//! [`KernelCompiler`]: CUDA C → PTX (and optionally cubin) with NVRTC,
//! through a [`KernelCache`].
//!
//! Invariants: the cache key covers everything that changes the output (the
//! program name and source, every NVRTC option including the architecture
//! and defines, the contents of the files under the include paths, whether
//! a cubin was asked for, and the NVRTC version), so a hit is always what a
//! compilation would produce; a compile error comes back as
//! [`DeviceError::Compile`] with NVRTC's log; a missing NVRTC is
//! [`DeviceError::Unavailable`].
//!
//! ```
//! use dotcompute::device::{CompileOptions, DeviceError, KernelCompiler};
//! let opts = CompileOptions::new("sm_90").fast_math(true).line_info(true).define("BLOCK", "256");
//! assert!(opts.nvrtc_args().unwrap().contains(&"--gpu-architecture=sm_90".to_string()));
//! let compiler = KernelCompiler::new();
//! match compiler.compile("k", "extern \"C\" __global__ void k() {}", &opts) {
//!     Ok(k) => assert!(k.ptx.contains(".entry k")),
//!     Err(DeviceError::Unavailable { .. }) => {} // no NVRTC on this machine
//!     Err(e) => panic!("{e}"),
//! }
//! ```

pub mod nvrtc;
pub mod ptx;
pub mod ptxas;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use ptx::{PtxEntry, PtxParam};
pub use ptxas::Ptxas;

use super::cache::{CacheEntry, CacheKey, CacheLevel, KernelCache};
use super::error::{DeviceError, DeviceResult};

/// NVRTC options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompileOptions {
    /// Target: "compute_80" (PTX for a virtual architecture) or "sm_80"
    /// (a real one; needed for a cubin).
    pub arch: String,
    /// `--use_fast_math`.
    pub fast_math: bool,
    /// `--generate-line-info`.
    pub line_info: bool,
    /// `-D` definitions (name, optional value).
    pub defines: Vec<(String, Option<String>)>,
    /// `--include-path` folders.
    pub include_paths: Vec<PathBuf>,
    /// Also produce a cubin (needs an `sm_XX` arch).
    pub cubin: bool,
    /// Further raw NVRTC options.
    pub extra: Vec<String>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions::new("compute_80")
    }
}

fn valid_arch(arch: &str) -> bool {
    let digits = arch.strip_prefix("compute_").or_else(|| arch.strip_prefix("sm_"));
    match digits {
        Some(d) => {
            let d = d.trim_end_matches(['a', 'f']);
            d.len() >= 2 && d.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

impl CompileOptions {
    /// Options for `arch` with everything else off.
    pub fn new(arch: impl Into<String>) -> Self {
        CompileOptions {
            arch: arch.into(),
            fast_math: false,
            line_info: false,
            defines: Vec::new(),
            include_paths: Vec::new(),
            cubin: false,
            extra: Vec::new(),
        }
    }

    /// Sets fast math.
    pub fn fast_math(mut self, on: bool) -> Self {
        self.fast_math = on;
        self
    }

    /// Sets line info.
    pub fn line_info(mut self, on: bool) -> Self {
        self.line_info = on;
        self
    }

    /// Adds `-Dname=value`.
    pub fn define(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.defines.push((name.into(), Some(value.into())));
        self
    }

    /// Adds `-Dname`.
    pub fn define_flag(mut self, name: impl Into<String>) -> Self {
        self.defines.push((name.into(), None));
        self
    }

    /// Adds an include folder.
    pub fn include_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.include_paths.push(dir.into());
        self
    }

    /// Asks for a cubin too.
    pub fn cubin(mut self, on: bool) -> Self {
        self.cubin = on;
        self
    }

    /// The NVRTC command line these options make.
    pub fn nvrtc_args(&self) -> DeviceResult<Vec<String>> {
        if !valid_arch(&self.arch) {
            return Err(DeviceError::invalid(
                "arch",
                &self.arch,
                "expected compute_NN or sm_NN (e.g. sm_80)",
            ));
        }
        if self.cubin && !self.arch.starts_with("sm_") {
            return Err(DeviceError::invalid(
                "arch",
                &self.arch,
                "a cubin needs a real architecture (sm_NN)",
            ));
        }
        let mut args = vec![format!("--gpu-architecture={}", self.arch), "--std=c++17".to_string()];
        if self.fast_math {
            args.push("--use_fast_math".into());
        }
        if self.line_info {
            args.push("--generate-line-info".into());
        }
        for (name, value) in &self.defines {
            if name.is_empty() || name.contains(['=', ' ']) {
                return Err(DeviceError::invalid("define", name, "not a macro name"));
            }
            args.push(match value {
                Some(v) => format!("-D{name}={v}"),
                None => format!("-D{name}"),
            });
        }
        for dir in &self.include_paths {
            args.push(format!("--include-path={}", dir.display()));
        }
        args.extend(self.extra.iter().cloned());
        Ok(args)
    }
}

/// A compiled kernel module.
#[derive(Debug, Clone, Serialize)]
pub struct CompiledKernel {
    /// The program's name.
    pub name: String,
    /// The PTX.
    pub ptx: String,
    /// The cubin, if asked for.
    #[serde(skip)]
    pub cubin: Option<Vec<u8>>,
    /// The architecture compiled for.
    pub arch: String,
    /// NVRTC's log (warnings; empty when clean).
    pub log: String,
    /// NVRTC's version.
    pub compiler_version: (i32, i32),
    /// The cache key (hex).
    pub cache_key: String,
    /// Where it came from when it was a cache hit.
    pub cached: Option<CacheLevel>,
    /// Time spent compiling or looking up.
    pub elapsed: Duration,
}

impl CompiledKernel {
    /// The module's entry points and their parameters.
    pub fn entries(&self) -> Vec<PtxEntry> {
        ptx::entries(&self.ptx)
    }
}

/// Compiles CUDA C with NVRTC through a cache. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct KernelCompiler {
    cache: Arc<KernelCache>,
    compilations: Arc<AtomicU64>,
}

impl Default for KernelCompiler {
    fn default() -> Self {
        Self::new()
    }
}

const MAX_INCLUDE_FILES: usize = 4096;

fn hash_include_dir(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if out.len() >= MAX_INCLUDE_FILES {
                return;
            }
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p.display().to_string(), bytes));
            }
        }
    }
}

impl KernelCompiler {
    /// A compiler with its own in-memory cache.
    pub fn new() -> Self {
        Self::with_cache(Arc::new(KernelCache::in_memory()))
    }

    /// A compiler using `cache` (which may be shared, and may be on disk).
    pub fn with_cache(cache: Arc<KernelCache>) -> Self {
        KernelCompiler {
            cache,
            compilations: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<KernelCache> {
        &self.cache
    }

    /// How many times NVRTC actually ran (cache hits do not count).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// Whether NVRTC is loadable; `Err` says why not.
    pub fn available() -> DeviceResult<()> {
        nvrtc::ensure()
    }

    /// NVRTC's version.
    pub fn version() -> DeviceResult<(i32, i32)> {
        nvrtc::version()
    }

    /// The SM architectures NVRTC can target.
    pub fn supported_archs() -> DeviceResult<Vec<i32>> {
        nvrtc::supported_archs()
    }

    /// The cache key of a compilation.
    pub fn cache_key(
        &self,
        name: &str,
        source: &str,
        options: &CompileOptions,
        compiler_version: (i32, i32),
    ) -> DeviceResult<CacheKey> {
        let args = options.nvrtc_args()?;
        let mut includes = Vec::new();
        for dir in &options.include_paths {
            hash_include_dir(dir, &mut includes);
        }
        includes.sort();
        let version = format!("nvrtc {}.{}", compiler_version.0, compiler_version.1);
        let cubin: &[u8] = if options.cubin { b"cubin" } else { b"ptx" };
        let mut parts: Vec<&[u8]> = vec![
            b"dotcompute-kernel-v1",
            name.as_bytes(),
            source.as_bytes(),
            version.as_bytes(),
            cubin,
        ];
        parts.extend(args.iter().map(|a| a.as_bytes()));
        for (path, bytes) in &includes {
            parts.push(path.as_bytes());
            parts.push(bytes);
        }
        Ok(CacheKey::from_parts(parts))
    }

    /// Compiles `source` (or fetches it from the cache).
    pub fn compile(&self, name: &str, source: &str, options: &CompileOptions) -> DeviceResult<CompiledKernel> {
        let start = Instant::now();
        let version = nvrtc::version()?;
        let key = self.cache_key(name, source, options, version)?;
        if let Some((entry, level)) = self.cache.get(&key) {
            return Ok(CompiledKernel {
                name: name.to_string(),
                ptx: entry.ptx.clone(),
                cubin: entry.cubin.clone(),
                arch: options.arch.clone(),
                log: entry.log.clone(),
                compiler_version: version,
                cache_key: key.hex(),
                cached: Some(level),
                elapsed: start.elapsed(),
            });
        }
        let args = options.nvrtc_args()?;
        let out = nvrtc::compile(name, source, &args, options.cubin)?;
        self.compilations.fetch_add(1, Ordering::Relaxed);
        let entry = CacheEntry {
            ptx: out.ptx,
            cubin: out.cubin,
            log: out.log,
        };
        if let Err(e) = self.cache.put(&key, entry.clone()) {
            // The kernel compiled; a cache that cannot be written costs only a
            // recompilation next time.
            tracing::warn!(error = %e, "kernel cache write failed");
        }
        Ok(CompiledKernel {
            name: name.to_string(),
            ptx: entry.ptx,
            cubin: entry.cubin,
            arch: options.arch.clone(),
            log: entry.log,
            compiler_version: version,
            cache_key: key.hex(),
            cached: None,
            elapsed: start.elapsed(),
        })
    }

    /// Compiles a `.cu` file; the program is named after the file.
    pub fn compile_file(&self, path: &Path, options: &CompileOptions) -> DeviceResult<CompiledKernel> {
        let source = std::fs::read_to_string(path).map_err(|e| DeviceError::io(path, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "kernel.cu".into());
        self.compile(&name, &source, options)
    }
}
