//! Queue depth and counters.

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::{Error, Result};
use crate::keys::GROUP;
use crate::priority::Priority;
use crate::queue::Queue;
use crate::reply;

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
    /// The counters hash: `completed`, `retried`, `dead`, `malformed`,
    /// `recovered`, `dead_dropped`.
    pub counters: BTreeMap<String, u64>,
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

    /// A counter's value (0 when never bumped).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// True when nothing is waiting, running or delayed.
    pub fn is_idle(&self) -> bool {
        self.total_waiting() == 0 && self.total_pending() == 0 && self.delayed == 0
    }
}

impl Queue {
    /// Reads the queue's depth and counters (one pipeline, then XINFO GROUPS
    /// per stream: waiting is the group's lag, pending its PEL size).
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn stats<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<QueueStats> {
        let mut pipe = redis::pipe();
        for p in Priority::ALL {
            pipe.cmd("XLEN").arg(self.keys.stream(p));
            // XINFO GROUPS (below) answers a missing stream with an error.
            pipe.cmd("EXISTS").arg(self.keys.stream(p));
        }
        pipe.cmd("ZCARD").arg(self.keys.delayed());
        pipe.cmd("XLEN").arg(self.keys.dead());
        pipe.cmd("HGETALL").arg(self.keys.stats());
        let v: Vec<Value> = pipe.query_async(conn).await?;
        let mut stats = QueueStats::default();
        let int = |v: &Value| reply::int(v).unwrap_or(0).max(0) as u64;
        let mut lens = [0u64; 4];
        let mut exists = [false; 4];
        for i in 0..4 {
            lens[i] = v.get(2 * i).map(int).unwrap_or(0);
            exists[i] = v.get(2 * i + 1).map(int).unwrap_or(0) == 1;
        }
        stats.delayed = v.get(8).map(int).unwrap_or(0);
        stats.dead = v.get(9).map(int).unwrap_or(0);
        if let Some(h) = v.get(10) {
            match h {
                Value::Map(m) => {
                    for (k, val) in m {
                        stats
                            .counters
                            .insert(reply::string(k).unwrap_or_default(), int(val));
                    }
                }
                other => {
                    let flat = reply::array(other)
                        .ok_or_else(|| Error::Protocol(format!("hgetall: {other:?}")))?;
                    for kv in flat.chunks(2) {
                        if let [k, val] = kv {
                            stats
                                .counters
                                .insert(reply::string(k).unwrap_or_default(), int(val));
                        }
                    }
                }
            }
        }
        for (i, p) in Priority::ALL.into_iter().enumerate() {
            if !exists[i] {
                continue;
            }
            let r: redis::RedisResult<Value> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(self.keys.stream(p))
                .query_async(conn)
                .await;
            let groups = match r {
                Ok(v) => v,
                // Deleted between the pipeline and now.
                Err(e)
                    if e.kind()
                        == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
                {
                    continue
                }
                Err(e) => return Err(e.into()),
            };
            let (pending, lag) = group_state(&groups).unwrap_or((0, None));
            stats.pending[i] = pending;
            // The lag counts exactly the entries not yet delivered. Without
            // one (Redis 6.2, or just after an XDEL at the group's read
            // position), every entry that is not pending counts, which may
            // include finished entries the bulk trim has not reached yet.
            stats.waiting[i] = lag.unwrap_or_else(|| lens[i].saturating_sub(pending));
        }
        Ok(stats)
    }
}

/// `(pending, lag)` of Ferry's group in an XINFO GROUPS reply (RESP2 or
/// RESP3); `None` when the group is not there. The lag is `None` when Redis
/// does not report one.
fn group_state(groups: &Value) -> Option<(u64, Option<u64>)> {
    for g in reply::array(groups)? {
        let pairs: Vec<(&Value, &Value)> = match g {
            Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
            other => reply::array(other)?
                .chunks(2)
                .filter_map(|kv| match kv {
                    [k, v] => Some((k, v)),
                    _ => None,
                })
                .collect(),
        };
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| reply::string(k).as_deref() == Some(name))
                .map(|(_, v)| *v)
        };
        if field("name").and_then(reply::string).as_deref() != Some(GROUP) {
            continue;
        }
        let count = |v: &Value| reply::int(v).and_then(|n| u64::try_from(n).ok());
        let pending = field("pending").and_then(count).unwrap_or(0);
        let lag = field("lag").and_then(count);
        return Some((pending, lag));
    }
    None
}
