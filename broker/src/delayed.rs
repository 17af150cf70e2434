//! The delayed set: jobs enqueued to run later and retries waiting out their
//! backoff, promoted into their priority streams when due.

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::reply;
use crate::scripts;

/// Most members one promote call moves.
pub const PROMOTE_BATCH: usize = 500;

/// The outcome of one promote call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promoted {
    /// Jobs moved into their streams.
    pub moved: u64,
    /// Run-at (ms) of the earliest job still waiting, if any.
    pub next_at: Option<u64>,
    /// The Redis server's time (ms) that decided what was due: compare
    /// `next_at` with this, not with the local clock.
    pub now: u64,
    /// The queue's events cap (the `events` setting; 0 while events are off).
    pub events: u64,
    /// True when the queue keeps finished jobs' records (its retention is
    /// not 0).
    pub records: bool,
    /// Outcomes waiting in the queue's outbox to be applied to jobs of
    /// other queues ([`Queue::apply_outbox`]).
    pub outbox: u64,
}

impl Promoted {
    /// True when the call moved a full batch: more may be due already.
    pub fn is_full_batch(&self) -> bool {
        self.moved >= PROMOTE_BATCH as u64
    }

    /// How long until the earliest job still waiting is due (by the
    /// server's clock), if any.
    pub fn next_in(&self) -> Option<std::time::Duration> {
        self.next_at
            .map(|at| std::time::Duration::from_millis(at.saturating_sub(self.now)))
    }
}

impl Queue {
    /// Moves up to [`PROMOTE_BATCH`] jobs that are due by the Redis server's
    /// clock (TIME, inside the script) into their priority streams,
    /// atomically, and says when the next one is due.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn promote_due<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<Promoted> {
        let mut inv = self.invoke(&scripts::PROMOTE);
        inv.arg(PROMOTE_BATCH);
        let v: Value = inv.invoke_async(conn).await?;
        match reply::array(&v) {
            Some([moved, next, now, events, records, outbox]) => {
                let next = reply::int(next)
                    .ok_or_else(|| Error::Protocol(format!("promote: next {next:?}")))?;
                Ok(Promoted {
                    moved: reply::count(moved)?,
                    next_at: u64::try_from(next).ok(),
                    now: reply::count(now)?,
                    events: reply::count(events)?,
                    records: reply::int(records) == Some(1),
                    outbox: reply::count(outbox)?,
                })
            }
            _ => Err(Error::Protocol(format!("promote: {v:?}"))),
        }
    }

    /// Number of jobs in the delayed set (scheduled or waiting to retry).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn delayed_len<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<u64> {
        Ok(redis::cmd("ZCARD")
            .arg(self.keys().delayed())
            .query_async(conn)
            .await?)
    }
}
