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

/// CPU time counters of the machine and of this process, in clock ticks.
#[derive(Debug, Clone, Copy)]
struct CpuSnapshot {
    /// All CPUs' ticks, busy or idle.
    total: u64,
    /// All CPUs' busy ticks (everything but idle and iowait).
    busy: u64,
    /// This process's user + system ticks (all its threads).
    own: u64,
}

impl CpuSnapshot {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .take(8)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let total: u64 = cpu.iter().sum();
        let idle = cpu.get(3)? + cpu.get(4)?;
        // Fields after the parenthesised command name: state is field 3,
        // utime and stime are fields 14 and 15.
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let after = own_stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let own = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(CpuSnapshot {
            total,
            busy: total - idle,
            own,
        })
    }
}

fn loadavg_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How busy the machine was with other work while something was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Noise {
    pub elapsed_secs: f64,
    /// CPU time used by other processes, as a share of the whole machine
    /// (100 = every core busy with other work the whole time).
    pub other_cpu_pct: f64,
    /// CPU time used by this process, as a share of the whole machine.
    pub own_cpu_pct: f64,
    pub loadavg_1m_start: Option<f64>,
    pub loadavg_1m_end: Option<f64>,
}

impl Noise {
    /// `others 12% · us 85% · load 0.4 → 1.9`.
    pub fn one_line(&self) -> String {
        let load = match (self.loadavg_1m_start, self.loadavg_1m_end) {
            (Some(a), Some(b)) => format!(" · load average {a:.2} → {b:.2}"),
            _ => String::new(),
        };
        format!(
            "other processes used {:.0}% of the machine's CPU time, this run {:.0}%{load}",
            self.other_cpu_pct, self.own_cpu_pct
        )
    }
}

/// Measures [`Noise`] between `start` and `finish` (Linux; `None` elsewhere).
#[derive(Debug, Clone)]
pub struct CpuMeter {
    start: Option<CpuSnapshot>,
    load: Option<f64>,
    t0: std::time::Instant,
}

impl CpuMeter {
    pub fn start() -> Self {
        CpuMeter {
            start: CpuSnapshot::read(),
            load: loadavg_1m(),
            t0: std::time::Instant::now(),
        }
    }

    pub fn finish(&self) -> Option<Noise> {
        let a = self.start?;
        let b = CpuSnapshot::read()?;
        let total = b.total.saturating_sub(a.total).max(1) as f64;
        let busy = b.busy.saturating_sub(a.busy) as f64;
        let own = b.own.saturating_sub(a.own) as f64;
        Some(Noise {
            elapsed_secs: self.t0.elapsed().as_secs_f64(),
            other_cpu_pct: (100.0 * (busy - own) / total).clamp(0.0, 100.0),
            own_cpu_pct: (100.0 * own / total).clamp(0.0, 100.0),
            loadavg_1m_start: self.load,
            loadavg_1m_end: loadavg_1m(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_sees_this_process_working() {
        let meter = CpuMeter::start();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        if let Some(n) = meter.finish() {
            assert!(n.elapsed_secs >= 0.06);
            assert!((0.0..=100.0).contains(&n.other_cpu_pct), "{n:?}");
            assert!((0.0..=100.0).contains(&n.own_cpu_pct), "{n:?}");
        }
    }
}
