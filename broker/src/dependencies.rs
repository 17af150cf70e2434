//! Jobs that wait for other jobs of their queue: [`Queue::enqueue_after`].
//!
//! A job enqueued after dependencies that have not finished waits (state
//! `waiting`, its envelope in `P:{Q}:scheduled`) and enters its priority
//! stream when the last of them succeeds, in the same script that records
//! that success (`ack.lua`, through `lua/shared/deps.lua`): exactly once,
//! however many workers finish dependencies at once. A dependency that
//! fails does what the job's [`OnDependencyFailure`] says. Dependencies
//! must exist when the job is enqueued (one that succeeded counts as
//! done), so no job can depend on one enqueued after it, and no cycle can
//! form.

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::{ConfigError, Error, Result};
use crate::producer::{NewJob, Schedule};
use crate::queue::Queue;
use crate::{reply, scripts};

/// What a failed dependency (dead-lettered, or cancelled) does to the job
/// waiting for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OnDependencyFailure {
    /// The job ends cancelled, its error naming the dependency, and so do
    /// the jobs waiting for it, as their own policies say (the default).
    #[default]
    Fail,
    /// The dependency counts as done: the job runs once the others succeed.
    Release,
    /// The job keeps waiting, until the dependency is replayed and succeeds.
    Wait,
}

impl OnDependencyFailure {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::Release => "release",
            Self::Wait => "wait",
        }
    }
}

/// Most dependencies one job may name.
pub const MAX_DEPENDENCIES: usize = 10_000;

/// What [`Queue::enqueue_after`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnqueuedAfter {
    /// The job's id.
    pub id: String,
    /// How many dependencies it waits for (0: all had succeeded, and it
    /// is queued).
    pub waiting_for: u64,
}

/// One job of an [`enqueue_after.lua`] call: the job, its id, the
/// dependencies it names (existing jobs, or jobs earlier in the call) and
/// its policy.
pub(crate) struct Node<'a> {
    pub job: &'a NewJob,
    pub id: String,
    pub deps: Vec<String>,
    pub policy: OnDependencyFailure,
}

