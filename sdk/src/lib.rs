//! # ferry-queue
//!
//! The Ferry SDK: enqueue typed jobs with a [`Client`], run typed
//! [`Handler`]s on a [`Worker`]. Jobs live in per-priority Redis streams read
//! through a consumer group: strict priority, FIFO within a priority,
//! at-least-once delivery, retries with backoff, and a dead-letter stream.
//!
//! ```no_run
//! use ferry_queue::{Client, Job, JobContext, JobError, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendWelcome { to: String }
//! impl Job for SendWelcome {
//!     const TYPE: &'static str = "send_welcome";
//!     const QUEUE: &'static str = "emails";
//! }
//!
//! # async fn example() -> ferry_queue::Result<()> {
//! let client = Client::connect("redis://127.0.0.1:6379")?;
//! client.enqueue(&SendWelcome { to: "ada@example.com".into() }).await?;
//!
//! Worker::builder("redis://127.0.0.1:6379")
//!     .handle(|job: SendWelcome, ctx: JobContext| async move {
//!         println!("welcome {} (attempt {})", job.to, ctx.attempt);
//!         Ok::<_, JobError>(())
//!     })
//!     .concurrency(20)
//!     .build()?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! # Layout
//! - [`job`]: the [`Job`] trait: a type name and defaults (queue, priority, retries).
//! - [`handler`]: the [`Handler`] trait, closure handlers and [`JobContext`].
//! - [`client`]: [`Client`] and its [`ClientBuilder`].
//! - [`enqueue`]: [`EnqueueOptions`], what one enqueue overrides.
//! - [`worker`]: [`Worker`] and [`WorkerBuilder`].
//! - [`config`]: [`WorkerConfig`], the worker's settings and their checks.
//! - `runtime`: the running worker's components (supervisor, fetcher,
//!   executor, settler, acker, heartbeat, recoverer, promoter).
//! - [`connection`]: how to reach Redis ([`RedisConfig`]).
//! - [`error`]: [`Error`], [`ConfigError`] and [`JobError`].
//!
//! # Features
//! - `opentelemetry` (off by default): traces across services. A job
//!   enqueued inside a span with an OpenTelemetry context (a
//!   `tracing-opentelemetry` layer installed) carries its W3C trace context
//!   (entry fields `traceparent`, `tracestate`), and the worker's `job`
//!   span continues that trace, so the handler's spans are in the
//!   producer's trace. Off, nothing of it is compiled.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod batch;
pub mod client;
pub mod config;
pub mod connection;
pub mod enqueue;
pub mod error;
pub mod events;
pub mod flow;
pub mod handler;
pub mod job;
mod link;
mod notices;
mod preflight;
mod runtime;
#[cfg(feature = "opentelemetry")]
mod trace;
pub mod unique;
mod waiters;
pub mod worker;

pub use batch::Batch;
pub use client::{Cancel, Client, ClientBuilder, ScheduleOptions};
pub use config::WorkerConfig;
pub use connection::{Connection, RedisConfig};
pub use enqueue::EnqueueOptions;
pub use error::{ConfigError, Error, Hold, JobError, Result};
pub use events::Subscription;
pub use ferry_broker::{
    Backoff, DeadLetter, Event, JobState, JobStatus, Keys, OnDuplicate, Prefix, Priority,
    QueueStats, Settings, WorkerInfo,
};
pub use ferry_broker::{
    Concurrency, ConcurrencyScope, Duplicate, Enqueued, EnqueuedAfter, EnqueuedFlow, FlowGraph,
    FlowNode, GateState, Missed, OnDependencyFailure, RateGate, RateLimit, RateLimits, RateState,
    Recurrence, ScheduleInfo, Upserted, MAX_FLOW_DEPTH, MAX_FLOW_JOBS,
};
pub use flow::Flow;
pub use handler::{Handler, HandlerFn, JobContext, Progress};
pub use job::Job;
pub use preflight::RedisMemory;
pub use runtime::supervisor::shutdown_signal;
pub use runtime::Activity;
pub use unique::Unique;
pub use worker::{Worker, WorkerBuilder};

/// The counters of a queue's stats hash, for [`QueueStats::counter`].
pub use ferry_broker::stats::counter;
/// The parts of [`QueueStats::recent`]: per-minute counts, wait and run
/// time summaries.
pub use ferry_broker::stats::{Minute, Recent, Summary};
