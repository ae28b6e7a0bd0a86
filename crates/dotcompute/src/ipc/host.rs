//! The host side: [`ProcessChannel`], a typed duplex channel to a kernel
//! process that it spawns ([`SpawnCommand`]) or attaches to by name.

use std::ffi::{OsStr, OsString};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::message::{codec, Message};

use super::endpoint::{Endpoint, KernelExit, PeerWatch, WaitPolicy};
use super::error::IpcError;
use super::shm::{self, end_state, Region, RegionConfig, Role, ENV_VAR};
use super::sys;

/// A program to start as a kernel process: program, arguments, extra
/// environment, working directory. The child inherits this process's
/// environment and stdio, plus [`ENV_VAR`] naming its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnCommand {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
}

impl SpawnCommand {
    /// Starts a command for `program` (looked up in `PATH` if it has no `/`).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        SpawnCommand {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            current_dir: None,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// The program.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    fn to_command(&self, region: &Path) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.env(ENV_VAR, region);
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        cmd
    }
}

/// Where a process kernel comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessCommand {
    /// Start this program; the host creates the region and removes it.
    Spawn(SpawnCommand),
    /// Attach to a kernel process that already runs and serves the region
    /// called this (a name, or a path with a `/`; see
    /// [`region_path`](super::region_path)). It created the region and
    /// removes it.
    Attach(String),
}

impl ProcessCommand {
    /// `Spawn(SpawnCommand::new(program))`.
    pub fn spawn(program: impl AsRef<OsStr>) -> Self {
        ProcessCommand::Spawn(SpawnCommand::new(program))
    }

    /// `Attach(name)`.
    pub fn attach(name: impl Into<String>) -> Self {
        ProcessCommand::Attach(name.into())
    }
}

impl From<SpawnCommand> for ProcessCommand {
    fn from(cmd: SpawnCommand) -> Self {
        ProcessCommand::Spawn(cmd)
    }
}

/// Configuration of the host side of a process kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcConfig {
    /// Shape and heartbeat of the region the host creates (spawn only).
    pub region: RegionConfig,
    /// Directory for the regions of spawned kernels (default
    /// [`default_dir`](super::default_dir)).
    pub dir: Option<PathBuf>,
    /// How the host waits.
    pub wait: WaitPolicy,
    /// How long a kernel process may take to attach and mark itself ready.
    /// Default 10 s.
    pub ready_timeout: Duration,
    /// How long a send waits for room in the ring (`None`: as long as the
    /// kernel lives). Default `None`.
    pub send_timeout: Option<Duration>,
    /// After a terminate request, how long the kernel process may take to
    /// exit before it is killed. Default 2 s.
    pub exit_timeout: Duration,
}

impl Default for IpcConfig {
    fn default() -> Self {
        IpcConfig {
            region: RegionConfig::default(),
            dir: None,
            wait: WaitPolicy::default(),
            ready_timeout: Duration::from_secs(10),
            send_timeout: None,
            exit_timeout: Duration::from_secs(2),
        }
    }
}

impl IpcConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), IpcError> {
        self.region.validate()?;
        self.wait.validate()?;
        if self.ready_timeout.is_zero() {
            return Err(IpcError::config("ready_timeout", "0s", "must be positive"));
        }
        Ok(())
    }
}

