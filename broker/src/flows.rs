//! Flows: a parent job and the jobs it waits for (its children, and
//! theirs), enqueued together in one atomic call ([`Queue::enqueue_flow`]),
//! and the results a job's dependencies returned
//! ([`Queue::dependency_results`]).
//!
//! A flow is a tree. Its jobs are written children first (post-order) by
//! one `enqueue_after.lua` call, each leaf into its priority stream and
//! each parent waiting for its children (`lua/shared/deps.lua`): a parent
//! runs once its children have finished as its policy says, and no
//! worker can see part of a flow.

use std::collections::HashMap;

use redis::aio::ConnectionLike;

use crate::dependencies::{Node, OnDependencyFailure, MAX_DEPENDENCIES};
use crate::error::{ConfigError, Result};
use crate::producer::NewJob;
use crate::queue::Queue;

/// Most jobs in one flow.
pub const MAX_FLOW_JOBS: usize = 10_000;

/// Most levels of one flow (a root with children is two).
pub const MAX_FLOW_DEPTH: usize = 50;

/// A job of a flow and the jobs it waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowJob {
    /// The job (its id `job.id`, or a new UUID v7; no delay).
    pub job: NewJob,
    /// Jobs enqueued with it that it waits for; each may have its own.
    pub children: Vec<FlowJob>,
    /// Existing jobs of the queue it also waits for.
    pub depends_on: Vec<String>,
    /// What a child (or dependency) that fails does to it.
    pub on_child_failure: OnDependencyFailure,
}

impl FlowJob {
    /// A job with no children (yet).
    pub fn new(job: NewJob) -> Self {
        Self {
            job,
            children: Vec::new(),
            depends_on: Vec::new(),
            on_child_failure: OnDependencyFailure::Fail,
        }
    }

    /// Adds a child: a job this one waits for.
    #[must_use]
    pub fn child(mut self, child: FlowJob) -> Self {
        self.children.push(child);
        self
    }

    /// Sets what a failed child does to this job.
    #[must_use]
    pub fn on_child_failure(mut self, policy: OnDependencyFailure) -> Self {
        self.on_child_failure = policy;
        self
    }

    /// How many jobs the tree holds.
    pub fn len(&self) -> usize {
        self.measure().0
    }

    /// How many jobs the tree holds, and how many levels (walked without
    /// recursion, so that no tree can overflow the stack here).
    fn measure(&self) -> (usize, usize) {
        let (mut jobs, mut depth) = (0, 0);
        let mut stack = vec![(self, 1)];
        while let Some((job, level)) = stack.pop() {
            jobs += 1;
            depth = depth.max(level);
            stack.extend(job.children.iter().map(|c| (c, level + 1)));
        }
        (jobs, depth)
    }

    /// Always false: a flow holds its root at least.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One job of a flow, as [`Queue::flow`] shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowNode {
    /// The job's id.
    pub id: String,
    /// The job that waits for it (`None` for the root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// How far down the tree it is (0 for the root).
    pub depth: usize,
    /// Where it is; `None` once its record is no longer kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::JobState>,
    /// Its type, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    /// What it waits for, in words, while it waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

/// A flow's jobs and their states ([`Queue::flow`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowGraph {
    /// The root's id.
    pub root: String,
    /// Every job of the flow, parents before their children (depth
    /// first, children by id).
    pub jobs: Vec<FlowNode>,
}

/// What [`Queue::enqueue_flow`] wrote: each job's id and how many jobs it
/// waits for, in the flow's shape.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnqueuedFlow {
    /// The job's id.
    pub id: String,
    /// How many jobs it waits for (0: it is queued).
    pub waiting_for: u64,
    /// Its children, in the order given.
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub children: Vec<EnqueuedFlow>,
}

