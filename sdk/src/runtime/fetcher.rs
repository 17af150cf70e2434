//! The fetcher of one queue: claims entries for free slots and hands them
//! to the executor. `claim.lua` takes up to the number of free slots in
//! strict priority in one round trip (`claim_bulk` for big batches); when
//! every stream is empty it blocks in a plain XREAD from the streams' tails
//! on a connection of its own (never a sleep-poll loop), and when Redis
//! wakes it, claims again. The blocking read takes nothing: an entry that
//! arrives while the queue is paused, or while this worker holds its
//! claims, stays queued for any worker (a blocking XREADGROUP would hold it
//! pending here, reading as running).

use std::sync::Arc;
use std::time::Duration;

use crate::link::Link;
use ferry_broker::Claimed;
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
        let mut at_limit = AT_LIMIT_WAIT_FIRST;
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
            if self.queue.activity.claims_held() {
                if self.wait_while_held(&stop).await {
                    break;
                }
                continue;
            }
            match self.run_once(&mut last_claim, &stop).await {
                Ok(true) => {
                    errors.ok();
                    at_limit = AT_LIMIT_WAIT_FIRST;
                }
                Ok(false) => break,
                Err(ferry_broker::Error::Paused(_)) => {
                    errors.ok();
                    if self.wait_while_paused(&stop).await {
                        break;
                    }
                }
                Err(ferry_broker::Error::RateLimited { wait, .. }) => {
                    // Nothing may start before the limit's next slot (by
                    // the server's clock): sleep until then, not poll.
                    errors.ok();
                    if pause(wait.min(RATE_WAIT_MAX), &stop).await {
                        break;
                    }
                }
                Err(ferry_broker::Error::AtConcurrencyLimit(_)) => {
                    // A slot frees when any worker's job ends: look again
                    // after a wait that doubles up to AT_LIMIT_WAIT_MAX.
                    errors.ok();
                    if pause(at_limit, &stop).await {
                        break;
                    }
                    at_limit = (at_limit * 2).min(AT_LIMIT_WAIT_MAX);
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
        let Some(slots) = self.slots.take(most, stop).await else {
            return Ok(false);
        };
        let consumer = &self.queue.consumer;
        let mut conn = self.conn.clone();
        // Big batches skip Lua (two round trips, less Redis CPU per entry);
        // small ones take one round trip (lower latency).
        let tails = if *last_claim >= BULK_CLAIM && slots.len() >= BULK_CLAIM {
            let claimed = consumer.claim_bulk(&mut conn, slots.len()).await;
            *last_claim = claimed.as_ref().map(Vec::len).unwrap_or(0);
            let claimed = claimed?;
            self.queue.claim_size.observe(&claimed);
            if claimed.is_empty() {
                // The next pass claims with claim.lua, which says where
                // the streams end if they are still empty.
                return Ok(true);
            }
            self.executor.start(&self.queue, claimed, slots);
            return Ok(true);
        } else {
            let claimed = consumer.claim_or_tails(&mut conn, slots.len()).await;
            *last_claim = match &claimed {
                Ok(Claimed::Entries(e)) => e.len(),
                _ => 0,
            };
            match claimed? {
                Claimed::Entries(claimed) => {
                    self.queue.claim_size.observe(&claimed);
                    self.executor.start(&self.queue, claimed, slots);
                    return Ok(true);
                }
                Claimed::Empty(tails) => tails,
            }
        };
        // Nothing waiting: the slots go back, and this waits for an entry.
        drop(slots);
        if stop.is_cancelled() {
            return Ok(false);
        }
        let block_ms = self.block_time.as_millis() as u64;
        tokio::select! {
            // The read takes nothing, so it may be dropped at a stop.
            _ = stop.cancelled() => return Ok(false),
            woke = consumer.wait_for_entries(&mut self.blocking, &tails, block_ms) => { woke?; }
        }
        Ok(true)
    }
}

/// The longest a rate-limited fetcher sleeps before it asks again (a
/// limit raised or removed meanwhile is seen within it).
const RATE_WAIT_MAX: Duration = Duration::from_secs(1);

/// The first and the longest wait of a fetcher whose queue runs as many
/// jobs as its concurrency limit allows, before it claims again.
const AT_LIMIT_WAIT_FIRST: Duration = Duration::from_millis(25);
const AT_LIMIT_WAIT_MAX: Duration = Duration::from_millis(500);

/// How often a worker looks whether a paused queue was resumed.
const PAUSE_CHECK: Duration = Duration::from_millis(500);

impl Fetcher {
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

impl Fetcher {
    /// Waits while the worker holds its claims (the server's
    /// maxmemory-policy evicts; the memory watch logs it); true when `stop`
    /// fired first.
    async fn wait_while_held(&self, stop: &CancellationToken) -> bool {
        while self.queue.activity.claims_held() {
            if pause(PAUSE_CHECK, stop).await {
                return true;
            }
        }
        false
    }
}

/// Waits `d` unless `stop` fires first; true when it did.
async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
