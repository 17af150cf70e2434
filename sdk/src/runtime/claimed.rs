//! [`ClaimedJob`]: a claimed entry as one value that owns what it holds.

use std::sync::Arc;

use ferry_broker::Delivery;

use super::inflight::Lease;
use super::served::ServedQueue;
use super::slots::Slot;

/// A claimed job: its delivery, its lease (renewed by the heartbeat until
/// released) and, once it has one, its slot. Settling it consumes it;
/// dropping it unsettled (shutdown, a lost lease) releases the slot and the
/// lease and leaves the entry pending in Redis for recovery: at least once.
pub(crate) struct ClaimedJob {
    pub queue: Arc<ServedQueue>,
    pub delivery: Delivery,
    pub lease: Lease,
    pub slot: Option<Slot>,
}
