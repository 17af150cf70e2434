//! A queue's settings (the hash `P:{Q}:settings`): show them, change them,
//! and clear the finished jobs' records. The same for `ferry settings` and
//! `GET`/`PATCH /v1/queues/{queue}/settings`.
//! The rate limit's text form and its live state are in
//! [`rate_limit`](crate::rate_limit).

use std::time::Duration;

use ferry_broker::RateLimit;
use serde::{Deserialize, Deserializer, Serialize};

use crate::admin::Admin;
use crate::error::{Error, Result};

/// A queue's settings as every worker and producer sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueSettings {
    /// The queue.
    pub queue: String,
    /// True while paused: workers claim nothing new.
    pub paused: bool,
    /// The most jobs the queue holds (waiting, running or delayed); past
    /// it an enqueue is refused. Null: no limit.
    pub max_depth: Option<u64>,
    /// How long finished jobs' records are kept, ms (0 keeps none).
    pub retention_ms: u64,
    /// How many finished jobs' records are kept (0 keeps none).
    pub retention_count: u64,
    /// The lifecycle events stream's length cap. Null: events off.
    pub events: Option<u64>,
    /// The rate limit: at most `n` job starts per period, fleet-wide
    /// (`50/1s`, `1000/1m:100` with a burst of 100). Null: no limit.
    #[schema(example = "50/1s")]
    pub rate_limit: Option<String>,
    /// Every concurrency key's rate limit (where a key has none of its
    /// own, `PUT .../rate_limits/key:<K>`): at most `n` starts of one
    /// key's jobs per period. Left out: no limit (so that the settings
    /// of a queue without one read as they always have).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "10/1s")]
    pub key_rate_limit: Option<String>,
    /// The queue-wide concurrency limit: at most this many jobs running
    /// at once. Null: no limit.
    pub concurrency: Option<u32>,
    /// Every concurrency key's limit (where a key has none of its own).
    /// Null: no limit.
    pub key_concurrency: Option<u32>,
    /// Priority weights (critical, high, normal, low). Null: strict
    /// priority.
    pub weights: Option<[u32; 4]>,
}

/// A change to a queue's settings. A field left out stays as it is; `null`
/// turns a limit off (`max_depth`: no limit; `events`: off). Every field
/// is checked before any is written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// The most jobs the queue holds (1 or more), or null for no limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, nullable, minimum = 1)]
    pub max_depth: Option<Option<u64>>,
    /// How long finished jobs' records are kept, ms (0 keeps none). A new
    /// time applies to jobs finishing from then on.
    #[serde(default)]
    pub retention_ms: Option<u64>,
    /// How many finished jobs' records are kept (0 keeps none; the records
    /// past it are removed a few at a time).
    #[serde(default)]
    pub retention_count: Option<u64>,
    /// The events stream's cap (1 or more), or null to turn events off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, nullable, minimum = 1)]
    pub events: Option<Option<u64>>,
    /// The rate limit, `<n>/<period>[:<burst>]`: at most n job starts per
    /// period (`ms`, `s`, `m` or `h`; `50/1s`, `10/500ms`), with up to
    /// `burst` at once after a quiet spell (1 to n; a tenth of n by
    /// default). Null removes the limit. Workers follow a change from
    /// their next claim.
    #[serde(default, deserialize_with = "crate::rate_limit::field")]
    #[schema(value_type = Option<String>, nullable, example = "1000/1m:100")]
    pub rate_limit: Option<Option<RateLimit>>,
    /// Every concurrency key's rate limit, `<n>/<period>[:<burst>]` as
    /// `rate_limit` (a key's own, `PUT .../rate_limits/key:<K>`, wins), or
    /// null to remove it.
    #[serde(default, deserialize_with = "crate::rate_limit::field")]
    #[schema(value_type = Option<String>, nullable, example = "10/1s")]
    pub key_rate_limit: Option<Option<RateLimit>>,
    /// The queue-wide concurrency limit (1 or more), or null for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, nullable, minimum = 1)]
    pub concurrency: Option<Option<u32>>,
    /// Every concurrency key's limit (1 or more), or null for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, nullable, minimum = 1)]
    pub key_concurrency: Option<Option<u32>>,
    /// Priority weights `[critical, high, normal, low]` (not all 0), or
    /// null for strict priority.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<u32>>, nullable)]
    pub weights: Option<Option<[u32; 4]>>,
}

/// A field that is present: `null` is `Some(None)`, absent is `None`.
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// What clearing a queue's records removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ResultsCleared {
    /// The queue.
    pub queue: String,
    /// How many finished jobs' records were deleted.
    pub cleared: u64,
}

