//! The kernel-process side: [`IpcContext`] (loop style) and [`serve`]
//! (one reply per request).

use std::marker::PhantomData;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::message::{codec, Message};

use super::endpoint::{Endpoint, PeerWatch, WaitPolicy};
use super::error::IpcError;
use super::shm::{self, Region, RegionConfig, Role, ENV_VAR};

/// How long a kernel process waits for its host to finish creating the region.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The kernel process's view of its channel: receives `In`, sends `Out`.
///
/// ```no_run
/// use dotcompute::ipc::{IpcContext, IpcError};
/// use dotcompute::{Message, MessageHeader};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, Message)]
/// struct Job { n: u64, header: MessageHeader }
///
/// fn main() -> Result<(), IpcError> {
///     // Started by the runtime (or a ProcessChannel) with DOTCOMPUTE_IPC set.
///     let mut ctx = IpcContext::<Job, Job>::from_env()?;
///     loop {
///         let job = match ctx.receive() {
///             Ok(job) => job,
///             Err(IpcError::Terminated) => return Ok(()), // the host asked us to stop
///             Err(e) => return Err(e),
///         };
///         let n = (0..job.n).sum();
///         ctx.send(&job.reply(Job { n, header: MessageHeader::new() }))?;
///     }
/// }
/// ```
///
/// Dropping it closes the kernel's end: the host sees
/// [`IpcError::PeerClosed`] after the last message sent.
pub struct IpcContext<In, Out> {
    end: Endpoint,
    buf: Vec<u8>,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> std::fmt::Debug for IpcContext<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpcContext").field("region", self.end.region()).finish()
    }
}

impl<In: Message + DeserializeOwned, Out: Message + Serialize> IpcContext<In, Out> {
    /// Attaches to the region named by the [`ENV_VAR`] environment variable
    /// (set by the host that spawned this process) and marks the kernel ready.
    ///
    /// # Errors
    ///
    /// [`IpcError::NotAKernelProcess`] if the variable is unset, or a region
    /// error.
    pub fn from_env() -> Result<Self, IpcError> {
        Self::from_env_with(WaitPolicy::default())
    }

    /// [`from_env`](Self::from_env) with an explicit wait policy.
    pub fn from_env_with(policy: WaitPolicy) -> Result<Self, IpcError> {
        let path = std::env::var_os(ENV_VAR).ok_or(IpcError::NotAKernelProcess { var: ENV_VAR })?;
        Self::attach_path(Path::new(&path), policy)
    }

    /// Attaches to the region `name` (a name or a path, see
    /// [`region_path`](super::region_path)) that a host created.
    pub fn attach(name: &str, policy: WaitPolicy) -> Result<Self, IpcError> {
        Self::attach_path(&shm::region_path(name)?, policy)
    }

    fn attach_path(path: &Path, policy: WaitPolicy) -> Result<Self, IpcError> {
        let region = Region::open(path, Role::Kernel, OPEN_TIMEOUT)?;
        let end = Endpoint::new(region, PeerWatch::new(None), policy)?;
        end.mark_ready();
        Ok(IpcContext {
            end,
            buf: Vec::with_capacity(256),
            _types: PhantomData,
        })
    }

    /// Creates the region `name` and serves it, for hosts that attach by
    /// name ([`ProcessCommand::Attach`](super::ProcessCommand::Attach)). The
    /// region is removed when the context is dropped. Receives wait until a
    /// host has attached and sent something.
    ///
    /// # Errors
    ///
    /// [`IpcError::AlreadyExists`] if a live region has this name, or a
    /// region error.
    pub fn create(name: &str, config: &RegionConfig, policy: WaitPolicy) -> Result<Self, IpcError> {
        let region = Region::create(shm::region_path(name)?, Role::Kernel, config)?;
        let end = Endpoint::new(region, PeerWatch::new(None), policy)?;
        end.mark_ready();
        Ok(IpcContext {
            end,
            buf: Vec::with_capacity(256),
            _types: PhantomData,
        })
    }

    /// Waits for the next message.
    ///
    /// # Errors
    ///
    /// [`IpcError::Terminated`] once the host asked this kernel to stop (after
    /// the messages already sent, if it asked to drain); a peer-gone error if
    /// the host died or closed; [`IpcError::Decode`] for a message of another
    /// type; [`IpcError::Corrupt`].
    pub fn receive(&mut self) -> Result<In, IpcError> {
        self.end.recv(&mut self.buf, None)?;
        Ok(codec::decode(&self.buf)?)
    }

    /// Waits at most `timeout`; `Ok(None)` if nothing came.
    pub fn receive_timeout(&mut self, timeout: Duration) -> Result<Option<In>, IpcError> {
        if self.end.recv(&mut self.buf, Some(Instant::now() + timeout))? {
            Ok(Some(codec::decode(&self.buf)?))
        } else {
            Ok(None)
        }
    }

