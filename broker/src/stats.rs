//! Queue depth and counters (`stats.lua`), and the recent history:
//! per-minute throughput, wait and run time percentiles, failure rate
//! (`P:{Q}:timing`, written by the finishing scripts, see
//! `lua/shared/timing.lua`), for the queue and per priority. Two round
//! trips.

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::{Error, Result};
use crate::priority::Priority;
use crate::queue::Queue;
use crate::reply;
use crate::scripts;

/// The counters of a queue's stats hash (`P:{Q}:stats`), as the scripts
/// bump them (`lua/shared/queue.lua` holds the same names).
pub mod counter {
    /// Jobs acknowledged as done.
    pub const COMPLETED: &str = "completed";
    /// Failed attempts scheduled for a retry.
    pub const RETRIED: &str = "retried";
    /// Jobs dead-lettered: no retries left, a permanent error, or delivered
    /// `max_deliveries` times without finishing.
    pub const DEAD: &str = "dead";
    /// Entries dead-lettered because they were not valid jobs.
    pub const MALFORMED: &str = "malformed";
    /// Entries taken over from workers that stopped renewing their lease.
    pub const RECOVERED: &str = "recovered";
    /// Old dead letters dropped by the dead-letter cap.
    pub const DEAD_DROPPED: &str = "dead_dropped";

    /// Jobs cancelled (queued, scheduled or running).
    pub const CANCELLED: &str = "cancelled";

    /// Every counter, in `lua/shared/queue.lua`'s order.
    pub const ALL: [&str; 7] = [
        COMPLETED,
        RETRIED,
        DEAD,
        MALFORMED,
        RECOVERED,
        DEAD_DROPPED,
        CANCELLED,
    ];
}

/// A snapshot of one queue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueStats {
    /// Entries per priority not yet handed to a worker, highest first.
    pub waiting: [u64; 4],
    /// Entries per priority handed to a worker and not yet finished.
    pub pending: [u64; 4],
    /// Jobs in the delayed set (scheduled, or waiting to retry).
    pub delayed: u64,
    /// Entries in the dead-letter stream.
    pub dead: u64,
    /// The counters hash (see [`counter`]).
    pub counters: BTreeMap<String, u64>,
    /// True while the queue is paused (see [`Queue::pause`]).
    pub paused: bool,
    /// The last [`WINDOW_MINUTES`] minutes: throughput, wait and run times,
    /// failure rate.
    pub recent: Recent,
    /// The same, for the jobs of each priority, highest first (see
    /// [`QueueStats::recent_at`]).
    pub recent_by_priority: [Recent; 4],
    /// Every job completed since the queue began, per priority, highest
    /// first: how many, and histograms of their wait and run times.
    pub cumulative: [Cumulative; 4],
}

/// The jobs of one priority completed since the queue began
/// (`all:<priority>:<metric>` in `P:{Q}:timing`; never reset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cumulative {
    /// Jobs completed.
    pub completed: u64,
    /// Their wait times: entry (enqueue, or coming due) to start.
    pub wait: Buckets,
    /// Their run times.
    pub run: Buckets,
}

/// A histogram of times in Ferry's buckets: bucket k holds the times t
/// (whole ms) with floor(4 log2(t + 1)) = k, so each is about 19% wide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buckets {
    /// Sum of the times, ms.
    pub sum_ms: u64,
    /// Count per bucket, from bucket 0 (only the buckets up to the last
    /// used one).
    pub counts: Vec<u64>,
}

impl Buckets {
    /// The exclusive upper edge of bucket `k`, ms: every time in it is
    /// below this.
    pub fn upper_ms(k: usize) -> f64 {
        2f64.powf((k + 1) as f64 / 4.0) - 1.0
    }

    /// How many times are surely at most `le_ms`: the buckets whose upper
    /// edge is at most `le_ms` (a bucket that straddles it is left out).
    pub fn count_at_most(&self, le_ms: f64) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .filter(|(k, _)| Self::upper_ms(*k) <= le_ms)
            .map(|(_, c)| c)
            .sum()
    }

    /// How many times in all.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn add(&mut self, k: usize, n: u64) {
        if k > MAX_BUCKET {
            return;
        }
        if self.counts.len() <= k {
            self.counts.resize(k + 1, 0);
        }
        self.counts[k] += n;
    }
}

