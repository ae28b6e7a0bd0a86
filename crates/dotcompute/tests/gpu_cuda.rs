//! GPU ring kernels on a real CUDA device (`gpu::cuda_device`,
//! `gpu_kernel`, `GpuPipeline::cuda`) and the launch-per-message baseline.
//!
//! - Without a CUDA driver (any machine): every CUDA entry point returns a
//!   typed "unavailable" error and nothing panics.
//! - With NVRTC (CI provisions it): the kernels these entry points build
//!   compile, through the same function they use, and the one-shot baseline
//!   kernel compiles and assembles.
//! - With an NVIDIA GPU: 1M messages round-trip with every reply checked,
//!   the lifecycle works with messages in flight, state persists across
//!   messages bit-identical to the Rust twin, a pipeline stays on the GPU,
//!   multi-block grids work, handler errors fail the kernel. Elsewhere these
//!   print `skipped ...: no usable GPU` (and fail under
//!   `DOTCOMPUTE_REQUIRE_GPU=1`).

mod cuda_common;

use std::time::Duration;

use cuda_common::{cuda_or_skip, nvrtc_or_skip, ptxas_or_skip};
use dotcompute::device::{dylib, CompileOptions, KernelCompiler};
use dotcompute::gpu::baseline::{one_shot_source, LaunchPerMessage};
use dotcompute::gpu::cuda_device::{compile_ring_kernel, entry_name, CudaRingOptions};
use dotcompute::gpu::handlers::{self, Sample, Scaled, Stats, StatsState};
use dotcompute::gpu::protocol::DeviceKernelParams;
use dotcompute::gpu::source::{CudaHandler, Threading};
use dotcompute::gpu::{
    gpu_kernel, Envelope, GpuError, GpuKernelOptions, GpuMessage, GpuPipeline, GpuRing, GpuRingOptions, NoState,
};
use dotcompute::{Error, KernelState, RingKernelRuntime};

const T: Duration = Duration::from_secs(10);

fn gpu(test: &str) -> bool {
    cuda_or_skip(test).is_some() && nvrtc_or_skip(test)
}

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        value: (seq % 1000) as f32 * 0.25 - 100.0,
        channel: (seq % 13) as u32,
    }
}

fn options(batch: u32) -> GpuRingOptions {
    let mut o = GpuRingOptions {
        input_capacity: 4096,
        output_capacity: 4096,
        ..GpuRingOptions::default()
    };
    o.device.batch_size = batch;
    o
}

// ---- no driver: clean errors -------------------------------------------

#[test]
fn without_a_driver_every_entry_point_says_unavailable() {
    if dylib::cuda_driver().is_ok() {
        eprintln!("skipped without_a_driver_every_entry_point_says_unavailable: a CUDA driver is present");
        return;
    }
    let ring = GpuRing::<Sample, Sample>::cuda(
        &handlers::echo_cuda(),
        NoState::default(),
        GpuRingOptions::default(),
        &CudaRingOptions::default(),
    );
    assert!(
        matches!(ring, Err(GpuError::Unavailable(ref why)) if why.contains("CUDA driver")),
        "{ring:?}"
    );
    let spec = gpu_kernel::<Sample, Sample, NoState>(
        "echo",
        handlers::echo_cuda(),
        NoState::default(),
        GpuKernelOptions::default(),
    );
    match spec {
        Err(Error::Gpu {
            kernel,
            error: GpuError::Unavailable(_),
        }) => assert_eq!(kernel, "echo"),
        other => panic!("expected Error::Gpu(Unavailable), got {other:?}"),
    }
    let base = LaunchPerMessage::<Sample, Sample>::new::<NoState>(&handlers::echo_cuda(), 0, 1);
    assert!(matches!(base, Err(GpuError::Unavailable(_))), "{base:?}");
    let pipe = GpuPipeline::<Sample, Sample, Stats>::cuda(
        &handlers::echo_cuda(),
        NoState::default(),
        &handlers::running_stats_cuda(),
        StatsState::zeroed(),
        64,
        GpuRingOptions::default(),
        &CudaRingOptions::default(),
    );
    assert!(matches!(pipe, Err(GpuError::Unavailable(_))));
}

