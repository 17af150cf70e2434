//! The heartbeat: renews the lease of every entry this worker holds, and
//! this worker's registration among each queue's live workers, every
//! lease/3, so a job that runs longer than the lease is never taken from a
//! live worker. Entries it finds taken (this worker missed renewals) are
//! marked lost, so their outcomes are not recorded here. After a failed
//! renewal it tries again within [`RETRY_MAX_WAIT`], not a period later, so
//! leases are renewed as soon as Redis is back from an outage.

use std::sync::Arc;
use std::time::Duration;

use crate::link::Link;
use ferry_broker::backoff::jitter;
use ferry_broker::Priority;
use tokio_util::sync::CancellationToken;

use super::activity::Activity;
use super::retry::RedisRetry;
use super::served::ServedQueue;

/// Longest wait before renewing again after a failed renewal.
const RETRY_MAX_WAIT: Duration = Duration::from_secs(1);

pub(crate) struct Heartbeat {
    pub queues: Vec<Arc<ServedQueue>>,
    pub conn: Link,
    /// Time between renewals (lease/3).
    pub period: Duration,
    /// This worker's registration in each queue's live workers, renewed
    /// with each beat.
    pub registration: ferry_broker::WorkerInfo,
    /// For the number of jobs running.
    pub activity: Arc<Activity>,
    /// How long a registration lives without a beat.
    pub ttl: Duration,
}

impl Heartbeat {
    /// Renews until `stop` (the supervisor stops it last).
    pub(crate) async fn run(self, stop: CancellationToken) {
        tracing::debug!("heartbeat started");
        let mut errors = RedisRetry::new("lease renewal");
        let mut wait = jitter(self.period);
        self.register().await;
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = match self.run_once().await {
                Ok(_) => {
                    errors.ok();
                    self.register().await;
                    jitter(self.period)
                }
                Err(e) => errors.failed_capped(&e, RETRY_MAX_WAIT.min(self.period)),
            };
        }
        tracing::debug!("heartbeat stopped");
    }

    /// Registers this worker as live in each queue (best effort: a failure
    /// only hides it from `workers()` until the next beat).
    async fn register(&self) {
        let mut info = self.registration.clone();
        info.running = self.activity.running();
        for queue in &self.queues {
            let mut conn = self.conn.clone();
            let q = queue.consumer.queue();
            if let Err(e) = q.register_worker(&mut conn, &info, Some(self.ttl)).await {
                tracing::debug!(error = %e, queue = queue.name(), "could not renew this worker's registration");
            }
        }
    }

    /// One renewal pass, one script call per stream holding entries;
    /// returns how many entries were found lost. An error on one stream does
    /// not stop the others; the first one is returned.
    pub(crate) async fn run_once(&self) -> ferry_broker::Result<usize> {
        let mut lost_total = 0;
        let mut first_error = None;
        for queue in &self.queues {
            let held = queue.inflight.owned();
            for priority in Priority::ALL {
                let of_stream = held.iter().filter(|e| e.priority == priority);
                if of_stream.clone().next().is_none() {
                    continue;
                }
                let mut conn = self.conn.clone();
                match queue.consumer.renew(&mut conn, of_stream).await {
                    Ok(lost) => lost_total += record_lost(queue, &lost),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(lost_total),
        }
    }
}

/// Marks `lost` entries of `queue` and says so; returns how many.
fn record_lost(queue: &ServedQueue, lost: &[ferry_broker::EntryId]) -> usize {
    if !lost.is_empty() {
        tracing::warn!(
            queue = %queue.name(),
            lost = lost.len(),
            "lease lost: entries were recovered by another worker (this one missed renewals)"
        );
        queue.inflight.mark_lost(lost);
    }
    lost.len()
}
