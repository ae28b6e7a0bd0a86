//! A runtime's membership of a NATS system: one connection, the kernels it
//! exports, the handles it holds to remote kernels, the links between them.
//!
//! Invariants:
//! - the node never changes a local kernel's lifecycle on its own: a lost
//!   connection, a server restart or a remote failure leaves local kernels
//!   serving; only an explicit control request (deactivate/reactivate) does;
//! - the client reconnects by itself for as long as the node lives; every
//!   connection change and every slow-consumer drop is counted;
//! - exports and links live until they are stopped or the node is closed or
//!   dropped; closing publishes a last "leaving" heartbeat for each export so
//!   callers learn at once that its replica is gone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event};
use dotcompute::RingKernelRuntime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::error::NatsError;
use crate::export::Export;
use crate::link::Link;
use crate::options::{Auth, ExportOptions, NatsOptions, RemoteOptions};
use crate::remote::RemoteHandle;
use crate::subject::{KernelSubjects, Namespace, Token};
use crate::telemetry::{ConnectionTelemetry, Counters, NatsTelemetry};
use crate::wire::WireMessage;

/// The state of the node's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connected to a server.
    Connected,
    /// Lost; the client is reconnecting.
    Disconnected,
    /// Closed for good (the node was closed).
    Closed,
}

impl ConnectionState {
    fn name(self) -> &'static str {
        match self {
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Closed => "closed",
        }
    }
}

/// Connection events, counted.
#[derive(Debug)]
pub(crate) struct ConnTracker {
    state: watch::Sender<ConnectionState>,
    connects: AtomicU64,
    disconnects: AtomicU64,
    slow_consumers: AtomicU64,
    server_errors: AtomicU64,
    client_errors: AtomicU64,
}

impl ConnTracker {
    fn new() -> Self {
        ConnTracker {
            state: watch::Sender::new(ConnectionState::Connected),
            connects: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            slow_consumers: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            client_errors: AtomicU64::new(0),
        }
    }

    fn on_event(&self, event: &Event) {
        match event {
            Event::Connected => {
                self.connects.fetch_add(1, Ordering::Relaxed);
                self.state.send_replace(ConnectionState::Connected);
                tracing::info!("NATS connection (re)established");
            }
            Event::Disconnected => {
                self.disconnects.fetch_add(1, Ordering::Relaxed);
                self.state.send_replace(ConnectionState::Disconnected);
                tracing::warn!("NATS connection lost; reconnecting");
            }
            Event::Closed => {
                self.state.send_replace(ConnectionState::Closed);
            }
            Event::SlowConsumer(sid) => {
                self.slow_consumers.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(sid, "NATS slow consumer: a message was dropped");
            }
            Event::ServerError(e) => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "NATS server error");
            }
            Event::ClientError(e) => {
                self.client_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "NATS client error");
            }
            other => tracing::info!(event = %other, "NATS event"),
        }
    }

    pub fn state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// Resolves when the connection is not (or no longer) up.
    pub async fn lost(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|s| *s != ConnectionState::Connected).await;
    }
}

/// What endpoints (exports, remote handles, links) need from their node,
/// without keeping the node itself alive.
#[derive(Clone)]
pub(crate) struct NodeShared {
    pub client: Client,
    pub js: async_nats::jetstream::Context,
    pub runtime: RingKernelRuntime,
    pub name: Token,
    pub namespace: Namespace,
    pub options: NatsOptions,
    pub conn: Arc<ConnTracker>,
    pub shutdown: CancellationToken,
    pub registry: Arc<Registry>,
    pub outlets: Arc<crate::outlet::Outlets>,
}

impl NodeShared {
    pub fn subjects(&self, kernel_id: &str) -> Result<KernelSubjects, NatsError> {
        Ok(KernelSubjects::new(
            &self.namespace,
            &Token::new("kernel id", kernel_id)?,
        ))
    }
}

/// The node's endpoints, for telemetry and for an orderly close.
#[derive(Default)]
pub(crate) struct Registry {
    counters: Mutex<Vec<Endpoint>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// An endpoint's counters: exports and links stay listed (with their final
/// counts) after they stop; a remote handle is listed while it lives.
enum Endpoint {
    Kept(Arc<Counters>),
    WhileAlive(Weak<Counters>),
}

impl Registry {
    pub fn add_counters(&self, c: &Arc<Counters>, kept: bool) {
        let mut v = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|e| match e {
            Endpoint::Kept(_) => true,
            Endpoint::WhileAlive(w) => w.strong_count() > 0,
        });
        v.push(if kept {
            Endpoint::Kept(c.clone())
        } else {
            Endpoint::WhileAlive(Arc::downgrade(c))
        });
    }

    /// A task that must finish (for example, publish a last heartbeat)
    /// before the node's connection is closed.
    pub fn add_task(&self, t: JoinHandle<()>) {
        let mut v = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|t| !t.is_finished());
        v.push(t);
    }

    fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn live_counters(&self) -> Vec<Arc<Counters>> {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|e| match e {
                Endpoint::Kept(c) => Some(c.clone()),
                Endpoint::WhileAlive(w) => w.upgrade(),
            })
            .collect()
    }
}

