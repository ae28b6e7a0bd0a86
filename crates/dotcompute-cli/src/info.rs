//! `dotcompute info`.

use dotcompute::ExecutionMode;

use crate::bench::Tier;
use crate::machine::MachineInfo;
use crate::CliResult;

/// Prints the version, the tiers of this build, the CPU, and the devices
/// with the CUDA driver, NVRTC and NVML status.
pub fn run() -> CliResult<()> {
    let machine = MachineInfo::detect();
    println!("dotcompute {}", dotcompute::VERSION);
    println!("tiers (execution modes in this build):");
    for mode in ExecutionMode::ALL {
        let tier = Tier::of_mode(mode);
        println!("  {:<8} {}", tier.name(), tier.describe());
    }
    let wgpu = Tier::Wgpu;
    println!("  {:<8} {}", wgpu.name(), wgpu.describe());
    println!("cpu cores: {}", machine.cores);
    if let Some(model) = &machine.cpu_model {
        println!("cpu model: {model}");
    }
    println!(
        "os:        {} {}",
        machine.os_release.as_deref().unwrap_or(&machine.os),
        machine.arch
    );
    println!();
    // Devices, and the CUDA driver / NVRTC / NVML availability and versions.
    println!("{}", dotcompute::device::report());
    Ok(())
}