    /// Takes a message if one is there; never waits.
    pub fn try_receive(&mut self) -> Result<Option<In>, IpcError> {
        self.receive_timeout(Duration::ZERO)
    }

    /// Sends `msg` to the host, waiting for room as long as the host lives.
    ///
    /// # Errors
    ///
    /// [`IpcError::Encode`], [`IpcError::MessageTooLarge`], a peer-gone error,
    /// [`IpcError::Terminated`] if the ring is full and the host asked to stop
    /// now, or [`IpcError::Corrupt`].
    pub fn send(&mut self, msg: &Out) -> Result<(), IpcError> {
        self.buf.clear();
        codec::encode_into(msg, &mut self.buf)?;
        self.end.send(&self.buf, None)
    }

    /// Whether the host asked this kernel to stop.
    pub fn should_terminate(&self) -> bool {
        self.end.terminate_request() != shm::terminate::NONE
    }

    /// The host's pid (0 while no host is attached).
    pub fn host_pid(&mut self) -> u32 {
        self.end.peer_pid()
    }

    /// The region file.
    pub fn region_path(&self) -> &Path {
        self.end.region().path()
    }

    /// Reports a failure to the host (which fails the kernel with `reason`)
    /// and closes the kernel's end.
    pub fn fail(self, reason: &str) {
        self.end.fail(reason);
    }

    /// Closes the kernel's end cleanly (as dropping does).
    pub fn close(self) {
        self.end.close();
    }

    /// Runs `handler` on every message until the host asks to stop, sending
    /// each result back; see [`serve`].
    ///
    /// # Errors
    ///
    /// As [`serve`].
    pub fn serve<E, F>(mut self, mut handler: F) -> Result<(), IpcError>
    where
        F: FnMut(In) -> Result<Out, E>,
        E: std::fmt::Display,
    {
        loop {
            let msg = match self.receive() {
                Ok(m) => m,
                // Asked to stop, or the host closed its end: nobody will
                // send again, a clean end.
                Err(IpcError::Terminated | IpcError::PeerClosed { .. }) => {
                    self.close();
                    return Ok(());
                }
                Err(e) if e.is_peer_gone() => return Err(e),
                Err(e) => {
                    self.end.fail(&e.to_string());
                    return Err(e);
                }
            };
            let request_id = msg.message_id();
            match handler(msg) {
                Ok(mut out) => {
                    if out.correlation_id().is_none() {
                        out.header_mut().correlation_id = Some(request_id);
                    }
                    match self.send(&out) {
                        Ok(()) => {}
                        Err(IpcError::Terminated) => {
                            self.close();
                            return Ok(());
                        }
                        Err(e) if e.is_peer_gone() => return Err(e),
                        Err(e) => {
                            self.end.fail(&e.to_string());
                            return Err(e);
                        }
                    }
                }
                Err(e) => {
                    let reason = e.to_string();
                    self.end.fail(&reason);
                    return Err(IpcError::Handler(reason));
                }
            }
        }
    }
}

/// The body of a kernel process: attaches through [`ENV_VAR`], then answers
/// every `In` with `handler`'s `Out` until the host asks it to stop.
///
/// Each reply whose correlation id is unset gets the request's message id,
/// so the host's `call` finds it. If `handler` fails, the failure text goes
/// to the host (the kernel moves to `Failed` with it) and `serve` returns
/// [`IpcError::Handler`]; a message that cannot be decoded does the same with
/// the decode error. Returns `Ok(())` when the host asked to stop or closed
/// its end.
///
/// ```no_run
/// use dotcompute::{Message, MessageHeader};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, Message)]
/// struct Req { values: Vec<f64>, header: MessageHeader }
/// #[derive(Debug, Serialize, Deserialize, Message)]
/// struct Resp { sum: f64, header: MessageHeader }
///
/// fn main() -> Result<(), dotcompute::ipc::IpcError> {
///     dotcompute::ipc::serve(|req: Req| {
///         Ok::<_, std::convert::Infallible>(Resp { sum: req.values.iter().sum(), header: MessageHeader::new() })
///     })
/// }
/// ```
///
/// # Errors
///
/// [`IpcError::NotAKernelProcess`] if not started as a process kernel,
/// [`IpcError::Handler`], a peer-gone error if the host went away, or a
/// codec or ring error.
pub fn serve<In, Out, E, F>(handler: F) -> Result<(), IpcError>
where
    In: Message + DeserializeOwned,
    Out: Message + Serialize,
    F: FnMut(In) -> Result<Out, E>,
    E: std::fmt::Display,
{
    IpcContext::<In, Out>::from_env()?.serve(handler)
}
