//! Flows from JSON: a job and the jobs it waits for (its children, and
//! theirs), as one tree, enqueued in one atomic step
//! ([`Queue::enqueue_flow`](ferry_broker::Queue::enqueue_flow)). The same
//! shape is the body of `POST /v1/queues/{queue}/flows` and the file of
//! `ferry enqueue-flow`.
//!
//! The tree is read one job at a time, never by recursion: each job's
//! `children` are kept as raw JSON (one non-recursive scan) and read in
//! their turn, so a body of any depth costs no stack, and a tree deeper
//! than [`MAX_FLOW_DEPTH`] is refused at the first job past it.

use std::borrow::Cow;
use std::fmt::Write as _;

use ferry_broker::{
    EnqueuedFlow, FlowJob, NewJob, OnDependencyFailure, Schedule, MAX_FLOW_DEPTH, MAX_FLOW_JOBS,
};
use ferry_queue::Priority;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::admin::Admin;
use crate::enqueue::DEFAULT_MAX_RETRIES;
use crate::error::{Error, Result};
use crate::serve::routes::jobs::whole;

/// One job of a flow, with the jobs it waits for (`children`, each of the
/// same shape).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FlowJobRequest)]
pub struct FlowJobRequest<'a> {
    /// The job type: chooses the worker's handler (1 to 128 bytes, no
    /// control characters).
    #[serde(rename = "type")]
    #[schema(pattern = "^[ -~]{1,128}$")]
    pub job_type: String,
    /// The payload, any JSON value, as the handler decodes it.
    pub payload: serde_json::Value,
    /// critical, high, normal (the default) or low.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Retries after the first attempt (3 by default).
    #[serde(default, deserialize_with = "whole::opt_u32")]
    #[schema(maximum = 10_000)]
    pub max_retries: Option<u32>,
    /// An id of your own, unique in the queue (409 if it exists): 1 to 128
    /// of `A-Z a-z 0-9 . _ : -`, not of the form `<priority>-<ms>-<seq>`
    /// Ferry gives its own. A new UUID v7 otherwise.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub id: Option<String>,
    /// Keep the finished job's record this long (ms) instead of the
    /// queue's retention; 0 keeps none.
    #[serde(default, deserialize_with = "whole::opt_u64")]
    pub retention_ms: Option<u64>,
    /// A concurrency key: the job waits (state `waiting`) while its key's
    /// limit of jobs holds a slot.
    #[serde(default)]
    pub concurrency_key: Option<String>,
    /// Jobs already in the queue (their ids) it also waits for; each must
    /// exist (one that succeeded counts as done; 422 `bad_dependency`
    /// otherwise).
    #[serde(default)]
    #[schema(max_items = 10_000)]
    pub depends_on: Option<Vec<String>>,
    /// What a child (or dependency) that fails (dead, or cancelled) does
    /// to the job: `fail` (the default: it ends cancelled too), `release`
    /// (it counts as done) or `wait` (it waits until that job is replayed
    /// and succeeds).
    #[serde(default)]
    pub on_child_failure: Option<OnDependencyFailure>,
    /// The jobs it waits for, enqueued with it, each of this same shape
    /// (at most 50 levels and 10,000 jobs in all; at most 10,000 children
    /// and dependencies for one job).
    #[serde(default, borrow)]
    #[schema(value_type = Option<Vec<FlowJobRequest>>, no_recursion)]
    pub children: Option<Vec<&'a RawValue>>,
}

impl FlowJobRequest<'_> {
    /// The broker's job, without its children (those are read apart).
    fn into_flow_job(self) -> FlowJob {
        let mut job = FlowJob::new(NewJob {
            job_type: Cow::Owned(self.job_type),
            payload: self.payload.to_string(),
            priority: self.priority.unwrap_or_default(),
            max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            schedule: Schedule::Now,
            id: self.id,
            retention_ms: self.retention_ms,
            concurrency_key: self.concurrency_key,
        })
        .on_child_failure(self.on_child_failure.unwrap_or_default());
        job.depends_on = self.depends_on.unwrap_or_default();
        job
    }
}

/// What [`Admin::enqueue_flow`] did: every job's id and how many jobs it
/// waits for, in the flow's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FlowEnqueued {
    /// The queue.
    pub queue: String,
    /// The root job, its children under it.
    pub flow: EnqueuedFlow,
}

