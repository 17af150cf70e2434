//! Takes over entries whose worker died: every lease/2 it runs XAUTOCLAIM
//! (in recover.lua) over each priority stream for entries idle past the
//! lease, as many as it has free slots, and runs them. Poison entries
//! (delivered more than max_deliveries times) are dead-lettered instead.
//! Now and then it also removes consumers that are gone and own nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_broker::Priority;

use super::{jitter, ErrorBackoff, Shared};

const CLEANUP_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct Recoverer {
    shared: Arc<Shared>,
    cursors: Vec<[String; 4]>,
    last_cleanup: Option<Instant>,
}

impl Recoverer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let cursors = shared
            .queues
            .iter()
            .map(|_| Priority::ALL.map(|_| "0-0".to_owned()))
            .collect();
        Self {
            shared,
            cursors,
            last_cleanup: None,
        }
    }

    pub(crate) async fn run(mut self) {
        tracing::debug!("recoverer started");
        let period = self.shared.settings.lease / 2;
        let mut errors = ErrorBackoff::new("recovery");
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                biased;
                _ = self.shared.stopping.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = match self.run_once().await {
                Ok(_) => {
                    errors.ok();
                    jitter(period)
                }
                Err(e) => errors.failed(&e).max(jitter(period)),
            };
        }
        tracing::debug!("recoverer stopped");
    }

    /// One pass over every stream of every queue; returns how many entries
    /// it took over. It waits for a free slot before each stream (the slot
    /// semaphore is fair, so fetchers holding slots cannot starve it). An
    /// error on one stream does not stop the pass; the first one is returned
    /// at the end.
    pub(crate) async fn run_once(&mut self) -> ferry_broker::Result<usize> {
        let s = Arc::clone(&self.shared);
        let mut taken = 0;
        let mut first_error = None;
        for (qi, queue) in s.queues.iter().enumerate() {
            for p in Priority::ALL {
                let Some(permits) = s.take_slots(s.settings.concurrency).await else {
                    return Ok(taken); // shutting down
                };
                let mut conn = s.conn.clone();
                let cursor = &self.cursors[qi][p.index()];
                let max = s.settings.max_deliveries;
                let options = ferry_broker::RecoverOptions::new(p, s.settings.lease, max)
                    .count(permits.len())
                    .cursor(cursor.clone());
                let r = match queue.recover(&mut conn, &options).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(queue = %queue.queue().name(), priority = %p, error = %e, "recovery of one stream failed");
                        first_error.get_or_insert(e);
                        continue;
                    }
                };
                self.cursors[qi][p.index()] = r.cursor;
                if r.dead > 0 {
                    tracing::error!(
                        queue = %queue.queue().name(),
                        priority = %p,
                        count = r.dead,
                        max_deliveries = max,
                        "entries delivered too many times without finishing moved to the dead-letter stream"
                    );
                }
                if r.dropped > 0 {
                    tracing::error!(
                        dropped = r.dropped,
                        "dead-letter cap reached: oldest dead-letter entries dropped"
                    );
                }
                if r.deleted > 0 {
                    tracing::debug!(queue = %queue.queue().name(), count = r.deleted, "pending ids of deleted entries cleared");
                }
                if !r.claimed.is_empty() {
                    tracing::info!(
                        queue = %queue.queue().name(),
                        priority = %p,
                        count = r.claimed.len(),
                        "recovered entries of a worker that stopped renewing its lease"
                    );
                    taken += r.claimed.len();
                }
                s.dispatch(qi, r.claimed, permits);
            }
        }
        if self
            .last_cleanup
            .is_none_or(|t| t.elapsed() >= CLEANUP_EVERY)
        {
            self.last_cleanup = Some(Instant::now());
            let idle = s.settings.consumer_idle_timeout;
            for queue in &s.queues {
                let mut conn = s.conn.clone();
                match queue.remove_idle_consumers(&mut conn, idle).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(queue = %queue.queue().name(), removed = n, "removed idle consumers that owned no entries")
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(taken),
        }
    }
}
