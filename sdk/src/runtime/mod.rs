//! The worker runtime: one small component per duty, each given only what
//! it uses. The loops share one shape, `run(self, stop)`, with `run_once`
//! for a single pass; the [`supervisor`] starts them and stops them in order.
//!
//! - [`supervisor`]: builds the components, runs them, shuts them down in order.
//! - [`fetcher`]: claims entries of one queue in strict priority, blocks on Redis when idle.
//! - [`executor`]: runs claimed jobs: slot, decode, handler, timeout, panic; drains at shutdown.
//! - [`settler`]: records a job's outcome (ack through the acker, retry, dead-letter).
//! - [`acker`]: acknowledges finished jobs in batches.
//! - [`heartbeat`]: renews the lease of the entries this worker holds.
//! - [`recoverer`]: takes over entries of dead workers (XAUTOCLAIM), removes idle consumers.
//! - [`promoter`]: moves due delayed jobs and retries of one queue into its streams.
//! - [`scheduler`]: fires the cron and periodic schedules of one queue.
//! - [`memory_watch`]: re-reads Redis's eviction policy; holds claims while it may evict Ferry's keys.
//! - [`canceller`]: fires the cancellation token of a job cancelled while it runs here.
//!
//! And what they pass around:
//!
//! - [`served`]: [`ServedQueue`](served::ServedQueue), one per queue served.
//! - [`claimed`]: [`ClaimedJob`](claimed::ClaimedJob), a claimed entry that
//!   owns its slot and its lease, released exactly once.
//! - [`inflight`]: the entries held ([`Lease`](inflight::Lease)s), renewed by the heartbeat.
//! - [`slots`]: the concurrency limit.
//! - [`retry`]: the one policy for Redis errors.
//! - [`activity`]: what the worker is doing, for callers.

pub(crate) mod acker;
pub(crate) mod activity;
pub(crate) mod canceller;
mod claim_size;
mod claimed;
pub(crate) mod control;
pub(crate) mod executor;
pub(crate) mod fetcher;
pub(crate) mod heartbeat;
pub(crate) mod inflight;
pub(crate) mod memory_watch;
pub(crate) mod poll_timer;
pub(crate) mod promoter;
pub(crate) mod recoverer;
pub(crate) mod retry;
pub(crate) mod scheduler;
pub(crate) mod served;
pub(crate) mod settler;
pub(crate) mod slots;
pub(crate) mod supervisor;

pub use activity::Activity;
