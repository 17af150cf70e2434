//! A batch in chunks: how it is cut ([`chunk_ranges`]), and one chunk
//! written in one call of `enqueue.lua` and its reply read.

use std::ops::Range;

use redis::aio::ConnectionLike;
use redis::Value;

use super::{Clocks, NewJob, OnDuplicate};
use crate::batch::{BatchKey, BATCH_KEY_TTL, CHUNK_BYTES, CHUNK_JOBS};
use crate::envelope::{derived_id, is_entry_id, Envelope, TraceContext};
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::reply;
use crate::scripts;

/// Bytes a job takes in a chunk besides its type and payload.
const JOB_OVERHEAD: usize = 128;

impl Queue {
    /// One chunk in one script call (`enqueue.lua`): all of it or none.
    /// Returns the ids of its jobs.
    pub(super) async fn write_chunk<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        chunk: &Chunk<'_>,
        clocks: Clocks,
    ) -> Result<Vec<String>> {
        let mut inv = self.invoke(&scripts::ENQUEUE);
        if let Some(k) = chunk.key {
            // KEYS[18], after the queue's 17.
            inv.key(self.keys().batch(k));
        }
        inv.arg(match chunk.on_duplicate {
            OnDuplicate::Error => "error",
            OnDuplicate::ReturnExisting => "existing",
        })
        .arg(chunk.number)
        .arg(BATCH_KEY_TTL.as_millis() as u64)
        .arg(clocks.local)
        // Jobs whose ids are checked for duplicates: given or keyed ones
        // (a delayed job's fresh UUID v7 needs no check).
        .arg(
            chunk
                .jobs
                .iter()
                .filter(|j| j.id.is_some() || chunk.key.is_some())
                .count(),
        );
        for (job, id) in chunk.jobs.iter().zip(chunk.ids) {
            match job.schedule.due_at(clocks.server, clocks.local) {
                Some(at) => {
                    let id = id.as_deref().unwrap_or_default();
                    let env = Envelope {
                        id: id.to_owned(),
                        job_type: job.job_type.to_string(),
                        payload: job.payload.clone(),
                        attempt: 1,
                        max_retries: job.max_retries,
                        enqueued_at: clocks.local,
                        last_error: None,
                        retention_ms: job.retention_ms,
                        concurrency_key: job.concurrency_key.clone(),
                        batch: None,
                        flow: None,
                    };
                    inv.arg("d")
                        .arg(at)
                        .arg(id)
                        .arg(env.to_delayed_member_traced(job.priority, chunk.trace));
                }
                // With a trace context or a concurrency key: 't' (or 'c'),
                // retention ('' for the queue's), traceparent, tracestate
                // ('' for none), and for 'c' the key.
                None if chunk.trace.is_some() || job.concurrency_key.is_some() => {
                    let trace = chunk.trace;
                    let ckey = job.concurrency_key.as_deref();
                    inv.arg(if ckey.is_some() { "c" } else { "t" })
                        .arg(job.priority.script_index())
                        .arg(id.as_deref().unwrap_or_default())
                        .arg(job.job_type.as_ref())
                        .arg(&job.payload)
                        .arg(job.max_retries)
                        .arg(
                            job.retention_ms
                                .map(|ms| ms.to_string())
                                .unwrap_or_default(),
                        )
                        .arg(trace.map(TraceContext::traceparent).unwrap_or_default())
                        .arg(trace.and_then(TraceContext::tracestate).unwrap_or_default());
                    if let Some(k) = ckey {
                        inv.arg(k);
                    }
                }
                // A job with an id of its own carries it and its enqueue
                // time; a fresh one is named by its entry.
                None => {
                    inv.arg(if job.retention_ms.is_some() { "r" } else { "s" })
                        .arg(job.priority.script_index())
                        .arg(id.as_deref().unwrap_or_default())
                        .arg(job.job_type.as_ref())
                        .arg(&job.payload)
                        .arg(job.max_retries);
                    if let Some(ms) = job.retention_ms {
                        inv.arg(ms);
                    }
                }
            }
        }
        let reply: Value = inv.invoke_async(conn).await?;
        self.chunk_reply(reply, chunk)
    }

    /// The ids from `enqueue.lua`'s reply, or its refusal as an error.
    fn chunk_reply(&self, reply: Value, chunk: &Chunk<'_>) -> Result<Vec<String>> {
        let bad = |v: &Value| Error::Protocol(format!("enqueue: {v:?}"));
        let items = reply::array(&reply).ok_or_else(|| bad(&reply))?;
        let tag = items
            .first()
            .and_then(reply::string)
            .ok_or_else(|| bad(&reply))?;
        match (tag.as_str(), items) {
            ("ok", [_, ids, ..]) => {
                let items = reply::array(ids).ok_or_else(|| bad(&reply))?;
                if items.len() != chunk.jobs.len() {
                    return Err(bad(&reply));
                }
                // A fresh job comes back as its entry id: its job id is
                // derived from it (the script builds no string per job);
                // one that waits at a concurrency gate, as the id it was
                // given there.
                items
                    .iter()
                    .zip(chunk.jobs.iter().zip(chunk.ids))
                    .map(|(v, (job, known))| {
                        let text = reply::string(v).ok_or_else(|| bad(&reply))?;
                        Ok(match known {
                            Some(_) => text,
                            None if is_entry_id(&text) => derived_id(job.priority, &text),
                            None => text,
                        })
                    })
                    .collect()
            }
            ("done", _) => chunk
                .ids
                .iter()
                .map(|id| id.clone().ok_or_else(|| bad(&reply)))
                .collect(),
            ("duplicate", [_, id]) => Err(Error::DuplicateJob {
                queue: self.name().to_owned(),
                id: reply::string(id).unwrap_or_default(),
            }),
            ("full", [_, depth, max]) => Err(Error::QueueFull {
                queue: self.name().to_owned(),
                depth: reply::count(depth)?,
                max_depth: reply::count(max)?,
            }),
            _ => Err(bad(&reply)),
        }
    }
}

