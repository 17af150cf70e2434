//! Unique jobs with a raw JSON payload, for `ferry enqueue --unique` and
//! the enqueue route's `unique` object: one job per uniqueness key while
//! the key is held ([`Queue::enqueue_unique`](ferry_broker::Queue::enqueue_unique),
//! decided in one script). A duplicate is not an error unless asked: the
//! reply carries the job that holds the key.
//!
//! A key derived from the arguments is the SDK's
//! ([`ferry_queue::Unique::by_args`]): `<type>:<UUID v5 of the payload's
//! canonical JSON>`, so a job enqueued here and the same job enqueued by a
//! service are one key.

use std::borrow::Cow;

use ferry_broker::{Duplicate, Lifetime, NewJob, Schedule, UniqueLock};
use serde::Serialize;

use crate::admin::Admin;
use crate::enqueue::{check_payload, Enqueued, RawJob};
use crate::error::{Error, Result};

/// How a job is kept unique: its key, how long the key is held, and what
/// a duplicate does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueSpec {
    /// The key; `None` derives it from the job's type and payload
    /// ([`args_key`]).
    pub key: Option<String>,
    /// How long the key is held (until the job finishes by default).
    pub lifetime: Lifetime,
    /// A duplicate fails with [`Error::DuplicateUnique`] instead of
    /// answering with the job that holds the key.
    pub error_on_duplicate: bool,
}

impl UniqueSpec {
    /// Keyed by the job's type and payload, held until it finishes.
    pub fn by_args() -> Self {
        Self {
            key: None,
            lifetime: Lifetime::UntilFinished,
            error_on_duplicate: false,
        }
    }

    /// Keyed by `key`, held until the job finishes.
    pub fn key(key: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            ..Self::by_args()
        }
    }

    /// The broker's lock for a job of `job_type` with `payload` (JSON).
    ///
    /// # Errors
    /// [`Error::Usage`] for a key that is empty, longer than 512 bytes or
    /// holds a control character, or a throttle or debounce of zero.
    pub fn lock(&self, job_type: &str, payload: &str) -> Result<UniqueLock> {
        let key = match &self.key {
            Some(k) => k.clone(),
            None => args_key(job_type, payload),
        };
        UniqueLock::new(key, self.lifetime).map_err(|e| Error::Usage(e.to_string()))
    }
}

/// The key of a job by its arguments: the SDK's
/// [`Unique::by_args_key`](ferry_queue::Unique::by_args_key),
/// `<job_type>:<UUID v5>` of the payload's canonical JSON (object keys
/// sorted at every level, no whitespace), so equal arguments are one key
/// whatever their order and spacing.
pub fn args_key(job_type: &str, payload: &str) -> String {
    ferry_queue::Unique::by_args_key(job_type, payload)
}

/// Why a unique enqueue wrote no new job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateKind {
    /// A job holding the key exists; it was left alone.
    Existing,
    /// A debounced job holding the key was still waiting: its payload was
    /// replaced and its delay restarted.
    Debounced,
}

/// The job a duplicate was folded into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DuplicateOf {
    /// The id of the job that holds the key (the reply's `id`).
    pub of: String,
    /// existing (left alone) or debounced (its payload replaced, its delay
    /// restarted).
    pub kind: DuplicateKind,
}

impl Admin {
    /// Enqueues `job` to `queue` unless a job holding its uniqueness key
    /// exists (one script). A duplicate answers with the holder's id and
    /// [`Enqueued::duplicate`] set, unless `unique` asks for an error. The
    /// job gets a UUID v7 id; a debounced job is delayed by the debounce.
    ///
    /// # Errors
    /// [`Error::Usage`] for a job with an id of its own or a delay with a
    /// debounce, a bad key or window; [`Error::DuplicateUnique`] for a
    /// duplicate when asked for; otherwise as [`Admin::enqueue`].
    pub async fn enqueue_unique(
        &self,
        queue: &str,
        job: RawJob,
        unique: &UniqueSpec,
    ) -> Result<Enqueued> {
        if job.id.is_some() {
            return Err(Error::Usage(
                "a unique job gets an id of Ferry's (a UUID v7): leave out the id".into(),
            ));
        }
        if job.delay.is_some() && matches!(unique.lifetime, Lifetime::Debounce(_)) {
            return Err(Error::Usage(
                "a debounce sets the job's delay: leave out the delay".into(),
            ));
        }
        let q = self.queue(queue)?;
        let payload = check_payload(&job.payload)?.to_owned();
        let lock = unique.lock(&job.job_type, &payload)?;
        let new = NewJob {
            job_type: Cow::Owned(job.job_type),
            payload,
            priority: job.priority,
            max_retries: job.max_retries,
            schedule: job.delay.map_or(Schedule::Now, Schedule::After),
            id: None,
            retention_ms: job.retention_ms,
            concurrency_key: job.concurrency_key,
        };
        let done = q
            .enqueue_unique(&mut self.conn(), &new, &lock)
            .await
            .map_err(|e| self.fail(e))?;
        let duplicate = done.duplicate.map(|d| DuplicateOf {
            of: done.id.clone(),
            kind: match d {
                Duplicate::Existing => DuplicateKind::Existing,
                Duplicate::Debounced => DuplicateKind::Debounced,
            },
        });
        if let (Some(d), true) = (&duplicate, unique.error_on_duplicate) {
            return Err(Error::DuplicateUnique {
                queue: queue.to_owned(),
                key: lock.key().to_owned(),
                id: done.id,
                debounced: d.kind == DuplicateKind::Debounced,
            });
        }
        Ok(Enqueued {
            queue: queue.to_owned(),
            id: done.id,
            unique_key: Some(lock.key().to_owned()),
            duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_arguments_are_one_key_whatever_their_order() {
        let a = args_key("sync", r#"{"a":1,"b":{"y":[1,2],"x":null}}"#);
        let b = args_key("sync", r#" { "b": {"x": null, "y": [1, 2]}, "a": 1 } "#);
        assert_eq!(a, b);
        assert_ne!(a, args_key("sync", r#"{"a":2,"b":{"x":null,"y":[1,2]}}"#));
        assert_ne!(a, args_key("other", r#"{"a":1,"b":{"y":[1,2],"x":null}}"#));
        // The form: the type, then the UUID v5 of the canonical JSON.
        let canonical = r#"{"a":1,"b":{"x":null,"y":[1,2]}}"#;
        let v5 = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, canonical.as_bytes());
        assert_eq!(a, format!("sync:{v5}"));
    }

    #[test]
    fn keys_and_windows_are_checked() {
        let bad = |u: UniqueSpec| u.lock("t", "{}").unwrap_err().kind();
        assert_eq!(bad(UniqueSpec::key("")), crate::ErrorKind::Usage);
        assert_eq!(
            bad(UniqueSpec::key("k".repeat(513))),
            crate::ErrorKind::Usage
        );
        assert_eq!(bad(UniqueSpec::key("k\n")), crate::ErrorKind::Usage);
        let mut zero = UniqueSpec::key("k");
        zero.lifetime = Lifetime::Throttle(std::time::Duration::ZERO);
        assert_eq!(bad(zero), crate::ErrorKind::Usage);
        assert!(UniqueSpec::key("k".repeat(512)).lock("t", "{}").is_ok());
    }
}
