//! The recoverer: takes over entries whose worker died. Every lease/2 it
//! runs XAUTOCLAIM (in `recover.lua`) over each priority stream of each
//! queue for entries idle past the lease, as many as it has free slots, and
//! runs them. Poison entries (delivered `max_deliveries` times) are
//! dead-lettered instead. Once a minute it also removes consumers that are
//! gone and own nothing, and frees the concurrency slots of jobs deleted
//! outside Ferry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::link::Link;
use ferry_broker::backoff::jitter;
use ferry_broker::{Priority, RecoverOptions};
use tokio_util::sync::CancellationToken;

use super::claim_size::CLAIM_BYTES;
use super::executor::Executor;
use super::retry::RedisRetry;
use super::served::ServedQueue;
use super::slots::Slots;

const CLEANUP_EVERY: Duration = Duration::from_secs(60);

/// One queue's recovery state: a pass's options per priority stream, with
/// the XAUTOCLAIM cursor each pass carries on from.
struct QueueRecovery {
    queue: Arc<ServedQueue>,
    streams: [RecoverOptions; 4],
}

pub(crate) struct Recoverer {
    queues: Vec<QueueRecovery>,
    conn: Link,
    slots: Slots,
    executor: Executor,
    lease: Duration,
    consumer_idle_timeout: Duration,
    last_cleanup: Option<Instant>,
    /// Whether the last pass took all the size bound let it: pass again now.
    again: bool,
}

impl Recoverer {
    pub(crate) fn new(
        queues: &[Arc<ServedQueue>],
        conn: Link,
        slots: Slots,
        executor: Executor,
        lease: Duration,
        max_deliveries: u32,
        consumer_idle_timeout: Duration,
    ) -> Self {
        let queues = queues
            .iter()
            .map(|queue| QueueRecovery {
                queue: Arc::clone(queue),
                streams: Priority::ALL.map(|p| {
                    RecoverOptions::new(p, lease, max_deliveries)
                        .group_base(slots.total())
                        .group_bytes(CLAIM_BYTES)
                }),
            })
            .collect();
        Self {
            queues,
            conn,
            slots,
            executor,
            lease,
            consumer_idle_timeout,
            last_cleanup: None,
            again: false,
        }
    }

    /// Recovers until `stop`.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        tracing::debug!("recoverer started");
        let period = self.lease / 2;
        let mut errors = RedisRetry::new("recovery");
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = match self.run_once(&stop).await {
                Ok(_) if self.again => {
                    errors.ok();
                    Duration::ZERO
                }
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
    /// it took over. It waits for a free slot before each stream (the slots
    /// are fair, so fetchers holding slots cannot starve it). An error on one
    /// stream does not stop the pass; the first one is returned at the end.
    pub(crate) async fn run_once(
        &mut self,
        stop: &CancellationToken,
    ) -> ferry_broker::Result<usize> {
        let mut taken = 0;
        let mut first_error = None;
        self.again = false;
        for QueueRecovery { queue, streams } in &mut self.queues {
            // Held while the server may evict Ferry's keys (the memory watch).
            if queue.activity.claims_held() {
                continue;
            }
            for options in streams.iter_mut() {
                let most = queue.claim_size.limit(self.slots.total());
                let Some(slots) = self.slots.take(most, stop).await else {
                    return Ok(taken); // shutting down
                };
                options.count = slots.len();
                let mut conn = self.conn.clone();
                let r = match queue.consumer.recover(&mut conn, options).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(queue = %queue.name(), priority = %options.priority, error = %e, "recovery of one stream failed");
                        first_error.get_or_insert(e);
                        continue;
                    }
                };
                options.cursor = r.cursor;
                if r.dead > 0 {
                    tracing::error!(
                        queue = %queue.name(),
                        priority = %options.priority,
                        count = r.dead,
                        max_deliveries = options.max_deliveries,
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
                    tracing::debug!(queue = %queue.name(), count = r.deleted, "pending ids of deleted entries cleared");
                }
                if !r.claimed.is_empty() {
                    tracing::info!(
                        queue = %queue.name(),
                        priority = %options.priority,
                        count = r.claimed.len(),
                        "recovered entries of a worker that stopped renewing its lease"
                    );
                    taken += r.claimed.len();
                }
                queue.claim_size.observe(&r.claimed);
                // Held back by the size bound, not by the slots: there may
                // be more to take at once (the bound grows as it learns).
                self.again |= r.claimed.len() >= most
                    && most < self.slots.total()
                    && !r.claimed.iter().any(|d| d.suspect);
                self.executor.announce_started(queue, &r.claimed).await;
                self.executor.start(queue, r.claimed, slots);
            }
        }
        if self
            .last_cleanup
            .is_none_or(|t| t.elapsed() >= CLEANUP_EVERY)
        {
            self.last_cleanup = Some(Instant::now());
            for QueueRecovery { queue, .. } in &self.queues {
                let mut conn = self.conn.clone();
                match queue
                    .consumer
                    .remove_idle_consumers(&mut conn, self.consumer_idle_timeout)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(queue = %queue.name(), removed = n, "removed idle consumers that owned no entries")
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
                // Slots of jobs gone without ending (deleted by hand).
                match queue.consumer.queue().repair_gates(&mut conn).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::warn!(queue = %queue.name(), jobs = n, "freed the concurrency slots of jobs whose entries were deleted outside Ferry")
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
