//! The kernels the benchmarks talk to, in every tier.
//!
//! - echo: answers every `Ping` with a fresh `Ping` correlated to it (same
//!   sequence number and payload, new header), as a request/reply kernel would;
//! - sink: takes every `Ping` and answers only those whose sequence number
//!   carries [`FLUSH`], so the host knows when a one-way stream has been
//!   consumed.
//!
//! With `batch > 1` the kernel takes its input with `receive_batch(batch)`
//! and sends its answers with one `send_batch`.

use dotcompute::{BlockingContext, Error, KernelContext, KernelSpec, Message, MessageHeader};

use super::tier::Tier;
use super::Ping;
use crate::CliResult;

/// Set in a sequence number to ask the sink kernel for an answer.
pub const FLUSH: u64 = 1 << 63;

/// What the kernel does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Echo,
    Sink,
}

/// A kernel spec for `tier`: an async handler for the async tier, a
/// blocking handler in the tier's mode otherwise.
pub fn spec(id: &str, tier: Tier, role: Role, batch: usize) -> CliResult<KernelSpec> {
    let builder = KernelSpec::builder::<Ping, Ping>(id);
    let spec = match tier {
        Tier::Async => builder.handler(move |ctx| async_kernel(ctx, role, batch)).build()?,
        Tier::Thread | Tier::Spin => builder
            .mode(tier.mode()?)
            .blocking_handler(move |ctx| blocking_kernel(ctx, role, batch))
            .build()?,
        Tier::Process => {
            // The kernel is this same binary, started as `__ipc-kernel`.
            let exe = std::env::current_exe().map_err(|e| format!("cannot find this program to spawn: {e}"))?;
            let role_name = match role {
                Role::Echo => "echo",
                Role::Sink => "sink",
            };
            let command = dotcompute::ipc::SpawnCommand::new(exe).args(["__ipc-kernel", "--role", role_name]);
            dotcompute::ipc::process_kernel::<Ping, Ping>(id, command)?
        }
        // GPU messages are fixed-size plain data, not `Ping`: the GPU tier
        // runs its own cases (`bench::gpu`).
        Tier::Gpu => return Err("the gpu tier has no Ping kernel; its cases are in bench::gpu".into()),
        Tier::Wgpu => return Err("the wgpu tier has no Ping kernel; its cases are in bench::wgpu".into()),
    };
    Ok(spec)
}

/// The child side of the process tier: serves the kernel over the
/// shared-memory rings named in the environment until the host stops it.
pub fn ipc_kernel(role: Role) -> CliResult<()> {
    let mut ctx = dotcompute::ipc::IpcContext::<Ping, Ping>::from_env()?;
    loop {
        let m = match ctx.receive() {
            Ok(m) => m,
            Err(dotcompute::ipc::IpcError::Terminated | dotcompute::ipc::IpcError::PeerClosed { .. }) => {
                ctx.close();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(r) = answer(role, &m) {
            match ctx.send(&r) {
                Ok(()) => {}
                Err(dotcompute::ipc::IpcError::Terminated) => {
                    ctx.close();
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A fresh reply correlated to `m` (same sequence number and payload).
pub fn reply(m: &Ping) -> Ping {
    m.reply(Ping {
        seq: m.seq,
        payload: m.payload,
        header: MessageHeader::new(),
    })
}

fn answer(role: Role, m: &Ping) -> Option<Ping> {
    match role {
        Role::Echo => Some(reply(m)),
        Role::Sink => (m.seq & FLUSH != 0).then(|| reply(m)),
    }
}

/// The kernel of the async tier. Returns (with `Terminating`) when the
/// runtime shuts it down.
pub async fn async_kernel(mut ctx: KernelContext<Ping, Ping>, role: Role, batch: usize) -> Result<(), Error> {
    if batch <= 1 {
        loop {
            let m = ctx.receive().await?;
            if let Some(r) = answer(role, &m) {
                ctx.send(r).await?;
            }
        }
    }
    let mut input = Vec::with_capacity(batch);
    loop {
        input.clear();
        ctx.receive_batch(batch, &mut input).await?;
        let out: Vec<Ping> = input.iter().filter_map(|m| answer(role, m)).collect();
        if !out.is_empty() {
            ctx.send_batch(out).await?;
        }
    }
}

/// The kernel of the thread and spin tiers, on its own OS thread.
pub fn blocking_kernel(mut ctx: BlockingContext<Ping, Ping>, role: Role, batch: usize) -> Result<(), Error> {
    if batch <= 1 {
        loop {
            let m = ctx.receive()?;
            if let Some(r) = answer(role, &m) {
                ctx.send(r)?;
            }
        }
    }
    let mut input = Vec::with_capacity(batch);
    loop {
        input.clear();
        ctx.receive_batch(batch, &mut input)?;
        let out: Vec<Ping> = input.iter().filter_map(|m| answer(role, m)).collect();
        if !out.is_empty() {
            ctx.send_batch(out)?;
        }
    }
}