/// Reads a flow (a [`FlowJobRequest`] tree) from JSON text, a job at a
/// time (no recursion), checking every job as the jobs route does.
///
/// # Errors
/// [`Error::Input`] naming the field at fault (`children[1].priority`),
/// for text that is not JSON, a job that is not of the shape, a tree
/// deeper than [`MAX_FLOW_DEPTH`] levels or of more than
/// [`MAX_FLOW_JOBS`] jobs.
pub fn parse_flow(text: &str) -> Result<FlowJob> {
    let whole_text = text;
    // The jobs in the order read (a parent before its children), each
    // with the indices of its children.
    let mut jobs: Vec<Option<FlowJob>> = Vec::new();
    let mut kids: Vec<Vec<usize>> = Vec::new();
    // Left to read: text, path, level, parent.
    let mut todo: Vec<(&str, String, usize, Option<usize>)> = vec![(text, String::new(), 1, None)];
    while let Some((text, path, level, parent)) = todo.pop() {
        if jobs.len() == MAX_FLOW_JOBS {
            return Err(Error::Input(format!(
                "the flow has more than {MAX_FLOW_JOBS} jobs (at {})",
                shown(&path)
            )));
        }
        let mut request: FlowJobRequest<'_> = decode(text, &path, whole_text)?;
        let children = request.children.take().unwrap_or_default();
        if !children.is_empty() && level >= MAX_FLOW_DEPTH {
            return Err(Error::Input(format!(
                "field `{}children`: the flow is deeper than {MAX_FLOW_DEPTH} levels (at most {MAX_FLOW_DEPTH})",
                shown_prefix(&path)
            )));
        }
        let index = jobs.len();
        jobs.push(Some(request.into_flow_job()));
        kids.push(Vec::with_capacity(children.len()));
        if let Some(p) = parent {
            if let Some(siblings) = kids.get_mut(p) {
                siblings.push(index);
            }
        }
        // Reversed, so that the first child is read first.
        for (i, child) in children.into_iter().enumerate().rev() {
            let child_path = format!(
                "{path}{}children[{i}]",
                if path.is_empty() { "" } else { "." }
            );
            todo.push((child.get(), child_path, level + 1, Some(index)));
        }
    }
    // Children have larger indices than their parent: assemble the tree
    // from the last job read back to the root.
    let lost = || Error::Input("the flow could not be assembled".into());
    for i in (0..jobs.len()).rev() {
        let mut children = Vec::with_capacity(kids[i].len());
        for &k in &kids[i] {
            children.push(jobs.get_mut(k).and_then(Option::take).ok_or_else(lost)?);
        }
        if let Some(job) = jobs.get_mut(i).and_then(Option::as_mut) {
            job.children = children;
        }
    }
    jobs.first_mut().and_then(Option::take).ok_or_else(lost)
}

/// `text` as one job of the flow at `path` (empty for the root), a part
/// of the flow's `whole` text: an error's line and column are `whole`'s.
fn decode<'a>(text: &'a str, path: &str, whole: &str) -> Result<FlowJobRequest<'a>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.path().to_string();
        let e = located(e.inner(), text, whole);
        let field = match (path.is_empty(), inner.as_str()) {
            (true, "" | ".") => return Error::Input(format!("the flow is not valid: {e}")),
            (false, "" | ".") => path.to_owned(),
            (true, _) => inner,
            (false, _) => format!("{path}.{inner}"),
        };
        Error::Input(format!("field `{}`: {e}", shown(&field)))
    })?;
    de.end().map_err(|e| {
        Error::Input(format!(
            "the flow is not valid: {}",
            located(&e, text, whole)
        ))
    })?;
    Ok(value)
}

/// `e`, an error at a line and column of `part` (a slice of `whole`), with
/// the line and column in `whole` instead.
fn located(e: &serde_json::Error, part: &str, whole: &str) -> String {
    let message = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let offset = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    let (Some(bare), Some(before)) = (message.strip_suffix(&suffix), whole.get(..offset)) else {
        return message;
    };
    if offset == 0 || e.line() == 0 {
        return message;
    }
    let base_line = before.matches('\n').count();
    let base_column = before.len() - before.rfind('\n').map_or(0, |i| i + 1);
    let (line, column) = if e.line() == 1 {
        (base_line + 1, base_column + e.column())
    } else {
        (base_line + e.line(), e.column())
    };
    format!("{bare} at line {line} column {column}")
}

/// A path as an error shows it: the root's is `the root job`; a long one
/// (a deep tree's) keeps its end.
fn shown(path: &str) -> String {
    const MAX: usize = 160;
    if path.is_empty() {
        return "the root job".into();
    }
    match path.char_indices().nth_back(MAX) {
        Some((cut, _)) => format!("…{}", &path[cut..]),
        None => path.to_owned(),
    }
}

/// `path.` (or nothing, for the root), shortened as [`shown`] does.
fn shown_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{}.", shown(path))
    }
}

impl Admin {
    /// Enqueues the flow `root` to `queue` in one atomic step, all or
    /// none: every job of the tree, each parent waiting for its children
    /// (and its `depends_on`), each leaf queued (see
    /// [`Queue::enqueue_flow`](ferry_broker::Queue::enqueue_flow)).
    ///
    /// # Errors
    /// [`Error::BadDependency`] for a `depends_on` that is no such job (or
    /// failed while the job's policy is `fail`); [`Error::Ferry`] for a
    /// taken id (`DuplicateJob`), a full queue, a bad job, or a tree over
    /// the limits; Redis errors. Nothing is written then.
    pub async fn enqueue_flow(&self, queue: &str, root: &FlowJob) -> Result<FlowEnqueued> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let flow = q
            .enqueue_flow(&mut conn, root)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(FlowEnqueued {
            queue: queue.to_owned(),
            flow,
        })
    }
}

