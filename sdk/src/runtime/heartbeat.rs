//! Renews the lease of every entry this worker holds, every lease/3, so a job
//! that runs longer than the lease is never taken from a live worker.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{jitter, ErrorBackoff, Shared};

pub(crate) struct Heartbeat {
    shared: Arc<Shared>,
}

impl Heartbeat {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Renews until `done` is cancelled (the worker stops it last).
    pub(crate) async fn run(self, done: CancellationToken) {
        tracing::debug!("heartbeat started");
        let period = self.shared.settings.lease / 3;
        let mut errors = ErrorBackoff::new("lease renewal");
        loop {
            tokio::select! {
                biased;
                _ = done.cancelled() => break,
                _ = tokio::time::sleep(jitter(period)) => {}
            }
            match self.run_once().await {
                Ok(_) => errors.ok(),
                Err(e) => {
                    errors.failed(&e);
                }
            }
        }
        tracing::debug!("heartbeat stopped");
    }

    /// One renewal pass; returns how many entries were found lost. An error
    /// on one stream does not stop the others; the first one is returned.
    pub(crate) async fn run_once(&self) -> ferry_broker::Result<usize> {
        let mut lost_total = 0;
        let mut first_error = None;
        for (qi, ids) in self.shared.inflight.snapshot() {
            let queue = &self.shared.queues[qi];
            let mut conn = self.shared.conn.clone();
            let lost = match queue.renew(&mut conn, &ids).await {
                Ok(lost) => lost,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            if !lost.is_empty() {
                tracing::warn!(
                    queue = %queue.queue().name(),
                    lost = lost.len(),
                    "lease lost: entries were recovered by another worker (this one missed renewals)"
                );
                self.shared.inflight.mark_lost(qi, &lost);
                lost_total += lost.len();
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(lost_total),
        }
    }
}
