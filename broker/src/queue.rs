//! [`Queue`]: one queue's keys and settings; the protocol operations are
//! `impl Queue` blocks in the modules named after them.

use crate::error::{ConfigError, Result};
use crate::keys::{Keys, QueueName, DEFAULT_PREFIX};

/// Default payload limit: 1 MiB of JSON.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// One queue of the protocol: its key names and the settings every
/// operation on it shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    pub(crate) keys: Keys,
    pub(crate) max_payload_bytes: usize,
    pub(crate) dead_letter_cap: u64,
}

impl Queue {
    /// A queue named `name` under the default prefix `ferry`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidQueueName`] for a name outside `[A-Za-z0-9._-]{1,128}`.
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        Self::with_prefix(DEFAULT_PREFIX, name)
    }

    /// A queue named `name` under namespace `prefix`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidQueueName`] or [`ConfigError::InvalidPrefix`].
    pub fn with_prefix(prefix: &str, name: &str) -> Result<Self, ConfigError> {
        let keys = Keys::new(prefix, QueueName::new(name)?)?;
        Ok(Self {
            keys,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            dead_letter_cap: 0,
        })
    }

    /// Sets the largest payload accepted at enqueue and at decode.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] for 0.
    pub fn max_payload_bytes(mut self, limit: usize) -> Result<Self, ConfigError> {
        self.max_payload_bytes = check_payload_limit(limit)?;
        Ok(self)
    }

    /// A script invocation with the four priority streams as its KEYS,
    /// highest first (the scripts that work across priorities take them so).
    pub(crate) fn on_streams<'a>(&self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        for s in self.keys.streams() {
            inv.key(s);
        }
        inv
    }

    /// Caps the dead-letter stream at `cap` entries (oldest dropped first,
    /// counted in the stats field `dead_dropped` and logged). 0 keeps every
    /// entry, the default.
    pub fn dead_letter_cap(mut self, cap: u64) -> Self {
        self.dead_letter_cap = cap;
        self
    }

    /// The key names of this queue.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        self.keys.queue().as_str()
    }

    /// The payload limit in bytes.
    pub fn payload_limit(&self) -> usize {
        self.max_payload_bytes
    }
}

/// Checks a payload limit (at least 1 byte).
///
/// # Errors
/// [`ConfigError::InvalidSetting`] for 0.
pub fn check_payload_limit(limit: usize) -> Result<usize, ConfigError> {
    if limit == 0 {
        return Err(ConfigError::InvalidSetting {
            name: "max_payload_bytes",
            reason: "must be at least 1".into(),
        });
    }
    Ok(limit)
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
