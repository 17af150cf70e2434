//! Live workers: those registered (with a TTL their heartbeat renews) for
//! one queue, or for any queue under the prefix.

use std::collections::BTreeMap;

use ferry_queue::WorkerInfo;

use crate::admin::Admin;
use crate::error::Result;

impl Admin {
    /// The live workers of `queue`, or, with `None`, of every queue under
    /// the prefix (found as [`Admin::queues`] finds them; a worker serving
    /// several queues is listed once), sorted by name.
    ///
    /// # Errors
    /// Redis errors, or a bad queue name.
    pub async fn workers(&self, queue: Option<&str>) -> Result<Vec<WorkerInfo>> {
        let queues: Vec<String> = match queue {
            Some(q) => vec![q.to_owned()],
            None => self.queue_names().await?,
        };
        let mut all = BTreeMap::new();
        for q in queues {
            for w in self.client().workers(&q).await.map_err(|e| self.fail(e))? {
                all.entry(w.worker.clone()).or_insert(w);
            }
        }
        Ok(all.into_values().collect())
    }
}