/// The tree of ids, a job a line, each child two spaces further in than
/// its parent, with how many jobs each waits for:
///
/// ```text
/// report  waiting for 2
///   fetch-a  waiting for 0
///   fetch-b  waiting for 1
///     login  waiting for 0
/// ```
pub fn render(flow: &EnqueuedFlow) -> String {
    let mut out = String::new();
    let mut stack = vec![(flow, 0usize)];
    while let Some((job, depth)) = stack.pop() {
        let _ = writeln!(
            out,
            "{:indent$}{}  waiting for {}",
            "",
            job.id,
            job.waiting_for,
            indent = depth * 2
        );
        stack.extend(job.children.iter().rev().map(|c| (c, depth + 1)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(levels: usize) -> String {
        let mut text = String::new();
        for _ in 1..levels {
            text.push_str(r#"{"type":"t","payload":{},"children":["#);
        }
        text.push_str(r#"{"type":"t","payload":{}}"#);
        for _ in 1..levels {
            text.push_str("]}");
        }
        text
    }

    #[test]
    fn a_tree_is_read_in_its_shape() {
        let flow = parse_flow(
            r#"{"type": "root", "payload": {"n": 1}, "id": "r", "priority": "high",
                "depends_on": ["old"], "on_child_failure": "release",
                "children": [
                  {"type": "a", "payload": 1, "children": [{"type": "a1", "payload": null}]},
                  {"type": "b", "payload": [2], "max_retries": 1.0}
                ]}"#,
        )
        .unwrap();
        assert_eq!(flow.job.id.as_deref(), Some("r"));
        assert_eq!(flow.job.priority, Priority::High);
        assert_eq!(flow.job.payload, r#"{"n":1}"#);
        assert_eq!(flow.depends_on, ["old"]);
        assert_eq!(flow.on_child_failure, OnDependencyFailure::Release);
        let types: Vec<&str> = flow.children.iter().map(|c| &*c.job.job_type).collect();
        assert_eq!(types, ["a", "b"]);
        assert_eq!(flow.children[0].children[0].job.job_type, "a1");
        assert_eq!(flow.children[1].job.max_retries, 1);
        assert_eq!(flow.len(), 4);
    }

    #[test]
    fn bad_jobs_are_named_by_their_path() {
        for (text, says) in [
            (
                r#"{"payload": 1}"#,
                "the flow is not valid: missing field `type`",
            ),
            (
                r#"{"type": "t", "payload": 1, "children": [{"type": "c", "payload": 1, "priority": "urgent"}]}"#,
                "field `children[0].priority`: unknown variant `urgent`",
            ),
            (
                r#"{"type": "t", "payload": 1, "children": [{"type": "c"}]}"#,
                "field `children[0]`: missing field `payload`",
            ),
            (
                r#"{"type": "t", "payload": 1, "children": {"type": "c"}}"#,
                "field `children`: invalid type: map",
            ),
            (
                r#"{"type": "t", "payload": 1, "delay_ms": 5}"#,
                "unknown field `delay_ms`",
            ),
            (
                r#"{"type": "t", "payload": 1} x"#,
                "the flow is not valid: trailing",
            ),
        ] {
            let e = parse_flow(text).unwrap_err().to_string();
            assert!(e.contains(says), "{says:?} not in {e:?}");
        }
    }

    #[test]
    fn depth_is_limited_without_recursion() {
        assert_eq!(
            parse_flow(&chain(MAX_FLOW_DEPTH)).unwrap().len(),
            MAX_FLOW_DEPTH
        );
        let e = parse_flow(&chain(MAX_FLOW_DEPTH + 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("deeper than 50 levels"), "{e}");
        let e = parse_flow(&chain(5_000)).unwrap_err().to_string();
        assert!(e.contains("deeper than 50 levels"), "{e}");
        assert!(e.len() < 400, "{e}");
    }

    #[test]
    fn the_tree_prints_indented() {
        let leaf = |id: &str| EnqueuedFlow {
            id: id.into(),
            waiting_for: 0,
            children: vec![],
        };
        let flow = EnqueuedFlow {
            id: "r".into(),
            waiting_for: 2,
            children: vec![
                EnqueuedFlow {
                    id: "a".into(),
                    waiting_for: 1,
                    children: vec![leaf("a1")],
                },
                leaf("b"),
            ],
        };
        assert_eq!(
            render(&flow),
            "r  waiting for 2\n  a  waiting for 1\n    a1  waiting for 0\n  b  waiting for 0\n"
        );
    }
}
