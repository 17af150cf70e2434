//! Claims entries of one queue for free slots: `claim.lua` takes up to the
//! number of free slots in strict priority in one round trip; when every
//! stream is empty it blocks in XREADGROUP on a connection of its own
//! (never a sleep-poll loop), and Redis wakes it when an entry arrives.

use std::sync::Arc;

use redis::aio::ConnectionManager;

use super::{ErrorBackoff, Shared};

/// Claims at least this large use `claim_bulk` (measured: passing entries
/// through Lua costs Redis ~2.4 µs each; an extra round trip costs less than
/// that for batches of this size).
const BULK_CLAIM: usize = 16;

/// Most entries claimed in one call.
pub(crate) const MAX_CLAIM: usize = 500;

pub(crate) struct Fetcher {
    shared: Arc<Shared>,
    qi: usize,
    /// Dedicated to blocking reads: its response timeout exceeds the block time.
    blocking: ConnectionManager,
}

impl Fetcher {
    pub(crate) fn new(shared: Arc<Shared>, qi: usize, blocking: ConnectionManager) -> Self {
        Self {
            shared,
            qi,
            blocking,
        }
    }

    /// Claims until shutdown starts. A blocking read in progress then runs to
    /// its end (at most the block time) so that nothing it returns is stranded.
    pub(crate) async fn run(mut self) {
        let queue = self.shared.queues[self.qi].clone();
        tracing::debug!(queue = %queue.queue().name(), consumer = %self.shared.consumer, "fetcher started");
        let mut errors = ErrorBackoff::new("claiming jobs");
        let mut groups_ready = false;
        let mut last_claim = 0;
        loop {
            if !groups_ready {
                let mut conn = self.shared.conn.clone();
                match queue.queue().ensure_groups(&mut conn).await {
                    Ok(()) => groups_ready = true,
                    Err(e) => {
                        let wait = errors.failed(&e);
                        if self.pause(wait).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            let Some(mut permits) = self.shared.take_slots(MAX_CLAIM).await else {
                break;
            };
            let mut conn = self.shared.conn.clone();
            // Big batches skip Lua (two round trips, less Redis CPU per
            // entry); small ones take one round trip (lower latency).
            let claimed = if last_claim >= BULK_CLAIM && permits.len() >= BULK_CLAIM {
                queue.claim_bulk(&mut conn, permits.len()).await
            } else {
                queue.claim(&mut conn, permits.len()).await
            };
            last_claim = claimed.as_ref().map(Vec::len).unwrap_or(0);
            match claimed {
                Ok(claimed) if !claimed.is_empty() => {
                    errors.ok();
                    self.shared.dispatch(self.qi, claimed, permits);
                    continue;
                }
                Ok(_) => errors.ok(),
                Err(e) => {
                    drop(permits);
                    let wait = errors.failed(&e);
                    if self.pause(wait).await {
                        break;
                    }
                    continue;
                }
            }
            // Nothing waiting: keep one slot and block until an entry arrives.
            permits.truncate(1);
            if self.shared.stopping.is_cancelled() {
                break;
            }
            let block_ms = self.shared.settings.block_time.as_millis() as u64;
            match queue.read_blocking(&mut self.blocking, block_ms).await {
                Ok(read) => {
                    errors.ok();
                    if read.len() > permits.len() {
                        let more = self.shared.try_take_slots(read.len() - permits.len());
                        permits.extend(more);
                    }
                    self.shared.dispatch(self.qi, read, permits);
                }
                Err(e) => {
                    drop(permits);
                    let wait = errors.failed(&e);
                    if self.pause(wait).await {
                        break;
                    }
                }
            }
        }
        tracing::debug!(queue = %queue.queue().name(), "fetcher stopped");
    }

    /// Waits `d` unless shutdown starts; true when it did.
    async fn pause(&self, d: std::time::Duration) -> bool {
        tokio::select! {
            _ = self.shared.stopping.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}
