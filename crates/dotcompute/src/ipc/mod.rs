//! The process tier: ring kernels whose handler runs in another OS process,
//! connected by single-producer / single-consumer rings in a shared-memory
//! file.
//!
//! (PyDotCompute's "multi-process" tier could not cross a process at all;
//! this one does, and treats the other process as untrusted.)
//!
//! # Pieces
//!
//! - [`shm`]: the region file (`/dev/shm/dotcompute-<name>`, mode 0600,
//!   created with `O_EXCL`, removed by its creator, stale leftovers of dead
//!   creators replaced), its header and layout.
//! - [`byte_ring`]: the SPSC ring of fixed-size slots carrying
//!   length-prefixed records, with the in-process ring's protocol and
//!   control-block layout, validated on every read, with futex waits.
//! - [`ProcessChannel`] (host side) and [`IpcContext`] / [`serve`] (kernel
//!   side): typed channels using the wire [`codec`](crate::codec).
//! - [`process_kernel()`]: a [`KernelSpec`](crate::KernelSpec) for the
//!   runtime, built from the public builder with a blocking handler that
//!   spawns the process and pumps messages; a plain host thread blocked on
//!   the kernel (`send_blocking`, `receive_blocking`, `call_blocking`)
//!   pumps its own instead of waking that handler's thread (`relay`).
//!
//! # Example: the two halves
//!
//! ```no_run
//! use dotcompute::ipc::{self, IpcConfig, ProcessChannel, SpawnCommand};
//! use dotcompute::{Message, MessageHeader};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize, Message)]
//! struct Ping { n: u64, header: MessageHeader }
//!
//! # fn main() -> Result<(), ipc::IpcError> {
//! if std::env::var_os(ipc::ENV_VAR).is_some() {
//!     // Kernel process: answer each Ping until the host says stop.
//!     return ipc::serve(|p: Ping| Ok::<_, std::convert::Infallible>(Ping { n: p.n + 1, header: MessageHeader::new() }));
//! }
//! // Host: start this same program as the kernel process.
//! let exe = std::env::current_exe().unwrap();
//! let mut chan = ProcessChannel::<Ping, Ping>::spawn(SpawnCommand::new(exe), &IpcConfig::default())?;
//! let pong = chan.call(&Ping { n: 1, header: MessageHeader::new() })?;
//! assert_eq!(pong.n, 2);
//! let (exit, _) = chan.terminate(true);
//! assert!(exit.clean);
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - Nothing read from shared memory is trusted: indices, lengths, tags and
//!   header fields are range-checked before use and out-of-range values give
//!   [`IpcError::Corrupt`] / [`IpcError::InvalidRegion`]; all shared words
//!   are accessed atomically, so a peer writing concurrently (or dying
//!   mid-write) cannot cause undefined behaviour. A record becomes visible
//!   only with the single `tail` store that publishes it whole. The one
//!   documented exception: a same-user process that shrinks the file makes
//!   accesses fault (`SIGBUS`).
//! - No wait hangs: a peer that exits (on Linux, where its exit is watched
//!   through a pidfd), closes or fails wakes the waits at once, and every
//!   wait wakes at least every [`WaitPolicy::check_interval`] (100 ms) to
//!   check the peer (exit status, state word, pid, heartbeat), the
//!   terminate request and its deadline.
//! - A spawned kernel process never outlives its channel: dropping the host
//!   side asks it to stop and kills it after a grace period.
//!
//! Unix only (memory mapping, futexes on Linux, sleeps elsewhere).

#![cfg(all(unix, target_has_atomic = "64"))]

pub mod byte_ring;
mod endpoint;
mod error;
mod host;
mod kernel_side;
mod mapping;
mod nap_gate;
mod process_kernel;
mod relay;
pub mod shm;
mod sys;

pub use endpoint::{KernelExit, WaitPolicy};
pub use error::IpcError;
pub use host::{IpcConfig, ProcessChannel, ProcessCommand, SpawnCommand};
pub use kernel_side::{serve, IpcContext};
pub use process_kernel::{process_kernel, process_kernel_builder};
pub use shm::{default_dir, region_path, RegionConfig, Role, ENV_VAR};
