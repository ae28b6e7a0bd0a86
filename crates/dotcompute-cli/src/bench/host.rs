//! The host side of a benchmark: who sends to the kernels and receives
//! their replies, and how a case's runtime is set up and torn down.
//!
//! A [`Host`] wraps a [`KernelHandle`] and either awaits its async methods
//! (on a tokio runtime) or calls its blocking ones (`send_blocking`,
//! `receive_blocking`, ...) on a plain OS thread. The workloads are written
//! once as async code over [`Host`]; on a plain thread they are driven by
//! [`block_on`] and never suspend, since the blocking calls do all the
//! waiting.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

use dotcompute::{KernelHandle, KernelSpec, RingKernelRuntime};
use serde::Serialize;

use super::Ping;
use crate::{BoxError, CliResult, Flavor};

/// Where the host side runs. (The names are the JSON values: `multi_thread`,
/// `current_thread`, `plain_thread`.)
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    /// Tasks on a tokio multi-thread runtime with 2 workers.
    MultiThread,
    /// Tasks on a tokio current-thread runtime (host and async kernels share one thread).
    CurrentThread,
    /// Plain OS threads calling the handle's blocking methods.
    PlainThread,
}

impl HostKind {
    pub fn label(self) -> &'static str {
        match self {
            HostKind::MultiThread => Flavor::MultiThread.label(),
            HostKind::CurrentThread => Flavor::CurrentThread.label(),
            HostKind::PlainThread => "plain thread (blocking handle)",
        }
    }

    /// Short label for tables.
    pub fn short(self) -> &'static str {
        match self {
            HostKind::MultiThread => "tokio mt",
            HostKind::CurrentThread => "tokio ct",
            HostKind::PlainThread => "thread",
        }
    }

    fn flavor(self) -> Option<Flavor> {
        match self {
            HostKind::MultiThread => Some(Flavor::MultiThread),
            HostKind::CurrentThread => Some(Flavor::CurrentThread),
            HostKind::PlainThread => None,
        }
    }
}

/// One kernel as the host sees it.
#[derive(Clone)]
pub struct Host {
    handle: KernelHandle<Ping, Ping>,
    blocking: bool,
}

impl Host {
    pub async fn send(&self, msg: Ping) -> dotcompute::Result<()> {
        if self.blocking {
            self.handle.send_blocking(msg).map_err(Into::into)
        } else {
            self.handle.send(msg).await.map_err(Into::into)
        }
    }

    pub async fn receive(&self) -> dotcompute::Result<Ping> {
        if self.blocking {
            self.handle.receive_blocking()
        } else {
            self.handle.receive().await
        }
    }

    pub async fn send_batch(&self, msgs: Vec<Ping>) -> dotcompute::Result<()> {
        if self.blocking {
            self.handle.send_batch_blocking(msgs).map_err(Into::into)
        } else {
            self.handle.send_batch(msgs).await.map_err(Into::into)
        }
    }

    pub async fn receive_batch(&self, max: usize, out: &mut Vec<Ping>) -> dotcompute::Result<usize> {
        if self.blocking {
            self.handle.receive_batch_blocking(max, out)
        } else {
            self.handle.receive_batch(max, out).await
        }
    }

    /// `call` exists only on the async handle; a plain-thread host has no
    /// blocking `call`, so the benchmarks offer it only on tokio hosts.
    pub async fn call(&self, msg: Ping) -> dotcompute::Result<Ping> {
        self.handle.call(msg).await.map_err(Into::into)
    }

    /// Runs `work` beside the caller: a tokio task for an async host, a
    /// plain OS thread for a blocking one.
    pub fn spawn<T, F>(&self, name: &str, work: F) -> CliResult<Joiner<T>>
    where
        T: Send + 'static,
        F: Future<Output = CliResult<T>> + Send + 'static,
    {
        if self.blocking {
            let thread = std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || block_on(work))
                .map_err(|e| format!("cannot start host thread {name}: {e}"))?;
            Ok(Joiner::Thread(thread))
        } else {
            Ok(Joiner::Task(tokio::spawn(work)))
        }
    }
}

/// Waits for what [`Host::spawn`] started.
pub enum Joiner<T> {
    Task(tokio::task::JoinHandle<CliResult<T>>),
    Thread(std::thread::JoinHandle<CliResult<T>>),
}

impl<T> Joiner<T> {
    pub async fn join(self) -> CliResult<T> {
        match self {
            Joiner::Task(t) => t
                .await
                .map_err(|e| -> BoxError { format!("host task failed: {e}").into() })?,
            // A plain-thread host is itself on a plain thread: blocking here is fine.
            Joiner::Thread(t) => t.join().map_err(|_| -> BoxError { "host thread panicked".into() })?,
        }
    }
}

/// Launches `specs` in a fresh runtime, activates them, runs `work` with one
/// [`Host`] per kernel on the given host kind, then shuts the runtime down.
pub fn with_kernels<T, F, Fut>(host: HostKind, specs: Vec<KernelSpec>, work: F) -> CliResult<T>
where
    T: Send + 'static,
    F: FnOnce(Vec<Host>) -> Fut + Send + 'static,
    Fut: Future<Output = CliResult<T>> + Send + 'static,
{
    match host.flavor() {
        Some(flavor) => flavor.run(async move {
            let rt = RingKernelRuntime::new();
            let out = async {
                let hosts = launch(&rt, specs, false).await?;
                work(hosts).await
            }
            .await;
            rt.shutdown().await;
            out
        }),
        None => {
            // The runtime's lifecycle calls are async: run them on a
            // current-thread runtime, which sits idle while this thread
            // drives the workload through the blocking handle.
            let tokio = crate::tokio_runtime(Flavor::CurrentThread)?;
            let rt = RingKernelRuntime::new();
            let out = tokio
                .block_on(launch(&rt, specs, true))
                .and_then(|hosts| block_on(work(hosts)));
            tokio.block_on(rt.shutdown());
            tokio.shutdown_timeout(std::time::Duration::from_secs(1));
            out
        }
    }
}

async fn launch(rt: &RingKernelRuntime, specs: Vec<KernelSpec>, blocking: bool) -> CliResult<Vec<Host>> {
    let mut hosts = Vec::with_capacity(specs.len());
    for spec in specs {
        let id = spec.id().to_string();
        rt.launch_spec(spec)?;
        rt.activate(&id)?;
        hosts.push(Host {
            handle: rt.handle::<Ping, Ping>(&id)?,
            blocking,
        });
    }
    Ok(hosts)
}

/// Runs a future to completion on this thread, parking while it waits.
///
/// Not `futures::executor::block_on`: that one refuses to run inside
/// itself, and the library's blocking handle methods use it internally
/// for queue-based kernels.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}