#[test]
fn bad_grid_shapes_are_refused_before_any_device_work() {
    let serial = handlers::running_stats_cuda();
    let two_blocks = CudaRingOptions {
        blocks: 2,
        ..CudaRingOptions::default()
    };
    assert!(matches!(two_blocks.validate(serial.threading), Err(GpuError::Start(ref m)) if m.contains("Serial")));
    let odd = CudaRingOptions {
        threads_per_block: 100,
        ..CudaRingOptions::default()
    };
    assert!(odd.validate(Threading::Parallel).is_err());
    let zero = CudaRingOptions {
        blocks: 0,
        ..CudaRingOptions::default()
    };
    assert!(zero.validate(Threading::Parallel).is_err());
    assert!(CudaRingOptions::default().validate(Threading::Serial).is_ok());
}

// ---- NVRTC: what the CUDA path compiles ---------------------------------

#[test]
fn ring_kernels_compile_through_the_cuda_path() {
    if !nvrtc_or_skip("ring_kernels_compile_through_the_cuda_path") {
        return;
    }
    let compiler = KernelCompiler::new();
    for arch in ["compute_80", "compute_90"] {
        let e = compile_ring_kernel::<Sample, Sample, NoState>(&handlers::echo_cuda(), arch, false, &compiler).unwrap();
        let t = compile_ring_kernel::<Sample, Scaled, NoState>(&handlers::transform_cuda(), arch, false, &compiler)
            .unwrap();
        let s =
            compile_ring_kernel::<Sample, Stats, StatsState>(&handlers::running_stats_cuda(), arch, true, &compiler)
                .unwrap();
        for (k, h) in [(e, "echo"), (t, "transform"), (s, "running_stats")] {
            let entry = k
                .entries()
                .into_iter()
                .find(|x| x.name == format!("dc_ring_{h}"))
                .unwrap();
            assert_eq!(entry.params.len(), 1);
            assert_eq!(entry.params[0].size, DeviceKernelParams::SIZE);
        }
    }
    // The second round is served by the cache.
    let before = compiler.compilations();
    compile_ring_kernel::<Sample, Sample, NoState>(&handlers::echo_cuda(), "compute_90", false, &compiler).unwrap();
    assert_eq!(compiler.compilations(), before);
}

#[test]
fn a_handler_that_does_not_compile_comes_back_with_the_log() {
    if !nvrtc_or_skip("a_handler_that_does_not_compile_comes_back_with_the_log") {
        return;
    }
    let bad = CudaHandler::new(
        "__device__ void broken(const Sample* in, Sample* out, NoState*) { out->seq = in->no_such_field; }",
        "broken",
        Threading::Parallel,
    );
    let r = compile_ring_kernel::<Sample, Sample, NoState>(&bad, "compute_90", false, &KernelCompiler::new());
    match r {
        Err(GpuError::Compile(log)) => assert!(log.contains("no_such_field"), "{log}"),
        other => panic!("expected a compile error, got {other:?}"),
    }
    assert_eq!(entry_name(&bad), "dc_ring_broken");
}

#[test]
fn the_launch_per_message_baseline_compiles_and_assembles() {
    let test = "the_launch_per_message_baseline_compiles_and_assembles";
    if !nvrtc_or_skip(test) {
        return;
    }
    let Some(ptxas) = ptxas_or_skip(test) else { return };
    let src = one_shot_source::<Sample, Scaled, NoState>("dc_once_transform", &handlers::transform_cuda());
    for (arch, sm) in [("compute_80", "sm_80"), ("compute_90", "sm_90")] {
        let mut o = CompileOptions::new(arch);
        o.extra.push("--fmad=false".into());
        let k = KernelCompiler::new().compile("dc_once_transform", &src, &o).unwrap();
        let entry = k.entries().into_iter().find(|e| e.name == "dc_once_transform").unwrap();
        assert_eq!(entry.params.len(), 4, "{:?}", entry.params);
        let cubin = ptxas.assemble("dc_once_transform", &k.ptx, sm).unwrap();
        assert!(!cubin.is_empty());
    }
}

// ---- on a GPU ------------------------------------------------------------

