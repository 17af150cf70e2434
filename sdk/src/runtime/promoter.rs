//! The promoter of one queue: moves due jobs from its delayed set into its
//! priority streams. It sleeps until the earliest job is due (at most the
//! promote interval, so jobs delayed by other processes are seen), and
//! wakes early when this worker schedules a retry.

use std::sync::Arc;
use std::time::Duration;

use crate::link::Link;
use ferry_broker::backoff::jitter;
use ferry_broker::Promoted;
use tokio_util::sync::CancellationToken;

use super::retry::RedisRetry;
use super::served::ServedQueue;

pub(crate) struct Promoter {
    pub queue: Arc<ServedQueue>,
    pub conn: Link,
    /// Longest wait between two looks at the delayed set.
    pub interval: Duration,
}

impl Promoter {
    /// Promotes until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        tracing::debug!(queue = %self.queue.name(), "promoter started");
        let mut errors = RedisRetry::new("promoting delayed jobs");
        loop {
            let promoted = self.run_once().await;
            if let Ok(p) = &promoted {
                self.queue
                    .events_cap
                    .store(p.events, std::sync::atomic::Ordering::Relaxed);
                self.queue
                    .records
                    .store(p.records, std::sync::atomic::Ordering::Relaxed);
                let offset = i64::try_from(p.now).unwrap_or(i64::MAX)
                    - i64::try_from(ferry_broker::now_ms()).unwrap_or(i64::MAX);
                self.queue
                    .server_offset_ms
                    .store(offset, std::sync::atomic::Ordering::Relaxed);
            }
            let wait = match promoted {
                Ok(p) if p.is_full_batch() => {
                    errors.ok();
                    Duration::ZERO
                }
                Ok(p) => {
                    errors.ok();
                    p.next_in()
                        .unwrap_or(self.interval)
                        .min(jitter(self.interval))
                }
                Err(e) => errors.failed(&e),
            };
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = self.queue.promote_wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::debug!(queue = %self.queue.name(), "promoter stopped");
    }

    /// One promote call: what moved, and when the next job is due; then
    /// the outcomes waiting in the queue's outbox, applied to the jobs of
    /// other queues that wait for them (`Queue::apply_outbox`).
    pub(crate) async fn run_once(&self) -> ferry_broker::Result<Promoted> {
        let mut conn = self.conn.clone();
        let queue = self.queue.consumer.queue();
        let p = queue.promote_due(&mut conn).await?;
        if p.moved > 0 {
            tracing::debug!(queue = %self.queue.name(), moved = p.moved, "promoted due jobs");
        }
        let mut waiting = p.outbox;
        while waiting > 0 {
            let applied = queue.apply_outbox(&mut conn).await?;
            tracing::debug!(queue = %self.queue.name(), applied, "applied outcomes to other queues");
            if applied < ferry_broker::remote_deps::OUTBOX_BATCH as u64 {
                break;
            }
            waiting = waiting.saturating_sub(applied);
        }
        Ok(p)
    }
}
