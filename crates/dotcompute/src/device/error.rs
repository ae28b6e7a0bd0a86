//! The device layer's error type.
//!
//! Invariant: every failure reachable through the device API (discovery,
//! memory, transfers, launches, compilation, caching, monitoring) is one
//! variant of [`DeviceError`] carrying enough context to act on; nothing in
//! this layer panics or aborts on a user-reachable path, and a missing CUDA
//! driver, NVRTC or NVML is [`DeviceError::Unavailable`], never a panic.

use std::path::PathBuf;

use super::unified::BufferState;

/// Errors from devices, backends, buffers, pools, compilation and monitoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// A device index outside the discovered range.
    #[error("device {index} not found: {count} device(s) available (valid ids: 0..{count})")]
    DeviceNotFound {
        /// The index asked for.
        index: usize,
        /// How many devices exist.
        count: usize,
    },
    /// A library or facility is not present on this machine (no CUDA driver,
    /// no NVRTC, no NVML, no ptxas).
    #[error("{what} is not available: {reason}")]
    Unavailable {
        /// What is missing, e.g. "CUDA driver".
        what: &'static str,
        /// Why, in words.
        reason: String,
    },
    /// An allocation would exceed a limit (a pool's maximum, a backend's
    /// memory limit) or the allocator refused it.
    #[error("out of memory: {requested} bytes requested, {in_use} of {limit} bytes in use ({context})")]
    OutOfMemory {
        /// Bytes asked for.
        requested: usize,
        /// Bytes already in use where the limit applies.
        in_use: usize,
        /// The limit in bytes (`usize::MAX` when the allocator itself failed).
        limit: usize,
        /// Which allocator refused.
        context: String,
    },
    /// Two sizes that must agree do not (buffer lengths, copy ranges).
    #[error("size mismatch in {context}: expected {expected}, got {actual}")]
    SizeMismatch {
        /// The operation.
        context: &'static str,
        /// The size required.
        expected: usize,
        /// The size given.
        actual: usize,
    },
    /// A byte range falls outside an allocation.
    #[error("range {offset}..{offset}+{len} is outside an allocation of {size} bytes ({context})")]
    OutOfRange {
        /// The operation.
        context: &'static str,
        /// Start of the range in bytes.
        offset: usize,
        /// Length of the range in bytes.
        len: usize,
        /// Size of the allocation in bytes.
        size: usize,
    },
    /// A launch configuration the device cannot run.
    #[error("invalid launch configuration: {0}")]
    InvalidLaunch(String),
    /// A kernel argument of the wrong kind, type or count.
    #[error("kernel '{kernel}' argument {index}: {reason}")]
    KernelArgument {
        /// The kernel.
        kernel: String,
        /// The argument's position.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A kernel faulted while running (a CPU kernel panicked or stored out of
    /// bounds; a CUDA launch failed).
    #[error("kernel '{kernel}' faulted: {reason}")]
    KernelFault {
        /// The kernel.
        kernel: String,
        /// What happened.
        reason: String,
    },
    /// Compilation failed; `log` is the compiler's own log.
    #[error("kernel '{name}' failed to compile with {compiler}: {status}\n{log}")]
    Compile {
        /// The program's name.
        name: String,
        /// "NVRTC" or "ptxas".
        compiler: &'static str,
        /// The compiler's status code, in words.
        status: String,
        /// The compiler's log.
        log: String,
    },
    /// A module does not contain the requested kernel entry point.
    #[error("kernel entry '{entry}' not found in module '{module}'")]
    EntryNotFound {
        /// The module's name.
        module: String,
        /// The missing entry point.
        entry: String,
    },
    /// An operation the buffer's state does not allow, or that would lose data.
    #[error("unified buffer: cannot {operation} in state {state}: {reason}")]
    InvalidState {
        /// The buffer's state.
        state: BufferState,
        /// The operation refused.
        operation: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The CUDA driver returned an error.
    #[error("CUDA driver error in {operation}: {message}")]
    Driver {
        /// The operation.
        operation: &'static str,
        /// The driver's error name and text.
        message: String,
    },
    /// NVML returned an error.
    #[error("NVML error in {operation}: {message}")]
    Nvml {
        /// The operation.
        operation: &'static str,
        /// NVML's error text.
        message: String,
    },
    /// A file-system operation of the kernel cache failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {parameter} = {value}: {reason}")]
    InvalidConfiguration {
        /// The parameter.
        parameter: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The orchestrator has no kernel by that name.
    #[error("kernel '{name}' is not registered; registered: [{}]", known.join(", "))]
    KernelNotRegistered {
        /// The name asked for.
        name: String,
        /// The names that are registered.
        known: Vec<String>,
    },
    /// A kernel with this name is already registered.
    #[error("kernel '{0}' is already registered")]
    KernelAlreadyRegistered(String),
    /// A WGSL shader failed to parse or validate (naga); `line` and `column`
    /// (1-based) point at the offending code when naga knows where it is.
    #[error("shader '{name}' failed to compile{}: {message}", location_suffix(*line, *column))]
    Shader {
        /// The shader's name.
        name: String,
        /// 1-based line of the error, if known.
        line: Option<u32>,
        /// 1-based column (in bytes) of the error, if known.
        column: Option<u32>,
        /// naga's message, with the source excerpt it points at.
        message: String,
    },
    /// wgpu reported an error (validation or internal) for an operation.
    #[error("wgpu error in {operation}: {message}")]
    Wgpu {
        /// The operation.
        operation: &'static str,
        /// wgpu's description.
        message: String,
    },
    /// The device was lost (driver reset, removal, or destroyed); nothing
    /// more can run on it.
    #[error("device '{device}' was lost: {reason}")]
    DeviceLost {
        /// The device's name.
        device: String,
        /// Why, as the driver reported it.
        reason: String,
    },
}

fn location_suffix(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

impl DeviceError {
    pub(crate) fn invalid(parameter: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        DeviceError::InvalidConfiguration {
            parameter,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    #[cfg_attr(not(feature = "compiler"), allow(dead_code))]
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DeviceError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the device API.
pub type DeviceResult<T, E = DeviceError> = std::result::Result<T, E>;

/// Checks that `offset..offset + len` lies within `size` bytes.
pub(crate) fn check_range(context: &'static str, offset: usize, len: usize, size: usize) -> DeviceResult<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(DeviceError::OutOfRange {
            context,
            offset,
            len,
            size,
        }),
    }
}
