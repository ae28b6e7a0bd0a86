//! The persistent GPU ring kernel template, with every example handler,
//! compiles with NVRTC to PTX for sm_80 and sm_90 and assembles with ptxas;
//! a host/device layout mismatch stops the CUDA build.
//!
//! Needs NVRTC and ptxas: `DOTCOMPUTE_NVRTC_LIB` (libnvrtc.so.12, or its
//! folder; else the system loader's search) and `DOTCOMPUTE_PTXAS` (else
//! `ptxas` on `PATH`), as set by `scripts/provision-cuda.sh`. Without them
//! each test prints `skipped: ...` and passes; with
//! `DOTCOMPUTE_REQUIRE_NVRTC=1` their absence is a failure.
//!
//! This compiles and assembles real CUDA code; it does not run it (that needs
//! a GPU and the CUDA backend).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use cudarc::nvrtc::{compile_ptx_with_opts, CompileError, CompileOptions};
use dotcompute::gpu::handlers;
use dotcompute::gpu::protocol::DeviceKernelParams;
use dotcompute::gpu::source::{ring_kernel_source, CudaHandler, Threading};
use dotcompute::gpu::{GpuMessage, NoState};

const ARCHS: [(&str, &str); 2] = [("compute_80", "sm_80"), ("compute_90", "sm_90")];

fn required() -> bool {
    std::env::var("DOTCOMPUTE_REQUIRE_NVRTC").is_ok_and(|v| v == "1")
}

/// Prints the skip line, or fails when the tools are required.
fn skip(test: &str, reason: &str) {
    assert!(
        !required(),
        "{test}: {reason} (DOTCOMPUTE_REQUIRE_NVRTC=1 makes this a failure)"
    );
    println!("skipped: {reason}");
    eprintln!("{test} skipped: {reason}");
}

fn preload(path: &Path) -> Result<(), String> {
    // SAFETY: loading the NVRTC library the user named runs its
    // initialisers, which is what using NVRTC means; it stays loaded for the
    // process (leaked), so cudarc's later load by soname finds it.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    std::mem::forget(lib);
    Ok(())
}

/// Finds NVRTC once per process.
fn nvrtc() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            if let Some(v) = std::env::var_os("DOTCOMPUTE_NVRTC_LIB") {
                let p = PathBuf::from(v);
                let file = if p.is_dir() { p.join("libnvrtc.so.12") } else { p };
                preload(&file)?;
            }
            // SAFETY: cudarc's probe only tries to load the library by its names.
            if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
                Ok(())
            } else {
                Err("NVRTC not found (no libnvrtc.so.12; run scripts/provision-cuda.sh and source its env file, or set DOTCOMPUTE_NVRTC_LIB)".to_string())
            }
        })
        .clone()
}

/// Finds ptxas once per process.
fn ptxas() -> Result<PathBuf, String> {
    static PROBE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let path = std::env::var_os("DOTCOMPUTE_PTXAS").map_or_else(|| PathBuf::from("ptxas"), PathBuf::from);
            match Command::new(&path).arg("--version").output() {
                Ok(o) if o.status.success() => Ok(path),
                Ok(o) => Err(format!(
                    "ptxas at {} failed: {}",
                    path.display(),
                    String::from_utf8_lossy(&o.stderr)
                )),
                Err(e) => Err(format!(
                    "ptxas not found ({}: {e}; set DOTCOMPUTE_PTXAS)",
                    path.display()
                )),
            }
        })
        .clone()
}

fn compile(name: &str, code: &str, arch: &'static str, defines: &[&str]) -> Result<String, String> {
    let mut options = vec!["--std=c++17".to_string()];
    options.extend(defines.iter().map(|d| format!("-D{d}")));
    let opts = CompileOptions {
        arch: Some(arch),
        // Keep multiplies and adds separate, as Rust does, so the emulation's
        // results are the device's bit for bit.
        fmad: Some(false),
        options,
        name: Some(format!("{name}.cu")),
        ..Default::default()
    };
    compile_ptx_with_opts(code, opts)
        .map(|p| p.to_src())
        .map_err(|e| match e {
            CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
            other => format!("{other:?}"),
        })
}

