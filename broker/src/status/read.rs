//! Reading a job's status: [`Queue::status`] (one `status.lua` call, then
//! a page of its dependents), [`Queue::statuses`] (many jobs, pipelined).

use redis::aio::ConnectionLike;
use redis::Value;

use super::{
    envelope_map, field_map, from_record, held_back, priority_at, JobState, JobStatus,
    MAX_DEPENDENTS_SHOWN,
};
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::{reply, scripts};

impl Queue {
    /// The status of job `id`, or `None` when the queue has no such job
    /// (never enqueued, or finished and its record no longer kept). One
    /// round trip (`status.lua`).
    ///
    /// Jobs enqueued by Ferry before 0.6 (UUID ids in their entries) are
    /// found once they have moved or finished, not while first queued.
    ///
    /// # Errors
    /// [`Error::Redis`], or [`Error::Protocol`] for a reply or record that
    /// is not what Ferry writes.
    pub async fn status<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        id: &str,
    ) -> Result<Option<JobStatus>> {
        if !crate::envelope::is_job_id(id) {
            return Ok(None);
        }
        let mut inv = self.invoke(&scripts::STATUS);
        inv.arg(id);
        let v: Value = inv.invoke_async(conn).await?;
        let Some(mut status) = parse(id, &v)? else {
            return Ok(None);
        };
        // The jobs waiting for it, if any (one more round trip: SCARD and
        // a first page of the set).
        // Its batch's link ('#b:<batch>', shared/batches.lua) is in the
        // set too, and is no job.
        let key = self.keys().dependents_of(id);
        let mark = format!("#b:{}", status.batch.as_deref().unwrap_or_default());
        let ((_, page), count, linked): ((u64, Vec<String>), u64, bool) = redis::pipe()
            .cmd("SSCAN")
            .arg(&key)
            .arg(0)
            .arg("COUNT")
            .arg(MAX_DEPENDENTS_SHOWN)
            .cmd("SCARD")
            .arg(&key)
            .cmd("SISMEMBER")
            .arg(&key)
            .arg(&mark)
            .query_async(conn)
            .await?;
        let count = count.saturating_sub(u64::from(linked));
        if count > 0 {
            // A job of another queue is '@<queue>/<id>' there.
            let mut page: Vec<String> = page
                .into_iter()
                .filter(|d| !d.starts_with('#'))
                .map(|d| d.strip_prefix('@').map(str::to_owned).unwrap_or(d))
                .collect();
            page.sort();
            page.truncate(MAX_DEPENDENTS_SHOWN);
            status.dependents = page;
            status.dependents_count = Some(count);
        }
        Ok(Some(status))
    }

    /// The statuses of jobs `ids` (`None` for each the queue has no such
    /// job), without their dependents: `status.lua` for each, pipelined,
    /// 500 to a round trip.
    ///
    /// # Errors
    /// As [`Queue::status`].
    pub async fn statuses<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        ids: &[String],
    ) -> Result<Vec<Option<JobStatus>>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut pipe = redis::pipe();
            pipe.load_script(&scripts::STATUS.script).ignore();
            let invocations: Vec<_> = chunk
                .iter()
                .map(|id| {
                    let mut inv = self.invoke(&scripts::STATUS);
                    inv.arg(id);
                    inv
                })
                .collect();
            for inv in &invocations {
                pipe.invoke_script(inv);
            }
            let replies: Vec<Value> = pipe.query_async(conn).await?;
            for (id, v) in chunk.iter().zip(&replies) {
                if crate::envelope::is_job_id(id) {
                    out.push(parse(id, v)?);
                } else {
                    out.push(None);
                }
            }
        }
        Ok(out)
    }
}

/// A `status.lua` reply for job `id` as its status; `None` for no such job.
fn parse(id: &str, v: &Value) -> Result<Option<JobStatus>> {
    let bad = || Error::Protocol(format!("status: {v:?}"));
    if matches!(v, Value::Nil | Value::Boolean(false)) {
        return Ok(None);
    }
    let items = reply::array(v).ok_or_else(bad)?;
    let tag = items.first().and_then(reply::string).ok_or_else(bad)?;
    let status = match (tag.as_str(), items) {
        ("finished", [_, record]) => from_record(id, &reply::string(record).ok_or_else(bad)?)?,
        ("dead", [_, entry, fields]) => {
            let entry = reply::string(entry).ok_or_else(bad)?;
            JobStatus::dead(id, entry, &field_map(fields))
        }
        ("scheduled", [_, due, envelope]) => JobStatus::delayed(id, due, &envelope_map(envelope)),
        ("gated", [_, gate, envelope, limit, held]) => JobStatus::gated(
            id,
            &reply::string(gate).ok_or_else(bad)?,
            reply::int(limit).unwrap_or(0),
            reply::int(held).unwrap_or(0),
            &envelope_map(envelope),
        ),
        ("rate_limited", [_, gate, envelope, limit, next_at, waiting]) => JobStatus::rate_limited(
            id,
            &reply::string(gate).ok_or_else(bad)?,
            &reply::string(limit).unwrap_or_default(),
            reply::int(next_at).and_then(|n| u64::try_from(n).ok()),
            reply::int(waiting).unwrap_or(0),
            &envelope_map(envelope),
        ),
        ("deps", [_, envelope, deps, left]) => JobStatus::waiting_deps(
            id,
            reply::array(deps)
                .map(|d| d.iter().filter_map(reply::string).collect())
                .unwrap_or_default(),
            reply::int(left).unwrap_or(0),
            &envelope_map(envelope),
        ),
        ("queued", [_, index, entry, fields, ..]) | ("running", [_, index, entry, fields, ..]) => {
            let priority = priority_at(index).ok_or_else(bad)?;
            let entry = reply::string(entry).ok_or_else(bad)?;
            let state = if tag == "running" {
                JobState::Running
            } else {
                JobState::Queued
            };
            let mut s = JobStatus::in_stream(id, state, priority, entry, &field_map(fields));
            if let (JobState::Queued, [_, _, _, _, reason, ms]) = (state, items) {
                s.waiting_for = held_back(
                    &reply::string(reason).unwrap_or_default(),
                    reply::int(ms).unwrap_or(0),
                );
            }
            if let [_, _, _, _, consumer, deliveries, ..] = items {
                s = s.with_claim(consumer, deliveries);
            }
            if let [_, _, _, _, _, _, _, progress] = items {
                s = s.with_progress(progress);
            }
            s
        }
        _ => return Err(bad()),
    };
    Ok(Some(status))
}
