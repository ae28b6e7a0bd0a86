//! What the machine is, for reports.

use serde::Serialize;

/// The machine a report was made on.
#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    /// CPU model name from `/proc/cpuinfo`, when readable.
    pub cpu_model: Option<String>,
    /// CPU cores available to this process.
    pub cores: usize,
    /// Operating system family (`linux`, `macos`, ...).
    pub os: String,
    /// Distribution name from `/etc/os-release`, when readable.
    pub os_release: Option<String>,
    /// Kernel release from `/proc/sys/kernel/osrelease`, when readable.
    pub kernel_release: Option<String>,
    /// CPU architecture.
    pub arch: String,
}

impl MachineInfo {
    /// Reads what it can; missing files give `None`, never an error.
    pub fn detect() -> Self {
        MachineInfo {
            cpu_model: cpu_model(),
            cores: cores(),
            os: std::env::consts::OS.to_string(),
            os_release: os_release(),
            kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            arch: std::env::consts::ARCH.to_string(),
        }
    }

    /// One line, for the top of a report.
    pub fn one_line(&self) -> String {
        let os = self.os_release.clone().unwrap_or_else(|| self.os.clone());
        format!(
            "{} · {} cores · {} {}",
            self.cpu_model.as_deref().unwrap_or("unknown CPU"),
            self.cores,
            os,
            self.arch
        )
    }
}

/// CPU cores available to this process (1 if unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| {
            let k = k.trim();
            k == "model name" || k == "Model" || k == "cpu model"
        })
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn os_release() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}
