//! Dependencies across queues: a job of queue B that waits for jobs of
//! queue A, named `"A/<id>"`. The two queues' keys have different hash
//! tags (on a Redis Cluster, different slots), so no one script can see
//! both; the steps are:
//!
//! 1. `register_remote.lua` on A, before the job is written: each
//!    dependency's state, and for one not finished a link to the job
//!    (`@B/<job>` in `P:{A}:dependents:<id>`). A dependency is thus
//!    confirmed to exist before anything waits for it, so no cycle can
//!    form across queues either.
//! 2. `enqueue_after.lua` on B writes the job, waiting for the linked
//!    dependencies (`"A/<id>"` in `P:{B}:deps:<job>`).
//! 3. When a linked job ends, the script that ends it (on A) appends its
//!    outcome to `P:{A}:outbox`, in the same step.
//! 4. A worker's promoter of A applies the outbox ([`Queue::apply_outbox`]):
//!    `apply_remote.lua` on B for each outcome, then removes it from the
//!    outbox. Applying is idempotent (an outcome already applied changes
//!    nothing), so the step is retried until done, by any worker of A,
//!    after any crash: the release is exactly once, at least once tried.
//!    An outcome that comes before step 2 (the dependency ended between
//!    steps 1 and 2) is kept for the job in `P:{B}:early:<job>` and read
//!    when it is written.
//!
//! A job released this way starts within about a promote interval (1 s
//! by default) of its dependency's end; within a queue, in the same
//! script. Results are passed within a queue only.

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use redis::Value;

use crate::dependencies::{Node, OnDependencyFailure};
use crate::error::{ConfigError, Error, Result};
use crate::queue::Queue;
use crate::{reply, scripts};

/// Most outcomes one [`Queue::apply_outbox`] call applies.
pub const OUTBOX_BATCH: usize = 100;

impl Queue {
    /// Queue `name` under this queue's prefix and limits.
    pub(crate) fn sibling(&self, name: &str) -> Result<Queue, ConfigError> {
        Ok(Queue::with_prefix(&self.keys().prefix(), name)?
            .max_payload_bytes(self.payload_limit())
            .sharded_pubsub(self.uses_sharded_pubsub()))
    }

    /// Step 1 for `nodes`: registers each dependency of another queue
    /// (`"<queue>/<id>"`) there, and returns the nodes with those
    /// dependencies resolved as their policies say (a succeeded one
    /// dropped, a failed one as the policy says, a pending one kept).
    pub(crate) async fn register_remote<'a, C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        nodes: &[Node<'a>],
    ) -> Result<Vec<Node<'a>>> {
        let mut out = Vec::with_capacity(nodes.len());
        for node in nodes {
            let mut remote: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            let mut deps = Vec::with_capacity(node.deps.len());
            for dep in &node.deps {
                match dep.split_once('/') {
                    Some((q, id)) if q == self.name() => deps.push(id.to_owned()),
                    Some((q, id)) => {
                        if !crate::envelope::is_job_id(id) {
                            return Err(self.unknown_dependency(&node.id, dep));
                        }
                        remote.entry(q).or_default().push(id);
                    }
                    None => deps.push(dep.clone()),
                }
            }
            for (q, ids) in remote {
                let other = self.sibling(q).map_err(|_| Error::BadDependency {
                    queue: self.name().to_string(),
                    job: node.id.clone(),
                    dependency: format!("{q}/{}", ids.first().copied().unwrap_or_default()),
                    reason: format!("names queue {q:?}, which is not a valid queue name"),
                })?;
                let mut inv = other.invoke(&scripts::REGISTER_REMOTE);
                inv.arg(format!("{}/{}", self.name(), node.id));
                for id in &ids {
                    inv.arg(*id);
                }
                let v: Value = inv.invoke_async(conn).await?;
                let states = reply::array(&v)
                    .ok_or_else(|| Error::Protocol(format!("register_remote: {v:?}")))?;
                for (id, st) in ids.iter().zip(states) {
                    let dep = format!("{q}/{id}");
                    let st = reply::string(st).unwrap_or_default();
                    let failed = |how: &str| Error::BadDependency {
                        queue: self.name().to_string(),
                        job: node.id.clone(),
                        dependency: dep.clone(),
                        reason: format!("failed ({how}), and the job's policy is to fail with it"),
                    };
                    match (st.as_str(), node.policy) {
                        ("succeeded", _) => {}
                        ("pending", _) => deps.push(dep),
                        ("dead" | "cancelled", OnDependencyFailure::Fail) => {
                            return Err(failed(&st))
                        }
                        ("dead" | "cancelled", OnDependencyFailure::Release) => {}
                        ("dead" | "cancelled", OnDependencyFailure::Wait) => deps.push(dep),
                        _ => return Err(self.unknown_dependency(&node.id, &dep)),
                    }
                }
            }
            out.push(Node {
                job: node.job,
                id: node.id.clone(),
                deps,
                policy: node.policy,
            });
        }
        Ok(out)
    }

    /// Step 4: applies up to [`OUTBOX_BATCH`] outcomes of this queue's
    /// jobs waiting in its outbox to the jobs of other queues that wait
    /// for them, each then removed from the outbox; returns how many were
    /// taken. Idempotent, so any number of workers may run it at once.
    /// A worker's promoter runs it when `promote_due` reports an outbox.
    ///
    /// # Errors
    /// [`Error::Redis`]; an entry that is not an outcome is removed (and
    /// logged), not an error.
    pub async fn apply_outbox<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<u64> {
        let outbox = self.keys().outbox();
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(&outbox)
            .arg(0)
            .arg(OUTBOX_BATCH - 1)
            .query_async(conn)
            .await?;
        for entry in &entries {
            let mut parts = entry.splitn(3, '\n');
            let (how, target, dep) = (parts.next(), parts.next(), parts.next());
            let parsed = match (how, target.and_then(|t| t.split_once('/')), dep) {
                (Some(how), Some((q, job)), Some(dep)) => {
                    Some((how, self.sibling(q).ok(), job, dep))
                }
                _ => None,
            };
            match parsed {
                Some((how, Some(other), job, dep)) => {
                    let mut inv = other.invoke(&scripts::APPLY_REMOTE);
                    inv.arg(job).arg(format!("{}/{dep}", self.name())).arg(how);
                    let _: Value = inv.invoke_async(conn).await?;
                }
                _ => {
                    tracing::warn!(queue = %self.name(), entry = %entry, "an outbox entry that is not an outcome: removed")
                }
            }
            let _: i64 = redis::cmd("LREM")
                .arg(&outbox)
                .arg(1)
                .arg(entry)
                .query_async(conn)
                .await?;
        }
        Ok(entries.len() as u64)
    }
}
