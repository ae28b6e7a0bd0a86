//! Queue configuration: capacity, backpressure strategy and send timeout.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The largest capacity a [`MessageQueue`](super::MessageQueue) accepts (2^24 messages).
pub const MAX_QUEUE_CAPACITY: usize = 1 << 24;

/// What a send does when the queue is full.
///
/// Parsed from text with [`FromStr`] (case-insensitive: `block`, `reject`,
/// `drop_oldest`, `drop-oldest`, `dropoldest`), shown with [`fmt::Display`]
/// in snake case, and (de)serialized by serde in snake case (`"drop_oldest"`);
/// deserialization also accepts the variant names (`"DropOldest"`) and
/// `"drop-oldest"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backpressure {
    /// Wait for room (async or thread-blocking), until the queue is closed or
    /// the send times out. [`try_send`](super::MessageQueue::try_send) never
    /// waits and fails with [`SendError::Full`](super::SendError::Full).
    #[default]
    #[serde(alias = "Block")]
    Block,
    /// Fail at once with [`SendError::Full`](super::SendError::Full), handing
    /// the message back.
    #[serde(alias = "Reject")]
    Reject,
    /// Accept the send and drop one message: the oldest message of the lowest
    /// non-empty band, where the incoming message's band counts as a
    /// candidate. If the incoming message's band is strictly lower than every
    /// queued message's band, the incoming message itself is dropped, so a
    /// low-priority message never evicts a higher-priority one.
    #[serde(alias = "DropOldest", alias = "drop-oldest")]
    DropOldest,
}

impl Backpressure {
    /// All strategies.
    pub const ALL: [Backpressure; 3] = [Backpressure::Block, Backpressure::Reject, Backpressure::DropOldest];

    /// Snake-case name (`block`, `reject`, `drop_oldest`).
    pub const fn name(self) -> &'static str {
        match self {
            Backpressure::Block => "block",
            Backpressure::Reject => "reject",
            Backpressure::DropOldest => "drop_oldest",
        }
    }
}

impl fmt::Display for Backpressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text given to [`Backpressure::from_str`] names no strategy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backpressure strategy `{0}`: expected one of `block`, `reject`, `drop_oldest` (also `drop-oldest`, `dropoldest`), case-insensitive")]
pub struct UnknownBackpressure(pub String);

impl FromStr for Backpressure {
    type Err = UnknownBackpressure;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "block" => Ok(Backpressure::Block),
            "reject" => Ok(Backpressure::Reject),
            "drop_oldest" | "drop-oldest" | "dropoldest" => Ok(Backpressure::DropOldest),
            _ => Err(UnknownBackpressure(s.to_owned())),
        }
    }
}

/// How to build a [`MessageQueue`](super::MessageQueue).
///
/// ```
/// use std::time::Duration;
/// use dotcompute::queue::{Backpressure, QueueConfig, QueueConfigError, MAX_QUEUE_CAPACITY};
///
/// let config = QueueConfig::new(1024)
///     .with_backpressure(Backpressure::Block)
///     .with_send_timeout(Duration::from_millis(50));
/// assert_eq!(config.validate(), Ok(()));
/// assert_eq!(QueueConfig::new(0).validate(), Err(QueueConfigError::ZeroCapacity));
/// assert!(QueueConfig::new(MAX_QUEUE_CAPACITY + 1).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most messages held at once, all bands together: 1 to [`MAX_QUEUE_CAPACITY`].
    pub capacity: usize,
    /// What a send does when the queue is full.
    pub backpressure: Backpressure,
    /// Longest time [`send`](super::MessageQueue::send) and
    /// [`send_blocking`](super::MessageQueue::send_blocking) wait for room
    /// under [`Backpressure::Block`]; `None` waits until there is room or the
    /// queue closes.
    pub send_timeout: Option<Duration>,
    /// Record the in-queue wait of one message in this many
    /// ([`wait_histogram`](super::MessageQueue::wait_histogram)): 1 (the
    /// default) records every message, `n` records the first and then every
    /// `n`-th, reading the clock only for those; 0 records none. The
    /// queue's counters ([`QueueStats`](super::QueueStats)) are exact
    /// whatever this is.
    pub wait_sample_every: u32,
}

impl QueueConfig {
    /// A configuration with the given capacity, [`Backpressure::Block`] and no
    /// send timeout. Not validated until [`QueueConfig::validate`] or
    /// [`MessageQueue::new`](super::MessageQueue::new).
    pub const fn new(capacity: usize) -> Self {
        QueueConfig {
            capacity,
            backpressure: Backpressure::Block,
            send_timeout: None,
            wait_sample_every: 1,
        }
    }

