//! Addresses: NATS subjects built from a namespace and a kernel id.
//!
//! Invariant: every subject this crate publishes to or subscribes on is
//! built here from validated [`Token`]s, so no user-supplied name can add a
//! wildcard (`*`, `>`), split itself into extra tokens (`.`), reach another
//! account's or the server's reserved subjects (`$JS`, `$SYS`, `_INBOX`), or
//! break a JetStream stream name (whitespace, `/`, `\`).
//!
//! A token is 1 to 64 characters from `A–Z a–z 0–9 - _`. A namespace is one
//! to eight tokens joined by dots; its first token may not be `_INBOX`.
//!
//! The subjects of kernel `id` in namespace `ns`:
//!
//! | subject | what travels on it |
//! |---|---|
//! | `ns.kernel.id.in` | the kernel's input (and `call` requests) |
//! | `ns.kernel.id.out` | the kernel's outputs that answer no `call` |
//! | `ns.kernel.id.ctl` | control requests: describe, telemetry, deactivate, reactivate |
//! | `ns.kernel.id.hb` | each replica's heartbeat: node, state, failure, counters |
//!
//! ```
//! use dotcompute_nats::subject::{KernelSubjects, Namespace, Token};
//!
//! let ns = Namespace::new("plant.line-4").unwrap();
//! let id = Token::new("kernel id", "detect").unwrap();
//! let s = KernelSubjects::new(&ns, &id);
//! assert_eq!(s.input(), "plant.line-4.kernel.detect.in");
//! assert_eq!(s.input_stream(), "dc_plant_line-4_detect_in");
//!
//! assert!(Token::new("kernel id", "sensors.>").is_err());
//! assert!(Token::new("kernel id", "a b").is_err());
//! assert!(Namespace::new("_INBOX.x").is_err());
//! ```

use std::fmt;

use crate::error::NatsError;

/// Longest token accepted.
pub const MAX_TOKEN_LEN: usize = 64;
/// Most tokens in a namespace.
pub const MAX_NAMESPACE_TOKENS: usize = 8;

/// One validated subject token: 1–64 characters from `A–Z a–z 0–9 - _`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(String);

impl Token {
    /// Validates `value` as a token; `what` names it in the error ("kernel
    /// id", "node name", "queue group").
    pub fn new(what: &'static str, value: &str) -> Result<Token, NatsError> {
        check_token(what, value)?;
        Ok(Token(value.to_string()))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_token(what: &'static str, value: &str) -> Result<(), NatsError> {
    let invalid = |reason: &'static str| NatsError::InvalidName {
        what,
        value: value.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("it is empty"));
    }
    if value.len() > MAX_TOKEN_LEN {
        return Err(invalid("it is longer than 64 characters"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(invalid(match c {
            '*' | '>' => "it contains a NATS wildcard ('*' or '>')",
            '.' => "it contains '.', which would split it into several subject tokens",
            c if c.is_whitespace() => "it contains whitespace",
            '$' => "it contains '$' (reserved for the server's own subjects)",
            _ => "it may only contain the letters A-Z and a-z, digits, '-' and '_'",
        }));
    }
    Ok(())
}

/// A validated namespace: 1–8 tokens joined by dots, not starting with `_INBOX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    text: String,
}

impl Namespace {
    /// The namespace used when none is given.
    pub const DEFAULT: &'static str = "dotcompute";

    /// Validates `value` (for example `"dotcompute"` or `"plant.line-4"`).
    pub fn new(value: &str) -> Result<Namespace, NatsError> {
        let invalid = |reason: &'static str| NatsError::InvalidName {
            what: "namespace",
            value: value.to_string(),
            reason,
        };
        let tokens: Vec<&str> = value.split('.').collect();
        if tokens.len() > MAX_NAMESPACE_TOKENS {
            return Err(invalid("it has more than 8 dot-separated tokens"));
        }
        for token in &tokens {
            check_token("namespace", token).map_err(|e| match e {
                NatsError::InvalidName { reason, .. } => invalid(reason),
                other => other,
            })?;
        }
        if tokens[0].eq_ignore_ascii_case("_INBOX") {
            return Err(invalid("'_INBOX' is the prefix of reply subjects"));
        }
        Ok(Namespace {
            text: value.to_string(),
        })
    }

