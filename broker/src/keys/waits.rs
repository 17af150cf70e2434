//! Key names of the jobs that wait for other jobs: dependencies (within
//! and across queues), flows, batches (see `lua/shared/deps.lua` and
//! `lua/shared/batches.lua`).

use super::Keys;

impl Keys {
    /// HASH: job id -> how many jobs wait for it to succeed (its
    /// dependents, in [`Keys::dependents_of`]).
    pub fn dependents(&self) -> String {
        self.derived("dependents")
    }

    /// SET: the ids of the jobs waiting for job `id`.
    pub fn dependents_of(&self, id: &str) -> String {
        self.derived(&format!("dependents:{id}"))
    }

    /// SET: the dependencies waiting job `id` still waits for.
    pub fn deps_of(&self, id: &str) -> String {
        self.derived(&format!("deps:{id}"))
    }

    /// HASH: job id -> how many results of its dependencies it holds.
    pub fn dep_results(&self) -> String {
        self.derived("dep_results")
    }

    /// HASH: the results job `id`'s dependencies returned (dependency id
    /// -> result JSON), kept until it ends.
    pub fn dep_results_of(&self, id: &str) -> String {
        self.derived(&format!("dep_results:{id}"))
    }

    /// HASH: the shape of the flow whose root is `root`: job id -> its
    /// parent's id ('' for the root).
    pub fn flow(&self, root: &str) -> String {
        self.derived(&format!("flows:{root}"))
    }

    /// HASH: batch `id` with callbacks (counts, times, callbacks; see
    /// [`batches`](crate::batches)). Not [`Keys::batch`], an idempotent
    /// enqueue's record.
    pub fn job_batch(&self, id: &str) -> String {
        self.derived(&format!("batches:{id}"))
    }

    /// SET: the jobs of batch `id` in the dead letters.
    pub fn job_batch_dead(&self, id: &str) -> String {
        self.derived(&format!("batch_dead:{id}"))
    }

    /// SET: every job of batch `id`.
    pub fn job_batch_jobs(&self, id: &str) -> String {
        self.derived(&format!("batch_jobs:{id}"))
    }

    /// ZSET: batch id -> created_at (ms), the batches kept.
    pub fn job_batches(&self) -> String {
        self.derived("batches")
    }

    /// LIST: outcomes of this queue's jobs for jobs of other queues that
    /// wait for them, until applied there.
    pub fn outbox(&self) -> String {
        self.derived("outbox")
    }

    /// HASH: outcomes of other queues' jobs that came before job `id` was
    /// written (expires in a day).
    pub fn early(&self, id: &str) -> String {
        self.derived(&format!("early:{id}"))
    }
}
