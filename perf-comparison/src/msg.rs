//! The messages every contestant moves: a sequence number and a 64-byte
//! payload. dotcompute's carries its `MessageHeader` (that is the product:
//! id, priority, correlation, creation time); the peers' carry nothing else.
//! Every reply is built fresh inside the actor or kernel.

use dotcompute::{Message, MessageHeader};
use serde::{Deserialize, Serialize};

/// Payload bytes of every message.
pub const PAYLOAD: usize = 64;

/// Set in a dotcompute sequence number to ask a sink kernel for an answer.
pub const FLUSH: u64 = 1 << 63;

/// dotcompute's request and reply (the echo kernel answers with a fresh,
/// correlated `DcPing`).
#[derive(Debug, Clone, Copy, Message, Serialize, Deserialize)]
pub struct DcPing {
    pub seq: u64,
    #[serde(with = "bytes64")]
    pub payload: [u8; PAYLOAD],
    pub header: MessageHeader,
}

impl DcPing {
    pub fn new(seq: u64) -> Self {
        Self::with_header(seq, MessageHeader::new())
    }

    fn with_header(seq: u64, header: MessageHeader) -> Self {
        DcPing {
            seq,
            payload: payload(seq),
            header,
        }
    }

    /// `n` requests from `first` on, built together: their headers share
    /// one creation time ([`MessageHeader::sibling`]), as a batch's would.
    pub fn batch(first: u64, n: usize) -> Vec<DcPing> {
        let header = MessageHeader::new();
        (first..first + n as u64)
            .map(|seq| Self::with_header(seq, header.sibling()))
            .collect()
    }

    /// The echo kernel's answer: a new message correlated to this one.
    pub fn answer(&self) -> DcPing {
        self.reply(DcPing {
            seq: self.seq,
            payload: self.payload,
            header: MessageHeader::new(),
        })
    }
}

/// A dotcompute message carrying a batch of the peers' items, as the peers
/// batch (one message, one header, a `Vec` inside): what a dotcompute user
/// writes when the items need no identity, priority or telemetry of their
/// own. `flush` asks the kernel how many items it took.
#[derive(Debug, Clone, Message)]
pub struct DcVec {
    pub items: Vec<Ping>,
    pub flush: bool,
    pub header: MessageHeader,
}

/// The peers' request.
#[derive(Debug, Clone, Copy)]
pub struct Ping {
    pub seq: u64,
    pub payload: [u8; PAYLOAD],
}

impl Ping {
    pub fn new(seq: u64) -> Self {
        Ping {
            seq,
            payload: payload(seq),
        }
    }

    /// The actor's answer, built fresh.
    pub fn answer(&self) -> Pong {
        Pong {
            seq: self.seq,
            payload: self.payload,
        }
    }
}

/// The peers' reply.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // the payload is moved, as a real reply would be
pub struct Pong {
    pub seq: u64,
    pub payload: [u8; PAYLOAD],
}

fn payload(seq: u64) -> [u8; PAYLOAD] {
    let mut p = [0u8; PAYLOAD];
    p[..8].copy_from_slice(&seq.to_le_bytes());
    p
}

/// The payload as one MessagePack `bin` (serde has no impls for `[u8; 64]`).
mod bytes64 {
    use super::PAYLOAD;
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; PAYLOAD], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; PAYLOAD], D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = [u8; PAYLOAD];
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{PAYLOAD} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = [0u8; PAYLOAD];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = a.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}
