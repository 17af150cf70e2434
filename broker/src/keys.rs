//! Every Redis key name Ferry uses. Nothing else in Ferry builds key strings.
//!
//! All keys of one queue share the hash tag `{queue}`, so every script that
//! touches a queue addresses a single Redis Cluster slot.

use std::fmt;

use crate::error::ConfigError;
use crate::priority::Priority;

/// The default namespace prefix for every key.
pub const DEFAULT_PREFIX: &str = "ferry";

/// The consumer group every worker of a queue reads through.
pub const GROUP: &str = "workers";

/// Longest queue name accepted.
pub const MAX_QUEUE_NAME_LEN: usize = 128;

/// A validated queue name: `[A-Za-z0-9._-]{1,128}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueName(String);

impl QueueName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidQueueName`] when the name is empty, longer than
    /// 128 bytes, or holds a character outside `[A-Za-z0-9._-]`.
    pub fn new(name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= MAX_QUEUE_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(name))
        } else {
            Err(ConfigError::InvalidQueueName(name))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates a namespace prefix: same alphabet as a queue name, no braces or colons.
///
/// # Errors
/// [`ConfigError::InvalidPrefix`] for an empty, over-long or ill-formed prefix.
pub fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    QueueName::new(prefix)
        .map(|_| ())
        .map_err(|_| ConfigError::InvalidPrefix(prefix.to_owned()))
}

/// The key names of one queue: `{prefix}:{{{queue}}}:{suffix}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    queue: QueueName,
    base: String,
    streams: [String; 4],
}

impl Keys {
    /// Key names for `queue` under the namespace `prefix`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidPrefix`] when the prefix is not `[A-Za-z0-9._-]{1,128}`.
    pub fn new(prefix: &str, queue: QueueName) -> Result<Self, ConfigError> {
        validate_prefix(prefix)?;
        let base = format!("{prefix}:{{{queue}}}");
        let streams = Priority::ALL.map(|p| format!("{base}:{}", p.as_str()));
        Ok(Self {
            queue,
            base,
            streams,
        })
    }

    /// The queue these keys belong to.
    pub fn queue(&self) -> &QueueName {
        &self.queue
    }

    /// STREAM of ready jobs of one priority, read through consumer group [`GROUP`].
    pub fn stream(&self, priority: Priority) -> &str {
        &self.streams[priority.index()]
    }

    /// The four priority STREAMs, highest priority first.
    pub fn streams(&self) -> &[String; 4] {
        &self.streams
    }

    /// ZSET of delayed and retrying jobs; member = envelope JSON, score = run-at (ms since epoch).
    pub fn delayed(&self) -> String {
        format!("{}:delayed", self.base)
    }

    /// STREAM of dead-lettered jobs: the original fields plus `error`, `failed_at`, `priority`.
    pub fn dead(&self) -> String {
        format!("{}:dead", self.base)
    }

    /// HASH of counters: `completed`, `retried`, `dead`, `dead_dropped`, `recovered`, `malformed`.
    pub fn stats(&self) -> String {
        format!("{}:stats", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = Keys::new("ferry", QueueName::new("emails").unwrap()).unwrap();
        assert_eq!(keys.stream(Priority::Critical), "ferry:{emails}:critical");
        assert_eq!(keys.stream(Priority::Low), "ferry:{emails}:low");
        assert_eq!(keys.delayed(), "ferry:{emails}:delayed");
        assert_eq!(keys.dead(), "ferry:{emails}:dead");
        assert_eq!(keys.stats(), "ferry:{emails}:stats");
    }

    #[test]
    fn queue_names_are_validated() {
        for good in ["a", "emails", "A.b_c-9", &"x".repeat(128)] {
            assert!(QueueName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a{b}", "a:b", "é", &"x".repeat(129)] {
            assert!(
                matches!(QueueName::new(bad), Err(ConfigError::InvalidQueueName(_))),
                "{bad}"
            );
        }
        assert!(Keys::new("bad{prefix}", QueueName::new("q").unwrap()).is_err());
    }
}
