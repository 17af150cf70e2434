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
    /// Registers an entry; false when this worker already runs it. That
    /// happens when its own recovery reclaims an entry whose renewals failed
    /// (a Redis outage longer than the lease): the entry is owned again, so
    /// a `lost` mark is cleared, and the running job must not start twice.
    pub(crate) fn insert(&self, queue: usize, priority: Priority, entry_id: &str) -> bool {
        let Ok(mut m) = self.inner.lock() else {
            return false;
        };
        let ids = m.entry((queue, priority)).or_default();
        match ids.get_mut(entry_id) {
            Some(lost) => {
                *lost = false;
                false
            }
            None => {
                ids.insert(entry_id.to_owned(), false);
                true
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

    #[test]
    fn an_entry_already_running_is_not_registered_twice_and_a_reclaimed_one_is_owned_again() {
        let f = InFlight::default();
        assert!(f.insert(0, Priority::High, "1-0"));
        assert!(
            !f.insert(0, Priority::High, "1-0"),
            "a second dispatch of a running entry is refused"
        );
        assert!(
            f.insert(1, Priority::High, "1-0"),
            "same id on another queue is another entry"
        );
        f.mark_lost(0, Priority::High, &["1-0".to_owned()]);
        assert!(f.is_lost(0, Priority::High, "1-0"));
        assert!(
            !f.snapshot().contains_key(&(0, Priority::High)),
            "lost entries are not renewed"
        );
        assert!(!f.insert(0, Priority::High, "1-0"));
        assert!(
            !f.is_lost(0, Priority::High, "1-0"),
            "reclaimed by this worker: owned again"
        );
        f.remove(0, Priority::High, "1-0");
        assert!(f.insert(0, Priority::High, "1-0"));
    }
}