struct NodeInner {
    shared: NodeShared,
    _stop_on_drop: DropGuard,
}

/// A runtime joined to a NATS system. Cheap to clone; the connection, the
/// exports and the links end when the last clone is dropped or
/// [`close`](Self::close) is called. Local kernels are never stopped by it.
///
/// ```no_run
/// use dotcompute::RingKernelRuntime;
/// use dotcompute_nats::{ExportOptions, NatsNode, NatsOptions};
/// # use dotcompute::{Message, MessageHeader};
/// # #[derive(Debug, Message, serde::Serialize, serde::Deserialize)]
/// # struct Req { x: f64, header: MessageHeader }
/// # #[derive(Debug, Message, serde::Serialize, serde::Deserialize)]
/// # struct Resp { y: f64, header: MessageHeader }
///
/// # async fn demo() -> Result<(), dotcompute_nats::NatsError> {
/// // Process A serves kernel "square" (launched and activated as usual).
/// let rt = RingKernelRuntime::new();
/// let node = NatsNode::connect(&rt, NatsOptions::new("nats://127.0.0.1:4222", "a")).await?;
/// node.export::<Req, Resp>("square", ExportOptions::default()).await?;
///
/// // Process B calls it as it would call a local kernel.
/// let rt_b = RingKernelRuntime::new();
/// let node_b = NatsNode::connect(&rt_b, NatsOptions::new("nats://127.0.0.1:4222", "b")).await?;
/// let square = node_b.remote::<Req, Resp>("square", Default::default()).await?;
/// let resp = square.call(Req { x: 3.0, header: MessageHeader::new() }).await?;
/// assert_eq!(resp.y, 9.0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NatsNode {
    inner: Arc<NodeInner>,
}

impl NatsNode {
    /// Connects `runtime` to the server(s) in `options`. Wrong credentials
    /// are an [`NatsError::Authentication`], an unreachable server an
    /// [`NatsError::Connect`]; once connected, the client reconnects by
    /// itself after any loss.
    pub async fn connect(runtime: &RingKernelRuntime, options: NatsOptions) -> Result<NatsNode, NatsError> {
        options.validate()?;
        let name = Token::new("node name", &options.name)?;
        let namespace = Namespace::new(&options.namespace)?;
        let conn = Arc::new(ConnTracker::new());
        let client_options = client_options(&options, conn.clone()).await?;
        let client = client_options
            .connect(options.url.as_str())
            .await
            .map_err(|e| connect_error(&options, &e))?;
        let js = async_nats::jetstream::new(client.clone());
        let shutdown = CancellationToken::new();
        tracing::info!(node = %name, namespace = %namespace, url = %options.url, "NATS node connected");
        let shared = NodeShared {
            client,
            js,
            runtime: runtime.clone(),
            name,
            namespace,
            options,
            conn,
            shutdown: shutdown.clone(),
            registry: Arc::new(Registry::default()),
            outlets: Arc::new(Default::default()),
        };
        Ok(NatsNode {
            inner: Arc::new(NodeInner {
                shared,
                _stop_on_drop: shutdown.drop_guard(),
            }),
        })
    }

    pub(crate) fn shared(&self) -> &NodeShared {
        &self.inner.shared
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.shared().name.as_str()
    }

    /// The namespace its kernels are exported and looked up in.
    pub fn namespace(&self) -> &Namespace {
        &self.shared().namespace
    }

    /// The runtime whose kernels it exports.
    pub fn runtime(&self) -> &RingKernelRuntime {
        &self.shared().runtime
    }

    /// The underlying client (for what this crate does not wrap).
    pub fn client(&self) -> &Client {
        &self.shared().client
    }

    /// The subjects of kernel `kernel_id` in this node's namespace (the id
    /// is validated as a subject token).
    pub fn subjects(&self, kernel_id: &str) -> Result<KernelSubjects, NatsError> {
        self.shared().subjects(kernel_id)
    }

    /// The connection's state now.
    pub fn connection_state(&self) -> ConnectionState {
        self.shared().conn.state()
    }

    /// Serves the local kernel `kernel_id` (launched in this node's runtime,
    /// with input type `In` and output type `Out`) to other runtimes. Its
    /// outputs are taken by the export: those answering a remote `call` go
    /// back to the caller, the others to the kernel's output subject.
    pub async fn export<In: WireMessage, Out: WireMessage>(
        &self,
        kernel_id: &str,
        options: ExportOptions,
    ) -> Result<Export, NatsError> {
        crate::export::start::<In, Out>(self.shared(), kernel_id, options).await
    }

    /// A handle to kernel `kernel_id`, served by some other runtime. Its
    /// types are checked against the exporter's declaration.
    pub async fn remote<In: WireMessage, Out: WireMessage>(
        &self,
        kernel_id: &str,
        options: RemoteOptions,
    ) -> Result<RemoteHandle<In, Out>, NatsError> {
        RemoteHandle::open(self.shared(), kernel_id, options).await
    }

