//! [`Unique`]: how [`Client::enqueue_unique`](crate::Client::enqueue_unique)
//! keys a job, how long the key is held, and what a duplicate does.

use std::time::Duration;

use ferry_broker::{Lifetime, UniqueLock};
use serde_json::Value;

use crate::error::ConfigError;

/// A job's uniqueness: its key (given, or derived from its type and
/// payload) and how long the key is held (default: until the job ends in
/// any way). A duplicate returns the existing job's id, flagged, unless
/// [`Unique::error_on_duplicate`] asks for an error.
///
/// ```
/// use std::time::Duration;
/// use ferry_queue::Unique;
/// let one_per_account = Unique::key("sync:account-42");
/// let same_args_once_a_minute = Unique::by_args().throttle(Duration::from_secs(60));
/// let settle_first = Unique::by_args().debounce(Duration::from_secs(5));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unique {
    key: Option<String>,
    lifetime: Lifetime,
    error_on_duplicate: bool,
}

impl Unique {
    /// Keyed by the job's type and payload: a stable hash (UUID v5) of its
    /// canonical JSON (object keys sorted), so equal arguments are one key
    /// whatever their order.
    pub fn by_args() -> Self {
        Self {
            key: None,
            lifetime: Lifetime::UntilFinished,
            error_on_duplicate: false,
        }
    }

    /// Keyed by `key` (1 to 512 bytes).
    pub fn key(key: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            ..Self::by_args()
        }
    }

    /// Held while the job waits to start (scheduled or queued): once it
    /// runs, a duplicate is a new job.
    pub fn until_started(mut self) -> Self {
        self.lifetime = Lifetime::UntilStarted;
        self
    }

    /// Held until the job ends in any way (the default): succeeded, dead,
    /// cancelled, or removed.
    pub fn until_finished(mut self) -> Self {
        self.lifetime = Lifetime::UntilFinished;
        self
    }

    /// Throttle: held for `window` from the enqueue, whatever the job
    /// does; duplicates within it are dropped.
    pub fn throttle(mut self, window: Duration) -> Self {
        self.lifetime = Lifetime::Throttle(window);
        self
    }

    /// Debounce: the job waits `delay`; a duplicate while it waits
    /// replaces its payload and restarts the delay, so a burst runs once,
    /// with the latest payload, `delay` after the burst.
    pub fn debounce(mut self, delay: Duration) -> Self {
        self.lifetime = Lifetime::Debounce(delay);
        self
    }

    /// A duplicate fails with [`Error::DuplicateJob`](crate::Error::DuplicateJob)
    /// instead of returning the existing job's id.
    pub fn error_on_duplicate(mut self) -> Self {
        self.error_on_duplicate = true;
        self
    }

    /// True when a duplicate is an error.
    pub(crate) fn errors(&self) -> bool {
        self.error_on_duplicate
    }

    /// The broker's lock for a job of `job_type` with `payload` (JSON).
    pub(crate) fn lock(&self, job_type: &str, payload: &str) -> Result<UniqueLock, ConfigError> {
        let key = match &self.key {
            Some(k) => k.clone(),
            None => Self::by_args_key(job_type, payload),
        };
        UniqueLock::new(key, self.lifetime)
    }

    /// The key [`Unique::by_args`] derives for a job of `job_type` with
    /// `payload` (JSON text): `<job_type>:<UUID v5>` of the payload's
    /// canonical JSON (object keys sorted at every level, no whitespace),
    /// so equal arguments are one key whatever their order and spacing. A
    /// payload that is not JSON is hashed as it is.
    ///
    /// For a producer that enqueues raw JSON (the `ferry` command, the HTTP
    /// API) and must key a job as a service enqueuing the same arguments
    /// through [`Client::enqueue_unique`](crate::Client::enqueue_unique) would.
    ///
    /// ```
    /// use ferry_queue::Unique;
    /// let a = Unique::by_args_key("sync", r#"{"b":2,"a":1}"#);
    /// let b = Unique::by_args_key("sync", r#"{ "a": 1, "b": 2 }"#);
    /// assert_eq!(a, b);
    /// assert!(a.starts_with("sync:"));
    /// ```
    pub fn by_args_key(job_type: &str, payload: &str) -> String {
        let canonical = serde_json::from_str::<Value>(payload)
            .map(|v| canonical(&v))
            .unwrap_or_else(|_| payload.to_owned());
        let hash = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, canonical.as_bytes());
        format!("{job_type}:{hash}")
    }
}

fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_arguments_are_one_key_whatever_their_order() {
        let a = Unique::by_args()
            .lock("sync", r#"{"a":1,"b":{"y":[1,2],"x":null}}"#)
            .unwrap();
        let b = Unique::by_args()
            .lock("sync", r#"{"b":{"x":null,"y":[1,2]},"a":1}"#)
            .unwrap();
        let c = Unique::by_args()
            .lock("sync", r#"{"a":2,"b":{"x":null,"y":[1,2]}}"#)
            .unwrap();
        let d = Unique::by_args()
            .lock("other", r#"{"a":1,"b":{"y":[1,2],"x":null}}"#)
            .unwrap();
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        assert_ne!(a.key(), d.key());
    }

    #[test]
    fn keys_and_windows_are_checked() {
        assert!(Unique::key("").lock("t", "{}").is_err());
        assert!(Unique::key("k".repeat(513)).lock("t", "{}").is_err());
        assert!(Unique::key("k\n").lock("t", "{}").is_err());
        assert!(Unique::key("k")
            .throttle(Duration::ZERO)
            .lock("t", "{}")
            .is_err());
        assert!(Unique::key("k".repeat(512)).lock("t", "{}").is_ok());
    }
}
