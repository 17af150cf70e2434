//! Unique jobs: one job per uniqueness key while the key is held
//! (`enqueue_unique.lua`). The lock is `P:{Q}:unique` (field = key, value
//! = `<lifetime>:<job id>`) with `P:{Q}:unique_expiry` (when to look at a
//! lock again); a lock holds only while its holder is in the state its
//! lifetime names, looked up at each enqueue, so a job that ends in any way
//! frees its key at once, and no lost lock blocks a key for good.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::Value;

use super::NewJob;
use crate::error::{ConfigError, Error, Result};
use crate::queue::{now_ms, Queue};
use crate::{reply, scripts};

/// Longest uniqueness key, in bytes.
pub const MAX_UNIQUE_KEY_LEN: usize = 512;

/// How long a uniqueness key is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// While the job waits for its first start (scheduled or queued).
    UntilStarted,
    /// Until the job ends in any way: succeeded, dead, cancelled or gone.
    UntilFinished,
    /// Throttle: for this long from the enqueue, whatever the job does;
    /// duplicates within it are dropped.
    Throttle(Duration),
    /// Debounce: the job is delayed by this long; a duplicate while it
    /// still waits replaces its payload and restarts the delay.
    Debounce(Duration),
}

impl Lifetime {
    fn script_args(self) -> (&'static str, u64) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        match self {
            Lifetime::UntilStarted => ("started", 0),
            Lifetime::UntilFinished => ("finished", 0),
            Lifetime::Throttle(d) => ("ttl", ms(d)),
            Lifetime::Debounce(d) => ("debounce", ms(d)),
        }
    }
}

/// A uniqueness key and how long it is held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueLock {
    key: String,
    lifetime: Lifetime,
}

impl UniqueLock {
    /// Checks `key` (1 to [`MAX_UNIQUE_KEY_LEN`] bytes, no control
    /// characters) and a throttle or debounce of at least 1 ms.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `unique`.
    pub fn new(key: impl Into<String>, lifetime: Lifetime) -> Result<Self, ConfigError> {
        let key = key.into();
        let bad = |reason: String| ConfigError::InvalidSetting {
            name: "unique",
            reason,
        };
        if key.is_empty() || key.len() > MAX_UNIQUE_KEY_LEN {
            return Err(bad(format!(
                "the key is {} bytes: use 1 to {MAX_UNIQUE_KEY_LEN}",
                key.len()
            )));
        }
        if key.chars().any(char::is_control) {
            return Err(bad("the key holds a control character".into()));
        }
        if let Lifetime::Throttle(d) | Lifetime::Debounce(d) = lifetime {
            if d.is_zero() {
                return Err(bad("a throttle or debounce of zero holds nothing".into()));
            }
        }
        Ok(Self { key, lifetime })
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How long it is held.
    pub fn lifetime(&self) -> Lifetime {
        self.lifetime
    }
}

/// What a unique enqueue did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id: the new job's, or the existing one's.
    pub id: String,
    /// `None` for a new job; else why no job was written.
    pub duplicate: Option<Duplicate>,
}

/// Why a unique enqueue wrote no new job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplicate {
    /// A job holding the key exists; it was left alone.
    Existing,
    /// A debounced job holding the key was still waiting: its payload was
    /// replaced and its delay restarted.
    Debounced,
}

impl Queue {
    /// Enqueues `job` unless a job holding `lock`'s key exists, in one
    /// script: a duplicate returns the holder's id with
    /// [`Enqueued::duplicate`] set, never an error. The job gets a UUID v7
    /// id (its own [`NewJob::id`] is ignored); a debounced job is delayed
    /// by the debounce, others as their schedule says.
    ///
    /// # Errors
    /// As [`Queue::enqueue`] (a [`ConfigError`] for an invalid job;
    /// [`Error::QueueFull`]; [`Error::Redis`]).
    pub async fn enqueue_unique<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        job: &NewJob,
        lock: &UniqueLock,
    ) -> Result<Enqueued> {
        self.check(job)?;
        let (lifetime, ms) = lock.lifetime.script_args();
        let delay = match lock.lifetime {
            Lifetime::Debounce(_) => ms,
            _ => match job.schedule {
                super::Schedule::Now => 0,
                super::Schedule::After(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                super::Schedule::At(at) => at.saturating_sub(now_ms()),
            },
        };
        let id = uuid::Uuid::now_v7().to_string();
        let mut inv = self.invoke(&scripts::ENQUEUE_UNIQUE);
        inv.key(self.keys().unique())
            .key(self.keys().unique_expiry());
        inv.arg(&lock.key)
            .arg(lifetime)
            .arg(ms)
            .arg(&id)
            .arg(job.priority.script_index())
            .arg(job.job_type.as_ref())
            .arg(&job.payload)
            .arg(job.max_retries)
            .arg(delay)
            .arg(job.concurrency_key.as_deref().unwrap_or_default());
        let v: Value = inv.invoke_async(conn).await?;
        let bad = || Error::Protocol(format!("enqueue_unique: {v:?}"));
        let items = reply::array(&v).ok_or_else(bad)?;
        let state = items.first().and_then(reply::string).ok_or_else(bad)?;
        let number = |i: usize| {
            items
                .get(i)
                .and_then(reply::int)
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0)
        };
        if state == "full" {
            return Err(Error::QueueFull {
                queue: self.name().to_string(),
                depth: number(1),
                max_depth: number(2),
            });
        }
        let second = items.get(1).and_then(reply::string).ok_or_else(bad)?;
        let duplicate = match state.as_str() {
            "ok" => None,
            "duplicate" => Some(Duplicate::Existing),
            "debounced" => Some(Duplicate::Debounced),
            _ => return Err(bad()),
        };
        Ok(Enqueued {
            id: second,
            duplicate,
        })
    }
}