    /// Returns the configuration with the given backpressure strategy.
    pub const fn with_backpressure(mut self, backpressure: Backpressure) -> Self {
        self.backpressure = backpressure;
        self
    }

    /// Returns the configuration with the given send timeout (a [`Duration`],
    /// or `None` for no timeout).
    pub fn with_send_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.send_timeout = timeout.into();
        self
    }

    /// Returns the configuration recording the wait of one message in `n`
    /// (see [`wait_sample_every`](Self::wait_sample_every); 0: none).
    pub const fn with_wait_sample_every(mut self, n: u32) -> Self {
        self.wait_sample_every = n;
        self
    }

    /// Checks the capacity is in 1..=[`MAX_QUEUE_CAPACITY`].
    pub const fn validate(&self) -> Result<(), QueueConfigError> {
        if self.capacity == 0 {
            Err(QueueConfigError::ZeroCapacity)
        } else if self.capacity > MAX_QUEUE_CAPACITY {
            Err(QueueConfigError::CapacityTooLarge {
                requested: self.capacity,
                max: MAX_QUEUE_CAPACITY,
            })
        } else {
            Ok(())
        }
    }
}

/// A [`QueueConfig`] that cannot build a queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueConfigError {
    /// The capacity is 0.
    #[error("queue capacity must be at least 1")]
    ZeroCapacity,
    /// The capacity is above [`MAX_QUEUE_CAPACITY`].
    #[error("queue capacity {requested} exceeds the maximum of {max}")]
    CapacityTooLarge {
        /// The capacity asked for.
        requested: usize,
        /// The largest capacity allowed.
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backpressure_parses_every_documented_spelling() {
        for (text, want) in [
            ("block", Backpressure::Block),
            ("BLOCK", Backpressure::Block),
            ("Reject", Backpressure::Reject),
            ("drop_oldest", Backpressure::DropOldest),
            ("drop-oldest", Backpressure::DropOldest),
            ("DropOldest", Backpressure::DropOldest),
            ("DROP_OLDEST", Backpressure::DropOldest),
        ] {
            assert_eq!(text.parse::<Backpressure>(), Ok(want), "{text}");
        }
        for bad in ["", "drop", "blocking", " block", "drop oldest"] {
            let err = bad.parse::<Backpressure>().unwrap_err();
            assert_eq!(err, UnknownBackpressure(bad.to_owned()));
            let msg = err.to_string();
            for name in ["block", "reject", "drop_oldest"] {
                assert!(msg.contains(name), "{msg}");
            }
        }
    }

    #[test]
    fn backpressure_display_round_trips() {
        for b in Backpressure::ALL {
            assert_eq!(b.to_string().parse::<Backpressure>(), Ok(b));
        }
        assert_eq!(Backpressure::DropOldest.to_string(), "drop_oldest");
        assert_eq!(Backpressure::default(), Backpressure::Block);
    }

    #[test]
    fn backpressure_serde_is_snake_case_and_accepts_variant_names() {
        assert_eq!(
            serde_json::to_string(&Backpressure::DropOldest).unwrap(),
            "\"drop_oldest\""
        );
        for (text, want) in [
            ("\"drop_oldest\"", Backpressure::DropOldest),
            ("\"DropOldest\"", Backpressure::DropOldest),
            ("\"drop-oldest\"", Backpressure::DropOldest),
            ("\"Block\"", Backpressure::Block),
            ("\"block\"", Backpressure::Block),
            ("\"reject\"", Backpressure::Reject),
        ] {
            let got: Backpressure = serde_json::from_str(text).unwrap();
            assert_eq!(got, want, "{text}");
        }
        assert!(serde_json::from_str::<Backpressure>("\"bogus\"").is_err());
    }

    #[test]
    fn config_validation() {
        assert_eq!(QueueConfig::new(1).validate(), Ok(()));
        assert_eq!(QueueConfig::new(MAX_QUEUE_CAPACITY).validate(), Ok(()));
        assert_eq!(QueueConfig::new(0).validate(), Err(QueueConfigError::ZeroCapacity));
        assert_eq!(
            QueueConfig::new(MAX_QUEUE_CAPACITY + 1).validate(),
            Err(QueueConfigError::CapacityTooLarge {
                requested: MAX_QUEUE_CAPACITY + 1,
                max: MAX_QUEUE_CAPACITY
            })
        );
        let c = QueueConfig::new(4)
            .with_backpressure(Backpressure::Reject)
            .with_send_timeout(Duration::from_secs(1));
        assert_eq!(c.backpressure, Backpressure::Reject);
        assert_eq!(c.send_timeout, Some(Duration::from_secs(1)));
        assert_eq!(c.with_send_timeout(None).send_timeout, None);
    }
}
