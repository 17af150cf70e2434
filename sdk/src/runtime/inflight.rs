//! The entries this worker holds: claimed and not yet finished. The heartbeat
//! renews their lease; the recoverer and the fetcher add to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use ferry_broker::Priority;

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
            let ids = m.entry((queue, d.priority)).or_default();
            match ids.get_mut(&d.entry_id) {
                Some(lost) => {
                    *lost = false;
                    false
                }
                None => {
                    ids.insert(d.entry_id.clone(), false);
                    true
                }
            }
        });
    }

    /// Removes finished entries under one lock.
    pub(crate) fn remove_all(&self, queue: usize, priority: Priority, entry_ids: &[String]) {
        if let Ok(mut m) = self.inner.lock() {
            if let Some(ids) = m.get_mut(&(queue, priority)) {
                for id in entry_ids {
                    ids.remove(id);
                }
            }
        }
    }

    pub(crate) fn remove(&self, queue: usize, priority: Priority, entry_id: &str) {
        if let Ok(mut m) = self.inner.lock() {
            if let Some(ids) = m.get_mut(&(queue, priority)) {
                ids.remove(entry_id);
            }
        }
    }

    /// True when recovery gave this entry to another worker.
    pub(crate) fn is_lost(&self, queue: usize, priority: Priority, entry_id: &str) -> bool {
        if !self.any_lost.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        self.inner
            .lock()
            .ok()
            .and_then(|m| {
                m.get(&(queue, priority))
                    .and_then(|ids| ids.get(entry_id).copied())
            })
            .unwrap_or(false)
    }

    pub(crate) fn mark_lost(&self, queue: usize, priority: Priority, entry_ids: &[String]) {
        self.any_lost
            .store(true, std::sync::atomic::Ordering::Release);
        if let Ok(mut m) = self.inner.lock() {
            if let Some(ids) = m.get_mut(&(queue, priority)) {
                for id in entry_ids {
                    if let Some(lost) = ids.get_mut(id) {
                        *lost = true;
                    }
                }
            }
        }
    }

    /// The ids still owned, grouped by (queue, priority), for renewal.
    pub(crate) fn snapshot(&self) -> BTreeMap<Key, Vec<String>> {
        let mut out = BTreeMap::new();
        if let Ok(m) = self.inner.lock() {
            for (k, ids) in m.iter() {
                let owned: Vec<String> = ids
                    .iter()
                    .filter(|(_, lost)| !**lost)
                    .map(|(id, _)| id.clone())
                    .collect();
                if !owned.is_empty() {
                    out.insert(*k, owned);
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
            priority,
            entry_id: id.to_owned(),
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
        f.mark_lost(0, Priority::High, &["1-0".to_owned()]);
        assert!(f.is_lost(0, Priority::High, "1-0"));
        assert!(
            !f.snapshot().contains_key(&(0, Priority::High)),
            "lost entries are not renewed"
        );
        assert!(!insert(&f, 0, Priority::High, "1-0"));
        assert!(
            !f.is_lost(0, Priority::High, "1-0"),
            "reclaimed by this worker: owned again"
        );
        f.remove_all(0, Priority::High, &["1-0".to_owned()]);
        assert!(insert(&f, 0, Priority::High, "1-0"));
    }
}
