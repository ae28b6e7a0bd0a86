//! # dotcompute-nats
//!
//! Ring kernels across processes and machines: [`dotcompute`] runtimes
//! linked through [NATS](https://nats.io). A runtime joins a NATS system as
//! a [`NatsNode`], **exports** chosen kernels, and gets
//! [`RemoteHandle`]s to kernels other runtimes export, with the operations
//! of a local [`KernelHandle`](dotcompute::KernelHandle): `send`, `receive`,
//! `call`, and links of a local kernel's output to a remote kernel's input
//! and back ([`NatsNode::link_to_remote`], [`NatsNode::link_from_remote`]),
//! so a pipeline spans hosts without host code in between.
//!
//! - **Addresses.** Subjects are built from a namespace and the kernel id,
//!   both validated as subject tokens (no wildcards, no injection): see
//!   [`subject`].
//! - **Wire.** Messages cross in the project's versioned
//!   [`codec`](dotcompute::codec); a payload that does not decode is a typed
//!   [`NatsError::Decode`], counted, never a panic. See [`wire`].
//! - **Replicas.** Several runtimes export the same kernel in a queue group
//!   ([`ExportOptions::queue_group`]); NATS spreads the messages, each
//!   replica's heartbeat reports its share ([`RemoteHandle::replicas`]).
//!
//! ## Delivery, stated plainly
//!
//! | | core NATS ([`Delivery::Core`]) | JetStream ([`Delivery::JetStream`]) |
//! |---|---|---|
//! | guarantee | **at most once** | **at least once**, processed once per replica |
//! | a message lost to a disconnect, a server restart or a slow consumer | lost; **detected and counted**: per-publisher sequence gaps (`lost` in [`EndpointTelemetry`]) and slow-consumer events ([`ConnectionTelemetry`]) | kept by the server and redelivered |
//! | acknowledgement | none | after the kernel **processed** the message ([`KernelHandle::send_tracked`](dotcompute::KernelHandle::send_tracked)) |
//! | order | the messages of one handle (its sends, its calls and a link through it) reach each exporter in the order they were sent | the stream's order; a redelivery can come later |
//! | duplicates | a number seen twice from one publisher is dropped and counted (`duplicates`); one below the first number seen is late, not a duplicate, up to [`track::EARLY_WINDOW`] below it | a republished message is dropped by the server (`Nats-Msg-Id`); a redelivered one already processed is skipped by the replica's seen set |
//! | full queue | the kernel's own strategy, at the exporter | the stream's limit: discard-new ≙ `Reject` (the message comes back to the sender), `Block` (the sender waits), discard-old ≙ `DropOldest` (counted in the kernel's `messages_dropped`) |
//!
//! ## Faults
//!
//! - The server restarts: the client reconnects by itself; `call`s in
//!   flight fail at once with [`NatsError::Disconnected`] (or
//!   [`NatsError::Timeout`]); local kernels keep serving throughout.
//! - A remote runtime dies: its heartbeats stop, and callers get
//!   [`NatsError::RemoteUnavailable`] within the liveness timeout (new calls
//!   meet [`NatsError::NoResponders`] at once in core delivery).
//! - A remote kernel fails: its replicas answer pending calls with the
//!   failure, and the handle reports [`dotcompute::Error::KernelFailed`] to
//!   later operations, as a local kernel does; its state is `Failed`.
//! - Credentials (user/password, token, NKey, `.creds` file) and TLS options
//!   are passed to the client; wrong credentials are an
//!   [`NatsError::Authentication`] naming the method tried.
//!
//! ```no_run
//! use dotcompute::{Error, KernelConfig, KernelContext, Message, MessageHeader, RingKernelRuntime};
//! use dotcompute_nats::{ExportOptions, NatsNode, NatsOptions, RemoteOptions};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Message, Serialize, Deserialize)]
//! struct Reading { value: f64, header: MessageHeader }
//!
//! async fn double(mut ctx: KernelContext<Reading, Reading>) -> Result<(), Error> {
//!     loop {
//!         let r = ctx.receive().await?;
//!         ctx.send(r.reply(Reading { value: 2.0 * r.value, header: MessageHeader::new() })).await?;
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // On the serving host:
//! let rt = RingKernelRuntime::new();
//! rt.launch_with("double", KernelConfig::default(), double)?;
//! rt.activate("double")?;
//! let node = NatsNode::connect(&rt, NatsOptions::new("nats://127.0.0.1:4222", "server-1")).await?;
//! node.export::<Reading, Reading>("double", ExportOptions::default()).await?;
//!
//! // On any other host:
//! let client_rt = RingKernelRuntime::new();
//! let client = NatsNode::connect(&client_rt, NatsOptions::new("nats://127.0.0.1:4222", "client")).await?;
//! let remote = client.remote::<Reading, Reading>("double", RemoteOptions::default()).await?;
//! let answer = remote.call(Reading { value: 21.0, header: MessageHeader::new() }).await?;
//! assert_eq!(answer.value, 42.0);
//! # Ok(()) }
//! ```
//!
//! The tests of this crate run against a real `nats-server` (Debian's
//! package, installed by `scripts/provision-nats.sh`) in separate processes
//! (the `dotcompute-nats-peer` binary); see
//! `tests/`.

// No unwrap, expect or panic on any path a user can reach.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod error;
mod export;
mod jetstream;
mod link;
mod node;
pub mod options;
mod outlet;
pub mod peer;
mod remote;
pub mod server;
pub mod subject;
pub mod telemetry;
pub mod track;
pub mod wire;
#[cfg(feature = "workloads")]
#[cfg_attr(docsrs, doc(cfg(feature = "workloads")))]
pub mod workloads;

pub use error::{NatsError, RemoteKernelError, RemoteSendError};
pub use export::Export;
pub use jetstream::REPLICAS_CONSUMER;
pub use link::Link;
pub use node::{ConnectionState, NatsNode};
pub use options::{Auth, Delivery, ExportOptions, JetStreamOptions, NatsOptions, RemoteOptions, Storage, TlsOptions};
pub use remote::{RemoteHandle, ReplicaStatus};
pub use telemetry::{ConnectionTelemetry, EndpointTelemetry, NatsTelemetry, Role};
pub use wire::{KernelFigures, ReplicaId, WireMessage};
