//! [`Slots`]: the worker's concurrency limit, a fair semaphore of
//! `concurrency` permits. A job holds one slot while it runs; a suspect
//! (a recovered entry whose earlier runs crashed) holds them all.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// One slot (or, for a suspect, all of them); released when dropped.
pub(crate) type Slot = OwnedSemaphorePermit;

/// The worker's job slots. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Slots {
    sem: Arc<Semaphore>,
    total: u32,
}

impl Slots {
    pub(crate) fn new(concurrency: usize) -> Self {
        let total = u32::try_from(concurrency).unwrap_or(u32::MAX);
        Self {
            sem: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// How many slots there are.
    pub(crate) fn total(&self) -> usize {
        self.total as usize
    }

    /// Takes between 1 and `max` free slots, waiting for the first one;
    /// `None` when `stop` fires first.
    pub(crate) async fn take(&self, max: usize, stop: &CancellationToken) -> Option<Vec<Slot>> {
        let first = self.wait(1, stop).await?;
        // Let jobs that are about to finish free their slots, so one claim
        // takes a batch rather than one entry per round trip.
        if max > 1 {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
        }
        let mut slots = vec![first];
        slots.extend(self.try_take(max.saturating_sub(1)));
        Some(slots)
    }

    /// Takes up to `max` free slots without waiting (possibly none).
    pub(crate) fn try_take(&self, max: usize) -> Vec<Slot> {
        let mut slots = Vec::new();
        while slots.len() < max {
            match Arc::clone(&self.sem).try_acquire_owned() {
                Ok(s) => slots.push(s),
                Err(_) => break,
            }
        }
        slots
    }

    /// Waits for one slot, or for all of them (`all`: a suspect runs alone);
    /// `None` when `stop` fires first.
    pub(crate) async fn wait_for(&self, all: bool, stop: &CancellationToken) -> Option<Slot> {
        self.wait(if all { self.total } else { 1 }, stop).await
    }

    async fn wait(&self, n: u32, stop: &CancellationToken) -> Option<Slot> {
        tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            s = Arc::clone(&self.sem).acquire_many_owned(n) => s.ok(),
        }
    }
}
