//! Assembling PTX into a cubin with NVIDIA's `ptxas`, run as a separate
//! program.
//!
//! `ptxas` is found through `DOTCOMPUTE_PTXAS` (set by
//! `scripts/provision-cuda.sh`), then `$CUDA_HOME/bin/ptxas`, then `PATH`.
//!
//! Invariant: an assembly either returns the cubin ptxas wrote or an error
//! carrying ptxas's own output; the PTX and cubin live in a private temporary
//! folder removed afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::device::error::{DeviceError, DeviceResult};

/// Environment variable naming the ptxas executable.
pub const PTXAS_ENV: &str = "DOTCOMPUTE_PTXAS";

/// A located `ptxas`.
#[derive(Debug, Clone)]
pub struct Ptxas {
    path: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Ptxas {
    /// Finds ptxas (see the module docs), or says why it is unavailable.
    pub fn locate() -> DeviceResult<Self> {
        if let Some(p) = std::env::var_os(PTXAS_ENV) {
            let path = PathBuf::from(p);
            return if path.is_file() {
                Ok(Ptxas { path })
            } else {
                Err(DeviceError::Unavailable {
                    what: "ptxas",
                    reason: format!("{PTXAS_ENV}={} is not a file", path.display()),
                })
            };
        }
        for var in ["CUDA_HOME", "CUDA_PATH"] {
            if let Some(home) = std::env::var_os(var) {
                let p = Path::new(&home).join("bin").join("ptxas");
                if p.is_file() {
                    return Ok(Ptxas { path: p });
                }
            }
        }
        on_path("ptxas")
            .map(|path| Ptxas { path })
            .ok_or_else(|| DeviceError::Unavailable {
                what: "ptxas",
                reason: format!(
                    "ptxas not found ({PTXAS_ENV} unset, not in $CUDA_HOME/bin or PATH); run scripts/provision-cuda.sh"
                ),
            })
    }

    /// The executable's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The release line of `ptxas --version`, e.g. "Cuda compilation tools, release 12.9, V12.9.86".
    pub fn version(&self) -> DeviceResult<String> {
        let out = Command::new(&self.path)
            .arg("--version")
            .output()
            .map_err(|e| DeviceError::io(&self.path, e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .find(|l| l.contains("release"))
            .unwrap_or_else(|| text.lines().next().unwrap_or(""))
            .trim()
            .to_string())
    }

    /// Assembles `ptx` for `arch` (e.g. "sm_80") and returns the cubin.
    pub fn assemble(&self, name: &str, ptx: &str, arch: &str) -> DeviceResult<Vec<u8>> {
        if !arch.starts_with("sm_") || !arch[3..].chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(DeviceError::invalid(
                "arch",
                arch,
                "ptxas needs a real architecture such as sm_80",
            ));
        }
        let dir = tempfile::tempdir().map_err(|e| DeviceError::io(std::env::temp_dir(), e))?;
        let input = dir.path().join("kernel.ptx");
        let output = dir.path().join("kernel.cubin");
        std::fs::write(&input, ptx).map_err(|e| DeviceError::io(&input, e))?;
        let out = Command::new(&self.path)
            .arg(format!("-arch={arch}"))
            .arg("-o")
            .arg(&output)
            .arg(&input)
            .output()
            .map_err(|e| DeviceError::io(&self.path, e))?;
        if !out.status.success() {
            let mut log = String::from_utf8_lossy(&out.stderr).into_owned();
            log.push_str(&String::from_utf8_lossy(&out.stdout));
            return Err(DeviceError::Compile {
                name: name.to_string(),
                compiler: "ptxas",
                status: format!("{} for {arch}", out.status),
                log,
            });
        }
        std::fs::read(&output).map_err(|e| DeviceError::io(&output, e))
    }
}