impl Queue {
    /// Enqueues `job` to run after the jobs `dependencies` (ids in this
    /// queue) succeed; one script, so the check of each dependency and the
    /// job's writing are one atomic step. `job.schedule` must be
    /// [`Schedule::Now`]. The job's id is `job.id`, or a new UUID v7.
    ///
    /// # Errors
    /// [`Error::BadDependency`] for a dependency that is the job itself,
    /// does not exist, or failed while `on_failure` is
    /// [`OnDependencyFailure::Fail`]; [`Error::DuplicateJob`];
    /// [`Error::QueueFull`]; [`ConfigError`] for a bad job, no
    /// dependencies, more than [`MAX_DEPENDENCIES`], or a delay;
    /// [`Error::Redis`].
    pub async fn enqueue_after<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        job: &NewJob,
        dependencies: &[String],
        on_failure: OnDependencyFailure,
    ) -> Result<EnqueuedAfter> {
        if dependencies.is_empty() {
            return Err(ConfigError::InvalidSetting {
                name: "depends_on",
                reason: "name at least one job".into(),
            }
            .into());
        }
        let node = Node {
            job,
            id: job
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            deps: dependencies.to_vec(),
            policy: on_failure,
        };
        let waiting = self
            .enqueue_nodes(conn, std::slice::from_ref(&node), None)
            .await?;
        Ok(EnqueuedAfter {
            waiting_for: waiting.first().copied().unwrap_or(0),
            id: node.id,
        })
    }

    /// Checks `nodes` and writes them in one `enqueue_after.lua` call, all
    /// or none, as the flow `root` when given; returns how many
    /// dependencies each waits for.
    pub(crate) async fn enqueue_nodes<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        nodes: &[Node<'_>],
        root: Option<&str>,
    ) -> Result<Vec<u64>> {
        // Dependencies of other queues are registered there first
        // (crate::remote_deps).
        let resolved;
        let nodes = if nodes.iter().any(|n| n.deps.iter().any(|d| d.contains('/'))) {
            for node in nodes {
                self.check(node.job)?;
            }
            resolved = self.register_remote(conn, nodes).await?;
            &resolved[..]
        } else {
            nodes
        };
        let mut inv = self.invoke(&scripts::ENQUEUE_AFTER);
        inv.arg(root.unwrap_or_default());
        self.push_nodes(&mut inv, nodes)?;
        let v: Value = inv.invoke_async(conn).await?;
        self.nodes_reply(&v, "enqueue_after")
    }

    /// Checks `nodes` and adds them to `inv` as `shared/enqueue_jobs.lua`
    /// reads them: their count, then each one's fields.
    pub(crate) fn push_nodes(
        &self,
        inv: &mut redis::ScriptInvocation<'_>,
        nodes: &[Node<'_>],
    ) -> Result<()> {
        let bad = |reason: String| ConfigError::InvalidSetting {
            name: "depends_on",
            reason,
        };
        inv.arg(nodes.len());
        for node in nodes {
            let job = node.job;
            self.check(job)?;
            if node.deps.len() > MAX_DEPENDENCIES {
                return Err(bad(format!(
                    "{} dependencies: at most {MAX_DEPENDENCIES}",
                    node.deps.len()
                ))
                .into());
            }
            if !matches!(job.schedule, Schedule::Now) {
                return Err(bad(
                    "a job with dependencies runs when they succeed: it takes no delay".into(),
                )
                .into());
            }
            // An id that no job can have is no job's (the script would
            // look for it all the same).
            let well_formed = |d: &str| match d.split_once('/') {
                Some((q, id)) => crate::keys::is_valid_name(q) && crate::envelope::is_job_id(id),
                None => crate::envelope::is_job_id(d),
            };
            if let Some(dep) = node.deps.iter().find(|d| !well_formed(d)) {
                return Err(self.unknown_dependency(&node.id, dep));
            }
            inv.arg(&node.id)
                .arg(job.priority.script_index())
                .arg(job.job_type.as_ref())
                .arg(&job.payload)
                .arg(job.max_retries)
                .arg(
                    job.retention_ms
                        .map(|ms| ms.to_string())
                        .unwrap_or_default(),
                )
                .arg(job.concurrency_key.as_deref().unwrap_or_default())
                .arg(node.policy.as_str())
                .arg(node.deps.len());
            for d in &node.deps {
                inv.arg(d);
            }
        }
        Ok(())
    }

    /// The reply of a script that wrote nodes (`shared/enqueue_jobs.lua`):
    /// how many dependencies each waits for, or the error.
    pub(crate) fn nodes_reply(&self, v: &Value, script: &str) -> Result<Vec<u64>> {
        let protocol = || Error::Protocol(format!("{script}: {v:?}"));
        let items = reply::array(v).ok_or_else(protocol)?;
        let tag = items.first().and_then(reply::string).ok_or_else(protocol)?;
        let text = |i: usize| items.get(i).and_then(reply::string).unwrap_or_default();
        let number = |i: usize| {
            items
                .get(i)
                .and_then(reply::int)
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0)
        };
        let dependency = |job: String, reason: String| Error::BadDependency {
            queue: self.name().to_string(),
            job,
            dependency: text(1),
            reason,
        };
        match tag.as_str() {
            "ok" => Ok((1..items.len()).map(number).collect()),
            "duplicate" => Err(Error::DuplicateJob {
                queue: self.name().to_string(),
                id: text(1),
            }),
            "self" => Err(dependency(text(1), "is the job itself".into())),
            "unknown" => Err(self.unknown_dependency(&text(2), &text(1))),
            "failed" => Err(dependency(
                text(3),
                format!(
                    "failed ({}), and the job's policy is to fail with it",
                    text(2)
                ),
            )),
            "full" => Err(Error::QueueFull {
                queue: self.name().to_string(),
                depth: number(1),
                max_depth: number(2),
            }),
            _ => Err(protocol()),
        }
    }

    pub(crate) fn unknown_dependency(&self, job: &str, dep: &str) -> Error {
        Error::BadDependency {
            queue: self.name().to_string(),
            job: job.to_owned(),
            dependency: dep.to_owned(),
            reason: "does not exist (never enqueued, or finished with its record no longer kept)"
                .into(),
        }
    }
}