/// Sends `n` messages through `ring` as fast as it takes them, checking
/// every reply against `expect` in order.
fn pump<In: GpuMessage, Out: GpuMessage + PartialEq + std::fmt::Debug>(
    ring: &mut GpuRing<In, Out>,
    msgs: &[In],
    mut expect: impl FnMut(&In) -> Out,
) {
    let (mut sent, mut got) = (0usize, 0usize);
    let mut replies = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while got < msgs.len() {
        if sent < msgs.len() {
            sent += ring.send_slice(&msgs[sent..(sent + 1024).min(msgs.len())]).unwrap();
        }
        replies.clear();
        ring.receive_into(&mut replies, 1024).unwrap();
        for r in &replies {
            assert_eq!(*r, expect(&msgs[got]), "reply {got}");
            got += 1;
        }
        if replies.is_empty() {
            ring.check_health().unwrap();
            assert!(
                std::time::Instant::now() < deadline,
                "stalled at {got} of {}",
                msgs.len()
            );
        }
    }
}

#[test]
fn one_million_messages_round_trip_through_a_persistent_kernel() {
    if !gpu("one_million_messages_round_trip_through_a_persistent_kernel") {
        return;
    }
    let mut ring = GpuRing::<Sample, Scaled>::cuda(
        &handlers::transform_cuda(),
        NoState::default(),
        options(256),
        &Default::default(),
    )
    .unwrap();
    assert!(!ring.is_emulation());
    ring.activate().unwrap();
    let msgs: Vec<Sample> = (0..1_000_000).map(sample).collect();
    pump(&mut ring, &msgs, |m| {
        let mut o = Scaled::zeroed();
        handlers::transform(m, &mut o, &mut NoState::default()).unwrap();
        o
    });
    let summary = ring.terminate(T).unwrap();
    assert_eq!(summary.counters.processed, 1_000_000);
    assert_eq!(summary.counters.errors, 0);
    assert_eq!((summary.unprocessed, summary.unread_replies), (0, 0));
}

#[test]
fn lifecycle_works_with_messages_in_flight() {
    if !gpu("lifecycle_works_with_messages_in_flight") {
        return;
    }
    let mut ring = GpuRing::<Sample, Sample>::cuda(
        &handlers::echo_cuda(),
        NoState::default(),
        options(64),
        &Default::default(),
    )
    .unwrap();
    // Launched but not active: messages wait.
    let first: Vec<Sample> = (0..1000).map(sample).collect();
    assert_eq!(ring.send_slice(&first).unwrap(), 1000);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(ring.counters().unwrap().processed, 0);
    ring.activate().unwrap();
    for m in &first {
        assert_eq!(ring.receive(T).unwrap(), *m);
    }
    // Deactivated mid-stream: the device parks, nothing more is taken.
    ring.deactivate().unwrap();
    let parked = ring.wait_acknowledged(T).unwrap();
    let more: Vec<Sample> = (1000..3000).map(sample).collect();
    assert_eq!(ring.send_slice(&more).unwrap(), 2000);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(ring.counters().unwrap().processed, parked.processed);
    ring.activate().unwrap();
    for m in &more {
        assert_eq!(ring.receive(T).unwrap(), *m);
    }
    // Terminate with messages still queued: bounded, and nothing unaccounted.
    let last: Vec<Sample> = (3000..4000).map(sample).collect();
    let queued = ring.send_slice(&last).unwrap() as u64;
    let summary = ring.terminate(T).unwrap();
    assert!(summary.elapsed < T);
    assert_eq!(summary.counters.processed + summary.unprocessed, 3000 + queued);
    let mut late = Vec::new();
    ring.receive_into(&mut late, 4096).unwrap();
    assert_eq!(late.len() as u64, summary.unread_replies);
    assert_eq!(late[..], last[..late.len()]);
}

#[test]
fn state_persists_and_matches_the_rust_twin_bit_for_bit() {
    if !gpu("state_persists_and_matches_the_rust_twin_bit_for_bit") {
        return;
    }
    let mut ring = GpuRing::<Sample, Stats>::cuda(
        &handlers::running_stats_cuda(),
        StatsState::zeroed(),
        options(64),
        &Default::default(),
    )
    .unwrap();
    ring.activate().unwrap();
    let msgs: Vec<Sample> = (0..20_000).map(sample).collect();
    let mut twin = StatsState::zeroed();
    pump(&mut ring, &msgs, |m| {
        let mut o = Stats::zeroed();
        handlers::running_stats(m, &mut o, &mut twin);
        o
    });
    ring.deactivate().unwrap();
    ring.wait_acknowledged(T).unwrap();
    let state: StatsState = ring.read_state().unwrap().unwrap();
    assert_eq!(state, twin);
    ring.terminate(T).unwrap();
}