impl Queue {
    /// Enqueues the flow `root` in one script, all or none: every job of
    /// the tree, children first, each parent waiting for its children
    /// (and its `depends_on`), each leaf into its stream. A parent's
    /// handler reads its children's results with
    /// [`Queue::dependency_results`] (the SDK's
    /// `JobContext::dependency_results`).
    ///
    /// # Errors
    /// As [`Queue::enqueue_after`]; [`ConfigError`] for more than
    /// [`MAX_FLOW_JOBS`] jobs or [`MAX_FLOW_DEPTH`] levels, or a job with more than
    /// [`MAX_DEPENDENCIES`] children and dependencies.
    pub async fn enqueue_flow<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        root: &FlowJob,
    ) -> Result<EnqueuedFlow> {
        let (total, depth) = root.measure();
        if total > MAX_FLOW_JOBS || depth > MAX_FLOW_DEPTH {
            return Err(ConfigError::InvalidSetting {
                name: "flow",
                reason: format!(
                    "{total} jobs in {depth} levels: at most {MAX_FLOW_JOBS} jobs in {MAX_FLOW_DEPTH} levels"
                ),
            }
            .into());
        }
        let mut nodes = Vec::with_capacity(total);
        flatten(root, &mut nodes)?;
        let root_id = nodes.last().map(|n| n.id.clone()).unwrap_or_default();
        let waiting = self.enqueue_nodes(conn, &nodes, Some(&root_id)).await?;
        let mut answers = nodes
            .into_iter()
            .zip(waiting)
            .map(|(node, waiting_for)| (node.id, waiting_for));
        Ok(shape(root, &mut answers))
    }

    /// The flow whose root is `root`: every job, with its parent and
    /// state; `None` for no such flow (never enqueued, or expired: a
    /// flow's shape is kept until the queue's record retention after its
    /// root ends). Any job's status names its flow's root
    /// ([`JobStatus::flow`](crate::JobStatus::flow)). Two round trips, and
    /// one more per 500 jobs.
    ///
    /// # Errors
    /// As [`Queue::status`].
    pub async fn flow<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        root: &str,
    ) -> Result<Option<FlowGraph>> {
        if !crate::envelope::is_job_id(root) {
            return Ok(None);
        }
        let shape: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys().flow(root))
            .query_async(conn)
            .await?;
        if shape.is_empty() {
            return Ok(None);
        }
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for (id, parent) in &shape {
            if !parent.is_empty() {
                children
                    .entry(parent.as_str())
                    .or_default()
                    .push(id.as_str());
            }
        }
        for list in children.values_mut() {
            list.sort_unstable();
        }
        // Depth first from the root, without recursion.
        let mut order: Vec<(String, Option<String>, usize)> = Vec::with_capacity(shape.len());
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![(root, None::<&str>, 0usize)];
        while let Some((id, parent, depth)) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            order.push((id.to_owned(), parent.map(str::to_owned), depth));
            if let Some(kids) = children.get(id) {
                stack.extend(kids.iter().rev().map(|k| (*k, Some(id), depth + 1)));
            }
        }
        // (A job whose parent is not in the flow, which Ferry does not
        // write, still shows.)
        let mut rest: Vec<&String> = shape
            .keys()
            .filter(|id| !seen.contains(id.as_str()))
            .collect();
        rest.sort_unstable();
        for id in rest {
            order.push((
                id.clone(),
                shape.get(id).filter(|p| !p.is_empty()).cloned(),
                0,
            ));
        }
        let ids: Vec<String> = order.iter().map(|(id, _, _)| id.clone()).collect();
        let statuses = self.statuses(conn, &ids).await?;
        let jobs = order
            .into_iter()
            .zip(statuses)
            .map(|((id, parent, depth), st)| FlowNode {
                id,
                parent,
                depth,
                state: st.as_ref().map(|s| s.state),
                job_type: st.as_ref().and_then(|s| s.job_type.clone()),
                waiting_for: st.and_then(|s| s.waiting_for),
            })
            .collect();
        Ok(Some(FlowGraph {
            root: root.to_owned(),
            jobs,
        }))
    }

    /// The results job `id`'s dependencies returned, by dependency id, kept
    /// for it (whatever the queue's record retention) from when each
    /// succeeded until the job ends; a dependency that returned no result
    /// (or failed) has none. One `HGETALL` of `P:{Q}:dep_results:<id>`.
    ///
    /// # Errors
    /// [`crate::Error::Redis`].
    pub async fn dependency_results<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        id: &str,
    ) -> Result<HashMap<String, serde_json::Value>> {
        let raw: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys().dep_results_of(id))
            .query_async(conn)
            .await?;
        Ok(raw
            .into_iter()
            .map(|(dep, text)| {
                let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
                (dep, value)
            })
            .collect())
    }
}

/// The nodes of the tree under `job`, children first, each with its id.
fn flatten<'a>(job: &'a FlowJob, out: &mut Vec<Node<'a>>) -> Result<String> {
    let mut deps = Vec::with_capacity(job.children.len() + job.depends_on.len());
    for child in &job.children {
        deps.push(flatten(child, out)?);
    }
    deps.extend(job.depends_on.iter().cloned());
    if deps.len() > MAX_DEPENDENCIES {
        return Err(ConfigError::InvalidSetting {
            name: "flow",
            reason: format!(
                "a job with {} children and dependencies: at most {MAX_DEPENDENCIES}",
                deps.len()
            ),
        }
        .into());
    }
    let id = job
        .job
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    out.push(Node {
        job: &job.job,
        id: id.clone(),
        deps,
        policy: job.on_child_failure,
    });
    Ok(id)
}

/// The answer for the tree under `job`, from the nodes' answers in the
/// order [`flatten`] made them.
fn shape(job: &FlowJob, answers: &mut impl Iterator<Item = (String, u64)>) -> EnqueuedFlow {
    let children = job.children.iter().map(|c| shape(c, answers)).collect();
    let (id, waiting_for) = answers.next().unwrap_or_default();
    EnqueuedFlow {
        id,
        waiting_for,
        children,
    }
}
