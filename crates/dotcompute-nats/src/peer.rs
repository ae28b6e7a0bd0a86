//! The kernels of the `dotcompute-nats-peer` process, which the
//! multi-process tests and the transport benchmark start: a runtime in its
//! own process that serves small kernels over NATS.
//!
//! All speak [`Probe`]:
//! - `echo`: answers each probe with one correlated to it, whose text is
//!   `NODE:TEXT` (so a caller sees which replica answered);
//! - `stage`: sends each probe on, uncorrelated, with `|NODE` appended to
//!   its text (a pipeline stage, for links);
//! - `sink`: takes probes and answers only `report`, with
//!   [`SinkReport`] as JSON in the text: how many it processed, how many
//!   distinct sequence numbers, how many it had already seen;
//! - `fail`: like `echo`, but its handler fails on a probe with `fail` set;
//! - `slow`: like `echo`, after a pause of `seq % 100` ms (so a stream is
//!   still in flight when the process is killed).

use std::collections::HashSet;
use std::time::Duration;

use dotcompute::{Error, KernelConfig, KernelContext, KernelSpec, Message, MessageHeader};
use serde::{Deserialize, Serialize};

/// The probe message.
#[derive(Debug, Clone, PartialEq, Message, Serialize, Deserialize)]
pub struct Probe {
    /// Sequence number.
    pub seq: u64,
    /// Text.
    pub text: String,
    /// Ask a `fail` kernel to fail on this probe.
    pub fail: bool,
    /// Padding (benchmark payloads).
    #[serde(with = "serde_bytes_vec")]
    pub payload: Vec<u8>,
    /// Message header.
    pub header: MessageHeader,
}

mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}

impl Probe {
    /// A probe with a fresh header.
    pub fn new(seq: u64, text: impl Into<String>) -> Self {
        Probe {
            seq,
            text: text.into(),
            fail: false,
            payload: Vec::new(),
            header: MessageHeader::new(),
        }
    }

    /// The same, asking a `fail` kernel to fail.
    pub fn failing(mut self) -> Self {
        self.fail = true;
        self
    }

    /// The same, with `n` bytes of padding.
    pub fn padded(mut self, n: usize) -> Self {
        self.payload = vec![0xA5; n];
        self
    }
}

/// What a `sink` kernel reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkReport {
    /// Probes processed (the `report` requests excluded).
    pub processed: u64,
    /// Distinct sequence numbers among them.
    pub distinct: u64,
    /// Probes whose sequence number had been processed before.
    pub duplicates: u64,
    /// The highest sequence number processed.
    pub highest: u64,
}

/// A peer kernel's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// See the module doc.
    Echo,
    /// See the module doc.
    Stage,
    /// See the module doc.
    Sink,
    /// See the module doc.
    Fail,
    /// See the module doc.
    Slow,
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Ok(match s {
            "echo" => Role::Echo,
            "stage" => Role::Stage,
            "sink" => Role::Sink,
            "fail" => Role::Fail,
            "slow" => Role::Slow,
            other => return Err(format!("unknown role {other:?} (echo, stage, sink, fail, slow)")),
        })
    }
}

/// The spec of kernel `id` playing `role` on node `node`.
pub fn spec(id: &str, role: Role, node: &str, config: KernelConfig) -> Result<KernelSpec, Error> {
    let node = node.to_string();
    KernelSpec::builder::<Probe, Probe>(id)
        .config(config)
        .handler(move |ctx| run(ctx, role, node.clone()))
        .build()
}

async fn run(mut ctx: KernelContext<Probe, Probe>, role: Role, node: String) -> Result<(), Error> {
    let mut seen: HashSet<u64> = HashSet::new();
    let mut report = SinkReport::default();
    loop {
        let p = ctx.receive().await?;
        match role {
            Role::Echo | Role::Fail | Role::Slow => {
                if role == Role::Fail && p.fail {
                    return Err(Error::InvalidConfiguration {
                        parameter: "probe",
                        value: p.seq.to_string(),
                        reason: format!("kernel asked to fail on probe {}", p.seq),
                    });
                }
                if role == Role::Slow {
                    tokio::time::sleep(Duration::from_millis(p.seq % 100)).await;
                }
                let mut answer = Probe::new(p.seq, format!("{node}:{}", p.text));
                answer.payload.clone_from(&p.payload);
                ctx.send(p.reply(answer)).await?;
            }
            Role::Stage => {
                let mut next = Probe::new(p.seq, format!("{}|{node}", p.text));
                next.payload = p.payload;
                ctx.send(next).await?;
            }
            Role::Sink => {
                if p.text == "report" {
                    let text = serde_json::to_string(&report).unwrap_or_default();
                    ctx.send(p.reply(Probe::new(p.seq, text))).await?;
                    continue;
                }
                report.processed += 1;
                report.highest = report.highest.max(p.seq);
                if seen.insert(p.seq) {
                    report.distinct += 1;
                } else {
                    report.duplicates += 1;
                }
            }
        }
    }
}

/// Reads a sink's report from its answer to `report`.
pub fn parse_report(answer: &Probe) -> Result<SinkReport, String> {
    serde_json::from_str(&answer.text).map_err(|e| format!("not a sink report ({e}): {:?}", answer.text))
}

/// An echo kernel for a test's own runtime: answers each probe with
/// `local:TEXT`, correlated.
pub async fn local_echo(mut ctx: KernelContext<Probe, Probe>) -> Result<(), Error> {
    loop {
        let p = ctx.receive().await?;
        let answer = p.reply(Probe::new(p.seq, format!("local:{}", p.text)));
        ctx.send(answer).await?;
    }
}