/// One chunk of a batch, as `enqueue.lua` writes it.
pub(super) struct Chunk<'a> {
    pub(super) jobs: &'a [NewJob],
    /// Ids known before the write (`None` for a fresh job).
    pub(super) ids: &'a [Option<String>],
    pub(super) number: usize,
    pub(super) key: Option<&'a BatchKey>,
    pub(super) on_duplicate: OnDuplicate,
    /// The producer's trace context, carried by every job of the chunk.
    pub(super) trace: Option<&'a TraceContext>,
}

/// Splits a batch into chunks of at most [`CHUNK_JOBS`] jobs and about
/// [`CHUNK_BYTES`] (at least one job each).
pub(super) fn chunk_ranges(jobs: &[NewJob]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, job) in jobs.iter().enumerate() {
        let size = JOB_OVERHEAD + job.job_type.len() + job.payload.len();
        if i > start && (i - start >= CHUNK_JOBS || bytes + size > CHUNK_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    out.push(start..jobs.len());
    out
}

#[cfg(test)]
mod tests {
    use super::super::Schedule;
    use super::*;
    use crate::priority::Priority;

    fn job(payload: usize) -> NewJob {
        NewJob {
            job_type: "t".into(),
            payload: "x".repeat(payload),
            priority: Priority::Normal,
            max_retries: 0,
            schedule: Schedule::Now,
            id: None,
            retention_ms: None,
            concurrency_key: None,
        }
    }

    #[test]
    fn batches_are_chunked_by_count_and_by_bytes() {
        let small: Vec<NewJob> = (0..2500).map(|_| job(10)).collect();
        assert_eq!(chunk_ranges(&small), [0..1000, 1000..2000, 2000..2500]);
        let big: Vec<NewJob> = (0..10).map(|_| job(1024 * 1024)).collect();
        let chunks = chunk_ranges(&big);
        assert_eq!(chunks.len(), 4, "{chunks:?}");
        assert!(chunks.iter().all(|r| !r.is_empty()));
        let huge = vec![job(CHUNK_BYTES * 2)];
        assert_eq!(
            chunk_ranges(&huge),
            vec![0..1],
            "a job alone even when over"
        );
    }
}