    /// Sends everything the local kernel `local` outputs to the remote
    /// kernel's input, with no host code in between (the local kernel's
    /// output type must be the remote's input type `M`).
    pub async fn link_to_remote<M: WireMessage, R: WireMessage>(
        &self,
        local: &str,
        remote: &RemoteHandle<M, R>,
    ) -> Result<Link, NatsError> {
        crate::link::to_remote(self.shared(), local, remote).await
    }

    /// Sends everything the remote kernel outputs (that answers no call)
    /// into the local kernel `local`'s input.
    pub async fn link_from_remote<I: WireMessage, M: WireMessage>(
        &self,
        remote: &RemoteHandle<I, M>,
        local: &str,
    ) -> Result<Link, NatsError> {
        crate::link::from_remote(self.shared(), remote, local).await
    }

    /// The connection's and every endpoint's counters.
    pub fn telemetry(&self) -> NatsTelemetry {
        let s = self.shared();
        let stats = s.client.statistics();
        let c = &s.conn;
        NatsTelemetry {
            node: s.name.to_string(),
            namespace: s.namespace.to_string(),
            connection: ConnectionTelemetry {
                state: c.state().name().to_string(),
                connects: c.connects.load(Ordering::Relaxed),
                disconnects: c.disconnects.load(Ordering::Relaxed),
                slow_consumer_events: c.slow_consumers.load(Ordering::Relaxed),
                server_errors: c.server_errors.load(Ordering::Relaxed),
                client_errors: c.client_errors.load(Ordering::Relaxed),
                in_messages: stats.in_messages.load(Ordering::Relaxed),
                out_messages: stats.out_messages.load(Ordering::Relaxed),
                in_bytes: stats.in_bytes.load(Ordering::Relaxed),
                out_bytes: stats.out_bytes.load(Ordering::Relaxed),
            },
            endpoints: s.registry.live_counters().iter().map(|c| c.snapshot()).collect(),
        }
    }

    /// Stops every export (each publishes a last "leaving" heartbeat) and
    /// link, then flushes and closes the connection. Local kernels keep
    /// running. Returns within about two seconds whatever the server does.
    pub async fn close(&self) {
        let s = self.shared();
        s.shutdown.cancel();
        let tasks = s.registry.take_tasks();
        let _ = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(tasks)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), s.client.flush()).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), s.client.drain()).await;
        s.conn.state.send_replace(ConnectionState::Closed);
        tracing::info!(node = %s.name, "NATS node closed");
    }
}

async fn client_options(options: &NatsOptions, conn: Arc<ConnTracker>) -> Result<ConnectOptions, NatsError> {
    let mut o = match &options.auth {
        Auth::None => ConnectOptions::new(),
        Auth::UserPassword { user, password } => ConnectOptions::with_user_and_password(user.clone(), password.clone()),
        Auth::Token(t) => ConnectOptions::with_token(t.clone()),
        Auth::NKeySeed(seed) => ConnectOptions::with_nkey(seed.clone()),
        Auth::CredentialsFile(path) => {
            ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| NatsError::Authentication {
                    url: options.url.clone(),
                    method: "credentials file",
                    reason: format!("cannot read {}: {e}", path.display()),
                })?
        }
    };
    let tls = &options.tls;
    if tls.required {
        o = o.require_tls(true);
    }
    for root in &tls.root_certificates {
        o = o.add_root_certificates(root.clone());
    }
    if let Some((cert, key)) = &tls.client_certificate {
        o = o.add_client_certificate(cert.clone(), key.clone());
    }
    if tls.handshake_first {
        o = o.tls_first();
    }
    let (min_delay, max_delay) = (options.min_reconnect_delay, options.max_reconnect_delay);
    o = o
        .name(options.name.clone())
        .connection_timeout(options.connect_timeout)
        .ping_interval(options.ping_interval)
        .subscription_capacity(options.subscription_capacity)
        .request_timeout(Some(options.call_timeout))
        .reconnect_delay_callback(move |attempts| {
            let backoff = if attempts <= 1 {
                Duration::ZERO
            } else {
                let exp = u32::try_from(attempts.min(16)).unwrap_or(16);
                Duration::from_millis(10u64.saturating_mul(1 << exp))
            };
            backoff.clamp(min_delay, max_delay)
        })
        .event_callback(move |event| {
            let conn = conn.clone();
            async move { conn.on_event(&event) }
        });
    Ok(o)
}

fn connect_error(options: &NatsOptions, e: &async_nats::ConnectError) -> NatsError {
    let url = options.url.clone();
    let reason = e.to_string();
    match e.kind() {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => NatsError::Authentication {
            url,
            method: options.auth.method(),
            reason,
        },
        ConnectErrorKind::Tls => NatsError::Tls { url, reason },
        _ => NatsError::Connect { url, reason },
    }
}
