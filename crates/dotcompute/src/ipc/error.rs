//! [`IpcError`]: everything that can go wrong on the process tier.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::message::codec::{DecodeError, EncodeError};

use super::shm::Role;

/// An error of the process tier: the shared-memory region, the rings in it,
/// the peer process, or the codec.
///
/// It is `Send + Sync + 'static`, so a kernel handler can return it (it
/// converts into [`KernelError`](crate::KernelError) with `?` or `.into()`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// A configuration value is out of range.
    #[error("invalid ipc configuration: {parameter} = {value}: {reason}")]
    InvalidConfig {
        /// The parameter.
        parameter: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A system call on the shared-memory file failed.
    #[error("{operation} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "open", "map", ...).
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// No region exists under this name or path.
    #[error("no shared-memory region at {}", path.display())]
    NotFound {
        /// The path looked up.
        path: PathBuf,
    },
    /// Creating a region over a file that a live process still uses, or that
    /// is not a dotcompute region at all (it is never removed then).
    #[error("cannot create {}: {}", path.display(), match pid {
        Some(pid) => format!("a region of live process {pid} is there"),
        None => "a file that is not a complete dotcompute region is there (remove it by hand if it is stale)".to_string(),
    })]
    AlreadyExists {
        /// The file.
        path: PathBuf,
        /// The live creator, when the file is a dotcompute region.
        pid: Option<u32>,
    },
    /// The file is not a region this build can use (open-time validation).
    #[error("{} is not a usable dotcompute region: {reason}", path.display())]
    InvalidRegion {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another process already holds this end of the region.
    #[error("the {role} end of {} is already attached by process {pid}", path.display())]
    AlreadyAttached {
        /// The file.
        path: PathBuf,
        /// The end asked for.
        role: Role,
        /// Its holder.
        pid: u32,
    },
    /// Shared memory holds a value that breaks the ring protocol (an index or
    /// a length out of range, a record tag out of sequence). The ring is
    /// unusable from then on; nothing out of range was ever accessed.
    #[error("shared memory is corrupt: {what}")]
    Corrupt {
        /// What was found.
        what: String,
    },
    /// An encoded message does not fit in the ring, even empty.
    #[error("message of {len} bytes does not fit the ring (at most {max} bytes; raise capacity or slot_size)")]
    MessageTooLarge {
        /// Encoded length.
        len: usize,
        /// Largest payload the ring carries.
        max: usize,
    },
    /// The peer process is gone (found by its exit status, or its pid no
    /// longer running).
    #[error("peer process {pid} died: {detail}")]
    PeerDied {
        /// The peer's pid.
        pid: u32,
        /// How it ended, when known.
        detail: String,
    },
    /// The peer process runs but has not beaten its heartbeat for too long
    /// (stopped, frozen or wedged).
    #[error("peer process {pid} is unresponsive: no heartbeat for {silent_for:?}")]
    PeerUnresponsive {
        /// The peer's pid.
        pid: u32,
        /// Time since its last beat.
        silent_for: Duration,
    },
    /// The peer closed its end cleanly; nothing more will come from it.
    #[error("peer process {pid} closed the channel")]
    PeerClosed {
        /// The peer's pid.
        pid: u32,
    },
    /// The kernel process reported that its handler failed.
    #[error("kernel process {pid} failed: {reason}")]
    KernelFailed {
        /// The kernel process's pid.
        pid: u32,
        /// The handler's error as the kernel process wrote it: control
        /// characters escaped, cut to a bounded length (it comes from
        /// another process and is not trusted).
        reason: String,
    },
    /// The kernel process ended (`cause`) while requests handed to it had
    /// no answer yet: they are lost with it, and counted in the kernel's
    /// telemetry as `messages_lost`.
    #[error("{cause}; {lost} request(s) handed to it were lost")]
    RequestsLost {
        /// Requests handed to the process (or taken from the input queue for
        /// it) and never answered.
        lost: u64,
        /// How the process ended.
        cause: Box<IpcError>,
    },
    /// The host asked the kernel to stop (kernel side), and no message is
    /// left to deliver.
    #[error("the host asked this kernel to terminate")]
    Terminated,
    /// A wait ran out of time.
    #[error("timed out after {waited:?} waiting to {operation}")]
    Timeout {
        /// What was waited for.
        operation: &'static str,
        /// How long.
        waited: Duration,
    },
    /// The kernel process could not be started.
    #[error("cannot start kernel process {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// This process was not started as a process kernel.
    #[error("not started as a process kernel: environment variable {var} is not set")]
    NotAKernelProcess {
        /// The variable looked up.
        var: &'static str,
    },
    /// The kernel-side handler of [`serve`](super::serve) returned an error.
    #[error("kernel handler failed: {0}")]
    Handler(String),
    /// A message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A message could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl IpcError {
    pub(crate) fn io(operation: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        IpcError::Io {
            operation,
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn config(parameter: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        IpcError::InvalidConfig {
            parameter,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        IpcError::Corrupt { what: what.into() }
    }

    /// True for the errors that mean the peer is gone or unusable
    /// ([`PeerDied`](Self::PeerDied), [`PeerUnresponsive`](Self::PeerUnresponsive),
    /// [`PeerClosed`](Self::PeerClosed), [`KernelFailed`](Self::KernelFailed),
    /// [`RequestsLost`](Self::RequestsLost)).
    pub fn is_peer_gone(&self) -> bool {
        matches!(
            self,
            IpcError::PeerDied { .. }
                | IpcError::PeerUnresponsive { .. }
                | IpcError::PeerClosed { .. }
                | IpcError::KernelFailed { .. }
                | IpcError::RequestsLost { .. }
        )
    }
}