    /// The namespace's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace {
            text: Self::DEFAULT.to_string(),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The subjects and JetStream stream names of one kernel (see the module table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSubjects {
    kernel: Token,
    base: String,
    stream_base: String,
}

impl KernelSubjects {
    /// The subjects of kernel `kernel` in `namespace`.
    pub fn new(namespace: &Namespace, kernel: &Token) -> Self {
        KernelSubjects {
            kernel: kernel.clone(),
            base: format!("{}.kernel.{}", namespace.as_str(), kernel.as_str()),
            stream_base: format!("dc_{}_{}", namespace.as_str().replace('.', "_"), kernel.as_str()),
        }
    }

    /// The kernel id.
    pub fn kernel(&self) -> &str {
        self.kernel.as_str()
    }

    /// Where input messages and `call` requests go.
    pub fn input(&self) -> String {
        format!("{}.in", self.base)
    }

    /// Where outputs that answer no `call` go.
    pub fn output(&self) -> String {
        format!("{}.out", self.base)
    }

    /// Where control requests go (every replica answers).
    pub fn control(&self) -> String {
        format!("{}.ctl", self.base)
    }

    /// Where replicas publish their heartbeats.
    pub fn heartbeat(&self) -> String {
        format!("{}.hb", self.base)
    }

    /// The JetStream stream holding the input (JetStream delivery). Two
    /// namespaces that differ only in `.` versus `_` map to the same name;
    /// the stream's subject is checked when it is opened, so such a clash
    /// is an error, never a shared stream.
    pub fn input_stream(&self) -> String {
        format!("{}_in", self.stream_base)
    }

    /// The JetStream stream holding the outputs (JetStream delivery).
    pub fn output_stream(&self) -> String {
        format!("{}_out", self.stream_base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_accept_the_documented_alphabet() {
        for ok in ["a", "detect", "anomaly-detector", "node_7", "A-Z_09", &"x".repeat(64)] {
            assert!(Token::new("kernel id", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn tokens_refuse_wildcards_separators_and_reserved_characters() {
        let cases = [
            ("", "empty"),
            ("*", "wildcard"),
            (">", "wildcard"),
            ("a.b", "split"),
            ("a b", "whitespace"),
            ("a\tb", "whitespace"),
            ("$SYS", "reserved"),
            ("a/b", "may only contain"),
            ("é", "may only contain"),
            ("a\0b", "may only contain"),
        ];
        for (bad, why) in cases {
            match Token::new("kernel id", bad) {
                Err(NatsError::InvalidName { what, reason, .. }) => {
                    assert_eq!(what, "kernel id");
                    assert!(reason.contains(why), "{bad:?}: {reason}");
                }
                other => panic!("{bad:?} accepted: {other:?}"),
            }
        }
        assert!(Token::new("kernel id", &"x".repeat(65)).is_err());
    }

    #[test]
    fn namespaces_are_dotted_tokens() {
        assert_eq!(Namespace::new("a.b-c.d_e").unwrap().as_str(), "a.b-c.d_e");
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "a.*",
            "a.>",
            "_INBOX",
            "_inbox.x",
            "a b",
            "1.2.3.4.5.6.7.8.9",
        ] {
            assert!(Namespace::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Namespace::default().as_str(), "dotcompute");
    }

    #[test]
    fn subjects_and_stream_names() {
        let s = KernelSubjects::new(&Namespace::new("ns.x").unwrap(), &Token::new("k", "echo").unwrap());
        assert_eq!(s.input(), "ns.x.kernel.echo.in");
        assert_eq!(s.output(), "ns.x.kernel.echo.out");
        assert_eq!(s.control(), "ns.x.kernel.echo.ctl");
        assert_eq!(s.heartbeat(), "ns.x.kernel.echo.hb");
        assert_eq!(s.input_stream(), "dc_ns_x_echo_in");
        assert_eq!(s.output_stream(), "dc_ns_x_echo_out");
    }
}
