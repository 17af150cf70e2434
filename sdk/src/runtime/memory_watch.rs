//! The memory watch: reads the server's `maxmemory-policy` and
//! `evicted_keys` every [`RECHECK_INTERVAL`](crate::preflight::RECHECK_INTERVAL),
//! since an operator can change the policy while the worker runs. A
//! policy that may evict Ferry's keys holds the worker's claims (jobs
//! running go on; nothing new is claimed) until it is set back, unless
//! eviction is allowed; then each eviction seen is logged as possible data
//! loss and counted in [`Activity::evicted_keys`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::activity::Activity;
use super::retry::RedisRetry;
use crate::link::Link;
use crate::preflight::{self, EvictionWatch, RedisMemory, RECHECK_INTERVAL};

pub(crate) struct MemoryWatch {
    pub conn: Link,
    /// `host:port`, for the logs.
    pub host: String,
    pub allow_eviction: bool,
    pub activity: Arc<Activity>,
    /// The start-up check's reading, so that evictions are counted from it.
    pub first: RedisMemory,
}

impl MemoryWatch {
    /// Watches until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut watch = EvictionWatch::default();
        watch.observe(&self.host, self.first.clone(), self.allow_eviction);
        let mut errors = RedisRetry::new("reading redis's memory policy");
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(RECHECK_INTERVAL) => {}
            }
            match self.run_once(&mut watch).await {
                Ok(()) => errors.ok(),
                // The claims stay as they were: an unreachable server is
                // the fetchers' to retry.
                Err(e) => {
                    errors.failed(&e);
                }
            }
        }
    }

    /// One reading: counts evictions, and holds or releases the claims.
    pub(crate) async fn run_once(
        &self,
        watch: &mut EvictionWatch,
    ) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        let state = preflight::memory_state(&mut conn).await?;
        let evicted = watch.observe(&self.host, state.clone(), self.allow_eviction);
        self.activity.count_evicted(evicted);
        let refused = preflight::policy_allowed(&state, &self.host, self.allow_eviction).err();
        match (refused, self.activity.claims_held()) {
            (Some(e), _) => {
                // Said at every reading while it lasts: the worker does
                // nothing until an operator acts.
                tracing::error!(error = %e, "claiming nothing until the policy is set back (or the worker runs with allow_eviction)");
                self.activity.hold_claims(true);
            }
            (None, true) => {
                tracing::info!(redis = %self.host, "redis's maxmemory-policy no longer evicts Ferry's keys; claiming again");
                self.activity.hold_claims(false);
            }
            (None, false) => {}
        }
        Ok(())
    }
}
