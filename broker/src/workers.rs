//! Live workers: each worker registers itself per queue it serves, with a
//! TTL its heartbeat renews (`register_worker.lua`), so `workers` lists the
//! ones alive without any coordinator.

use std::time::Duration;

use redis::aio::ConnectionLike;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::queue::Queue;
use crate::scripts;

/// A live worker, as it registered itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerInfo {
    /// Its consumer name in the group (`host-pid-random`).
    pub worker: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// Jobs it runs at once.
    pub concurrency: usize,
    /// When it started (ms since the epoch, its clock).
    pub started_at: u64,
    /// Its last heartbeat (ms since the epoch, the server's clock).
    pub heartbeat_at: u64,
    /// Jobs it was running at its last heartbeat.
    pub running: usize,
}

impl Queue {
    /// Registers (or renews) worker `info.worker` for `ttl`; `None`
    /// removes its registration. Returns how many workers are live.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn register_worker<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        info: &WorkerInfo,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        let fields = serde_json::json!({
            "worker": info.worker,
            "host": info.host,
            "pid": info.pid,
            "queues": info.queues,
            "concurrency": info.concurrency,
            "started_at": info.started_at,
            "running": info.running,
        })
        .to_string();
        let members = fields
            .strip_prefix('{')
            .and_then(|f| f.strip_suffix('}'))
            .unwrap_or_default();
        let mut inv = self.invoke(&scripts::REGISTER_WORKER);
        inv.key(self.keys().worker(&info.worker))
            .arg(&info.worker)
            .arg(ttl.map_or(0, |t| {
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
            }))
            .arg(members);
        Ok(inv.invoke_async(conn).await?)
    }

    /// The live workers serving this queue (registrations not expired).
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn workers<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<Vec<WorkerInfo>> {
        let names: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys().workers())
            .arg(0)
            .arg(-1)
            .query_async(conn)
            .await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = redis::cmd("MGET");
        for n in &names {
            mget.arg(self.keys().worker(n));
        }
        let found: Vec<Option<String>> = mget.query_async(conn).await?;
        Ok(found
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect())
    }
}
