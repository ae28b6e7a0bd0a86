//! CUDA C compilation for real, without a GPU: every shipped kernel compiles
//! with NVRTC to PTX for sm_80 and sm_90 and assembles with ptxas; compile
//! errors carry NVRTC's log; the compiler goes through its cache.
//!
//! Needs NVRTC and ptxas (`source "$(bash scripts/provision-cuda.sh --env-file)"`).
//! Without them each test prints a skip line; with `DOTCOMPUTE_REQUIRE_NVRTC=1`
//! (set by that env file and by CI) their absence fails the tests.

mod cuda_common;

use std::sync::Arc;

use cuda_common::{nvrtc_or_skip, ptxas_or_skip};
use dotcompute::device::{kernels, CacheConfig, CacheLevel, CompileOptions, DeviceError, KernelCache, KernelCompiler};

const ARCHS: [&str; 2] = ["80", "90"];

#[test]
fn shipped_kernel_list_matches_the_kernels_folder() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cu"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = kernels::ALL.iter().map(|k| k.file.to_string()).collect();
    listed.sort();
    // A file with several entry points (pagerank.cu) is listed once per entry.
    listed.dedup();
    assert_eq!(
        on_disk, listed,
        "kernels::ALL must list every .cu file so that each is compiled by CI"
    );
    for k in kernels::ALL {
        let text = std::fs::read_to_string(dir.join(k.file)).unwrap();
        assert_eq!(text, k.source, "{} differs from its include_str! copy", k.file);
        assert!(
            k.source.contains(&format!("void {}(", k.entry)),
            "{} lacks entry {}",
            k.file,
            k.entry
        );
    }
}

#[test]
fn every_shipped_kernel_compiles_to_ptx_and_assembles_for_sm80_and_sm90() {
    if !nvrtc_or_skip("every_shipped_kernel_compiles_to_ptx_and_assembles_for_sm80_and_sm90") {
        return;
    }
    let Some(ptxas) = ptxas_or_skip("every_shipped_kernel_compiles_to_ptx_and_assembles_for_sm80_and_sm90") else {
        return;
    };
    let compiler = KernelCompiler::new();
    for k in kernels::ALL {
        for arch in ARCHS {
            let opts = CompileOptions::new(format!("compute_{arch}"));
            let compiled = compiler
                .compile(k.file, k.source, &opts)
                .unwrap_or_else(|e| panic!("{}: {e}", k.file));
            assert!(
                compiled.ptx.contains(&format!(".target sm_{arch}")),
                "{} PTX targets another arch",
                k.file
            );
            let entries = compiled.entries();
            let entry = entries
                .iter()
                .find(|e| e.name == k.entry)
                .unwrap_or_else(|| panic!("{}: no entry", k.file));
            assert!(!entry.params.is_empty());
            let cubin = ptxas
                .assemble(k.file, &compiled.ptx, &format!("sm_{arch}"))
                .unwrap_or_else(|e| panic!("{} sm_{arch}: {e}", k.file));
            assert_eq!(
                &cubin[..4],
                b"\x7fELF",
                "{} sm_{arch}: ptxas output is not an ELF cubin",
                k.file
            );
        }
    }
}

#[test]
fn shipped_kernel_signatures_match_their_cpu_conventions() {
    if !nvrtc_or_skip("shipped_kernel_signatures_match_their_cpu_conventions") {
        return;
    }
    let compiler = KernelCompiler::new();
    let expect: [(&str, &[usize]); 4] = [
        ("vector_add", &[8, 8, 8, 4]),
        ("saxpy", &[4, 8, 8, 4]),
        ("reduce_sum", &[8, 8, 4]),
        ("matmul", &[8, 8, 8, 4, 4, 4]),
    ];
    for (k, (entry, sizes)) in kernels::ALL.iter().zip(expect) {
        let c = compiler.compile(k.file, k.source, &CompileOptions::default()).unwrap();
        let e = c.entries().into_iter().find(|e| e.name == entry).unwrap();
        let got: Vec<usize> = e.params.iter().map(|p| p.size).collect();
        assert_eq!(got, sizes, "{entry} parameter sizes");
    }
}

#[test]
fn nvrtc_builds_a_cubin_for_a_real_architecture() {
    if !nvrtc_or_skip("nvrtc_builds_a_cubin_for_a_real_architecture") {
        return;
    }
    let compiler = KernelCompiler::new();
    for arch in ARCHS {
        let opts = CompileOptions::new(format!("sm_{arch}")).cubin(true);
        let c = compiler
            .compile(kernels::SAXPY.file, kernels::SAXPY.source, &opts)
            .unwrap();
        let cubin = c.cubin.expect("cubin requested");
        assert_eq!(&cubin[..4], b"\x7fELF");
    }
    // A cubin needs a real architecture: refused before NVRTC runs.
    let bad = CompileOptions::new("compute_80").cubin(true);
    assert!(matches!(
        compiler.compile("k", "extern \"C\" __global__ void k() {}", &bad),
        Err(DeviceError::InvalidConfiguration { parameter: "arch", .. })
    ));
}

