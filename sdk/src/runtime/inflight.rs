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
}

impl InFlight {
    pub(crate) fn insert(&self, queue: usize, priority: Priority, entry_id: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.entry((queue, priority))
                .or_default()
                .insert(entry_id.to_owned(), false);
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
