//! Vector addition on every device this machine has.
//!
//! Run with `cargo run -p dotcompute --example vector_add`. It adds two
//! vectors with the shipped `vector_add` kernel on the CPU backend (device
//! memory is a separate allocation there, so the copies are real) and, when a
//! CUDA driver and NVRTC are present, on each CUDA device, checks every
//! element, and prints what ran where. Without a GPU it says so and runs the
//! CPU backend only.

use std::sync::Arc;

use dotcompute::device::{
    kernels, Accelerator, Backend, CudaSource, CudaStatus, DeviceBuffer, DeviceResult, KernelArg, LaunchConfig,
};

/// What one device computed.
#[derive(Debug)]
pub struct DeviceRun {
    /// The device's name.
    pub device: String,
    /// Elements added.
    pub n: usize,
    /// Whether every element equals `a[i] + b[i]`.
    pub correct: bool,
}

fn inputs(n: usize) -> (Vec<f32>, Vec<f32>) {
    let a = (0..n).map(|i| i as f32 * 0.5).collect();
    let b = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
    (a, b)
}

/// Adds with a compiled `vector_add` on `backend` and checks the result.
fn add_on<B: Backend>(backend: &Arc<B>, kernel: &B::Kernel, device: String, n: usize) -> DeviceResult<DeviceRun> {
    let (a, b) = inputs(n);
    let da = DeviceBuffer::from_slice(backend, &a)?;
    let db = DeviceBuffer::from_slice(backend, &b)?;
    let mut dc = DeviceBuffer::<f32, _>::zeroed(backend, n)?;
    let config = LaunchConfig::linear(n, 256)?;
    backend.launch(
        kernel,
        &config,
        &mut [da.arg(), db.arg(), dc.arg_mut(), KernelArg::scalar(n as u32)],
        &backend.default_stream(),
    )?;
    let c = dc.to_vec()?;
    let correct = c.iter().zip(a.iter().zip(&b)).all(|(c, (a, b))| *c == a + b);
    Ok(DeviceRun { device, n, correct })
}

/// Runs the addition on the CPU and on every usable CUDA device. The second
/// value lists devices that could not run it, with the reason.
pub fn run(n: usize) -> DeviceResult<(Vec<DeviceRun>, Vec<String>)> {
    let accelerator = Accelerator::discover();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();

    let cpu = accelerator.cpu_backend();
    let kernel = cpu.compile(kernels::cpu::vector_add())?;
    runs.push(add_on(&cpu, &kernel, "CPU backend".to_string(), n)?);

    match accelerator.cuda_status() {
        CudaStatus::Unavailable { reason } => skipped.push(format!("CUDA: {reason}")),
        CudaStatus::Available { device_count: 0, .. } => skipped.push("CUDA: the driver reports no device".into()),
        CudaStatus::Available { .. } => {}
    }
    for info in accelerator.cuda_devices() {
        let attempt = accelerator.cuda_backend(info.id).and_then(|gpu| {
            let kernel = gpu.compile(CudaSource::shipped(kernels::VECTOR_ADD))?;
            add_on(&gpu, &kernel, info.name.clone(), n)
        });
        match attempt {
            Ok(r) => runs.push(r),
            Err(e) => skipped.push(format!("{}: {e}", info.name)),
        }
    }
    Ok((runs, skipped))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (runs, skipped) = run(1 << 20)?;
    for r in &runs {
        println!(
            "{:<24} {} elements: {}",
            r.device,
            r.n,
            if r.correct { "correct" } else { "WRONG" }
        );
    }
    for s in &skipped {
        println!("not run: {s}");
    }
    if runs.iter().all(|r| r.correct) {
        Ok(())
    } else {
        Err("a device computed a wrong sum".into())
    }
}
