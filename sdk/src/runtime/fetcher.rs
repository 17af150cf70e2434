//! The fetcher of one queue: claims entries for free slots and hands them
//! to the executor. `claim.lua` takes up to the number of free slots in
//! strict priority in one round trip (`claim_bulk` for big batches); when
//! every stream is empty it blocks in XREADGROUP on a connection of its own
//! (never a sleep-poll loop), and Redis wakes it when an entry arrives.

use std::sync::Arc;
use std::time::Duration;

use crate::link::Link;
use tokio_util::sync::CancellationToken;

use super::executor::Executor;
use super::retry::RedisRetry;
use super::served::ServedQueue;
use super::slots::Slots;

/// Claims at least this large use `claim_bulk` (measured: passing entries
/// through Lua costs Redis ~2.4 µs each; an extra round trip costs less than
/// that for batches of this size).
const BULK_CLAIM: usize = 16;

/// Most entries claimed in one call; fewer when they are big
/// ([`ClaimSize`](super::claim_size::ClaimSize)).
const MAX_CLAIM: usize = 500;

pub(crate) struct Fetcher {
    pub queue: Arc<ServedQueue>,
    pub conn: Link,
    /// Dedicated to blocking reads: its response timeout exceeds the block time.
    pub blocking: Link,
    pub slots: Slots,
    pub executor: Executor,
    /// Longest XREADGROUP BLOCK.
    pub block_time: Duration,
}

impl Fetcher {
    /// Claims until `stop`. A blocking read in progress then runs to its end
    /// (at most the block time) so that nothing it returns is stranded.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        tracing::debug!(queue = %self.queue.name(), consumer = %self.queue.consumer.name(), "fetcher started");
        let mut errors = RedisRetry::new("claiming jobs");
        let mut groups_ready = false;
        let mut last_claim = 0;
        loop {
            if !groups_ready {
                let mut conn = self.conn.clone();
                match self.queue.consumer.queue().ensure_groups(&mut conn).await {
                    Ok(()) => groups_ready = true,
                    Err(e) => {
                        if pause(errors.failed(&e), &stop).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            match self.run_once(&mut last_claim, &stop).await {
                Ok(true) => errors.ok(),
                Ok(false) => break,
                Err(ferry_broker::Error::Paused(_)) => {
                    errors.ok();
                    if self.wait_while_paused(&stop).await {
                        break;
                    }
                }
                Err(e) => {
                    if pause(errors.failed(&e), &stop).await {
                        break;
                    }
                }
            }
        }
        tracing::debug!(queue = %self.queue.name(), "fetcher stopped");
    }

    /// One claim for the free slots (waiting for at least one), and if
    /// nothing is waiting, one blocking read. Returns false when `stop`
    /// fired instead.
    async fn run_once(
        &mut self,
        last_claim: &mut usize,
        stop: &CancellationToken,
    ) -> ferry_broker::Result<bool> {
        let most = self.queue.claim_size.limit(MAX_CLAIM);
        let Some(mut slots) = self.slots.take(most, stop).await else {
            return Ok(false);
        };
        let consumer = &self.queue.consumer;
        let mut conn = self.conn.clone();
        // Big batches skip Lua (two round trips, less Redis CPU per entry);
        // small ones take one round trip (lower latency).
        let claimed = if *last_claim >= BULK_CLAIM && slots.len() >= BULK_CLAIM {
            consumer.claim_bulk(&mut conn, slots.len()).await
        } else {
            consumer.claim(&mut conn, slots.len()).await
        };
        *last_claim = claimed.as_ref().map(Vec::len).unwrap_or(0);
        let claimed = claimed?;
        self.queue.claim_size.observe(&claimed);
        if !claimed.is_empty() {
            self.executor.start(&self.queue, claimed, slots);
            return Ok(true);
        }
        // Nothing waiting: keep one slot and block until an entry arrives.
        slots.truncate(1);
        if stop.is_cancelled() {
            return Ok(false);
        }
        let block_ms = self.block_time.as_millis() as u64;
        let read = consumer.read_blocking(&mut self.blocking, block_ms).await?;
        self.queue.claim_size.observe(&read);
        // Leased at once: the heartbeat renews them while they wait below.
        let leased = self.queue.inflight.lease_all(read);
        // A blocking read does not see a pause: what it took as the pause
        // landed waits here, leased to this worker, until the resume (or
        // is released at a stop, for recovery to hand out later).
        if !leased.is_empty() && self.paused_now(&mut conn).await {
            tracing::info!(queue = %self.queue.name(), "queue paused; an entry read just before waits for the resume");
            if self.wait_while_paused(stop).await {
                return Ok(false);
            }
        }
        if leased.len() > slots.len() {
            slots.extend(self.slots.try_take(leased.len() - slots.len()));
        }
        self.executor.start_leased(&self.queue, leased, slots);
        Ok(true)
    }
}

/// How often a worker looks whether a paused queue was resumed.
const PAUSE_CHECK: Duration = Duration::from_millis(500);

impl Fetcher {
    /// True when the queue is paused; false when not, or when Redis cannot
    /// say (the entries then run: they were claimed before any pause seen).
    async fn paused_now(&self, conn: &mut Link) -> bool {
        self.queue
            .consumer
            .queue()
            .is_paused(conn)
            .await
            .unwrap_or(false)
    }

    /// Waits until the queue is resumed (looking every [`PAUSE_CHECK`]);
    /// true when `stop` fired first.
    async fn wait_while_paused(&self, stop: &CancellationToken) -> bool {
        tracing::info!(queue = %self.queue.name(), "queue paused: claiming nothing until it is resumed");
        loop {
            if pause(PAUSE_CHECK, stop).await {
                return true;
            }
            let mut conn = self.conn.clone();
            // Paused still, or Redis unreachable: look again later.
            if let Ok(false) = self.queue.consumer.queue().is_paused(&mut conn).await {
                tracing::info!(queue = %self.queue.name(), "queue resumed");
                return false;
            }
        }
    }
}

/// Waits `d` unless `stop` fires first; true when it did.
async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
