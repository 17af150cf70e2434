//! Queue depth and counters, read in one round trip (`stats.lua`).

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::{Error, Result};
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
        };
        let flat = reply::array(counters).ok_or_else(bad)?;
        for kv in flat.chunks(2) {
            let [k, val] = kv else { return Err(bad()) };
            let name = reply::string(k).ok_or_else(bad)?;
            stats.counters.insert(name, reply::count(val)?);
        }
        Ok(stats)
    }
}
