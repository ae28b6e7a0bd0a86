//! The shipped kernels on the CPU backend and on the best wgpu adapter
//! (lavapipe on a machine without a GPU), side by side in one run: each
//! kernel's launch + synchronize, data already on the device, runs
//! interleaved (CPU, wgpu, CPU, wgpu, ...), median and best of each, and
//! the wgpu/CPU ratio of the medians. Every wgpu result is checked against
//! the CPU's first.
//!
//! ```sh
//! cargo run --release -p dotcompute --features wgpu --example wgpu_kernels [-- RUNS]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use dotcompute::device::kernels::{self, ShippedKernels};
use dotcompute::device::wgpu::WgpuBackend;
use dotcompute::device::{Backend, CpuBackend, DeviceBuffer, DeviceError, KernelArg, LaunchConfig};

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One kernel's resident buffers on one backend, and how to launch it.
struct Case<B: ShippedKernels> {
    backend: Arc<B>,
    kernel: B::Kernel,
    config: LaunchConfig,
    inputs: Vec<DeviceBuffer<f32, B>>,
    output: DeviceBuffer<f32, B>,
    scalars: Vec<KernelArg<'static, B>>,
    scalar_first: bool,
}

impl<B: ShippedKernels> Case<B> {
    fn new(
        backend: &Arc<B>,
        which: &kernels::KernelSource,
        config: LaunchConfig,
        inputs: &[&[f32]],
        output: &[f32],
        scalars: Vec<KernelArg<'static, B>>,
        scalar_first: bool,
    ) -> Result<Self, DeviceError> {
        Ok(Case {
            backend: backend.clone(),
            kernel: backend.compile_shipped(which)?,
            config,
            inputs: inputs
                .iter()
                .map(|d| DeviceBuffer::from_slice(backend, d))
                .collect::<Result<_, _>>()?,
            output: DeviceBuffer::from_slice(backend, output)?,
            scalars,
            scalar_first,
        })
    }

    fn scalar(&self, i: usize) -> KernelArg<'static, B> {
        match &self.scalars[i] {
            KernelArg::Scalar(s) => KernelArg::Scalar(*s),
            _ => unreachable!("scalars only"),
        }
    }

    fn run(&mut self) -> Result<Duration, DeviceError> {
        let stream = self.backend.default_stream();
        let t = Instant::now();
        {
            let mut args: Vec<KernelArg<'_, B>> = Vec::new();
            if self.scalar_first {
                args.push(self.scalar(0));
            }
            let rest: Vec<KernelArg<'static, B>> = (usize::from(self.scalar_first)..self.scalars.len())
                .map(|i| self.scalar(i))
                .collect();
            args.extend(self.inputs.iter().map(|b| b.arg()));
            args.push(self.output.arg_mut());
            args.extend(rest);
            self.backend.launch(&self.kernel, &self.config, &mut args, &stream)?;
        }
        self.backend.synchronize(&stream)?;
        Ok(t.elapsed())
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(9);
    let cpu = Arc::new(CpuBackend::new());
    let gpu = Arc::new(WgpuBackend::best()?);
    let a = gpu.adapter_info();
    println!(
        "CPU backend: {} ({} threads) · wgpu: {} ({}, {}, {})",
        cpu.device().name,
        cpu.device().multiprocessor_count,
        a.device.name,
        a.api,
        a.device_type,
        a.driver_info
    );
    println!("{runs} interleaved runs per kernel; launch + synchronize, data resident on the device\n");
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "kernel", "cpu median", "cpu best", "wgpu median", "wgpu best", "wgpu/cpu"
    );
    let n = 1usize << 22;
    let (x, y) = (data(n, 1), data(n, 2));
    let (m, k, nn) = (512usize, 512usize, 512usize);
    let (ma, mb) = (data(m * k, 3), data(k * nn, 4));
    let blocks = 256u32;

    macro_rules! both {
        ($label:expr, $src:expr, $cfg:expr, $inputs:expr, $out:expr, $scalars:expr, $first:expr) => {{
            let mut c = Case::new(&cpu, &$src, $cfg, $inputs, $out, $scalars, $first)?;
            let mut g = Case::new(&gpu, &$src, $cfg, $inputs, $out, $scalars, $first)?;
            // Warm up (pipeline creation, page faults), then check the results agree.
            c.run()?;
            g.run()?;
            let (vc, vg) = (c.output.to_vec()?, g.output.to_vec()?);
            let worst = vc
                .iter()
                .zip(&vg)
                .map(|(p, q)| ((p - q).abs() / p.abs().max(1.0)))
                .fold(0.0f32, f32::max);
            let (mut tc, mut tg) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                tc.push(c.run()?);
                tg.push(g.run()?);
            }
            let (bc, bg) = (*tc.iter().min().unwrap(), *tg.iter().min().unwrap());
            let (mc, mg) = (median(&mut tc), median(&mut tg));
            println!(
                "{:<34} {:>10.3}ms {:>10.3}ms {:>10.3}ms {:>10.3}ms {:>9.2}x   (max rel. diff {:.1e})",
                $label,
                mc.as_secs_f64() * 1e3,
                bc.as_secs_f64() * 1e3,
                mg.as_secs_f64() * 1e3,
                bg.as_secs_f64() * 1e3,
                mg.as_secs_f64() / mc.as_secs_f64(),
                worst
            );
        }};
    }

    let lin = LaunchConfig::linear(n, 256)?;
    both!(
        format!("vector_add ({n} f32)"),
        kernels::VECTOR_ADD,
        lin,
        &[&x, &y],
        &y,
        vec![KernelArg::scalar(n as u32)],
        false
    );
    both!(
        format!("saxpy ({n} f32)"),
        kernels::SAXPY,
        lin,
        &[&x],
        &y,
        vec![KernelArg::scalar(1.5f32), KernelArg::scalar(n as u32)],
        true
    );
    both!(
        format!("reduce_sum ({n} f32, {blocks} blocks)"),
        kernels::REDUCE_SUM,
        kernels::reduce_sum_config(blocks, 256)?,
        &[&x],
        &vec![0.0; blocks as usize],
        vec![KernelArg::scalar(n as u32)],
        false
    );
    both!(
        format!("matmul ({m}x{k} · {k}x{nn} f32)"),
        kernels::MATMUL,
        kernels::matmul_config(m, nn)?,
        &[&ma, &mb],
        &vec![0.0; m * nn],
        vec![
            KernelArg::scalar(m as u32),
            KernelArg::scalar(nn as u32),
            KernelArg::scalar(k as u32)
        ],
        false
    );
    Ok(())
}
