//! Moves due jobs from a queue's delayed set into their priority streams.
//! It sleeps until the earliest job is due (at most `promote_interval`, so
//! jobs delayed by other processes are seen), and wakes early when this
//! worker schedules a retry.

use std::sync::Arc;
use std::time::Duration;

use ferry_broker::delayed::PROMOTE_BATCH;
use tokio::sync::Notify;

use super::{jitter, ErrorBackoff, Shared};

pub(crate) struct Promoter {
    shared: Arc<Shared>,
    qi: usize,
    wake: Arc<Notify>,
}

impl Promoter {
    pub(crate) fn new(shared: Arc<Shared>, qi: usize) -> Self {
        let wake = Arc::clone(&shared.promote_wake[qi]);
        Self { shared, qi, wake }
    }

    pub(crate) async fn run(self) {
        tracing::debug!(queue = %self.shared.queues[self.qi].queue().name(), "promoter started");
        let max = self.shared.settings.promote_interval;
        let mut errors = ErrorBackoff::new("promoting delayed jobs");
        loop {
            let wait = match self.run_once().await {
                Ok((moved, _)) if moved >= PROMOTE_BATCH as u64 => {
                    errors.ok();
                    Duration::ZERO
                }
                Ok((_, next_at)) => {
                    errors.ok();
                    let now = ferry_broker::now_ms();
                    next_at
                        .map(|t| Duration::from_millis(t.saturating_sub(now)))
                        .unwrap_or(max)
                        .min(jitter(max))
                }
                Err(e) => errors.failed(&e),
            };
            tokio::select! {
                biased;
                _ = self.shared.stopping.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::debug!("promoter stopped");
    }

    /// One promote call: (jobs moved, run-at of the next one).
    pub(crate) async fn run_once(&self) -> ferry_broker::Result<(u64, Option<u64>)> {
        let mut conn = self.shared.conn.clone();
        let p = self.shared.queues[self.qi]
            .queue()
            .promote_due(&mut conn, ferry_broker::now_ms())
            .await?;
        if p.moved > 0 {
            tracing::debug!(moved = p.moved, "promoted due jobs");
        }
        Ok((p.moved, p.next_at))
    }
}
