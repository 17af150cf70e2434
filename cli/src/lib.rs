//! # ferry-queue-cli
//!
//! The operations behind the `ferry` command, as a library: each returns a
//! serde-serialisable report, so the command line prints them (as a table
//! or as JSON) and an HTTP API can return them as they are. Everything goes
//! through an [`Admin`], which holds a [`ferry_queue::Client`] and a
//! connection for the broker operations the SDK does not offer.
//!
//! # Layout
//! - [`admin`]: [`Admin`] and [`AdminConfig`]: how to reach Redis, the key prefix.
//! - [`error`]: [`Error`] and its [`ErrorKind`] (what an exit code or an
//!   HTTP status is chosen by).
//! - [`queues`]: the queues under the prefix, pause and resume.
//! - [`stats`]: one queue's stats.
//! - [`jobs`]: one job by id: show, wait, cancel, retry, re-prioritise.
//! - [`batches`]: batches (create, add to, status, jobs) and flow graphs.
//! - [`enqueue`]: a job of any type with a raw JSON payload.
//! - [`unique`]: unique jobs (one per key while the key is held), keys
//!   derived as the SDK derives them.
//! - [`rate_limit`]: a queue's rate limit as text, and its live state.
//! - [`dead`]: dead letters: list (filtered, paged, grouped), show, replay, purge.
//! - [`schedules`]: cron and periodic schedules: list, add or replace,
//!   show, remove, pause, resume, trigger.
//! - [`workers`]: live workers.
//! - [`serve`]: `ferry serve`, the HTTP API over all of the above, with
//!   Prometheus metrics and an OpenAPI document.
//!
//! The binary adds `main.rs` (the clap command line), `args.rs` and
//! `output.rs` (tables and JSON).
//!
//! ```no_run
//! # async fn example() -> Result<(), ferry_queue_cli::Error> {
//! use ferry_queue_cli::{Admin, AdminConfig};
//! let admin = Admin::connect(AdminConfig::new("redis://127.0.0.1:6379"))?;
//! for q in admin.queues().await? {
//!     println!("{}: {} waiting, {} dead", q.queue, q.waiting.total(), q.dead);
//! }
//! # Ok(()) }
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod batches;
pub mod dead;
pub mod enqueue;
pub mod error;
pub mod events;
pub mod flows;
pub mod jobs;
pub mod limits;
pub mod queues;
pub mod rate_limit;
pub mod schedules;
pub mod serve;
pub mod settings;
pub mod stats;
pub mod unique;
pub mod workers;

pub use admin::{Admin, AdminConfig};
pub use dead::{DeadGroup, DeadGroups, DeadListing, DeadView, Purged, Replayed, ReplayedView};
pub use enqueue::{Enqueued, EnqueuedAfter, RawJob};
pub use error::{Error, ErrorKind, Result};
pub use events::{EventPage, EventView};
pub use jobs::{Cancelled, Reprioritised, Retried};
pub use queues::{PauseState, PerPriority, QueueSummary};
pub use rate_limit::RateLimitState;
pub use schedules::{
    ScheduleRemoved, ScheduleSpec, ScheduleTriggered, ScheduleUpserted, ScheduleView,
};
pub use settings::{QueueSettings, ResultsCleared, SettingsChange};
pub use stats::StatsReport;
pub use unique::{DuplicateKind, DuplicateOf, UniqueSpec};
