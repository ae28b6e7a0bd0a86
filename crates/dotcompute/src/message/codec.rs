//! The wire format, used only where a message leaves the process.
//!
//! Layout: one version byte ([`WIRE_VERSION`]), then the message's
//! [`Message::TYPE_NAME`] as a MessagePack string, then the message itself as
//! a MessagePack map (field names included, so fields may be added later).
//!
//! Invariant: decoding never panics and never trusts a length it has not
//! checked against the input. Empty, truncated, corrupt, foreign-version and
//! wrong-type inputs each give a distinct [`DecodeError`] that names the type
//! the caller expected.
//!
//! ```
//! use dotcompute::{codec, Message, MessageHeader};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
//! struct Reading {
//!     value: f64,
//!     header: MessageHeader,
//! }
//!
//! let r = Reading { value: 1.5, header: MessageHeader::new() };
//! let bytes = codec::encode(&r).unwrap();
//! assert_eq!(codec::decode::<Reading>(&bytes).unwrap(), r);
//! assert!(matches!(
//!     codec::decode::<Reading>(&bytes[..bytes.len() - 1]),
//!     Err(codec::DecodeError::Malformed { .. })
//! ));
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Message;

/// Version of the wire layout written by [`encode`].
pub const WIRE_VERSION: u8 = 1;

/// Encoding failed (a field that MessagePack cannot represent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {type_name}: {reason}")]
pub struct EncodeError {
    /// The message type.
    pub type_name: &'static str,
    /// What the encoder reported.
    pub reason: String,
}

/// Decoding failed. Every variant names the type the caller asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input was empty.
    #[error("cannot decode {expected}: the input is empty")]
    Empty {
        /// The type the caller asked for.
        expected: &'static str,
    },
    /// The version byte is not one this build reads.
    #[error("cannot decode {expected}: wire version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The type the caller asked for.
        expected: &'static str,
        /// The version byte found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The bytes hold a different message type.
    #[error("cannot decode {expected}: the bytes hold a {found}")]
    WrongType {
        /// The type the caller asked for.
        expected: &'static str,
        /// The type name found on the wire (control characters escaped, cut
        /// to a bounded length: it comes from the peer).
        found: String,
    },
    /// The bytes are truncated or corrupt.
    #[error("cannot decode {expected}: {reason}")]
    Malformed {
        /// The type the caller asked for.
        expected: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// A whole message was read but bytes were left over.
    #[error("cannot decode {expected}: {count} unexpected bytes after the message")]
    TrailingBytes {
        /// The type the caller asked for.
        expected: &'static str,
        /// How many bytes were left.
        count: usize,
    },
}

/// Encodes `msg` into a new buffer.
pub fn encode<M: Message + Serialize>(msg: &M) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    encode_into(msg, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `msg` to `out`. On error `out` is left as it was.
pub fn encode_into<M: Message + Serialize>(msg: &M, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.push(WIRE_VERSION);
    let result = rmp_serde::encode::write(out, M::TYPE_NAME).and_then(|()| rmp_serde::encode::write_named(out, msg));
    result.map_err(|e| {
        out.truncate(start);
        EncodeError {
            type_name: M::TYPE_NAME,
            reason: e.to_string(),
        }
    })
}

/// Reads the type name written in `bytes` without decoding the body.
pub fn peek_type_name(bytes: &[u8]) -> Result<String, DecodeError> {
    let mut rest = check_version(bytes, "a message")?;
    read_type_name(&mut rest, "a message")
}

/// Decodes a `M` from `bytes`, which must hold exactly one message.
pub fn decode<M: Message + DeserializeOwned>(bytes: &[u8]) -> Result<M, DecodeError> {
    let expected = M::TYPE_NAME;
    let rest = check_version(bytes, expected)?;
    // A reader over the slice itself: strings and byte arrays are read in
    // place (a reader over `&mut &[u8]` copies each one through a buffer
    // with a generic `read_to_end`, the largest cost of a decode).
    let mut de = rmp_serde::Deserializer::from_read_ref(rest);
    let found = <&str>::deserialize(&mut de).map_err(|e| DecodeError::Malformed {
        expected,
        reason: format!("no type name: {e}"),
    })?;
    if found != expected {
        // The name comes off the wire: escaped and bounded before it enters the error.
        let found = crate::error::peer_text(found.as_bytes());
        return Err(DecodeError::WrongType { expected, found });
    }
    let msg = M::deserialize(&mut de).map_err(|e| DecodeError::Malformed {
        expected,
        // The decoder may quote bytes off the wire (an unknown variant name).
        reason: crate::error::peer_text(e.to_string().as_bytes()),
    })?;
    // The borrowing reader does not tell how much is left: the end of the
    // input is where reading one more marker fails for want of bytes.
    match serde::de::IgnoredAny::deserialize(&mut de) {
        Err(rmp_serde::decode::Error::InvalidMarkerRead(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(msg),
        _ => Err(DecodeError::TrailingBytes {
            expected,
            count: trailing_bytes::<M>(rest),
        }),
    }
}

/// How many bytes follow the type name and message at the start of `rest`
/// (the error path of [`decode`] only: a second, copying pass).
#[cold]
fn trailing_bytes<M: DeserializeOwned>(mut rest: &[u8]) -> usize {
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    match String::deserialize(&mut de).and_then(|_| M::deserialize(&mut de)) {
        Ok(_) => rest.len(),
        Err(_) => 0,
    }
}

fn check_version<'a>(bytes: &'a [u8], expected: &'static str) -> Result<&'a [u8], DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty { expected }),
        Some((&WIRE_VERSION, rest)) => Ok(rest),
        Some((&found, _)) => Err(DecodeError::UnsupportedVersion {
            expected,
            found,
            supported: WIRE_VERSION,
        }),
    }
}

