//! Queue depth and counters (`stats.lua`), and the recent history:
//! per-minute throughput, wait and run time percentiles, failure rate
//! (`P:{Q}:timing`, written by the finishing scripts, see
//! `lua/shared/timing.lua`), for the queue and per priority. Two round
//! trips.
//!
//! Here: the [`counter`] names and [`QueueStats`], read by
//! [`Queue::stats`]. `recent.rs` holds the window ([`Recent`]),
//! `buckets.rs` Ferry's histogram buckets and the all-time totals kept in
//! them ([`Buckets`], [`Cumulative`]), and `timing_batch.rs` what a worker
//! sends ([`TimingBatch`], [`Queue::record_timing`]).

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::{Error, Result};
use crate::priority::Priority;
use crate::queue::Queue;
use crate::reply;
use crate::scripts;

mod buckets;
mod recent;
mod timing_batch;

pub use buckets::{timing_bucket, Buckets, Cumulative};
pub use recent::{Minute, Recent, Summary, WINDOW_MINUTES};
pub use timing_batch::TimingBatch;

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