#[test]
fn a_multi_block_grid_handles_parallel_batches() {
    if !gpu("a_multi_block_grid_handles_parallel_batches") {
        return;
    }
    let cuda = CudaRingOptions {
        blocks: 4,
        threads_per_block: 128,
        ..CudaRingOptions::default()
    };
    let mut ring =
        GpuRing::<Sample, Sample>::cuda(&handlers::echo_cuda(), NoState::default(), options(1024), &cuda).unwrap();
    ring.activate().unwrap();
    let msgs: Vec<Sample> = (0..200_000).map(sample).collect();
    pump(&mut ring, &msgs, |m| *m);
    assert_eq!(ring.terminate(T).unwrap().counters.processed, 200_000);
}

#[test]
fn a_pipeline_of_two_kernels_stays_on_the_gpu() {
    if !gpu("a_pipeline_of_two_kernels_stays_on_the_gpu") {
        return;
    }
    let mut p = GpuPipeline::<Sample, Sample, Stats>::cuda(
        &handlers::echo_cuda(),
        NoState::default(),
        &handlers::running_stats_cuda(),
        StatsState::zeroed(),
        256,
        options(64),
        &Default::default(),
    )
    .unwrap();
    p.activate().unwrap();
    let mut twin = StatsState::zeroed();
    for i in 0..10_000 {
        let m = sample(i);
        p.send(&m, T).unwrap();
        let mut want = Stats::zeroed();
        handlers::running_stats(&m, &mut want, &mut twin);
        assert_eq!(p.receive(T).unwrap(), want);
    }
    let (a, b) = p.terminate(T).unwrap();
    assert_eq!((a.counters.processed, b.counters.processed), (10_000, 10_000));
}

#[test]
fn the_runtime_runs_a_gpu_kernel_in_gpu_mode() {
    if !gpu("the_runtime_runs_a_gpu_kernel_in_gpu_mode") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let spec = gpu_kernel::<Sample, Scaled, NoState>(
            "transform",
            handlers::transform_cuda(),
            NoState::default(),
            GpuKernelOptions::default(),
        )
        .unwrap();
        assert_eq!(spec.config().mode, dotcompute::ExecutionMode::Gpu);
        let runtime = RingKernelRuntime::new();
        runtime.launch_spec(spec).unwrap();
        runtime.activate("transform").unwrap();
        for i in 0..10_000u64 {
            let m = sample(i);
            let r: Envelope<Scaled> = runtime.call_timeout("transform", Envelope::new(m), T).await.unwrap();
            let mut want = Scaled::zeroed();
            handlers::transform(&m, &mut want, &mut NoState::default()).unwrap();
            assert_eq!(r.payload, want);
        }
        runtime.deactivate("transform").unwrap();
        runtime.reactivate("transform").unwrap();
        let r: Envelope<Scaled> = runtime
            .call_timeout("transform", Envelope::new(sample(7)), T)
            .await
            .unwrap();
        assert_eq!(r.payload.seq, 7);
        // A handler error code fails the kernel (fail_on_handler_error).
        runtime
            .send(
                "transform",
                Envelope::new(Sample {
                    seq: 1,
                    value: f32::NAN,
                    channel: 0,
                }),
            )
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + T;
        while runtime.kernel_state("transform").unwrap() != KernelState::Failed {
            assert!(
                std::time::Instant::now() < deadline,
                "the handler error did not fail the kernel"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        runtime.shutdown().await;
    });
}

#[test]
fn the_baselines_compute_what_the_ring_kernel_computes() {
    if !gpu("the_baselines_compute_what_the_ring_kernel_computes") {
        return;
    }
    let mut base = LaunchPerMessage::<Sample, Scaled>::new::<NoState>(&handlers::transform_cuda(), 0, 512).unwrap();
    let msgs: Vec<Sample> = (0..512).map(sample).collect();
    let mut out = Vec::new();
    base.round_trip(&msgs, &mut out).unwrap();
    for (m, r) in msgs.iter().zip(&out) {
        let mut want = Scaled::zeroed();
        handlers::transform(m, &mut want, &mut NoState::default()).unwrap();
        assert_eq!(*r, want);
    }
    for m in msgs.iter().take(100) {
        base.round_trip_graph(m, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].seq, m.seq);
    }
}
