//! The queues under the prefix (found with `SCAN`), each with its depth
//! and live workers; pause and resume.

use ferry_queue::{Priority, QueueStats};
use serde::Serialize;

use crate::admin::Admin;
use crate::error::Result;

/// One value per priority (a number, unless said otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PerPriority<T = u64> {
    /// Priority critical.
    pub critical: T,
    /// Priority high.
    pub high: T,
    /// Priority normal.
    pub normal: T,
    /// Priority low.
    pub low: T,
}

impl<T> PerPriority<T> {
    /// From an array in [`Priority::ALL`] order (highest first).
    pub fn from_array(a: [T; 4]) -> Self {
        let [critical, high, normal, low] = a;
        Self {
            critical,
            high,
            normal,
            low,
        }
    }

    /// The value of priority `p`.
    pub fn get(&self, p: Priority) -> &T {
        match p {
            Priority::Critical => &self.critical,
            Priority::High => &self.high,
            Priority::Normal => &self.normal,
            Priority::Low => &self.low,
        }
    }
}

impl PerPriority {
    /// The sum over all priorities.
    pub fn total(&self) -> u64 {
        self.critical + self.high + self.normal + self.low
    }
}

/// One queue at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueSummary {
    /// The queue's name.
    pub queue: String,
    /// Jobs waiting for a worker, per priority.
    pub waiting: PerPriority<u64>,
    /// Jobs in the delayed set: scheduled for later, or waiting out a
    /// retry's backoff.
    pub scheduled: u64,
    /// Jobs running (claimed by a worker), all priorities.
    pub running: u64,
    /// Dead letters.
    pub dead: u64,
    /// True while the queue is paused.
    pub paused: bool,
    /// Live workers serving it.
    pub workers: usize,
}

impl QueueSummary {
    fn new(queue: &str, stats: &QueueStats, workers: usize) -> Self {
        Self {
            queue: queue.to_owned(),
            waiting: PerPriority::from_array(stats.waiting),
            scheduled: stats.delayed,
            running: stats.total_pending(),
            dead: stats.dead,
            paused: stats.paused,
            workers,
        }
    }
}

/// A queue's pause state after [`Admin::pause`] or [`Admin::resume`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PauseState {
    /// The queue.
    pub queue: String,
    /// True when paused.
    pub paused: bool,
}

impl Admin {
    /// Each priority stream of `queue` with its consumer group: length,
    /// pending, lag, the age of its oldest pending and oldest waiting
    /// entries (see [`Queue::streams`](ferry_broker::Queue::streams)).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn streams(&self, queue: &str) -> Result<Vec<ferry_broker::StreamInfo>> {
        let q = self.queue(queue)?;
        q.streams(&mut self.conn()).await.map_err(|e| self.fail(e))
    }

    /// Every queue under the prefix, sorted by name, with its depth and
    /// live workers. Queues are found by `SCAN`ning the keyspace for
    /// `<prefix>:{*}:*` (see [`ferry_broker::discovery`]): O(keys in the
    /// database), on the one server or on every master of a cluster.
    ///
    /// # Errors
    /// [`Error::Unreachable`](crate::Error::Unreachable) and other Redis errors.
    pub async fn queues(&self) -> Result<Vec<QueueSummary>> {
        let names = self.queue_names().await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(self.summary(&name).await?);
        }
        Ok(out)
    }

    /// The names of the queues under the prefix, sorted (`SCAN`, as
    /// [`Admin::queues`]), without reading each queue.
    ///
    /// # Errors
    /// As [`Admin::queues`].
    pub async fn queue_names(&self) -> Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        for mut master in self.conn().masters().await.map_err(|e| self.fail(e))? {
            let found = ferry_broker::discovery::queue_names(&mut master, self.prefix())
                .await
                .map_err(|e| self.fail(e))?;
            names.extend(found.iter().map(|n| n.as_str().to_owned()));
        }
        Ok(names.into_iter().collect())
    }

    /// One queue at a glance (as a row of [`Admin::queues`]).
    ///
    /// # Errors
    /// As [`Admin::queues`], and [`Error::Ferry`](crate::Error::Ferry) for a bad name.
    pub async fn summary(&self, queue: &str) -> Result<QueueSummary> {
        let stats = self.client().stats(queue).await.map_err(|e| self.fail(e))?;
        let workers = self
            .client()
            .workers(queue)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(QueueSummary::new(queue, &stats, workers.len()))
    }

    /// Pauses `queue` across the fleet: workers claim nothing new from it
    /// within about a second; running jobs finish; enqueues still go in.
    ///
    /// # Errors
    /// Redis errors, or a bad queue name.
    pub async fn pause(&self, queue: &str) -> Result<PauseState> {
        self.client().pause(queue).await.map_err(|e| self.fail(e))?;
        Ok(PauseState {
            queue: queue.to_owned(),
            paused: true,
        })
    }

    /// Resumes a paused `queue`.
    ///
    /// # Errors
    /// Redis errors, or a bad queue name.
    pub async fn resume(&self, queue: &str) -> Result<PauseState> {
        self.client()
            .resume(queue)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(PauseState {
            queue: queue.to_owned(),
            paused: false,
        })
    }
}