/// A unique region file for a spawned kernel: kernel tag, our pid, a
/// counter and the clock, so concurrent hosts and kernels never collide.
fn unique_region_path(dir: &Path, tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        "{}{tag}-{}-{}-{nanos:08x}",
        shm::FILE_PREFIX,
        sys::current_pid(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Starts or attaches the kernel process of `command` and waits until it is
/// ready, giving up early when `cancelled()` turns true.
pub(crate) fn connect(
    command: &ProcessCommand,
    config: &IpcConfig,
    tag: &str,
    cancelled: &mut dyn FnMut() -> bool,
) -> Result<Endpoint, IpcError> {
    config.validate()?;
    match command {
        ProcessCommand::Spawn(spawn) => {
            let dir = config.dir.clone().unwrap_or_else(shm::default_dir);
            let path = unique_region_path(&dir, tag);
            let region = Region::create(&path, Role::Host, &config.region)?;
            let child = spawn.to_command(&path).spawn().map_err(|e| IpcError::Spawn {
                program: spawn.program.to_string_lossy().into_owned(),
                source: Arc::new(e),
            })?;
            tracing::debug!(pid = child.id(), region = %path.display(), "spawned kernel process");
            let mut end = Endpoint::new(region, PeerWatch::new(Some(child)), config.wait)?;
            wait_ready(&mut end, config.ready_timeout, cancelled)?;
            Ok(end)
        }
        ProcessCommand::Attach(name) => {
            let path = shm::region_path(name)?;
            let region = Region::open(&path, Role::Host, config.ready_timeout)?;
            let mut end = Endpoint::new(region, PeerWatch::new(None), config.wait)?;
            wait_ready(&mut end, config.ready_timeout, cancelled)?;
            Ok(end)
        }
    }
}

/// Waits for the kernel end to be READY. On failure the endpoint is dropped
/// by the caller, which kills a spawned child.
fn wait_ready(end: &mut Endpoint, timeout: Duration, cancelled: &mut dyn FnMut() -> bool) -> Result<(), IpcError> {
    let start = Instant::now();
    loop {
        if end.region().end_state(Role::Kernel) == end_state::READY {
            end.mark_ready();
            return Ok(());
        }
        match end.check_peer() {
            Ok(()) => {}
            Err(IpcError::PeerDied { pid, detail }) => {
                return Err(IpcError::PeerDied {
                    pid,
                    detail: format!("{detail} before it was ready"),
                })
            }
            Err(IpcError::PeerClosed { pid }) => {
                return Err(IpcError::PeerDied {
                    pid,
                    detail: "closed its end before it was ready".into(),
                })
            }
            Err(e) => return Err(e),
        }
        if cancelled() {
            return Err(IpcError::Terminated);
        }
        if start.elapsed() >= timeout {
            return Err(IpcError::Timeout {
                operation: "for the kernel process to become ready",
                waited: timeout,
            });
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A typed channel to a kernel process: sends `In`, receives `Out`, over the
/// region's two rings with the wire [`codec`].
///
/// Dropping it asks the kernel to stop now and, for a spawned kernel, kills
/// it if it has not exited within 500 ms; [`terminate`](Self::terminate) is
/// the orderly way.
///
/// Sends and receives are independent: a kernel may answer each request
/// with any number of messages. A send waits while the request ring is full;
/// a host that sends without ever receiving can therefore stall once both
/// rings fill (the kernel blocks on its full reply ring): keep receiving, or
/// bound the number of requests in flight.
pub struct ProcessChannel<In, Out> {
    end: Endpoint,
    buf: Vec<u8>,
    send_timeout: Option<Duration>,
    exit_timeout: Duration,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> std::fmt::Debug for ProcessChannel<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessChannel")
            .field("region", self.end.region())
            .finish()
    }
}

impl<In: Message + Serialize, Out: Message + DeserializeOwned> ProcessChannel<In, Out> {
    /// Spawns or attaches per `command` and waits until the kernel is ready.
    ///
    /// # Errors
    ///
    /// [`IpcError::Spawn`], [`IpcError::PeerDied`] (it died before it was
    /// ready), [`IpcError::Timeout`] (not ready in `ready_timeout`), or a
    /// region error.
    pub fn connect(command: &ProcessCommand, config: &IpcConfig) -> Result<Self, IpcError> {
        let end = connect(command, config, "channel", &mut || false)?;
        Ok(ProcessChannel {
            end,
            buf: Vec::with_capacity(256),
            send_timeout: config.send_timeout,
            exit_timeout: config.exit_timeout,
            _types: PhantomData,
        })
    }

    /// Spawns `command` as the kernel process.
    pub fn spawn(command: SpawnCommand, config: &IpcConfig) -> Result<Self, IpcError> {
        Self::connect(&ProcessCommand::Spawn(command), config)
    }

    /// Attaches to the kernel process serving the region `name`.
    pub fn attach(name: &str, config: &IpcConfig) -> Result<Self, IpcError> {
        Self::connect(&ProcessCommand::Attach(name.to_owned()), config)
    }

    /// Sends `msg`, waiting for room up to the configured `send_timeout`.
    ///
    /// # Errors
    ///
    /// [`IpcError::Encode`], [`IpcError::MessageTooLarge`], a peer-gone
    /// error, [`IpcError::Timeout`], or [`IpcError::Corrupt`].
    pub fn send(&mut self, msg: &In) -> Result<(), IpcError> {
        self.buf.clear();
        codec::encode_into(msg, &mut self.buf)?;
        let deadline = self.send_timeout.map(|t| Instant::now() + t);
        self.end.send(&self.buf, deadline)
    }

    /// Sends `msg` if there is room now; `Ok(false)` if the ring is full.
    pub fn try_send(&mut self, msg: &In) -> Result<bool, IpcError> {
        self.buf.clear();
        codec::encode_into(msg, &mut self.buf)?;
        self.end.try_send(&self.buf)
    }

    /// Waits for the next message, as long as the kernel lives.
    ///
    /// # Errors
    ///
    /// A peer-gone error once the kernel is gone and everything it sent
    /// has been received; [`IpcError::Decode`]; [`IpcError::Corrupt`].
    pub fn recv(&mut self) -> Result<Out, IpcError> {
        self.end.recv(&mut self.buf, None)?;
        Ok(codec::decode(&self.buf)?)
    }

    /// Waits at most `timeout`; `Ok(None)` if nothing came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Out>, IpcError> {
        if self.end.recv(&mut self.buf, Some(Instant::now() + timeout))? {
            Ok(Some(codec::decode(&self.buf)?))
        } else {
            Ok(None)
        }
    }

    /// Takes a message if one is there; never waits.
    pub fn try_recv(&mut self) -> Result<Option<Out>, IpcError> {
        if self.end.try_recv_raw(&mut self.buf)? {
            return Ok(Some(codec::decode(&self.buf)?));
        }
        self.end.maybe_check_peer()?;
        Ok(None)
    }

    /// Sends `msg` and waits for the next message (for kernels that answer
    /// each request with exactly one reply, with nothing else in flight).
    pub fn call(&mut self, msg: &In) -> Result<Out, IpcError> {
        self.send(msg)?;
        self.recv()
    }

    /// Checks the kernel process now.
    ///
    /// # Errors
    ///
    /// The peer-gone error, if it is gone.
    pub fn check_peer(&mut self) -> Result<(), IpcError> {
        self.end.check_peer()
    }

    /// The kernel process's pid.
    pub fn peer_pid(&mut self) -> u32 {
        self.end.peer_pid()
    }

    /// The region file.
    pub fn region_path(&self) -> &Path {
        self.end.region().path()
    }

    /// Largest encoded message the rings carry.
    pub fn max_message(&self) -> usize {
        self.end.region().max_message()
    }

    /// Asks the kernel to stop and waits up to the configured `exit_timeout`
    /// for it to exit (then kills a spawned one). With `drain`, the kernel
    /// first handles every request already sent; the replies it still sends
    /// are returned, in order.
    pub fn terminate(mut self, drain: bool) -> (KernelExit, Vec<Out>) {
        self.end.request_terminate(drain);
        let mut rest = Vec::new();
        let mut buf = Vec::new();
        let exit = self.end.wait_exit(self.exit_timeout, &mut buf, |bytes| {
            if let Ok(m) = codec::decode::<Out>(bytes) {
                rest.push(m);
            }
            true
        });
        (exit, rest)
    }
}
