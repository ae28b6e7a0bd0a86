//! How to connect, export and address kernels.
//!
//! Invariant: options are validated when they are used
//! ([`NatsNode::connect`](crate::NatsNode::connect),
//! [`export`](crate::NatsNode::export), [`remote`](crate::NatsNode::remote));
//! an out-of-range value is an [`NatsError::InvalidOption`], never a panic
//! or a silent clamp. Secrets never appear in `Debug` output.
//!
//! ```
//! use std::time::Duration;
//! use dotcompute::Backpressure;
//! use dotcompute_nats::{Auth, Delivery, ExportOptions, JetStreamOptions, NatsOptions};
//!
//! let options = NatsOptions::new("nats://127.0.0.1:4222", "edge-1")
//!     .namespace("plant")
//!     .auth(Auth::UserPassword { user: "dc".into(), password: "secret".into() })
//!     .call_timeout(Duration::from_secs(2));
//! assert!(!format!("{options:?}").contains("secret"));
//!
//! // Replicas of a kernel share a JetStream stream that refuses new
//! // messages when 10 000 are waiting (the `Reject` strategy).
//! let export = ExportOptions::default().queue_group("detectors").delivery(Delivery::JetStream(
//!     JetStreamOptions::default().capacity(10_000).backpressure(Backpressure::Reject),
//! ));
//! # let _ = export;
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use dotcompute::Backpressure;
use serde::{Deserialize, Serialize};

use crate::error::NatsError;

/// How the node authenticates to the server.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A token.
    Token(String),
    /// An NKey seed (`SU...`); the server knows the public key.
    NKeySeed(String),
    /// A `.creds` file (JWT and NKey seed), as `nsc` writes it.
    CredentialsFile(PathBuf),
}

impl Auth {
    /// The method's name, as errors report it.
    pub fn method(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::UserPassword { .. } => "user/password",
            Auth::Token(_) => "token",
            Auth::NKeySeed(_) => "nkey",
            Auth::CredentialsFile(_) => "credentials file",
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::NKeySeed(_) => f.write_str("NKeySeed(<redacted>)"),
            Auth::CredentialsFile(path) => f.debug_tuple("CredentialsFile").field(path).finish(),
        }
    }
}

/// TLS settings, passed to the client as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Refuse to connect without TLS.
    pub required: bool,
    /// Extra root certificates (PEM files) to trust.
    pub root_certificates: Vec<PathBuf>,
    /// A client certificate and its key (PEM files), for mutual TLS.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
    /// Start TLS before the server's INFO (servers configured `handshake_first`).
    pub handshake_first: bool,
}

impl TlsOptions {
    /// Require TLS.
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Trust the root certificate(s) in this PEM file too.
    pub fn root_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificates.push(path.into());
        self
    }

    /// Present this client certificate (mutual TLS).
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_certificate = Some((cert.into(), key.into()));
        self
    }

    /// Start TLS before the server's INFO.
    pub fn handshake_first(mut self, first: bool) -> Self {
        self.handshake_first = first;
        self
    }
}

/// How a node connects and how long it waits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NatsOptions {
    /// Server URL(s), comma-separated (`nats://host:4222`, `tls://host:4222`).
    pub url: String,
    /// This node's name: the NATS connection name and the name replicas
    /// report in heartbeats (a subject token).
    pub name: String,
    /// The namespace kernels are exported and looked up in (default `dotcompute`).
    pub namespace: String,
    /// Credentials.
    pub auth: Auth,
    /// TLS settings.
    pub tls: TlsOptions,
    /// Time allowed for the first connection (default 5 s).
    pub connect_timeout: Duration,
    /// Default time limit of a remote `call` (default 5 s).
    pub call_timeout: Duration,
    /// How often each exported kernel publishes a heartbeat (default 500 ms).
    pub heartbeat_interval: Duration,
    /// A replica silent this long is considered gone (default 2 s; at least
    /// twice the heartbeat interval).
    pub liveness_timeout: Duration,
    /// Shortest wait between reconnection attempts (default 0: the first
    /// attempt is at once, then the wait doubles from 20 ms).
    pub min_reconnect_delay: Duration,
    /// Longest wait between reconnection attempts (default 1 s).
    pub max_reconnect_delay: Duration,
    /// Messages a subscription may hold before the client drops them as a
    /// slow consumer (default 65 536; drops are counted).
    pub subscription_capacity: usize,
    /// How often the client pings the server to detect a dead connection
    /// (default 5 s).
    pub ping_interval: Duration,
}

