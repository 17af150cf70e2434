//! [`Queue`]: one queue's keys and settings. The protocol operations are
//! `impl Queue` blocks in the modules named after them (producer, delayed,
//! dead_letter, stats), and on a [`Consumer`] for the consumer side.

use std::sync::Arc;

use redis::ScriptInvocation;

use crate::consumer::Consumer;
use crate::error::ConfigError;
use crate::keys::{Keys, Prefix, QueueName, GROUP};
use crate::scripts::QueueScript;

/// Default payload limit: 1 MiB of JSON.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// One queue of the protocol: its key names and the settings every
/// operation on it shares. Cheap to clone (the key names are shared).
#[derive(Clone, Debug)]
pub struct Queue {
    keys: Arc<Keys>,
    max_payload_bytes: usize,
    dead_letter_cap: u64,
    sharded_pubsub: bool,
}

impl Queue {
    /// A queue named `name` under the default prefix `ferry`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidQueueName`] for a name outside `[A-Za-z0-9._-]{1,128}`.
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        Self::with_prefix(&Prefix::default(), name)
    }

    /// A queue named `name` under namespace `prefix`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidQueueName`].
    pub fn with_prefix(prefix: &Prefix, name: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: Arc::new(Keys::new(prefix, QueueName::new(name)?)),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            dead_letter_cap: 0,
            sharded_pubsub: false,
        })
    }

    /// Sets the largest payload, in bytes of JSON, accepted at enqueue and at
    /// decode (default 1 MiB). Larger payloads are refused at enqueue and
    /// dead-lettered by workers.
    pub fn max_payload_bytes(mut self, limit: usize) -> Self {
        self.max_payload_bytes = limit;
        self
    }

    /// Caps the dead-letter stream at `cap` entries (oldest dropped first,
    /// counted in the counter `dead_dropped` and logged). 0 keeps every
    /// entry, the default.
    pub fn dead_letter_cap(mut self, cap: u64) -> Self {
        self.dead_letter_cap = cap;
        self
    }

    /// Publishes the queue's notices (finished jobs, cancellations) with
    /// `SPUBLISH`, sharded Pub/Sub (Redis 7.0+), instead of `PUBLISH`: for a
    /// Redis Cluster, where a `PUBLISH` goes to every node over the cluster
    /// bus. Listeners must then `SSUBSCRIBE`. Off by default.
    pub fn sharded_pubsub(mut self, on: bool) -> Self {
        self.sharded_pubsub = on;
        self
    }

    /// True when notices go by `SPUBLISH` ([`Queue::sharded_pubsub`]).
    pub fn uses_sharded_pubsub(&self) -> bool {
        self.sharded_pubsub
    }

    /// A handle for the consumer named `name` (unique per worker process) on
    /// this queue: the claim, settle and lease operations.
    pub fn consumer(&self, name: impl Into<String>) -> Consumer {
        Consumer::new(self.clone(), name.into())
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

    /// The dead-letter cap (0: none).
    pub fn dead_letter_limit(&self) -> u64 {
        self.dead_letter_cap
    }

    /// An invocation of `script` with what every script takes first: the
    /// queue's keys it uses as KEYS and the consumer group as ARGV\[1\].
    pub(crate) fn invoke<'a>(&self, script: &'a QueueScript) -> ScriptInvocation<'a> {
        let code = match (&script.sharded, self.sharded_pubsub) {
            (Some(sharded), true) => sharded,
            _ => &script.script,
        };
        let mut inv = code.prepare_invoke();
        for key in &self.keys.all()[..script.keys] {
            inv.key(key);
        }
        inv.arg(GROUP);
        inv
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
