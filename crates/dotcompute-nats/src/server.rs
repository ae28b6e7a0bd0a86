//! A `nats-server` process on loopback, for tests, benchmarks and trying
//! things out: a port the server picks itself, JetStream in a temporary
//! store, killed when dropped.
//!
//! The binary is the one `scripts/provision-nats.sh` installs (Debian's
//! `nats-server`): `$DOTCOMPUTE_NATS_SERVER`, else `nats-server` on `PATH`,
//! else `/usr/sbin/nats-server`.
//!
//! Invariant: a [`LocalServer`] owns its process and its store; dropping it
//! kills the process (SIGKILL) and removes the store. Nothing listens on
//! anything but 127.0.0.1. Its URL is the port its own process listens on:
//! the server picks a free one and writes it in a ports file (a port chosen
//! here and handed over could be taken by another server started at the
//! same moment, whose readiness would then pass for this one's); a restart
//! asks for the same port again.
//!
//! ```no_run
//! use dotcompute_nats::server::LocalServer;
//!
//! let mut server = LocalServer::start(&[]).unwrap();
//! println!("NATS at {}", server.url());
//! server.restart().unwrap(); // same port, same JetStream store
//! ```

use std::net::TcpStream;
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
        /// Its port (0 when it had not said which yet).
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
    /// 0 until the first start has read it from the ports file.
    port: u16,
    store: tempfile::TempDir,
    /// Where the server writes its ports file (nothing else lives there).
    ports_dir: tempfile::TempDir,
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
        let store = tempfile::tempdir().map_err(|e| start_error(format!("no temporary store: {e}")))?;
        let ports_dir = tempfile::tempdir().map_err(|e| start_error(format!("no temporary directory: {e}")))?;
        let mut server = LocalServer {
            binary,
            child: None,
            port: 0,
            store,
            ports_dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), ServerError> {
        // A ports file left by the previous process is not this one's.
        if let Ok(entries) = std::fs::read_dir(self.ports_dir.path()) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        // -1: the server picks a free port; a restart asks for the same one.
        let port = if self.port == 0 {
            "-1".to_string()
        } else {
            self.port.to_string()
        };
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &port, "--ports_file_dir"])
            .arg(self.ports_dir.path())
            .args(["-js", "-sd"])
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
        let binary = self.binary.display().to_string();
        let not_ready = |port: u16, reason: String| ServerError::NotReady {
            binary: binary.clone(),
            port,
            reason,
        };
        loop {
            // The server writes its ports file once it listens.
            if let Some(port) = read_ports_file(self.ports_dir.path()) {
                if self.port == 0 || self.port == port {
                    self.port = port;
                    if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                        return Ok(());
                    }
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(not_ready(self.port, format!("it exited ({status})")));
                }
            }
            if Instant::now() >= deadline {
                return Err(not_ready(self.port, "it did not listen within 15 s".into()));
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

/// The client port in the ports file nats-server wrote in `dir`
/// (`{"nats": ["nats://127.0.0.1:PORT"], ...}`), if there is one yet.
fn read_ports_file(dir: &Path) -> Option<u16> {
    let file = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "ports"))?;
    let text = std::fs::read_to_string(file.path()).ok()?;
    client_port(&text)
}

/// The port of the first client URL of a ports file's text.
fn client_port(ports_file: &str) -> Option<u16> {
    let v: serde_json::Value = serde_json::from_str(ports_file).ok()?;
    let url = v.get("nats")?.as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::client_port;

    #[test]
    fn the_client_port_is_read_from_a_ports_file() {
        // What nats-server 2.9 writes.
        let text = r#"{"nats":["nats://127.0.0.1:41234"],"monitoring":["http://127.0.0.1:8222"]}"#;
        assert_eq!(client_port(text), Some(41234));
        assert_eq!(client_port(r#"{"nats":[]}"#), None);
        assert_eq!(client_port("{\"na"), None);
        assert_eq!(client_port(r#"{"nats":["nats://127.0.0.1:notaport"]}"#), None);
    }
}
