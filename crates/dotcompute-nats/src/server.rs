//! A `nats-server` process on loopback, for tests, benchmarks and trying
//! things out: a free port, JetStream in a temporary store, killed when
//! dropped.
//!
//! The binary is the one `scripts/provision-nats.sh` installs (Debian's
//! `nats-server`): `$DOTCOMPUTE_NATS_SERVER`, else `nats-server` on `PATH`,
//! else `/usr/sbin/nats-server`.
//!
//! Invariant: a [`LocalServer`] owns its process and its store; dropping it
//! kills the process (SIGKILL) and removes the store. Nothing listens on
//! anything but 127.0.0.1.
//!
//! ```no_run
//! use dotcompute_nats::server::LocalServer;
//!
//! let mut server = LocalServer::start(&[]).unwrap();
//! println!("NATS at {}", server.url());
//! server.restart().unwrap(); // same port, same JetStream store
//! ```

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// No nats-server binary was found.
    #[error("nats-server is not installed (scripts/provision-nats.sh installs Debian's package, or set DOTCOMPUTE_NATS_SERVER)")]
    NotInstalled,
    /// Starting or preparing the process failed.
    #[error("cannot start {binary}: {reason}")]
    Start {
        /// The binary.
        binary: String,
        /// What went wrong.
        reason: String,
    },
    /// The process exited or did not listen in time.
    #[error("{binary} did not come up on port {port}: {reason}")]
    NotReady {
        /// The binary.
        binary: String,
        /// Its port.
        port: u16,
        /// What was seen.
        reason: String,
    },
}

/// The nats-server binary to use, if there is one.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DOTCOMPUTE_NATS_SERVER").map(PathBuf::from) {
        if p.is_file() {
            return Some(p);
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("nats-server");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let p = Path::new("/usr/sbin/nats-server");
    p.is_file().then(|| p.to_path_buf())
}

/// A nats-server process (see the module doc).
#[derive(Debug)]
pub struct LocalServer {
    binary: PathBuf,
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    extra: Vec<String>,
}

impl LocalServer {
    /// Starts a server with JetStream and `extra` arguments (for example
    /// `["--user", "u", "--pass", "p"]`), and waits until it listens.
    pub fn start(extra: &[&str]) -> Result<LocalServer, ServerError> {
        let binary = find_binary().ok_or(ServerError::NotInstalled)?;
        let start_error = |reason: String| ServerError::Start {
            binary: binary.display().to_string(),
            reason,
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| start_error(format!("no free port: {e}")))?
            .port();
        let store = tempfile::tempdir().map_err(|e| start_error(format!("no temporary store: {e}")))?;
        let mut server = LocalServer {
            binary,
            child: None,
            port,
            store,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), ServerError> {
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ServerError::Start {
                binary: self.binary.display().to_string(),
                reason: e.to_string(),
            })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), ServerError> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let not_ready = |reason: String| ServerError::NotReady {
            binary: self.binary.display().to_string(),
            port: self.port,
            reason,
        };
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(not_ready(format!("it exited ({status})")));
                }
            }
            if Instant::now() >= deadline {
                return Err(not_ready("it did not listen within 15 s".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its JetStream store.
    pub fn store(&self) -> &Path {
        self.store.path()
    }

    /// Kills it at once (SIGKILL): clients get no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again on the same port with the same store.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.kill();
    }
}
