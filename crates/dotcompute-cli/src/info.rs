//! `dotcompute info`.

use crate::machine::MachineInfo;
use crate::CliResult;

/// The runtime tiers this build has. Only the async tier (kernels as tokio
/// tasks) exists so far; device tiers will be discovered here later.
pub const TIERS: &[(&str, &str)] = &[("async", "kernels are tokio tasks; messages move as Rust values")];

/// Prints the version, the tiers and the CPU cores.
pub fn run() -> CliResult<()> {
    let machine = MachineInfo::detect();
    println!("dotcompute {}", env!("CARGO_PKG_VERSION"));
    println!("tiers:");
    for (name, what) in TIERS {
        println!("  {name:<8} available  ({what})");
    }
    println!("cpu cores: {}", machine.cores);
    if let Some(model) = &machine.cpu_model {
        println!("cpu model: {model}");
    }
    println!(
        "os:        {} {}",
        machine.os_release.as_deref().unwrap_or(&machine.os),
        machine.arch
    );
    Ok(())
}
