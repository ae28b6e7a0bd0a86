//! Ring kernels across machines (cargo feature `nats`, on by default):
//!
//! - `dotcompute node --nats URL --name NAME`: a node serving the workload
//!   kernels — the anomaly detector (`anomaly`), PageRank (`pagerank`) —
//!   and the demo's `detect` stage, in namespace `NS.NAME` (so each node is
//!   addressed by its name), until Ctrl-C or SIGTERM;
//! - `dotcompute demo --nats URL [--node NAME]`: the demo's pipeline with
//!   `detect` on that node (one is started for the run when `--node` is not
//!   given), linked to `normalize` here across NATS; it prints the same
//!   anomalies as the local demo.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Args;
use dotcompute::{KernelConfig, RingKernelRuntime};
use dotcompute_nats::{
    Auth, Delivery, ExportOptions, JetStreamOptions, NatsNode, NatsOptions, RemoteHandle, RemoteOptions, TlsOptions,
};

use crate::demo::{DetectorIn, DetectorOut, Place};
use crate::CliResult;

/// How to reach and authenticate to the NATS server.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Namespace of the kernels' subjects (a node serves in NAMESPACE.NAME).
    #[arg(long, default_value = "dotcompute", value_name = "NS")]
    pub namespace: String,
    /// User name (with a password: --password or $DOTCOMPUTE_NATS_PASSWORD).
    #[arg(long)]
    pub user: Option<String>,
    /// Password (with --user); $DOTCOMPUTE_NATS_PASSWORD keeps it off the
    /// command line.
    #[arg(long, requires = "user")]
    pub password: Option<String>,
    /// Authentication token; $DOTCOMPUTE_NATS_TOKEN keeps it off the command line.
    #[arg(long, conflicts_with_all = ["user", "nkey_seed_file", "creds"])]
    pub token: Option<String>,
    /// A file holding an NKey seed (SU...).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["user", "creds"])]
    pub nkey_seed_file: Option<PathBuf>,
    /// A .creds file (JWT and NKey seed).
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    pub creds: Option<PathBuf>,
    /// Require TLS.
    #[arg(long)]
    pub tls: bool,
    /// Trust this CA certificate (PEM) for the server's TLS certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ConnectArgs {
    /// The password: --password, else $DOTCOMPUTE_NATS_PASSWORD.
    fn password(&self) -> Option<String> {
        self.password.clone().or_else(|| std::env::var(PASSWORD_ENV).ok())
    }

    /// The token: --token, else $DOTCOMPUTE_NATS_TOKEN (without --user).
    fn token(&self) -> Option<String> {
        self.token
            .clone()
            .or_else(|| self.user.is_none().then(|| std::env::var(TOKEN_ENV).ok()).flatten())
    }

    fn options(&self, url: &str, name: &str, namespace: &str) -> CliResult<NatsOptions> {
        let auth = if let Some(user) = &self.user {
            let password = self
                .password()
                .ok_or_else(|| format!("--user {user} needs a password: --password or ${PASSWORD_ENV}"))?;
            Auth::UserPassword {
                user: user.clone(),
                password,
            }
        } else if let Some(token) = self.token() {
            Auth::Token(token)
        } else if let Some(path) = &self.nkey_seed_file {
            let seed = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the NKey seed file {}: {e}", path.display()))?;
            Auth::NKeySeed(seed.trim().to_string())
        } else if let Some(path) = &self.creds {
            Auth::CredentialsFile(path.clone())
        } else {
            Auth::None
        };
        let mut tls = TlsOptions::default().required(self.tls);
        if let Some(ca) = &self.tls_ca {
            tls = tls.root_certificate(ca);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls = tls.client_certificate(cert, key);
        }
        Ok(NatsOptions::new(url, name).namespace(namespace).auth(auth).tls(tls))
    }

    /// The arguments that give a child node the same connection (secrets
    /// go by environment, see [`Self::secrets`]).
    fn to_args(&self) -> Vec<String> {
        let mut v = vec!["--namespace".to_string(), self.namespace.clone()];
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(value) = value {
                v.push(flag.to_string());
                v.push(value);
            }
        };
        push("--user", self.user.clone());
        push(
            "--nkey-seed-file",
            self.nkey_seed_file.as_ref().map(|p| p.display().to_string()),
        );
        push("--creds", self.creds.as_ref().map(|p| p.display().to_string()));
        push("--tls-ca", self.tls_ca.as_ref().map(|p| p.display().to_string()));
        push("--tls-cert", self.tls_cert.as_ref().map(|p| p.display().to_string()));
        push("--tls-key", self.tls_key.as_ref().map(|p| p.display().to_string()));
        if self.tls {
            v.push("--tls".to_string());
        }
        v
    }

    /// The secrets a child node gets through its environment, never its
    /// command line (which other users can read).
    fn secrets(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(p) = self.password() {
            v.push((PASSWORD_ENV, p));
        }
        if let Some(t) = self.token() {
            v.push((TOKEN_ENV, t));
        }
        v
    }
}

/// Where a password may be given instead of --password.
const PASSWORD_ENV: &str = "DOTCOMPUTE_NATS_PASSWORD";
/// Where a token may be given instead of --token.
const TOKEN_ENV: &str = "DOTCOMPUTE_NATS_TOKEN";

