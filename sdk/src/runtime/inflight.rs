//! The entries a worker holds for one queue: claimed and not yet finished.
//! Each is a [`Lease`]: the heartbeat renews every lease in the set, and
//! dropping the lease takes the entry out of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferry_broker::{Delivery, EntryId};

use super::activity::Activity;

/// The entries held, each with a flag set when its lease was lost.
#[derive(Debug)]
pub(crate) struct InFlight {
    entries: Mutex<HashMap<EntryId, bool>>,
    /// Set once any entry was marked lost: until then `is_lost` needs no lock.
    any_lost: AtomicBool,
    activity: Arc<Activity>,
}

impl InFlight {
    pub(crate) fn new(activity: Arc<Activity>) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            any_lost: AtomicBool::new(false),
            activity,
        })
    }

    /// A poisoned lock only means another thread panicked while holding it;
    /// the map is still consistent (every change is one map operation).
    fn lock(&self) -> MutexGuard<'_, HashMap<EntryId, bool>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a lease on each delivery this worker is not already running,
    /// under one lock. A delivery already held is dropped: that happens when
    /// this worker's own recovery reclaims an entry whose renewals failed (a
    /// Redis outage longer than the lease); the entry is owned again, so its
    /// `lost` mark is cleared, and the job must not start twice.
    pub(crate) fn lease_all(self: &Arc<Self>, deliveries: Vec<Delivery>) -> Vec<(Delivery, Lease)> {
        let mut out = Vec::with_capacity(deliveries.len());
        {
            let mut entries = self.lock();
            for d in deliveries {
                match entries.get_mut(&d.entry) {
                    Some(lost) => *lost = false,
                    None => {
                        entries.insert(d.entry.clone(), false);
                        let lease = Lease {
                            inflight: Arc::clone(self),
                            entry: d.entry.clone(),
                            released: false,
                        };
                        out.push((d, lease));
                    }
                }
            }
        }
        if !out.is_empty() {
            self.activity.claimed(out.len());
        }
        out
    }

    /// Marks entries recovery gave to another worker: their leases are no
    /// longer renewed, and their outcomes are not recorded.
    pub(crate) fn mark_lost(&self, lost: &[EntryId]) {
        self.any_lost.store(true, Ordering::Release);
        let mut entries = self.lock();
        for e in lost {
            if let Some(flag) = entries.get_mut(e) {
                *flag = true;
            }
        }
    }

    /// The entries still owned, for renewal.
    pub(crate) fn owned(&self) -> Vec<EntryId> {
        self.lock()
            .iter()
            .filter(|(_, lost)| !**lost)
            .map(|(e, _)| e.clone())
            .collect()
    }

    fn is_lost(&self, entry: &EntryId) -> bool {
        if !self.any_lost.load(Ordering::Acquire) {
            return false;
        }
        self.lock().get(entry).copied().unwrap_or(false)
    }

    fn release(&self, entry: &EntryId) {
        self.lock().remove(entry);
        self.activity.finished(1);
    }

    /// Releases a batch of this set's leases under one lock (the acker's
    /// batches run to hundreds). A lease of another set is released by its
    /// own drop.
    pub(crate) fn release_all(&self, mut leases: Vec<Lease>) {
        let mut released = 0;
        {
            let mut entries = self.lock();
            for lease in &mut leases {
                if std::ptr::eq(Arc::as_ptr(&lease.inflight), self) {
                    entries.remove(&lease.entry);
                    lease.released = true;
                    released += 1;
                }
            }
        }
        self.activity.finished(released);
    }
}

/// This worker's hold on one pending entry: while it lives, the heartbeat
/// renews the entry's lease in Redis. Dropping it (the job was settled, or
/// abandoned at shutdown) releases the entry once.
#[derive(Debug)]
pub(crate) struct Lease {
    inflight: Arc<InFlight>,
    entry: EntryId,
    /// Set by [`InFlight::release_all`], which did the drop's work.
    released: bool,
}

impl Lease {
    /// The entry held.
    pub(crate) fn entry(&self) -> &EntryId {
        &self.entry
    }

    /// True when recovery gave the entry to another worker (this one missed
    /// renewals): its outcome must not be recorded here.
    pub(crate) fn is_lost(&self) -> bool {
        self.inflight.is_lost(&self.entry)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            self.inflight.release(&self.entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_broker::Priority;

    fn delivery(priority: Priority, id: &str) -> Delivery {
        Delivery {
            entry: EntryId {
                priority,
                id: id.to_owned(),
            },
            fields: Vec::new(),
            deliveries: 1,
            suspect: false,
            started_at: None,
        }
    }

    #[test]
    fn an_entry_already_running_is_not_leased_twice_and_a_reclaimed_one_is_owned_again() {
        let activity = Arc::new(Activity::new());
        let f = InFlight::new(Arc::clone(&activity));
        let mut leases = f.lease_all(vec![delivery(Priority::High, "1-0")]);
        assert_eq!(leases.len(), 1);
        assert!(
            f.lease_all(vec![delivery(Priority::High, "1-0")])
                .is_empty(),
            "a second claim of a running entry is refused"
        );
        let other = f.lease_all(vec![delivery(Priority::Low, "1-0")]);
        assert_eq!(other.len(), 1, "same id in another stream is another entry");
        assert_eq!(activity.running(), 2);

        let (_, lease) = leases.remove(0);
        f.mark_lost(std::slice::from_ref(lease.entry()));
        assert!(lease.is_lost());
        assert_eq!(f.owned().len(), 1, "lost entries are not renewed");
        assert!(f
            .lease_all(vec![delivery(Priority::High, "1-0")])
            .is_empty());
        assert!(!lease.is_lost(), "reclaimed by this worker: owned again");

        drop(lease);
        assert_eq!(activity.running(), 1, "dropping a lease releases it once");
        assert_eq!(f.lease_all(vec![delivery(Priority::High, "1-0")]).len(), 1);
    }

    #[test]
    fn a_batch_release_releases_each_lease_once() {
        let activity = Arc::new(Activity::new());
        let a = InFlight::new(Arc::clone(&activity));
        let b = InFlight::new(Arc::clone(&activity));
        let mut leases: Vec<Lease> = a
            .lease_all(
                (0..3)
                    .map(|i| delivery(Priority::Normal, &format!("{i}-0")))
                    .collect(),
            )
            .into_iter()
            .map(|(_, lease)| lease)
            .collect();
        let (_, other) = b
            .lease_all(vec![delivery(Priority::Normal, "9-0")])
            .remove(0);
        leases.push(other);
        assert_eq!(activity.running(), 4);
        a.release_all(leases);
        assert_eq!(
            activity.running(),
            0,
            "a's three by the batch, b's by its drop"
        );
        assert!(a.owned().is_empty() && b.owned().is_empty());
    }

    #[test]
    fn claiming_nothing_does_not_count_as_activity() {
        // `--exit-when-idle` and the like watch the idle time: recovery passes
        // that find nothing (every lease/2) must not reset it.
        let activity = Arc::new(Activity::new());
        let f = InFlight::new(Arc::clone(&activity));
        let idle = std::time::Duration::from_millis(30);
        std::thread::sleep(idle);
        assert!(f.lease_all(Vec::new()).is_empty());
        assert!(activity.idle_for() >= idle, "{:?}", activity.idle_for());
        let _lease = f.lease_all(vec![delivery(Priority::High, "1-0")]);
        assert!(activity.idle_for() < idle);
    }
}