fn assemble(ptxas: &Path, name: &str, ptx: &str, sm: &str) -> Vec<u8> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let stem = std::env::temp_dir().join(format!(
        "dotcompute-gpu-{}-{}-{name}-{sm}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let ptx_path = stem.with_extension("ptx");
    let cubin_path = stem.with_extension("cubin");
    std::fs::write(&ptx_path, ptx).unwrap();
    let out = Command::new(ptxas)
        .arg(format!("-arch={sm}"))
        .arg("-o")
        .arg(&cubin_path)
        .arg(&ptx_path)
        .output()
        .unwrap();
    let cubin = std::fs::read(&cubin_path).unwrap_or_default();
    let _ = std::fs::remove_file(&ptx_path);
    let _ = std::fs::remove_file(&cubin_path);
    assert!(
        out.status.success(),
        "ptxas {sm} failed on {name}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cubin
}

/// The size of the entry's single parameter, from the PTX.
fn param_size(ptx: &str, entry: &str) -> Option<usize> {
    let at = ptx.find(&format!(".entry {entry}("))?;
    let rest = &ptx[at..];
    let p = rest.find(&format!("{entry}_param_0["))?;
    let digits: String = rest[p + entry.len() + 9..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
fn template_and_example_handlers_compile_and_assemble_for_sm80_and_sm90() {
    let test = "template_and_example_handlers_compile_and_assemble_for_sm80_and_sm90";
    if let Err(reason) = nvrtc() {
        return skip(test, &reason);
    }
    let ptxas = match ptxas() {
        Ok(p) => p,
        Err(reason) => return skip(test, &reason),
    };
    let all = handlers::all();
    assert_eq!(all.len(), 3);
    for (name, src) in &all {
        for (arch, sm) in ARCHS {
            let ptx = compile(name, &src.code, arch, &[]).unwrap_or_else(|log| panic!("{name} {arch}:\n{log}"));
            assert!(ptx.contains(&format!(".target {sm}")), "{name}: PTX for another target");
            assert!(ptx.contains(&format!(".entry {}(", src.entry)), "{name}: no entry");
            assert_eq!(
                param_size(&ptx, &src.entry),
                Some(DeviceKernelParams::SIZE),
                "{name}: the kernel parameter is not DeviceKernelParams"
            );
            // System-scope acquire/release on the indices, sleeping back-off.
            for needle in ["ld.acquire.sys", "st.release.sys", "nanosleep"] {
                assert!(ptx.contains(needle), "{name} {arch}: PTX lacks {needle}");
            }
            let cubin = assemble(&ptxas, name, &ptx, sm);
            assert_eq!(&cubin[..4], b"\x7fELF", "{name} {sm}: not an ELF cubin");
        }
    }
    println!("compiled and assembled {} kernels for sm_80 and sm_90", all.len());
}

#[test]
fn volatile_fence_variant_compiles_too() {
    let test = "volatile_fence_variant_compiles_too";
    if let Err(reason) = nvrtc() {
        return skip(test, &reason);
    }
    let ptxas = match ptxas() {
        Ok(p) => p,
        Err(reason) => return skip(test, &reason),
    };
    let (name, src) = &handlers::all()[2];
    let ptx = compile(name, &src.code, "compute_80", &["DC_VOLATILE_FENCES"]).unwrap_or_else(|log| panic!("{log}"));
    assert!(ptx.contains("membar.sys"), "__threadfence_system() is membar.sys");
    assert!(!ptx.contains("ld.acquire.sys"));
    assemble(&ptxas, name, &ptx, "sm_80");
}

#[test]
fn a_layout_mismatch_stops_the_cuda_build() {
    let test = "a_layout_mismatch_stops_the_cuda_build";
    if let Err(reason) = nvrtc() {
        return skip(test, &reason);
    }
    let (_, echo) = &handlers::all()[0];
    // The C side of the derived struct disagrees with the Rust numbers.
    let wrong = echo.code.replace(
        "static_assert(sizeof(Sample) == 16",
        "static_assert(sizeof(Sample) == 24",
    );
    assert_ne!(wrong, echo.code);
    let log = compile("wrong_size", &wrong, "compute_80", &[]).expect_err("must not compile");
    assert!(log.contains("differs from the Rust struct"), "{log}");
    // A field whose C type differs from the Rust one.
    let retyped = echo.code.replace("    float value;\n", "    double value;\n");
    assert_ne!(retyped, echo.code);
    let log = compile("retyped", &retyped, "compute_80", &[]).expect_err("must not compile");
    assert!(log.contains("differs from the Rust struct"), "{log}");
    // Fields in another order.
    let moved = echo.code.replace(
        "    unsigned long long seq;\n    float value;\n",
        "    float value;\n    unsigned long long seq;\n",
    );
    assert_ne!(moved, echo.code);
    let log = compile("moved", &moved, "compute_80", &[]).expect_err("must not compile");
    assert!(log.contains("differs from the Rust struct"), "{log}");
    // The template's control block word indices drift from the Rust layout.
    let drift = echo.code.replacen("W_LIFECYCLE = 16", "W_LIFECYCLE = 17", 1);
    assert_ne!(drift, echo.code);
    let log = compile("drift", &drift, "compute_80", &[]).expect_err("must not compile");
    assert!(log.contains("disagrees with the Rust protocol"), "{log}");
    // So does a fault code.
    let drift = echo.code.replacen("FAULT_BAD_LAUNCH = 9", "FAULT_BAD_LAUNCH = 10", 1);
    assert_ne!(drift, echo.code);
    let log = compile("drift_fault", &drift, "compute_80", &[]).expect_err("must not compile");
    assert!(log.contains("disagrees with the Rust protocol"), "{log}");
    // And the unmodified source compiles, so the failures above are the edits'.
    compile("echo", &echo.code, "compute_80", &[]).unwrap_or_else(|log| panic!("{log}"));
}

mod shapes {
    use dotcompute::gpu::GpuMessage;

    #[derive(Debug, Clone, Copy, GpuMessage)]
    #[repr(C)]
    pub struct Point {
        pub x: f32,
        pub y: f32,
    }

    #[derive(Debug, Clone, Copy, GpuMessage)]
    #[repr(C, align(16))]
    pub struct Shape {
        pub corners: [Point; 3],
        pub grid: [[u8; 4]; 2],
        pub id: u64,
        pub tag: i16,
        pub kind: i8,
        pub flags: u8,
        pub small: [i32; 3],
        pub area: f64,
    }

    #[derive(Debug, Clone, Copy, GpuMessage)]
    #[repr(C)]
    #[gpu_message(cuda_name = "AreaSum")]
    pub struct Area {
        pub id: u64,
        pub area: f64,
        pub total: f64,
    }
}

#[test]
fn derived_declarations_compile_with_nesting_alignment_and_state() {
    let test = "derived_declarations_compile_with_nesting_alignment_and_state";
    if let Err(reason) = nvrtc() {
        return skip(test, &reason);
    }
    use shapes::{Area, Shape};
    assert_eq!(Shape::ALIGN, 16);
    let handler = CudaHandler::new(
        "__device__ int area(const Shape* s, AreaSum* out, AreaSum* total) {\n\
             const Point* p = s->corners;\n\
             double a = 0.5 * fabs((double)((p[1].x - p[0].x) * (p[2].y - p[0].y) - (p[2].x - p[0].x) * (p[1].y - p[0].y)));\n\
             total->total += a;\n\
             out->id = s->id;\n\
             out->area = a;\n\
             out->total = total->total;\n\
             return s->grid[1][3] == 0 ? 0 : (int)s->grid[1][3];\n\
         }",
        "area",
        Threading::Serial,
    );
    let src = ring_kernel_source::<Shape, Area, Area>("shape_kernel", &handler).unwrap();
    assert_eq!(src.code.matches("struct AreaSum {").count(), 1, "declared once");
    assert!(src.code.contains("struct alignas(16) Shape {"));
    for (arch, _) in ARCHS {
        compile("shapes", &src.code, arch, &[]).unwrap_or_else(|log| panic!("{arch}:\n{log}"));
    }
    // The stateless helper type compiles alone too.
    let noop = CudaHandler::new(
        "__device__ void noop(const Point*, Point* o, NoState*) { o->x = 1.0f; }",
        "noop",
        Threading::Parallel,
    );
    let src = ring_kernel_source::<shapes::Point, shapes::Point, NoState>("noop_kernel", &noop).unwrap();
    compile("noop", &src.code, "compute_90", &[]).unwrap_or_else(|log| panic!("{log}"));
}
