//! [`Flow`]: a parent job and its children (and theirs), enqueued together
//! with [`Client::enqueue_flow`](crate::Client::enqueue_flow).

use std::borrow::Cow;

use ferry_broker::{FlowJob, NewJob, OnDependencyFailure};

use crate::enqueue::EnqueueOptions;
use crate::error::{ConfigError, Error, Result};
use crate::job::Job;

/// A job of a flow, with the jobs it waits for. The children run first
/// (each after its own children); the job runs when they have all
/// finished as [`Flow::on_child_failure`] says, and its handler reads
/// their results with
/// [`JobContext::dependency_results`](crate::JobContext::dependency_results).
/// Every job of a flow is in one queue (the root's).
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Report { day: u32 }
/// # impl ferry_queue::Job for Report { const TYPE: &'static str = "report"; }
/// # #[derive(Serialize, Deserialize)] struct Fetch { shard: u32 }
/// # impl ferry_queue::Job for Fetch { const TYPE: &'static str = "fetch"; }
/// use ferry_queue::Flow;
/// let flow = Flow::new(&Report { day: 7 })
///     .child(Flow::new(&Fetch { shard: 1 }))
///     .child(Flow::new(&Fetch { shard: 2 }));
/// assert_eq!(flow.len(), 3);
/// ```
#[derive(Debug)]
pub struct Flow {
    queue: String,
    job: std::result::Result<NewJob, Error>,
    children: Vec<Flow>,
    depends_on: Vec<String>,
    on_child_failure: OnDependencyFailure,
}

impl Flow {
    /// `job`, with its type's defaults.
    pub fn new<J: Job>(job: &J) -> Self {
        Self::with_options(job, EnqueueOptions::new())
    }

    /// `job`, with `options`: its queue (the root's is the flow's),
    /// priority, retries, id, retention, concurrency key, dependencies on
    /// existing jobs ([`EnqueueOptions::depends_on`]) and what a failed
    /// child does ([`EnqueueOptions::on_dependency_failure`]). A flow's
    /// jobs take no delay, idempotency key or uniqueness.
    pub fn with_options<J: Job>(job: &J, options: EnqueueOptions) -> Self {
        let (deps, policy) = options.dependencies();
        let built = if options.run_at_ms(0).is_some()
            || options.batch_key().ok().flatten().is_some()
        {
            Err(ConfigError::InvalidSetting {
                name: "flow",
                reason: "a flow's jobs run when their children finish: no delay or idempotency key"
                    .into(),
            }
            .into())
        } else {
            serde_json::to_string(job)
                .map_err(Error::from)
                .map(|payload| NewJob {
                    job_type: Cow::Borrowed(J::TYPE),
                    payload,
                    priority: options.priority_for::<J>(),
                    max_retries: options.max_retries_for::<J>(),
                    schedule: ferry_broker::Schedule::Now,
                    id: options.given_id().map(str::to_owned),
                    retention_ms: options.retention_ms(),
                    concurrency_key: options.concurrency_key_value(),
                })
        };
        Self {
            queue: options.queue_for::<J>().to_owned(),
            job: built,
            children: Vec::new(),
            depends_on: deps.to_vec(),
            on_child_failure: policy,
        }
    }

    /// Adds a child: a job this one waits for.
    #[must_use]
    pub fn child(mut self, child: Flow) -> Self {
        self.children.push(child);
        self
    }

    /// Adds children.
    #[must_use]
    pub fn children(mut self, children: impl IntoIterator<Item = Flow>) -> Self {
        self.children.extend(children);
        self
    }

    /// What a child that fails (dead-lettered, or cancelled) does to this
    /// job: [`OnDependencyFailure::Fail`] (the default) ends it cancelled,
    /// `Release` runs it anyway, `Wait` waits for the child's replay.
    #[must_use]
    pub fn on_child_failure(mut self, policy: OnDependencyFailure) -> Self {
        self.on_child_failure = policy;
        self
    }

    /// How many jobs the flow holds.
    pub fn len(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![self];
        while let Some(f) = stack.pop() {
            n += 1;
            stack.extend(f.children.iter());
        }
        n
    }

    /// Always false: a flow holds its root at least.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The queue of the flow (its root's).
    pub(crate) fn queue(&self) -> &str {
        &self.queue
    }

    /// The broker's form of the tree: checked that every job is in
    /// `queue` and was built, and no deeper than the broker takes (checked
    /// first, without recursion, so that no tree overflows the stack).
    pub(crate) fn into_broker(self) -> Result<FlowJob> {
        let mut depth = 0;
        let mut stack = vec![(&self, 1usize)];
        while let Some((f, level)) = stack.pop() {
            depth = depth.max(level);
            if depth > ferry_broker::MAX_FLOW_DEPTH {
                return Err(ConfigError::InvalidSetting {
                    name: "flow",
                    reason: format!("deeper than {} levels", ferry_broker::MAX_FLOW_DEPTH),
                }
                .into());
            }
            stack.extend(f.children.iter().map(|c| (c, level + 1)));
        }
        let queue = self.queue.clone();
        self.convert(&queue)
    }

    fn convert(self, queue: &str) -> Result<FlowJob> {
        if self.queue != queue {
            return Err(ConfigError::InvalidSetting {
                name: "flow",
                reason: format!(
                    "a job for queue {:?} in a flow of queue {queue:?}: a flow's jobs share one queue",
                    self.queue
                ),
            }
            .into());
        }
        let job = self.job?;
        let children = self
            .children
            .into_iter()
            .map(|c| c.convert(queue))
            .collect::<Result<Vec<_>>>()?;
        Ok(FlowJob {
            job,
            children,
            depends_on: self.depends_on,
            on_child_failure: self.on_child_failure,
        })
    }
}
