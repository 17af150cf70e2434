//! The entries this worker holds: claimed and not yet finished. The heartbeat
//! renews their lease; the recoverer and the fetcher add to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use ferry_broker::{EntryId, Priority};

type Key = (usize, Priority);

/// Entry ids per (queue index, priority), with a flag set when the lease was lost.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    inner: Mutex<HashMap<Key, HashMap<String, bool>>>,
    /// Set once any entry was marked lost: until then `is_lost` needs no lock.
    any_lost: std::sync::atomic::AtomicBool,
}

impl InFlight {
    /// Keeps only the deliveries this worker is not already running and
    /// registers them, under one lock. An entry it already runs is dropped:
    /// that happens when its own recovery reclaims an entry whose renewals
    /// failed (a Redis outage longer than the lease); the entry is owned
    /// again, so a `lost` mark is cleared, and the job must not start twice.
    pub(crate) fn insert_new(&self, queue: usize, deliveries: &mut Vec<ferry_broker::Delivery>) {
        let Ok(mut m) = self.inner.lock() else {
            deliveries.clear();
            return;
        };
        deliveries.retain(|d| {
            let ids = m.entry((queue, d.priority())).or_default();
            match ids.get_mut(&d.entry.id) {
                Some(lost) => {
                    *lost = false;
                    false
                }
                None => {
                    ids.insert(d.entry.id.clone(), false);
                    true
                }
            }
        });
    }

    /// Removes finished entries under one lock.
    pub(crate) fn remove_all(&self, queue: usize, entries: &[EntryId]) {
        if let Ok(mut m) = self.inner.lock() {
            for e in entries {
                if let Some(ids) = m.get_mut(&(queue, e.priority)) {
                    ids.remove(&e.id);
                }
            }
        }
    }

    pub(crate) fn remove(&self, queue: usize, entry: &EntryId) {
        self.remove_all(queue, std::slice::from_ref(entry));
    }

    /// True when recovery gave this entry to another worker.
    pub(crate) fn is_lost(&self, queue: usize, entry: &EntryId) -> bool {
        if !self.any_lost.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        self.inner
            .lock()
            .ok()
            .and_then(|m| {
                m.get(&(queue, entry.priority))
                    .and_then(|ids| ids.get(&entry.id).copied())
            })
            .unwrap_or(false)
    }

    pub(crate) fn mark_lost(&self, queue: usize, entries: &[EntryId]) {
        self.any_lost
            .store(true, std::sync::atomic::Ordering::Release);
        if let Ok(mut m) = self.inner.lock() {
            for e in entries {
                if let Some(lost) = m
                    .get_mut(&(queue, e.priority))
                    .and_then(|ids| ids.get_mut(&e.id))
                {
                    *lost = true;
                }
            }
        }
    }

    /// The entries still owned, per queue, for renewal.
    pub(crate) fn snapshot(&self) -> BTreeMap<usize, Vec<EntryId>> {
        let mut out: BTreeMap<usize, Vec<EntryId>> = BTreeMap::new();
        if let Ok(m) = self.inner.lock() {
            for ((queue, priority), ids) in m.iter() {
                for (id, lost) in ids {
                    if !*lost {
                        out.entry(*queue).or_default().push(EntryId {
                            priority: *priority,
                            id: id.clone(),
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(priority: Priority, id: &str) -> ferry_broker::Delivery {
        ferry_broker::Delivery {
            entry: EntryId {
                priority,
                id: id.to_owned(),
            },
            fields: Vec::new(),
            deliveries: 1,
            suspect: false,
        }
    }

    fn insert(f: &InFlight, queue: usize, priority: Priority, id: &str) -> bool {
        let mut batch = vec![delivery(priority, id)];
        f.insert_new(queue, &mut batch);
        !batch.is_empty()
    }

    #[test]
    fn an_entry_already_running_is_not_registered_twice_and_a_reclaimed_one_is_owned_again() {
        let f = InFlight::default();
        assert!(insert(&f, 0, Priority::High, "1-0"));
        assert!(
            !insert(&f, 0, Priority::High, "1-0"),
            "a second dispatch of a running entry is refused"
        );
        assert!(
            insert(&f, 1, Priority::High, "1-0"),
            "same id on another queue is another entry"
        );
        let e = EntryId {
            priority: Priority::High,
            id: "1-0".to_owned(),
        };
        f.mark_lost(0, std::slice::from_ref(&e));
        assert!(f.is_lost(0, &e));
        assert!(
            !f.snapshot().contains_key(&0),
            "lost entries are not renewed"
        );
        assert!(!insert(&f, 0, Priority::High, "1-0"));
        assert!(!f.is_lost(0, &e), "reclaimed by this worker: owned again");
        f.remove_all(0, std::slice::from_ref(&e));
        assert!(insert(&f, 0, Priority::High, "1-0"));
    }
}