#[test]
fn a_syntax_error_comes_back_with_the_nvrtc_log() {
    if !nvrtc_or_skip("a_syntax_error_comes_back_with_the_nvrtc_log") {
        return;
    }
    let src = "extern \"C\" __global__ void broken(float* x) {\n  x[0] = undeclared_name + ;\n}\n";
    let err = KernelCompiler::new()
        .compile("broken.cu", src, &CompileOptions::default())
        .unwrap_err();
    match &err {
        DeviceError::Compile {
            name, compiler, log, ..
        } => {
            assert_eq!(name, "broken.cu");
            assert_eq!(*compiler, "NVRTC");
            assert!(log.contains("broken.cu(2)"), "log lacks the file and line: {log}");
            assert!(
                log.contains("undeclared_name") || log.contains("expected"),
                "log: {log}"
            );
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
    assert!(err.to_string().contains("broken.cu(2)"), "the message carries the log");
}

#[test]
fn options_reach_nvrtc_defines_fast_math_line_info_and_include_paths() {
    if !nvrtc_or_skip("options_reach_nvrtc_defines_fast_math_line_info_and_include_paths") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scale.h"), "#define SCALE_BY 3.0f\n").unwrap();
    let src =
        "#include \"scale.h\"\nextern \"C\" __global__ void k(float* x) { x[threadIdx.x] *= SCALE_BY * FACTOR; }\n";
    let compiler = KernelCompiler::new();
    // Without the define and include path the source does not compile.
    assert!(matches!(
        compiler.compile("k.cu", src, &CompileOptions::default()),
        Err(DeviceError::Compile { .. })
    ));
    let opts = CompileOptions::new("compute_80")
        .define("FACTOR", "2.0f")
        .include_path(dir.path())
        .fast_math(true)
        .line_info(true);
    let c = compiler.compile("k.cu", src, &opts).unwrap();
    assert!(c.ptx.contains(".loc"), "line info puts .loc directives in the PTX");
    // 3.0 * 2.0 folded into one multiply by 6.0 (0f40C00000).
    assert!(
        c.ptx.contains("0f40C00000"),
        "the define and the header both reached the compiler"
    );
}

#[test]
fn the_compiler_uses_its_cache_in_memory_and_on_disk() {
    if !nvrtc_or_skip("the_compiler_uses_its_cache_in_memory_and_on_disk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap());
    let compiler = KernelCompiler::with_cache(cache.clone());
    let opts = CompileOptions::default();
    let k = kernels::VECTOR_ADD;
    let first = compiler.compile(k.file, k.source, &opts).unwrap();
    assert_eq!(first.cached, None);
    let second = compiler.compile(k.file, k.source, &opts).unwrap();
    assert_eq!(second.cached, Some(CacheLevel::Memory));
    assert_eq!(second.ptx, first.ptx);
    assert_eq!(compiler.compilations(), 1, "the second compile was served by the cache");

    // Different options: a different key, a real compilation.
    let fast = compiler
        .compile(k.file, k.source, &opts.clone().fast_math(true))
        .unwrap();
    assert_eq!(fast.cached, None);
    assert_ne!(fast.cache_key, first.cache_key);
    assert_eq!(compiler.compilations(), 2);

    // A new compiler over the same folder (as another process would be) hits on disk.
    let other = KernelCompiler::with_cache(Arc::new(KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap()));
    let third = other.compile(k.file, k.source, &opts).unwrap();
    assert_eq!(third.cached, Some(CacheLevel::Disk));
    assert_eq!(third.ptx, first.ptx);
    assert_eq!(other.compilations(), 0);

    // A corrupted file is detected, discarded and recompiled.
    let path = dir.path().join(format!("{}.kc", first.cache_key));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let fresh = KernelCompiler::with_cache(Arc::new(KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap()));
    let again = fresh.compile(k.file, k.source, &opts).unwrap();
    assert_eq!(again.cached, None);
    assert_eq!(fresh.compilations(), 1);
    assert_eq!(fresh.cache().stats().corrupted, 1);
    assert_eq!(again.ptx, first.ptx);
    // ... and the rewritten entry is valid again.
    let reread = KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap();
    let key_hit = KernelCompiler::with_cache(Arc::new(reread))
        .compile(k.file, k.source, &opts)
        .unwrap();
    assert_eq!(key_hit.cached, Some(CacheLevel::Disk));
}

#[test]
fn the_cache_key_covers_header_contents() {
    if !nvrtc_or_skip("the_cache_key_covers_header_contents") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let header = dir.path().join("v.h");
    std::fs::write(&header, "#define V 1.0f\n").unwrap();
    let compiler = KernelCompiler::new();
    let opts = CompileOptions::default().include_path(dir.path());
    let version = KernelCompiler::version().unwrap();
    let src = "#include \"v.h\"\nextern \"C\" __global__ void k(float* x) { x[0] = V; }\n";
    let a = compiler.cache_key("k.cu", src, &opts, version).unwrap();
    std::fs::write(&header, "#define V 2.0f\n").unwrap();
    let b = compiler.cache_key("k.cu", src, &opts, version).unwrap();
    assert_ne!(a, b, "editing an included header must change the key");
}

#[test]
fn nvrtc_reports_its_version_and_targets() {
    if !nvrtc_or_skip("nvrtc_reports_its_version_and_targets") {
        return;
    }
    let (major, _) = KernelCompiler::version().unwrap();
    assert!(major >= 12);
    let archs = KernelCompiler::supported_archs().unwrap();
    assert!(archs.contains(&80) && archs.contains(&90), "targets: {archs:?}");
}