fn read_type_name(rest: &mut &[u8], expected: &'static str) -> Result<String, DecodeError> {
    let mut de = rmp_serde::Deserializer::new(rest);
    String::deserialize(&mut de).map_err(|e| DecodeError::Malformed {
        expected,
        reason: format!("no type name: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageHeader;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Sample {
        values: Vec<f64>,
        label: String,
        header: MessageHeader,
    }
    impl Message for Sample {
        const TYPE_NAME: &'static str = "tests::Sample";
        fn header(&self) -> &MessageHeader {
            &self.header
        }
        fn header_mut(&mut self) -> &mut MessageHeader {
            &mut self.header
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Other {
        header: MessageHeader,
    }
    impl Message for Other {
        const TYPE_NAME: &'static str = "tests::Other";
        fn header(&self) -> &MessageHeader {
            &self.header
        }
        fn header_mut(&mut self) -> &mut MessageHeader {
            &mut self.header
        }
    }

    fn sample() -> Sample {
        Sample {
            values: vec![1.0, 2.5, -3.0],
            label: "abc".into(),
            header: MessageHeader::with_priority(231).with_correlation_of(7),
        }
    }

    trait WithCorr {
        fn with_correlation_of(self, n: u128) -> Self;
    }
    impl WithCorr for MessageHeader {
        fn with_correlation_of(mut self, n: u128) -> Self {
            self.correlation_id = Some(uuid::Uuid::from_u128(n));
            self
        }
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let s = sample();
        let bytes = encode(&s).unwrap();
        assert_eq!(bytes[0], WIRE_VERSION);
        assert_eq!(peek_type_name(&bytes).unwrap(), "tests::Sample");
        assert_eq!(decode::<Sample>(&bytes).unwrap(), s);
    }

    #[test]
    fn empty_input_is_a_typed_error() {
        assert_eq!(
            decode::<Sample>(&[]),
            Err(DecodeError::Empty {
                expected: "tests::Sample"
            })
        );
    }

    #[test]
    fn foreign_version_is_reported() {
        let mut bytes = encode(&sample()).unwrap();
        bytes[0] = 9;
        assert_eq!(
            decode::<Sample>(&bytes),
            Err(DecodeError::UnsupportedVersion {
                expected: "tests::Sample",
                found: 9,
                supported: WIRE_VERSION
            })
        );
    }

    #[test]
    fn wrong_type_names_both_types() {
        let bytes = encode(&Other {
            header: MessageHeader::new(),
        })
        .unwrap();
        let err = decode::<Sample>(&bytes).unwrap_err();
        assert_eq!(
            err,
            DecodeError::WrongType {
                expected: "tests::Sample",
                found: "tests::Other".into()
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("tests::Sample") && text.contains("tests::Other"),
            "{text}"
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&sample()).unwrap();
        for cut in 0..bytes.len() {
            let err = decode::<Sample>(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, DecodeError::Empty { .. } | DecodeError::Malformed { .. }),
                "cut {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.extend_from_slice(&[0xc0, 0xc0]);
        assert_eq!(
            decode::<Sample>(&bytes),
            Err(DecodeError::TrailingBytes {
                expected: "tests::Sample",
                count: 2
            })
        );
    }

    #[test]
    fn huge_declared_lengths_do_not_allocate_or_panic() {
        // version, type name, then a map header claiming 2^32-1 entries and a
        // str32 claiming 4 GiB.
        let mut bytes = vec![WIRE_VERSION];
        rmp_serde::encode::write(&mut bytes, "tests::Sample").unwrap();
        bytes.extend_from_slice(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0xdb, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(decode::<Sample>(&bytes), Err(DecodeError::Malformed { .. })));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<Sample>(&bytes);
            let _ = peek_type_name(&bytes);
        }

        #[test]
        fn corrupting_one_byte_never_panics(idx in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = encode(&sample()).unwrap();
            let i = idx.index(bytes.len());
            bytes[i] = byte;
            let _ = decode::<Sample>(&bytes);
        }
    }
}