impl Cumulative {
    /// Reads the running totals of `priority` from the fields of
    /// `P:{Q}:timing`.
    pub fn from_fields(fields: &BTreeMap<String, u64>, priority: Priority) -> Self {
        let scope = format!("all:{}:", priority.as_str());
        let mut out = Cumulative::default();
        for (name, v) in fields.range(scope.clone()..) {
            let Some(metric) = name.strip_prefix(&scope) else {
                break;
            };
            match metric {
                "n" => out.completed = *v,
                "ws" => out.wait.sum_ms = *v,
                "rs" => out.run.sum_ms = *v,
                _ => {
                    let (hist, k) = match metric.split_at_checked(1) {
                        Some(("w", k)) => (&mut out.wait, k),
                        Some(("r", k)) => (&mut out.run, k),
                        _ => continue,
                    };
                    if let Ok(k) = k.parse::<usize>() {
                        hist.add(k, *v);
                    }
                }
            }
        }
        out
    }
}

/// How many minutes [`Recent`] covers (the current one included).
pub const WINDOW_MINUTES: u64 = 15;

/// One minute's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Minute {
    /// Its start, ms since the epoch (server clock).
    pub at: u64,
    /// Jobs completed (succeeded).
    pub completed: u64,
    /// Jobs that failed for good (dead-lettered).
    pub failed: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
    /// Jobs cancelled.
    pub cancelled: u64,
}

/// Times of the jobs completed in the window, from a histogram of buckets
/// about 19% wide (so a percentile is within about 10% of the truth).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// How many jobs.
    pub count: u64,
    /// Mean, ms.
    pub avg_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// A queue's recent history (from `P:{Q}:timing`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recent {
    /// Per minute, oldest first, the current (partial) minute last.
    pub minutes: Vec<Minute>,
    /// Wait time: from the job's entry (its enqueue, or its retry or
    /// schedule coming due) to its start.
    pub wait: Summary,
    /// Run time of the handler.
    pub run: Summary,
    /// Failed for good / (completed + failed for good), over the window.
    pub failure_rate: f64,
}

impl Recent {
    /// Completed jobs per second over the last `minutes` full minutes
    /// (the current one not counted).
    pub fn throughput(&self, minutes: usize) -> f64 {
        let full: Vec<&Minute> = self.minutes.iter().rev().skip(1).take(minutes).collect();
        if full.is_empty() {
            return 0.0;
        }
        full.iter().map(|m| m.completed).sum::<u64>() as f64 / (full.len() as f64 * 60.0)
    }

    /// Reads the queue's fields of `P:{Q}:timing` for the window ending at
    /// server time `now` (ms).
    pub fn from_fields(fields: &BTreeMap<String, u64>, now: u64) -> Self {
        Self::from_scope(fields, now, "")
    }

    /// Reads the fields of `P:{Q}:timing` kept for the jobs of `priority`
    /// (`<minute>:<priority>:<metric>`) for the window ending at server
    /// time `now` (ms). Cancellations are counted for the queue only, so
    /// their minutes' `cancelled` is 0 here.
    pub fn from_fields_at(fields: &BTreeMap<String, u64>, now: u64, priority: Priority) -> Self {
        Self::from_scope(fields, now, &format!("{}:", priority.as_str()))
    }

    fn from_scope(fields: &BTreeMap<String, u64>, now: u64, scope: &str) -> Self {
        let current = now / 60_000;
        let first = current.saturating_sub(WINDOW_MINUTES - 1);
        let mut minutes = Vec::new();
        let (mut wait, mut run) = (Histogram::default(), Histogram::default());
        for m in first..=current {
            let get = |metric: &str| {
                fields
                    .get(&format!("{m}:{scope}{metric}"))
                    .copied()
                    .unwrap_or(0)
            };
            minutes.push(Minute {
                at: m * 60_000,
                completed: get("n"),
                failed: get("f"),
                retried: get("t"),
                cancelled: get("c"),
            });
            wait.sum += get("ws");
            run.sum += get("rs");
            for k in 0..=MAX_BUCKET {
                wait.add(k, get(&format!("w{k}")));
                run.add(k, get(&format!("r{k}")));
            }
        }
        let completed: u64 = minutes.iter().map(|m| m.completed).sum();
        let failed: u64 = minutes.iter().map(|m| m.failed).sum();
        let failure_rate = if completed + failed == 0 {
            0.0
        } else {
            failed as f64 / (completed + failed) as f64
        };
        Self {
            minutes,
            wait: wait.summary(),
            run: run.summary(),
            failure_rate,
        }
    }
}

