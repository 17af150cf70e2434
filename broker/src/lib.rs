//! # ferry-broker
//!
//! Ferry's queue protocol on Redis Streams. The SDK (`ferry-queue`) builds
//! on it; operators can read everything it writes with `redis-cli`.
//!
//! A queue is four streams (critical, high, normal, low) read through one
//! consumer group, a delayed set for scheduled jobs and retries, a
//! dead-letter stream and a counters hash. Every step that moves a job
//! between keys is one Lua script, so a crash between steps loses nothing:
//! delivery is at least once.
//!
//! # Layout
//! - [`keys`]: every key name (all of a queue's keys share the hash tag
//!   `{queue}`), and the validated [`QueueName`] and [`Prefix`].
//! - [`priority`]: the four priorities.
//! - [`envelope`]: the fields of a stream entry; decoding that never panics.
//! - [`scripts`]: the Lua scripts, one per atomic operation (`lua/*.lua`),
//!   and the helpers they share (`lua/shared/*.lua`).
//! - [`queue`]: [`Queue`], one queue's keys and settings.
//! - [`producer`]: enqueue (XADD / ZADD), single or batched.
//! - [`consumer`]: [`Consumer`], a worker's handle on a queue:
//!   [`claim`](consumer::claim), [`delivery`](consumer::delivery) parsing,
//!   [`settle`](consumer::settle) (ack, retry, dead-letter).
//! - [`recovery`]: XAUTOCLAIM of expired leases, lease renewal, idle consumer removal.
//! - [`delayed`]: promotion of due delayed jobs and retries.
//! - [`dead_letter`]: list, replay and purge dead-letter entries.
//! - [`dead_query`]: find dead letters by entry or job id, filter and page
//!   them, replay every match.
//! - [`discovery`]: the queues under a prefix (SCAN).
//! - [`stats`]: depth and counters.
//! - [`status`]: a job's status by id.
//! - [`listing`]: a queue's jobs by state, a page at a time.
//! - [`streams`]: each priority stream's consumer-group lag and oldest pending entry.
//! - [`cancel`]: cancelling a job by id.
//! - [`reprioritise`]: a waiting job to another priority.
//! - [`schedules`]: cron and periodic schedules, fired once per tick fleet-wide.
//! - [`workers`]: live workers' registrations.
//! - [`events`]: the lifecycle events stream.
//! - [`rate_limit`]: a queue's rate limit (GCRA in the claim scripts).
//! - [`settings`]: pause and resume, maximum depth, record retention.
//! - [`backoff`]: retry delays.
//! - [`error`]: error types.
//! - [`prometheus`]: the Prometheus text format of the SDK's and `ferry serve`'s metrics.
//!
//! ```no_run
//! # async fn example() -> Result<(), ferry_broker::Error> {
//! use ferry_broker::{NewJob, Priority, Queue, Schedule};
//! let client = redis::Client::open("redis://127.0.0.1:6379")?;
//! let mut conn = client.get_multiplexed_async_connection().await?;
//! let queue = Queue::new("emails")?;
//! let ids = queue
//!     .enqueue(&mut conn, &[NewJob {
//!         job_type: "welcome".into(),
//!         payload: r#"{"to":"ada@example.com"}"#.into(),
//!         priority: Priority::High,
//!         max_retries: 3,
//!         schedule: Schedule::Now,
//!         id: None,
//!         retention_ms: None,
//!         concurrency_key: None,
//!     }])
//!     .await?;
//! # Ok(()) }
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod backoff;
pub mod batch;
pub mod batches;
pub mod cancel;
pub mod concurrency;
pub mod consumer;
pub mod dead_letter;
pub mod dead_query;
pub mod delayed;
pub mod dependencies;
pub mod discovery;
pub mod envelope;
pub mod error;
pub mod events;
pub mod flows;
pub mod keys;
pub mod listing;
pub mod priority;
pub mod producer;
pub mod prometheus;
pub mod queue;
pub mod rate_gates;
pub mod rate_limit;
pub mod recovery;
pub mod remote_deps;
mod reply;
pub mod reprioritise;
pub mod schedules;
pub mod scripts;
pub mod settings;
pub mod stats;
pub mod status;
pub mod streams;
pub mod workers;

pub use backoff::Backoff;
pub use batch::{BatchKey, PartialBatch};
pub use batches::{
    BatchState, BatchStatus, Callback, CallbackState, CreatedBatch, NewBatch,
    MAX_BATCH_JOBS_PER_CALL,
};
pub use cancel::CancelOutcome;
pub use concurrency::{Concurrency, GateState, Scope as ConcurrencyScope};
pub use consumer::claim::{Claimed, Tails};
pub use consumer::{
    record_fields, Consumer, DeadLetterKind, DeadLettered, Delivery, EntryId, Finished, Settled,
};
pub use dead_letter::DeadLetter;
pub use dead_query::{DeadFilter, DeadPage, ReplayedLetter};
pub use delayed::Promoted;
pub use dependencies::{EnqueuedAfter, OnDependencyFailure};
pub use envelope::{Envelope, Malformed};
pub use error::{ConfigError, Error, Result};
pub use events::Event;
pub use flows::{EnqueuedFlow, FlowGraph, FlowJob, FlowNode, MAX_FLOW_DEPTH, MAX_FLOW_JOBS};
pub use keys::{Keys, Prefix, QueueName, GROUP};
pub use listing::{JobPage, ListState};
pub use priority::Priority;
pub use producer::{Duplicate, Enqueued, Lifetime, NewJob, OnDuplicate, Schedule, UniqueLock};
pub use queue::{now_ms, Queue, DEFAULT_MAX_PAYLOAD_BYTES};
pub use rate_gates::{RateGate, RateLimits};
pub use rate_limit::{RateLimit, RateState};
pub use recovery::{RecoverOptions, Recovered};
pub use reply::RawFields;
pub use reprioritise::Reprioritised;
pub use schedules::{
    FireRound, Missed, NewSchedule, Recurrence, ScheduleInfo, ScheduleName, Upserted,
};
pub use settings::Settings;
pub use stats::QueueStats;
pub use stats::TimingBatch;
pub use status::{JobState, JobStatus};
pub use streams::StreamInfo;
pub use workers::WorkerInfo;
