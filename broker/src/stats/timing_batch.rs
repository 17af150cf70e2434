//! What a worker adds to the per-minute stats: a [`TimingBatch`] of its
//! completed jobs, sent by [`Queue::record_timing`] (`record_timing.lua`).

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;

use super::buckets::timing_bucket;
use crate::error::Result;
use crate::priority::Priority;
use crate::queue::Queue;
use crate::scripts;

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
    /// [`Error::Redis`](crate::Error::Redis).
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