impl NatsOptions {
    /// Options for node `name` at `url`, every other value at its default.
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        NatsOptions {
            url: url.into(),
            name: name.into(),
            namespace: crate::subject::Namespace::DEFAULT.to_string(),
            auth: Auth::None,
            tls: TlsOptions::default(),
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_millis(500),
            liveness_timeout: Duration::from_secs(2),
            min_reconnect_delay: Duration::ZERO,
            max_reconnect_delay: Duration::from_secs(1),
            subscription_capacity: 65_536,
            ping_interval: Duration::from_secs(5),
        }
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the credentials.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the TLS options.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the first connection's time limit.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets the default `call` time limit.
    pub fn call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }

    /// Sets the heartbeat interval and the liveness timeout together.
    pub fn heartbeat(mut self, interval: Duration, liveness_timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.liveness_timeout = liveness_timeout;
        self
    }

    /// Sets the longest wait between reconnection attempts.
    pub fn max_reconnect_delay(mut self, t: Duration) -> Self {
        self.max_reconnect_delay = t;
        self
    }

    /// Sets the shortest wait between reconnection attempts.
    pub fn min_reconnect_delay(mut self, t: Duration) -> Self {
        self.min_reconnect_delay = t;
        self
    }

    /// Sets the per-subscription buffer.
    pub fn subscription_capacity(mut self, n: usize) -> Self {
        self.subscription_capacity = n;
        self
    }

    /// Sets the ping interval.
    pub fn ping_interval(mut self, t: Duration) -> Self {
        self.ping_interval = t;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), NatsError> {
        let bad = |option: &'static str, value: String, reason: &str| NatsError::InvalidOption {
            option,
            value,
            reason: reason.to_string(),
        };
        if self.url.trim().is_empty() {
            return Err(bad("url", String::new(), "no server URL given"));
        }
        for (option, d) in [
            ("connect_timeout", self.connect_timeout),
            ("call_timeout", self.call_timeout),
            ("heartbeat_interval", self.heartbeat_interval),
            ("max_reconnect_delay", self.max_reconnect_delay),
            ("ping_interval", self.ping_interval),
        ] {
            if d.is_zero() {
                return Err(bad(option, format!("{d:?}"), "must be positive"));
            }
        }
        if self.min_reconnect_delay > self.max_reconnect_delay {
            return Err(bad(
                "min_reconnect_delay",
                format!("{:?}", self.min_reconnect_delay),
                "must not exceed max_reconnect_delay",
            ));
        }
        if self.liveness_timeout < self.heartbeat_interval * 2 {
            return Err(bad(
                "liveness_timeout",
                format!("{:?}", self.liveness_timeout),
                "must be at least twice the heartbeat interval",
            ));
        }
        if self.subscription_capacity == 0 {
            return Err(bad("subscription_capacity", "0".into(), "must be at least 1"));
        }
        Ok(())
    }
}

/// Where JetStream keeps a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// On the server's disk: survives a server restart (the default).
    #[default]
    File,
    /// In the server's memory: lost when it restarts.
    Memory,
}

/// JetStream delivery: at-least-once, acknowledged after the handler
/// processed the message, de-duplicated by message id.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JetStreamOptions {
    /// Messages the input stream holds (default: the kernel's input queue capacity).
    pub capacity: Option<usize>,
    /// What a send into a full stream does (default: the kernel's input strategy):
    /// `Block` waits for room (the stream refuses, the sender retries until
    /// its send timeout), `Reject` hands the message back at once
    /// (discard-new), `DropOldest` makes the stream evict its oldest message
    /// (discard-old; the exporter counts it in the kernel's `messages_dropped`).
    pub backpressure: Option<Backpressure>,
    /// Messages the output stream holds before the exporter waits
    /// (default: the kernel's output queue capacity).
    pub output_capacity: Option<usize>,
    /// File (survives a server restart) or memory.
    pub storage: Storage,
    /// How long a delivered message may stay unacknowledged before the
    /// server delivers it again, to this or another replica (default 30 s).
    pub ack_wait: Duration,
    /// The server drops a republished message id seen within this window (default 2 min).
    pub duplicate_window: Duration,
    /// How many processed message ids each replica remembers to skip a
    /// redelivery (default 100 000).
    pub dedup_capacity: usize,
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        JetStreamOptions {
            capacity: None,
            backpressure: None,
            output_capacity: None,
            storage: Storage::File,
            ack_wait: Duration::from_secs(30),
            duplicate_window: Duration::from_secs(120),
            dedup_capacity: 100_000,
        }
    }
}

