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
}

impl Acker {
    /// Acknowledges completions until `stop`, then drains what is left.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        tracing::debug!("acker started");
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = tokio::select! {
                a = self.rx.recv() => a,
                _ = stop.cancelled() => None,
            };
            match first {
                Some(a) => batch.push(a),
                None => break,
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
        tracing::debug!("acker stopped");
    }

    /// Acknowledges one batch: one script call per queue and priority in it,
    /// each retried on its own. Returns how many entries were acknowledged.
    pub(crate) async fn run_once(&self, batch: &mut Vec<Ack>) -> u64 {
        let mut groups: Vec<Group> = Vec::new();
        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        for Ack {
            queue,
            lease,
            job_id,
            record,
            started,
            ran,
        } in batch.drain(..)
        {
            let priority = lease.entry().priority;
            let finished = Finished {
                entry: lease.entry().clone(),
                job_id,
                record,
                timing: Some((millis(started.elapsed()), millis(ran))),
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
        for (queue, _, leases, finished) in groups {
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
            // Acknowledged or given up on: the leases need no more renewal.
            queue.inflight.release_all(leases);
        }
        acked
    }
}