/// The largest histogram bucket (`lua/shared/timing.lua`'s TIMING_MAX_BUCKET).
const MAX_BUCKET: usize = 120;

/// The histogram bucket of a time of `ms` (as `lua/shared/timing.lua`):
/// floor(4 log2(ms + 1)), at most the largest bucket.
pub fn timing_bucket(ms: u64) -> usize {
    if ms == 0 {
        return 0;
    }
    let k = (4.0 * ((ms as f64) + 1.0).log2()).floor() as usize;
    k.min(MAX_BUCKET)
}

/// Completed jobs a worker gathers and adds to the per-minute stats in one
/// call ([`Queue::record_timing`]), about once a second: per priority, how
/// many, and their wait and run times.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimingBatch {
    by_priority: [Times; 4],
}

/// The completed jobs of one priority in a [`TimingBatch`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Times {
    completed: u64,
    wait_sum: u64,
    run_sum: u64,
    wait: BTreeMap<usize, u64>,
    run: BTreeMap<usize, u64>,
}

impl Times {
    fn merge(&mut self, other: Times) {
        self.completed += other.completed;
        self.wait_sum = self.wait_sum.saturating_add(other.wait_sum);
        self.run_sum = self.run_sum.saturating_add(other.run_sum);
        for (k, n) in other.wait {
            *self.wait.entry(k).or_default() += n;
        }
        for (k, n) in other.run {
            *self.run.entry(k).or_default() += n;
        }
    }
}

impl TimingBatch {
    /// Adds the times of one finished job of `priority`: its wait (entry to
    /// start, by the server's clock) and run time, in ms. (Count it with
    /// [`TimingBatch::count_completed`] once acknowledged.)
    pub fn add(&mut self, priority: Priority, wait_ms: u64, run_ms: u64) {
        let t = &mut self.by_priority[priority.index()];
        t.wait_sum = t.wait_sum.saturating_add(wait_ms);
        t.run_sum = t.run_sum.saturating_add(run_ms);
        *t.wait.entry(timing_bucket(wait_ms)).or_default() += 1;
        *t.run.entry(timing_bucket(run_ms)).or_default() += 1;
    }

    /// Adds `other` to this one.
    pub fn merge(&mut self, other: TimingBatch) {
        for (mine, theirs) in self.by_priority.iter_mut().zip(other.by_priority) {
            mine.merge(theirs);
        }
    }

    /// Counts `n` jobs of `priority` acknowledged as completed.
    pub fn count_completed(&mut self, priority: Priority, n: u64) {
        self.by_priority[priority.index()].completed += n;
    }

    /// Jobs counted as completed, all priorities.
    pub fn completed(&self) -> u64 {
        self.by_priority.iter().map(|t| t.completed).sum()
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.by_priority
            .iter()
            .all(|t| t.completed == 0 && t.wait.is_empty())
    }
}

impl Queue {
    /// Adds a worker's batch of completed jobs to the current minute's
    /// counts and histograms, per priority and for the queue
    /// (`record_timing.lua`).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn record_timing<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        batch: &TimingBatch,
    ) -> Result<()> {
        let mut inv = self.invoke(&scripts::RECORD_TIMING);
        for (priority, t) in Priority::ALL.iter().zip(&batch.by_priority) {
            let p = priority.as_str();
            for (metric, n) in [("n", t.completed), ("ws", t.wait_sum), ("rs", t.run_sum)] {
                if n > 0 {
                    inv.arg(format!("{p}:{metric}")).arg(n);
                }
            }
            for (k, n) in &t.wait {
                inv.arg(format!("{p}:w{k}")).arg(*n);
            }
            for (k, n) in &t.run {
                inv.arg(format!("{p}:r{k}")).arg(*n);
            }
        }
        let _: i64 = inv.invoke_async(conn).await?;
        Ok(())
    }
}

/// Bucket counts of one metric over the window.
struct Histogram {
    counts: Vec<u64>,
    sum: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; MAX_BUCKET + 1],
            sum: 0,
        }
    }
}

impl Histogram {
    fn add(&mut self, k: usize, n: u64) {
        if let Some(c) = self.counts.get_mut(k) {
            *c += n;
        }
    }

