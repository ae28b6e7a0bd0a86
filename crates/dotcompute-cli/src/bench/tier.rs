//! The runtime tiers a benchmark runs on, and what `--tier` accepts.
//!
//! A tier is an [`ExecutionMode`] of the library: where a kernel's handler
//! runs and which queues it uses. The list of tiers in this build comes from
//! [`ExecutionMode::ALL`]; `--tier all` means all of them. Adding a tier is
//! one more variant here plus one more arm in [`Tier::of_mode`] and
//! [`super::kernels::spec`].

use clap::ValueEnum;
use dotcompute::ExecutionMode;
use serde::Serialize;

use crate::CliResult;

/// What `--tier` accepts (comma-separated or repeated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TierArg {
    /// Kernels as tokio tasks, hosts as tokio tasks.
    Async,
    /// Kernels on a dedicated OS thread each (blocking handler, priority queues).
    Thread,
    /// Kernels on a dedicated OS thread each, polling SPSC rings.
    Spin,
    /// Kernels in a separate process (shared-memory rings).
    Process,
    /// Persistent CUDA kernels polling rings in mapped host memory (needs an NVIDIA GPU).
    Gpu,
    /// Ring kernels on wgpu: WGSL handler, state in device memory, batched
    /// dispatches (any Vulkan/Metal/DX12 adapter; lavapipe without a GPU).
    Wgpu,
    /// Every tier of this build (gpu only where a CUDA device is present).
    All,
}

/// A runtime tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Async,
    Thread,
    Spin,
    /// The kernel runs in a child process (this binary, `__ipc-kernel`).
    Process,
    /// The kernel is a persistent CUDA kernel (`gpu::gpu_kernel`).
    Gpu,
    /// The kernel is a wgpu ring kernel (`gpu::wgpu::wgpu_kernel`): its
    /// bridge thread dispatches batches of messages to the device.
    Wgpu,
}

impl Tier {
    /// The tier of an execution mode.
    pub fn of_mode(mode: ExecutionMode) -> Tier {
        match mode {
            ExecutionMode::Async => Tier::Async,
            ExecutionMode::Thread => Tier::Thread,
            ExecutionMode::Spin => Tier::Spin,
            ExecutionMode::Process => Tier::Process,
            ExecutionMode::Gpu => Tier::Gpu,
        }
    }

    /// The execution mode a kernel of this tier is launched with.
    pub fn mode(self) -> CliResult<ExecutionMode> {
        match self {
            Tier::Async => Ok(ExecutionMode::Async),
            Tier::Thread => Ok(ExecutionMode::Thread),
            Tier::Spin => Ok(ExecutionMode::Spin),
            Tier::Process => Ok(ExecutionMode::Process),
            Tier::Gpu => Ok(ExecutionMode::Gpu),
            Tier::Wgpu => Ok(ExecutionMode::Thread),
        }
    }

    /// The tiers of this build, in [`ExecutionMode::ALL`] order.
    pub fn available() -> Vec<Tier> {
        let mut tiers: Vec<Tier> = ExecutionMode::ALL.iter().map(|&m| Tier::of_mode(m)).collect();
        tiers.push(Tier::Wgpu);
        tiers
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Async => "async",
            Tier::Thread => "thread",
            Tier::Spin => "spin",
            Tier::Process => "process",
            Tier::Gpu => "gpu",
            Tier::Wgpu => "wgpu",
        }
    }

    /// One line on what the tier is.
    pub fn describe(self) -> &'static str {
        match self {
            Tier::Async => "async handler as a tokio task; priority queues; messages move as Rust values",
            Tier::Thread => {
                "blocking handler on a dedicated OS thread; priority queues; for blocking or CPU-heavy work"
            }
            Tier::Spin => {
                "blocking handler on a dedicated OS thread polling wait-free SPSC rings (one core per kernel)"
            }
            Tier::Process => "kernel in a separate process over shared-memory rings",
            Tier::Gpu => "persistent CUDA kernel (CUDA C handler) polling rings in host memory mapped into the GPU",
            Tier::Wgpu => {
                "wgpu ring kernel (WGSL handler, state in device memory): batched dispatches, next batch uploaded \
                 during the current one"
            }
        }
    }
}