/// Options of `dotcompute node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// URL of the NATS server (for example nats://127.0.0.1:4222).
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// This node's name (letters, digits, '-' and '_'); its kernels are
    /// served in namespace NAMESPACE.NAME.
    #[arg(long)]
    pub name: String,
    /// Deliver through JetStream (at least once, acknowledged after
    /// processing) instead of core NATS (at most once).
    #[arg(long)]
    pub jetstream: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Also stop when standard input closes (for a parent process).
    #[arg(long, hide = true)]
    pub until_stdin_closes: bool,
}

/// The kernels a node serves.
const SERVED: [&str; 3] = [
    dotcompute_nats::workloads::ANOMALY,
    dotcompute_nats::workloads::PAGERANK,
    "detect",
];

/// Runs `dotcompute node`.
pub fn run_node(args: &NodeArgs) -> CliResult<()> {
    let rt = crate::tokio_runtime(crate::Flavor::MultiThread)?;
    let result = rt.block_on(serve(args));
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(args: &NodeArgs) -> CliResult<()> {
    let runtime = RingKernelRuntime::new();
    dotcompute_nats::workloads::launch(&runtime)?;
    runtime.launch_with("detect", KernelConfig::default(), crate::demo::detect)?;
    runtime.activate("detect")?;
    let namespace = format!("{}.{}", args.connect.namespace, args.name);
    let node = NatsNode::connect(&runtime, args.connect.options(&args.nats, &args.name, &namespace)?).await?;
    let delivery = if args.jetstream {
        Delivery::JetStream(JetStreamOptions::default())
    } else {
        Delivery::Core
    };
    let options = ExportOptions::default().delivery(delivery);
    dotcompute_nats::workloads::export(&node, &options).await?;
    node.export::<DetectorIn, DetectorOut>("detect", options).await?;
    println!(
        "node {}: serving {} in namespace {namespace} on {} ({} delivery); Ctrl-C stops it",
        args.name,
        SERVED.join(", "),
        args.nats,
        if args.jetstream { "JetStream" } else { "core NATS" }
    );
    wait_for_stop(args.until_stdin_closes).await;
    node.close().await;
    println!();
    println!("{}", node.telemetry());
    println!("{}", runtime.summary());
    runtime.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C, SIGTERM, or (if asked) the end of standard input.
async fn wait_for_stop(until_stdin_closes: bool) {
    let stdin_closed = async {
        if !until_stdin_closes {
            return std::future::pending::<()>().await;
        }
        // A blocking read on its own thread: tokio's stdin would need a feature.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    #[cfg(unix)]
    let terminated = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminated = std::future::pending::<()>();
    tokio::select! {
        () = stdin_closed => {}
        () = terminated => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The `--nats` options of `dotcompute demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoNatsArgs {
    /// Run `detect` on a node reached through the NATS server at this URL.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// The node running `detect` (started with `dotcompute node --name
    /// NAME`); without it, the demo starts one for the run.
    #[arg(long, value_name = "NAME", requires = "nats")]
    pub node: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The demo's side of a distributed run: its node, the remote `detect`,
/// and the node process it started, if any.
pub(crate) struct DemoNode {
    node: NatsNode,
    detect: RemoteHandle<DetectorIn, DetectorOut>,
    child: Option<Child>,
}

impl DemoNode {
    /// Connects (starting a node process first unless `--node` names one);
    /// `None` without `--nats`.
    pub async fn start(runtime: &RingKernelRuntime, args: &DemoNatsArgs) -> CliResult<Option<DemoNode>> {
        let Some(url) = &args.nats else { return Ok(None) };
        let pid = std::process::id();
        let (remote_name, child) = match &args.node {
            Some(name) => (name.clone(), None),
            None => {
                let name = format!("demo-{pid}");
                (name.clone(), Some(spawn_node(url, &name, &args.connect)?))
            }
        };
        let namespace = format!("{}.{remote_name}", args.connect.namespace);
        let local_name = format!("demo-{pid}-host");
        let connected = async {
            let node = NatsNode::connect(runtime, args.connect.options(url, &local_name, &namespace)?).await?;
            let detect = node
                .remote::<DetectorIn, DetectorOut>(
                    "detect",
                    RemoteOptions::default().wait_for_export(Duration::from_secs(20)),
                )
                .await
                .map_err(|e| format!("node '{remote_name}' (namespace {namespace}): {e}"))?;
            CliResult::Ok((node, detect))
        }
        .await;
        match connected {
            Ok((node, detect)) => Ok(Some(DemoNode { node, detect, child })),
            Err(e) => {
                if let Some(mut c) = child {
                    stop_child(&mut c);
                }
                Err(e)
            }
        }
    }

    /// Where the pipeline's `detect` is.
    pub fn place(&self) -> Place {
        Place::Node(self.node.clone(), self.detect.clone())
    }

    /// Prints the transport's telemetry, closes the node and stops the node
    /// process it started.
    pub async fn finish(self, print: bool) {
        if print {
            println!();
            println!("transport telemetry (node.telemetry()):");
            print!("{}", self.node.telemetry());
        }
        self.node.close().await;
        if let Some(mut child) = self.child {
            stop_child(&mut child);
        }
    }
}

/// Starts `dotcompute node` (this same program) for the run.
fn spawn_node(url: &str, name: &str, connect: &ConnectArgs) -> CliResult<Child> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program to start a node: {e}"))?;
    let child = Command::new(exe)
        .args(["node", "--nats", url, "--name", name, "--until-stdin-closes"])
        .args(connect.to_args())
        .envs(connect.secrets())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start a node process: {e}"))?;
    Ok(child)
}

/// Closes the child's stdin (it closes its node and exits), then waits up
/// to three seconds before killing it.
fn stop_child(child: &mut Child) {
    drop(child.stdin.take());
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
