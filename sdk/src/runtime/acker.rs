//! The acker: acknowledges finished jobs in batches. Whatever completed
//! while the last round trip was in flight goes in the next one (group
//! commit without a timer, so a lone completion is acknowledged at once).

use std::sync::Arc;

use crate::link::Link;
use ferry_broker::{Finished, Priority};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::inflight::Lease;
use super::retry::RedisRetry;
use super::served::ServedQueue;

/// Times the acker yields to other tasks before sending a batch.
const GATHER_YIELDS: usize = 3;

/// Most entries acknowledged in one round.
const MAX_BATCH: usize = 512;

/// A finished job waiting for its acknowledgement. Its lease is kept (and
/// renewed) until the ack is written, then dropped.
pub(crate) struct Ack {
    pub queue: Arc<ServedQueue>,
    pub lease: Lease,
    /// The job id.
    pub job_id: String,
    /// The record's fields ([`ferry_broker::record_fields`]).
    pub record: String,
    /// The job's own record retention (its envelope's), in ms.
    pub retention_ms: Option<u64>,
    /// When the attempt started, and how long its handler ran.
    pub started: std::time::Instant,
    pub ran: std::time::Duration,
}

/// Finished jobs of one queue and priority: their leases, and what to ack.
type Group = (Arc<ServedQueue>, Priority, Vec<Lease>, Vec<Finished>);

pub(crate) struct Acker {
    pub conn: Link,
    pub rx: mpsc::UnboundedReceiver<Ack>,
    /// Cancelled when the grace period is over: writes stop retrying.
    pub hard_stop: CancellationToken,
    /// How long an ack keeps trying through Redis errors.
    pub lease: std::time::Duration,
    /// The queues served, whose completed jobs' times go to their
    /// per-minute stats every [`TIMING_FLUSH`].
    pub queues: Vec<Arc<ServedQueue>>,
}

/// How often completed jobs' times are added to the queues' stats.
const TIMING_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

impl Acker {
    /// Acknowledges completions until `stop`, then drains what is left.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        tracing::debug!("acker started");
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut next_flush = tokio::time::Instant::now() + TIMING_FLUSH;
        loop {
            let first = tokio::select! {
                a = self.rx.recv() => Some(a),
                _ = stop.cancelled() => Some(None),
                _ = tokio::time::sleep_until(next_flush) => None,
            };
            if tokio::time::Instant::now() >= next_flush {
                self.flush_timing().await;
                next_flush = tokio::time::Instant::now() + TIMING_FLUSH;
            }
            match first {
                Some(Some(a)) => batch.push(a),
                Some(None) => break,
                None => continue,
            }
            // Group commit without a timer: let jobs that are about to finish
            // (already runnable) send their completions into this batch.
            for _ in 0..GATHER_YIELDS {
                tokio::task::yield_now().await;
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
            self.run_once(&mut batch).await;
        }
        while let Ok(a) = self.rx.try_recv() {
            batch.push(a);
            if batch.len() >= MAX_BATCH {
                self.run_once(&mut batch).await;
            }
        }
        self.run_once(&mut batch).await;
        self.flush_timing().await;
        tracing::debug!("acker stopped");
    }

    /// Adds each queue's completed jobs since the last flush to its
    /// per-minute stats: one call per queue with any. A failure keeps them
    /// for the next flush (stats are best effort; the acks are not).
    async fn flush_timing(&self) {
        for queue in &self.queues {
            let batch = std::mem::take(
                &mut *queue
                    .timing
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if batch.is_empty() {
                continue;
            }
            let mut conn = self.conn.clone();
            if let Err(e) = queue
                .consumer
                .queue()
                .record_timing(&mut conn, &batch)
                .await
            {
                tracing::debug!(error = %e, queue = queue.name(), "could not add completed jobs to the stats; trying again at the next flush");
                let mut held = queue
                    .timing
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                held.merge(batch);
            }
        }
    }

    /// Acknowledges one batch: one script call per queue and priority in it,
    /// each retried on its own. Returns how many entries were acknowledged.
    pub(crate) async fn run_once(&self, batch: &mut Vec<Ack>) -> u64 {
        let mut groups: Vec<Group> = Vec::new();
        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let now = ferry_broker::now_ms();
        for Ack {
            queue,
            lease,
            job_id,
            record,
            retention_ms,
            started,
            ran,
        } in batch.drain(..)
        {
            let priority = lease.entry().priority;
            // The wait: from the entry (its id's time, the server's clock)
            // to the start, placed on the server's clock.
            let offset = queue
                .server_offset_ms
                .load(std::sync::atomic::Ordering::Relaxed);
            let started_ms = now.saturating_sub(millis(started.elapsed()));
            let started_server = i64::try_from(started_ms)
                .unwrap_or(i64::MAX)
                .saturating_add(offset);
            let entry_ms =
                i64::try_from(ferry_broker::envelope::entry_ms(&lease.entry().id)).unwrap_or(0);
            let wait = u64::try_from(started_server.saturating_sub(entry_ms)).unwrap_or(0);
            queue
                .timing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .add(priority, wait, millis(ran));
            let finished = Finished {
                entry: lease.entry().clone(),
                job_id,
                record,
                retention_ms,
            };
            match groups
                .iter_mut()
                .find(|(q, p, _, _)| *p == priority && Arc::ptr_eq(q, &queue))
            {
                Some((_, _, leases, done)) => {
                    leases.push(lease);
                    done.push(finished);
                }
                None => groups.push((queue, priority, vec![lease], vec![finished])),
            }
        }
        let mut acked = 0;
        for (queue, priority, leases, finished) in groups {
            let (consumer, held) = (&queue.consumer, &finished);
            let n = RedisRetry::persist(
                "acknowledging finished jobs",
                &self.conn,
                &self.hard_stop,
                self.lease,
                |mut conn| async move { consumer.ack_finished(&mut conn, held).await },
            )
            .await;
            match n {
                Some(n) if (n as usize) < leases.len() => tracing::warn!(
                    queue = %queue.name(),
                    acked = n,
                    finished = leases.len(),
                    "some finished entries were no longer ours (lease lost); their new owner decides"
                ),
                // Never written (logged by the retry policy): the entries
                // stay pending, and recovery runs the jobs again.
                _ => {}
            }
            acked += n.unwrap_or(0);
            queue
                .timing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .count_completed(priority, n.unwrap_or(0));
            // Acknowledged or given up on: the leases need no more renewal.
            queue.inflight.release_all(leases);
        }
        acked
    }
}