    /// The middle of bucket k (times t with floor(4 log2(t + 1)) = k), ms.
    fn middle(k: usize) -> f64 {
        let lo = 2f64.powf(k as f64 / 4.0) - 1.0;
        let hi = 2f64.powf((k + 1) as f64 / 4.0) - 1.0;
        (lo + hi) / 2.0
    }

    fn quantile(&self, total: u64, q: f64) -> f64 {
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (k, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::middle(k);
            }
        }
        0.0
    }

    fn summary(&self) -> Summary {
        let count: u64 = self.counts.iter().sum();
        if count == 0 {
            return Summary::default();
        }
        Summary {
            count,
            avg_ms: self.sum as f64 / count as f64,
            p50_ms: self.quantile(count, 0.50),
            p95_ms: self.quantile(count, 0.95),
            p99_ms: self.quantile(count, 0.99),
        }
    }
}

impl QueueStats {
    /// Jobs waiting in the streams, all priorities.
    pub fn total_waiting(&self) -> u64 {
        self.waiting.iter().sum()
    }

    /// Jobs being run, all priorities.
    pub fn total_pending(&self) -> u64 {
        self.pending.iter().sum()
    }

    /// A counter's value (0 when never bumped); see [`counter`].
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// A counter's value for the jobs of one priority: `completed`,
    /// `retried`, `dead` and `malformed` are also counted per priority
    /// (stats hash fields `<counter>:<priority>`, e.g. `completed:high`).
    pub fn counter_at(&self, name: &str, priority: Priority) -> u64 {
        self.counter(&format!("{name}:{}", priority.as_str()))
    }

    /// The last [`WINDOW_MINUTES`] minutes of the jobs of `priority`:
    /// throughput, wait and run times, failure rate.
    pub fn recent_at(&self, priority: Priority) -> &Recent {
        &self.recent_by_priority[priority.index()]
    }

    /// True when nothing is waiting, running or delayed.
    pub fn is_idle(&self) -> bool {
        self.total_waiting() == 0 && self.total_pending() == 0 && self.delayed == 0
    }
}

impl Queue {
    /// Reads the queue's depth and counters in one round trip (`stats.lua`).
    /// Waiting is the consumer group's lag per stream; when Redis reports no
    /// lag, `XLEN - pending`, which on Redis 7.0+ may also count up to 10,000
    /// finished entries the bulk trim has not reached yet (see
    /// `lua/shared/group_state.lua`). Pending is the pending-list size.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn stats<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<QueueStats> {
        let v: Value = self.invoke(&scripts::STATS).invoke_async(conn).await?;
        let bad = || Error::Protocol(format!("stats: {v:?}"));
        let Some([waiting, pending, delayed, dead, counters, paused]) = reply::array(&v) else {
            return Err(bad());
        };
        let per_priority = |list: &Value| -> Result<[u64; 4]> {
            let mut out = [0; 4];
            match reply::array(list) {
                Some(items) if items.len() == out.len() => {
                    for (slot, item) in out.iter_mut().zip(items) {
                        *slot = reply::count(item)?;
                    }
                    Ok(out)
                }
                _ => Err(bad()),
            }
        };
        let mut stats = QueueStats {
            waiting: per_priority(waiting)?,
            pending: per_priority(pending)?,
            delayed: reply::count(delayed)?,
            dead: reply::count(dead)?,
            counters: BTreeMap::new(),
            paused: reply::int(paused) == Some(1),
            recent: Recent::default(),
            recent_by_priority: Default::default(),
            cumulative: Default::default(),
        };
        let flat = reply::array(counters).ok_or_else(bad)?;
        for kv in flat.chunks(2) {
            let [k, val] = kv else { return Err(bad()) };
            let name = reply::string(k).ok_or_else(bad)?;
            stats.counters.insert(name, reply::count(val)?);
        }
        let ((secs, micros), timing): ((u64, u64), BTreeMap<String, String>) = redis::pipe()
            .cmd("TIME")
            .cmd("HGETALL")
            .arg(self.keys().timing())
            .query_async(conn)
            .await?;
        let now = secs * 1000 + micros / 1000;
        let fields: BTreeMap<String, u64> = timing
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect();
        stats.recent = Recent::from_fields(&fields, now);
        for p in Priority::ALL {
            stats.recent_by_priority[p.index()] = Recent::from_fields_at(&fields, now, p);
            stats.cumulative[p.index()] = Cumulative::from_fields(&fields, p);
        }
        Ok(stats)
    }
}
