//! The schedule firer of one queue: enqueues the jobs of the queue's cron
//! and periodic schedules as their ticks come. Every worker of the fleet
//! runs one per queue; `fire_schedule.lua` lets only the first caller of a
//! tick enqueue its job, so the fleet fires each tick once, with no leader.
//! It sleeps until the earliest tick by the server's clock (so a host
//! clock that is wrong neither fires early nor late), at most `interval`,
//! so schedules added by other processes are seen within it.

use std::sync::Arc;
use std::time::Duration;

use ferry_broker::backoff::jitter;
use tokio_util::sync::CancellationToken;

use super::retry::RedisRetry;
use super::served::ServedQueue;
use crate::link::Link;

pub(crate) struct Scheduler {
    pub queue: Arc<ServedQueue>,
    pub conn: Link,
    /// Longest wait between two looks at the schedules.
    pub interval: Duration,
}

impl Scheduler {
    /// Fires due schedules until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        tracing::debug!(queue = %self.queue.name(), "scheduler started");
        let mut errors = RedisRetry::new("firing schedules");
        loop {
            let wait = match self.run_once().await {
                Ok(next_in) => {
                    errors.ok();
                    next_in.unwrap_or(self.interval).min(jitter(self.interval))
                }
                Err(e) => errors.failed(&e),
            };
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::debug!(queue = %self.queue.name(), "scheduler stopped");
    }

    /// One firing pass; how long until the next tick is due.
    pub(crate) async fn run_once(&self) -> ferry_broker::Result<Option<Duration>> {
        let mut conn = self.conn.clone();
        let round = self.queue.consumer.queue().fire_due(&mut conn).await?;
        for id in &round.fired {
            tracing::info!(queue = %self.queue.name(), job_id = %id, "schedule fired");
        }
        Ok(round.next_in)
    }
}
