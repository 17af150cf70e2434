//! [`ClaimSize`]: how many entries one claim of a queue may take, so that a
//! claim is bounded by bytes as well as by count. Redis builds a claim's
//! whole reply at once: 200 entries of 1 MB are a 200 MB reply that stalls
//! Redis for most of a second and doubles its memory for a moment.
//!
//! The size of entries not yet read is unknown, so the bound works from an
//! estimate of the bytes per entry: it starts at the queue's payload limit
//! (no entry is larger; a producer refuses more), jumps to the largest
//! entry of any claim, and halves after each claim whose entries were all
//! smaller than half of it. A queue of small jobs reaches the full count in
//! a dozen claims; a queue of big ones is bounded from its first claim.

use std::sync::atomic::{AtomicU64, Ordering};

use ferry_broker::Delivery;

/// Bytes one claim aims to stay under: about ten milliseconds of Redis
/// work to build the reply.
pub(crate) const CLAIM_BYTES: u64 = 4 * 1024 * 1024;

/// Bytes an entry takes besides its payload (ids, type, field names).
const ENTRY_OVERHEAD: u64 = 256;

/// The estimate of one queue's bytes per entry.
#[derive(Debug)]
pub(crate) struct ClaimSize {
    entry_bytes: AtomicU64,
}

impl ClaimSize {
    /// An estimate for a queue whose payloads are at most `payload_limit`.
    pub(crate) fn new(payload_limit: usize) -> Self {
        Self {
            entry_bytes: AtomicU64::new((payload_limit as u64).saturating_add(ENTRY_OVERHEAD)),
        }
    }

    /// How many entries to claim when `free` slots are free: at least one.
    pub(crate) fn limit(&self, free: usize) -> usize {
        let per_entry = self.entry_bytes.load(Ordering::Relaxed).max(1);
        let by_bytes = usize::try_from(CLAIM_BYTES / per_entry).unwrap_or(usize::MAX);
        free.min(by_bytes).max(1)
    }

    /// Learns from a claim's entries.
    pub(crate) fn observe(&self, claimed: &[Delivery]) {
        let Some(largest) = claimed.iter().map(entry_bytes).max() else {
            return;
        };
        let est = self.entry_bytes.load(Ordering::Relaxed);
        let next = if largest >= est / 2 {
            largest.max(est)
        } else {
            est / 2
        };
        if next != est {
            self.entry_bytes.store(next, Ordering::Relaxed);
        }
    }
}

/// The bytes of one entry as Redis sends it (fields and values).
fn entry_bytes(d: &Delivery) -> u64 {
    let fields: usize = d.fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    (fields as u64).saturating_add(ENTRY_OVERHEAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_broker::EntryId;

    fn entry(payload: usize) -> Delivery {
        Delivery {
            entry: EntryId {
                priority: ferry_broker::Priority::Normal,
                id: "1-0".into(),
            },
            fields: vec![(b"payload".to_vec(), vec![b'x'; payload])],
            deliveries: 1,
            suspect: false,
            started_at: None,
        }
    }

    #[test]
    fn big_entries_are_bounded_from_the_first_claim() {
        let size = ClaimSize::new(1024 * 1024);
        assert_eq!(size.limit(200), 3, "4 MB of 1 MB entries");
        size.observe(&[entry(1024 * 1024)]);
        assert_eq!(size.limit(200), 3);
    }

    #[test]
    fn small_entries_reach_the_full_count_within_a_few_dozen_claims() {
        let size = ClaimSize::new(1024 * 1024);
        let mut claims = 0;
        while size.limit(500) < 500 {
            let n = size.limit(500);
            size.observe(&vec![entry(100); n]);
            claims += 1;
            assert!(
                claims < 20,
                "still {} after {claims} claims",
                size.limit(500)
            );
        }
    }

    #[test]
    fn a_big_entry_among_small_ones_shrinks_the_next_claim_at_once() {
        let size = ClaimSize::new(1024 * 1024);
        for _ in 0..20 {
            size.observe(&[entry(100)]);
        }
        assert_eq!(size.limit(500), 500);
        size.observe(&[entry(100), entry(512 * 1024)]);
        assert!(size.limit(500) <= 8, "{}", size.limit(500));
    }
}
