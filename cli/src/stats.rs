//! One queue's stats: depths, counters and the last 15 minutes
//! (throughput, wait and run time percentiles, failure rate), and the
//! live state of its rate limit.

use std::collections::BTreeMap;

use ferry_broker::stats::Recent;
use ferry_queue::QueueStats;
use serde::Serialize;

use crate::admin::Admin;
use crate::error::Result;
use crate::queues::PerPriority;
use crate::rate_limit::RateLimitState;

/// Full minutes the throughput figure averages over.
pub const THROUGHPUT_MINUTES: usize = 5;

/// A queue's [`QueueStats`], ready to print or serialise.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StatsReport {
    /// The queue.
    pub queue: String,
    /// True while the queue is paused.
    pub paused: bool,
    /// Jobs waiting for a worker, per priority.
    pub waiting: PerPriority<u64>,
    /// Jobs running, per priority.
    pub running: PerPriority<u64>,
    /// Jobs in the delayed set (scheduled, or waiting out a retry's backoff).
    pub scheduled: u64,
    /// Dead letters.
    pub dead: u64,
    /// The counters since the queue began: completed, retried, dead,
    /// malformed, recovered, dead_dropped, cancelled.
    pub counters: BTreeMap<String, u64>,
    /// Completed jobs per second over the last [`THROUGHPUT_MINUTES`] full minutes.
    pub throughput_per_sec: f64,
    /// The last 15 minutes (server clock): per-minute counts, wait and run
    /// time summaries (ms), failure rate (0 to 1).
    pub recent: Recent,
    /// The same, for the jobs of each priority (cancellations are counted
    /// for the queue only).
    pub recent_by_priority: PerPriority<Recent>,
    /// The rate limit and hold as they stand (server clock): whether the
    /// queue is rate limited now and when its next slot is. Null when it
    /// has neither a limit nor a hold in force.
    pub rate_limit: Option<RateLimitState>,
    /// The concurrency limits and their gates (busiest first). Null when
    /// no concurrency limit is set.
    pub concurrency: Option<ferry_broker::Concurrency>,
    /// The rate limits of the queue's types and keys: every key's limit,
    /// and each gate's limit, hold and parked jobs (the queue's own is
    /// `rate_limit`, here too as the broker reports it). Null when no type
    /// or key has a rate limit, a hold or parked jobs.
    pub rate_gates: Option<ferry_broker::RateLimits>,
}

impl StatsReport {
    /// The report of `stats` of `queue` (with no rate limit state; see
    /// [`StatsReport::with_rate_limit`]).
    pub fn new(queue: &str, stats: QueueStats) -> Self {
        let mut counters: BTreeMap<String, u64> = ferry_queue::counter::ALL
            .iter()
            .map(|c| ((*c).to_owned(), 0))
            .collect();
        counters.extend(stats.counters.iter().map(|(k, v)| (k.clone(), *v)));
        Self {
            queue: queue.to_owned(),
            paused: stats.paused,
            waiting: PerPriority::from_array(stats.waiting),
            running: PerPriority::from_array(stats.pending),
            scheduled: stats.delayed,
            dead: stats.dead,
            counters,
            throughput_per_sec: stats.recent.throughput(THROUGHPUT_MINUTES),
            recent_by_priority: PerPriority::from_array(stats.recent_by_priority),
            recent: stats.recent,
            rate_limit: None,
            concurrency: None,
            rate_gates: None,
        }
    }

    /// The same, with the rate limit's state `rate_limit`.
    pub fn with_rate_limit(mut self, rate_limit: Option<RateLimitState>) -> Self {
        self.rate_limit = rate_limit;
        self
    }
}

impl Admin {
    /// The stats of `queue` (two round trips, and the rate limits' and
    /// concurrency limits' state read alongside). A queue with no keys
    /// reads as empty.
    ///
    /// # Errors
    /// Redis errors, or a bad queue name.
    pub async fn stats(&self, queue: &str) -> Result<StatsReport> {
        let (stats, rates, conc) = futures::try_join!(
            async { self.client().stats(queue).await.map_err(|e| self.fail(e)) },
            self.rate_limits(queue),
            self.concurrency(queue),
        )?;
        let rate = rates.queue.map(RateLimitState::from);
        let mut report = StatsReport::new(queue, stats).with_rate_limit(rate);
        let gated = rates.each_key.is_some() || !rates.gates.is_empty();
        report.rate_gates = gated.then_some(rates);
        let any = conc.queue.is_some()
            || conc.each_key.is_some()
            || !conc.limits.is_empty()
            || !conc.gates.is_empty();
        report.concurrency = any.then_some(conc);
        Ok(report)
    }
}