impl JetStreamOptions {
    /// Sets the input stream's capacity.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = Some(n);
        self
    }

    /// Sets the full-stream strategy.
    pub fn backpressure(mut self, b: Backpressure) -> Self {
        self.backpressure = Some(b);
        self
    }

    /// Sets the output stream's capacity.
    pub fn output_capacity(mut self, n: usize) -> Self {
        self.output_capacity = Some(n);
        self
    }

    /// Sets where the streams live.
    pub fn storage(mut self, s: Storage) -> Self {
        self.storage = s;
        self
    }

    /// Sets the redelivery delay of unacknowledged messages.
    pub fn ack_wait(mut self, t: Duration) -> Self {
        self.ack_wait = t;
        self
    }

    /// Sets the server's de-duplication window.
    pub fn duplicate_window(mut self, t: Duration) -> Self {
        self.duplicate_window = t;
        self
    }

    /// Sets how many processed ids each replica remembers.
    pub fn dedup_capacity(mut self, n: usize) -> Self {
        self.dedup_capacity = n;
        self
    }
}

/// How messages reach an exported kernel.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum Delivery {
    /// Core NATS: at most once. A message lost to a disconnect or a slow
    /// consumer is not retried; receivers detect it by per-publisher
    /// sequence gaps and count it (with slow-consumer events) in telemetry.
    #[default]
    Core,
    /// JetStream: at least once, acknowledged after processing,
    /// de-duplicated by message id.
    JetStream(JetStreamOptions),
}

/// How to export a kernel.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Share the kernel's input with other replicas exporting it under the
    /// same group: each message goes to one of them. (JetStream replicas
    /// always share the stream's one consumer; the group marks them as
    /// replicas so loss counting is done across them.)
    pub queue_group: Option<String>,
    /// Core NATS or JetStream.
    pub delivery: Delivery,
}

impl ExportOptions {
    /// Export as one replica of `group`.
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = Some(group.into());
        self
    }

    /// Sets the delivery mode.
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }
}

/// How to address a remote kernel.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// Keep asking for the kernel this long if nobody exports it yet
    /// (default: ask once).
    pub wait_for_export: Duration,
    /// The `call` time limit (default: the node's).
    pub call_timeout: Option<Duration>,
    /// How long a JetStream send may wait for room or for the server
    /// (default 30 s); then the message comes back with a timeout.
    pub send_timeout: Option<Duration>,
}

impl RemoteOptions {
    /// Wait up to `t` for an exporter to appear.
    pub fn wait_for_export(mut self, t: Duration) -> Self {
        self.wait_for_export = t;
        self
    }

    /// Sets the `call` time limit.
    pub fn call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = Some(t);
        self
    }

    /// Sets the JetStream send time limit.
    pub fn send_timeout(mut self, t: Duration) -> Self {
        self.send_timeout = Some(t);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_printed() {
        for auth in [
            Auth::UserPassword {
                user: "u".into(),
                password: "hunter2".into(),
            },
            Auth::Token("hunter2".into()),
            Auth::NKeySeed("hunter2".into()),
        ] {
            let text = format!("{:?}", NatsOptions::new("nats://x", "n").auth(auth));
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn out_of_range_options_are_refused() {
        let ok = NatsOptions::new("nats://127.0.0.1:4222", "n");
        assert!(ok.validate().is_ok());
        assert!(NatsOptions::new(" ", "n").validate().is_err());
        assert!(ok.clone().call_timeout(Duration::ZERO).validate().is_err());
        assert!(ok
            .clone()
            .heartbeat(Duration::from_secs(1), Duration::from_millis(1500))
            .validate()
            .is_err());
        assert!(ok.clone().subscription_capacity(0).validate().is_err());
    }
}
