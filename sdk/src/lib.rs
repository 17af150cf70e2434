//! # ferry
//!
//! The Ferry SDK: enqueue typed jobs with a [`Client`], run typed
//! [`Handler`]s on a [`Worker`]. Jobs live in per-priority Redis streams read
//! through a consumer group: strict priority, FIFO within a priority,
//! at-least-once delivery, retries with backoff, and a dead-letter stream.
//!
//! ```no_run
//! use async_trait::async_trait;
//! use ferry::{Client, Handler, Job, JobContext, JobError, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendWelcome { to: String }
//! impl Job for SendWelcome { const TYPE: &'static str = "send_welcome"; }
//!
//! struct Welcomer;
//! #[async_trait]
//! impl Handler for Welcomer {
//!     type Job = SendWelcome;
//!     async fn handle(&self, job: SendWelcome, ctx: JobContext) -> Result<(), JobError> {
//!         println!("welcome {} (attempt {})", job.to, ctx.attempt);
//!         Ok(())
//!     }
//! }
//!
//! # async fn example() -> ferry::Result<()> {
//! let client = Client::connect("redis://127.0.0.1:6379")?;
//! client.enqueue("emails", &SendWelcome { to: "ada@example.com".into() }).await?;
//!
//! Worker::builder("redis://127.0.0.1:6379")
//!     .queue("emails")
//!     .register(Welcomer)
//!     .concurrency(20)
//!     .build()?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! # Layout
//! - [`job`]: the [`Job`] trait.
//! - [`handler`]: the [`Handler`] trait and [`JobContext`].
//! - [`client`]: [`Client`] and [`EnqueueOptions`].
//! - [`worker`]: [`Worker`] and its builder.
//! - `runtime`: the worker's components (fetcher, executor, acker, heartbeat, recoverer, promoter).
//! - [`connection`]: how to reach Redis ([`RedisConfig`]).
//! - [`error`]: [`Error`] and [`JobError`].

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod client;
pub mod connection;
pub mod error;
pub mod handler;
pub mod job;
mod runtime;
pub mod worker;

pub use client::{Client, EnqueueOptions};
pub use connection::RedisConfig;
pub use error::{ConfigError, Error, JobError, Result};
pub use ferry_broker as broker;
pub use ferry_broker::{Backoff, Priority, QueueStats};
pub use handler::{Handler, JobContext};
pub use job::Job;
pub use runtime::Activity;
pub use worker::{shutdown_signal, Worker, WorkerBuilder};