/// Expands `--tier` values into tiers of this build, in a stable order and
/// without repeats; a tier this build lacks is an error. `all` leaves the
/// gpu tier out (saying why) where no CUDA device can run it; `gpu` named
/// there is an error that says why.
pub fn resolve(args: &[TierArg]) -> CliResult<Vec<Tier>> {
    let wgpu_missing = if args.iter().any(|a| matches!(a, TierArg::All | TierArg::Wgpu)) {
        super::wgpu::unavailable()
    } else {
        None
    };
    resolve_with(args, super::gpu::unavailable(), wgpu_missing)
}

fn resolve_with(args: &[TierArg], gpu_missing: Option<String>, wgpu_missing: Option<String>) -> CliResult<Vec<Tier>> {
    let available = Tier::available();
    let mut wanted = Vec::new();
    for arg in args {
        let tiers = match arg {
            TierArg::All => {
                let mut all = available.clone();
                if let Some(why) = &gpu_missing {
                    eprintln!("gpu tier left out: {why}");
                    all.retain(|t| *t != Tier::Gpu);
                }
                if let Some(why) = &wgpu_missing {
                    eprintln!("wgpu tier left out: {why}");
                    all.retain(|t| *t != Tier::Wgpu);
                }
                all
            }
            TierArg::Wgpu => {
                if let Some(why) = &wgpu_missing {
                    return Err(format!("the wgpu tier needs a wgpu adapter: {why}").into());
                }
                vec![Tier::Wgpu]
            }
            TierArg::Gpu => {
                if let Some(why) = &gpu_missing {
                    return Err(
                        format!("the gpu tier needs an NVIDIA GPU with its CUDA driver and NVRTC: {why}").into(),
                    );
                }
                vec![Tier::Gpu]
            }
            TierArg::Async => vec![Tier::Async],
            TierArg::Thread => vec![Tier::Thread],
            TierArg::Spin => vec![Tier::Spin],
            TierArg::Process => vec![Tier::Process],
        };
        for t in tiers {
            if !available.contains(&t) {
                let names: Vec<&str> = available.iter().map(|t| t.name()).collect();
                return Err(format!(
                    "the {} tier is not in this build yet (tiers in this build: {})",
                    t.name(),
                    names.join(", ")
                )
                .into());
            }
            if !wanted.contains(&t) {
                wanted.push(t);
            }
        }
    }
    wanted.sort_by_key(|t| available.iter().position(|a| a == t));
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_expands_to_the_modes_of_this_build() {
        let all = resolve_with(&[TierArg::All], None, None).unwrap();
        assert_eq!(all.len(), ExecutionMode::ALL.len() + 1, "the modes and the wgpu tier");
        let without_gpu = resolve_with(&[TierArg::All], Some("no driver".into()), None).unwrap();
        assert_eq!(without_gpu.len(), ExecutionMode::ALL.len());
        assert!(!without_gpu.contains(&Tier::Gpu));
        let err = resolve_with(&[TierArg::Gpu], Some("no driver".into()), None).unwrap_err();
        assert!(err.to_string().contains("no driver"), "{err}");
        let without_wgpu = resolve_with(&[TierArg::All], None, Some("no adapter".into())).unwrap();
        assert!(!without_wgpu.contains(&Tier::Wgpu));
        let err = resolve_with(&[TierArg::Wgpu], None, Some("no adapter".into())).unwrap_err();
        assert!(err.to_string().contains("no adapter"), "{err}");
        assert_eq!(
            resolve(&[TierArg::Spin, TierArg::Async, TierArg::Spin]).unwrap(),
            vec![Tier::Async, Tier::Spin]
        );
    }

    #[test]
    fn every_tier_is_in_this_build() {
        assert_eq!(
            resolve(&[TierArg::Process, TierArg::Thread]).unwrap(),
            vec![Tier::Thread, Tier::Process]
        );
        for t in Tier::available() {
            // The wgpu tier's kernels run in Thread mode (their bridge thread).
            if t != Tier::Wgpu {
                assert_eq!(Tier::of_mode(t.mode().unwrap()), t);
            }
        }
    }
}
