//! [`ServedQueue`]: everything the runtime keeps per queue it serves.

use std::sync::Arc;

use ferry_broker::Consumer;
use tokio::sync::Notify;

use super::activity::Activity;
use super::claim_size::ClaimSize;
use super::inflight::InFlight;

/// One queue this worker serves: its consumer handle (the queue's keys and
/// this worker's consumer name), the entries it holds, and the wake-up of
/// its promoter.
pub(crate) struct ServedQueue {
    pub consumer: Consumer,
    pub inflight: Arc<InFlight>,
    /// Wakes the queue's promoter early (a retry was just scheduled).
    pub promote_wake: Notify,
    /// How many entries one claim may take (bounded by bytes).
    pub claim_size: ClaimSize,
    /// The queue's events cap (0: off), as its promoter last read it.
    pub events_cap: std::sync::atomic::AtomicU64,
    /// Whether the queue keeps finished jobs' records (its retention is
    /// not 0), as its promoter last read it: a record's fields are built
    /// only then.
    pub records: std::sync::atomic::AtomicBool,
    /// The Redis server's clock minus this host's (ms), as its promoter
    /// last measured it: places job starts on the server's clock.
    pub server_offset_ms: std::sync::atomic::AtomicI64,
    /// Completed jobs not yet added to the queue's per-minute stats (the
    /// acker sends them about once a second).
    pub timing: std::sync::Mutex<ferry_broker::TimingBatch>,
    /// The worker's activity (whether claims are held).
    pub activity: Arc<Activity>,
}

impl ServedQueue {
    pub(crate) fn new(consumer: Consumer, activity: Arc<Activity>) -> Self {
        Self {
            claim_size: ClaimSize::new(consumer.queue().payload_limit()),
            consumer,
            inflight: InFlight::new(Arc::clone(&activity)),
            activity,
            promote_wake: Notify::new(),
            events_cap: std::sync::atomic::AtomicU64::new(0),
            records: std::sync::atomic::AtomicBool::new(true),
            server_offset_ms: std::sync::atomic::AtomicI64::new(0),
            timing: std::sync::Mutex::new(ferry_broker::TimingBatch::default()),
        }
    }

    /// The queue's name.
    pub(crate) fn name(&self) -> &str {
        self.consumer.queue().name()
    }
}
