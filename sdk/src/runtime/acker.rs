//! Acknowledges finished jobs in batches: whatever completed while the last
//! round trip was in flight goes in the next one (group commit without a
//! timer, so a lone completion is acknowledged at once).

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_broker::EntryId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Completion, Shared};

/// Times the acker yields to other tasks before sending a batch.
const GATHER_YIELDS: usize = 3;

/// Most entries acknowledged in one script call.
const MAX_BATCH: usize = 512;

pub(crate) struct Acker {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Completion>,
}

impl Acker {
    pub(crate) fn new(shared: Arc<Shared>, rx: mpsc::UnboundedReceiver<Completion>) -> Self {
        Self { shared, rx }
    }

    /// Acknowledges completions until `done` is cancelled, then drains what is left.
    pub(crate) async fn run(mut self, done: CancellationToken) {
        tracing::debug!("acker started");
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = tokio::select! {
                c = self.rx.recv() => c,
                _ = done.cancelled() => None,
            };
            match first {
                Some(c) => batch.push(c),
                None => break,
            }
            // Group commit without a timer: let jobs that are about to finish
            // (already runnable) send their completions into this batch.
            for _ in 0..GATHER_YIELDS {
                tokio::task::yield_now().await;
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.run_once(&mut batch).await;
        }
        while let Ok(c) = self.rx.try_recv() {
            batch.push(c);
            if batch.len() >= MAX_BATCH {
                self.run_once(&mut batch).await;
            }
        }
        self.run_once(&mut batch).await;
        tracing::debug!("acker stopped");
    }

    /// Acknowledges one batch: one script call per (queue, priority) in it.
    pub(crate) async fn run_once(&self, batch: &mut Vec<Completion>) -> u64 {
        let mut groups: BTreeMap<usize, Vec<EntryId>> = BTreeMap::new();
        for c in batch.drain(..) {
            groups.entry(c.queue).or_default().push(c.entry);
        }
        let mut acked = 0;
        for (qi, ids) in groups {
            let queue = &self.shared.queues[qi];
            let n = self
                .shared
                .persist("acknowledging finished jobs", |mut conn| {
                    let ids = &ids;
                    async move { queue.ack(&mut conn, ids).await }
                })
                .await
                .unwrap_or(0);
            if (n as usize) < ids.len() {
                tracing::warn!(
                    acked = n,
                    finished = ids.len(),
                    "some finished entries were no longer ours (lease lost); their new owner decides"
                );
            }
            acked += n;
            // Acknowledged (or given up on: then recovery runs it again), so
            // its lease need not be renewed any more.
            self.shared.inflight.remove_all(qi, &ids);
            for _ in &ids {
                self.shared.activity.finished();
            }
        }
        acked
    }
}