/// What `ferry settings` prints: the settings, and how many records
/// `--clear-results` deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettingsReport {
    /// The settings (after any change).
    #[serde(flatten)]
    pub settings: QueueSettings,
    /// Records deleted by `--clear-results`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared: Option<u64>,
}

/// Longest record retention accepted: ten years, in ms.
pub const MAX_RETENTION_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

impl SettingsChange {
    /// True when it changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Checks every field; the first bad one as [`Error::Input`].
    ///
    /// # Errors
    /// A `max_depth` or `events` of 0, a retention past ten years.
    pub fn check(&self) -> Result<()> {
        if self.max_depth == Some(Some(0)) {
            return Err(Error::Input(
                "max_depth 0 would refuse every job; use null (none) for no limit".into(),
            ));
        }
        if self.events == Some(Some(0)) {
            return Err(Error::Input(
                "events 0 keeps no event; use null (off) to turn events off".into(),
            ));
        }
        if let Some(c) = self.concurrency {
            crate::limits::check_limit("concurrency", c)?;
        }
        if let Some(c) = self.key_concurrency {
            crate::limits::check_limit("key_concurrency", c)?;
        }
        if let Some(w) = self.weights {
            crate::limits::check_weights(w)?;
        }
        if self.retention_ms.is_some_and(|ms| ms > MAX_RETENTION_MS) {
            return Err(Error::Input(format!(
                "retention_ms {} is past ten years ({MAX_RETENTION_MS} ms)",
                self.retention_ms.unwrap_or_default()
            )));
        }
        Ok(())
    }
}

impl Admin {
    /// The settings of `queue` (defaults for what is not set).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn settings(&self, queue: &str) -> Result<QueueSettings> {
        let (s, rates, conc, weights) = futures::try_join!(
            async {
                self.client()
                    .settings(queue)
                    .await
                    .map_err(|e| self.fail(e))
            },
            self.rate_limits(queue),
            self.concurrency(queue),
            self.weights(queue),
        )?;
        Ok(QueueSettings {
            queue: queue.to_owned(),
            paused: s.paused,
            max_depth: s.max_depth,
            retention_ms: u64::try_from(s.retention.as_millis()).unwrap_or(u64::MAX),
            retention_count: s.retention_count,
            events: s.events,
            rate_limit: rates.queue.and_then(|r| r.limit).map(|l| l.to_string()),
            key_rate_limit: rates.each_key.map(|l| l.to_string()),
            concurrency: conc.queue,
            key_concurrency: conc.each_key,
            weights,
        })
    }

    /// Applies `change` to `queue`'s settings (every field checked first,
    /// then each written: one HSET or HDEL per field) and returns them as
    /// they are after.
    ///
    /// # Errors
    /// [`Error::Input`] for a bad field (nothing is written); a bad queue
    /// name; Redis errors.
    pub async fn change_settings(
        &self,
        queue: &str,
        change: &SettingsChange,
    ) -> Result<QueueSettings> {
        change.check()?;
        let client = self.client();
        if let Some(depth) = change.max_depth {
            client
                .set_max_depth(queue, depth)
                .await
                .map_err(|e| self.fail(e))?;
        }
        if change.retention_ms.is_some() || change.retention_count.is_some() {
            let now = self.settings(queue).await?;
            let ms = change.retention_ms.unwrap_or(now.retention_ms);
            let count = change.retention_count.unwrap_or(now.retention_count);
            client
                .set_retention(queue, Duration::from_millis(ms), count)
                .await
                .map_err(|e| self.fail(e))?;
        }
        if let Some(events) = change.events {
            client
                .set_events(queue, events)
                .await
                .map_err(|e| self.fail(e))?;
        }
        if let Some(limit) = change.rate_limit {
            client
                .set_rate_limit(queue, limit)
                .await
                .map_err(|e| self.fail(e))?;
        }
        use ferry_broker::ConcurrencyScope as S;
        if let Some(limit) = change.key_rate_limit {
            self.set_rate_limit_of(queue, &S::EachKey, limit).await?;
        }
        if let Some(c) = change.concurrency {
            self.set_limit(queue, &S::Queue, c).await?;
        }
        if let Some(c) = change.key_concurrency {
            self.set_limit(queue, &S::EachKey, c).await?;
        }
        if let Some(w) = change.weights {
            self.set_weights(queue, w).await?;
        }
        self.settings(queue).await
    }

    /// Deletes every finished job's record of `queue` (dead letters stay).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn clear_results(&self, queue: &str) -> Result<ResultsCleared> {
        let cleared = self
            .client()
            .clear_results(queue)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(ResultsCleared {
            queue: queue.to_owned(),
            cleared,
        })
    }
}
