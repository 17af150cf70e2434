//! Batches: a group of jobs enqueued together under an id, with callbacks
//! ([`Queue::create_batch`]): on success, a job enqueued once every job of
//! the batch has succeeded; on complete, one enqueued once every job has
//! finished, whatever its outcome. Jobs can join an open batch later
//! ([`Queue::add_to_batch`], from one of its handlers, say), and its
//! status counts them ([`Queue::batch`]).
//!
//! Each member has the batch as a dependent (`lua/shared/batches.lua`): the
//! script that ends a member (its ack, dead letter or cancel) counts it,
//! and the one that ends the last enqueues the callbacks that are due, in
//! the same step, so each is enqueued at most once, whichever workers
//! finish the members and however they crash. A dead member that is
//! replayed and succeeds counts as succeeded, so the on-success callback
//! can still come; one cancelled, or whose dead letter is removed, has
//! failed for good.

use redis::aio::ConnectionLike;
use redis::Value;

use crate::dependencies::{Node, OnDependencyFailure};
use crate::error::{ConfigError, Error, Result};
use crate::producer::NewJob;
use crate::queue::Queue;
use crate::{reply, scripts};

/// Most jobs one call creates a batch with, or adds to one (more go in
/// further [`Queue::add_to_batch`] calls).
pub const MAX_BATCH_JOBS_PER_CALL: usize = 10_000;

/// A batch to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewBatch {
    /// Its id (as a job id: 1 to 128 of `A-Z a-z 0-9 . _ : -`); `None`
    /// for a new UUID v7.
    pub id: Option<String>,
    /// What it is, for operators.
    pub description: Option<String>,
    /// Its jobs (one or more, each with its id or none; no delay).
    pub jobs: Vec<NewJob>,
    /// Enqueued once every job has succeeded.
    pub on_success: Option<NewJob>,
    /// Enqueued once every job has finished, whatever the outcome.
    pub on_complete: Option<NewJob>,
}

/// What [`Queue::create_batch`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedBatch {
    /// The batch's id.
    pub id: String,
    /// Its jobs' ids, in order.
    pub jobs: Vec<String>,
    /// The on-success callback's job id (enqueued when due).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_success: Option<String>,
    /// The on-complete callback's job id (enqueued when due).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_complete: Option<String>,
}

mod status;

use status::status_of;
pub use status::{BatchState, BatchStatus, Callback, CallbackState};

impl Queue {
    /// Creates `batch` in one script, all or none: its jobs into their
    /// streams, each counted by the batch, and its callbacks kept until
    /// they are due.
    ///
    /// # Errors
    /// [`Error::BatchExists`]; [`Error::DuplicateJob`] for a job id (or a
    /// callback's) in use; [`Error::QueueFull`]; [`ConfigError`] for a bad
    /// id, a bad job, no jobs, more than [`MAX_BATCH_JOBS_PER_CALL`], or a
    /// delay; [`Error::Redis`].
    pub async fn create_batch<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        batch: &NewBatch,
    ) -> Result<CreatedBatch> {
        let id = match &batch.id {
            Some(id) => {
                check_batch_id(id)?;
                id.clone()
            }
            None => uuid::Uuid::now_v7().to_string(),
        };
        let nodes = members(&batch.jobs)?;
        let mut callbacks = [None, None];
        for (slot, (name, job)) in callbacks.iter_mut().zip([
            ("on_success", &batch.on_success),
            ("on_complete", &batch.on_complete),
        ]) {
            if let Some(job) = job {
                *slot = Some(self.callback(name, job)?);
            }
        }
        let mut inv = self.invoke(&scripts::CREATE_BATCH);
        inv.arg(&id)
            .arg(batch.description.as_deref().unwrap_or_default());
        for cb in &callbacks {
            inv.arg(
                cb.as_ref()
                    .map(|(_, json)| json.as_str())
                    .unwrap_or_default(),
            );
        }
        self.push_nodes(&mut inv, &nodes)?;
        let v: Value = inv.invoke_async(conn).await?;
        self.batch_reply(&v, "create_batch", &id)?;
        let [on_success, on_complete] = callbacks;
        Ok(CreatedBatch {
            id,
            jobs: nodes.into_iter().map(|n| n.id).collect(),
            on_success: on_success.map(|(id, _)| id),
            on_complete: on_complete.map(|(id, _)| id),
        })
    }

    /// Adds `jobs` to the open batch `batch` in one script, all or none;
    /// returns their ids. A batch is open until its last job finishes, so
    /// a handler of one of its jobs always finds it open.
    ///
    /// # Errors
    /// [`Error::BatchNotFound`]; [`Error::BatchClosed`]; otherwise as
    /// [`Queue::create_batch`].
    pub async fn add_to_batch<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        batch: &str,
        jobs: &[NewJob],
    ) -> Result<Vec<String>> {
        check_batch_id(batch)?;
        let nodes = members(jobs)?;
        let mut inv = self.invoke(&scripts::ADD_TO_BATCH);
        inv.arg(batch);
        self.push_nodes(&mut inv, &nodes)?;
        let v: Value = inv.invoke_async(conn).await?;
        self.batch_reply(&v, "add_to_batch", batch)?;
        Ok(nodes.into_iter().map(|n| n.id).collect())
    }

    /// Batch `id`'s status, or `None` for no such batch (never created,
    /// or expired: a batch whose jobs have all finished for good is kept
    /// for the queue's record retention). One round trip.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn batch<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        id: &str,
    ) -> Result<Option<BatchStatus>> {
        if !crate::envelope::is_job_id(id) {
            return Ok(None);
        }
        let keys = self.keys();
        let (fields, pending, dead): (Vec<(String, String)>, u64, u64) = redis::pipe()
            .cmd("HGETALL")
            .arg(keys.job_batch(id))
            .cmd("SCARD")
            .arg(keys.deps_of(&format!("#b:{id}")))
            .cmd("SCARD")
            .arg(keys.job_batch_dead(id))
            .query_async(conn)
            .await?;
        Ok(status_of(id, &fields, pending, dead))
    }

    /// The queue's batches, newest first, at most `limit` (those kept:
    /// open, or finished within the record retention).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn batches<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        limit: usize,
    ) -> Result<Vec<BatchStatus>> {
        let ids: Vec<String> = redis::cmd("ZREVRANGE")
            .arg(self.keys().job_batches())
            .arg(0)
            .arg(limit.saturating_sub(1))
            .query_async(conn)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(st) = self.batch(conn, &id).await? {
                out.push(st);
            }
        }
        Ok(out)
    }

    /// A page of batch `id`'s job ids (SSCAN of `P:{Q}:batch_jobs:<id>`,
    /// from `cursor`, 0 to start); the next cursor (0: done) and the ids.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn batch_jobs<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        id: &str,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<String>)> {
        if !crate::envelope::is_job_id(id) {
            return Ok((0, Vec::new()));
        }
        Ok(redis::cmd("SSCAN")
            .arg(self.keys().job_batch_jobs(id))
            .arg(cursor)
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(conn)
            .await?)
    }

    /// A callback's id and its job as `lua/shared/batches.lua` keeps it.
    fn callback(&self, name: &'static str, job: &NewJob) -> Result<(String, String)> {
        self.check(job)?;
        if !matches!(job.schedule, crate::producer::Schedule::Now) {
            return Err(ConfigError::InvalidSetting {
                name,
                reason: "a callback runs when the batch is done: it takes no delay".into(),
            }
            .into());
        }
        let id = job
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let mut env = serde_json::json!({
            "id": id,
            "type": job.job_type,
            "payload": job.payload,
            "priority": job.priority.as_str(),
            "max_retries": job.max_retries.to_string(),
        });
        if let Some(ms) = job.retention_ms {
            env["retention_ms"] = ms.to_string().into();
        }
        if let Some(k) = &job.concurrency_key {
            env[crate::envelope::field::CONCURRENCY_KEY] = k.clone().into();
        }
        Ok((id, env.to_string()))
    }

    fn batch_reply(&self, v: &Value, script: &str, batch: &str) -> Result<()> {
        let tag = reply::array(v)
            .and_then(|items| items.first())
            .and_then(reply::string)
            .unwrap_or_default();
        let (queue, batch) = (self.name().to_string(), batch.to_owned());
        match tag.as_str() {
            "batch_exists" => Err(Error::BatchExists { queue, batch }),
            "no_batch" => Err(Error::BatchNotFound { queue, batch }),
            "batch_closed" => Err(Error::BatchClosed { queue, batch }),
            "empty" => Err(no_jobs().into()),
            _ => self.nodes_reply(v, script).map(drop),
        }
    }
}

fn no_jobs() -> ConfigError {
    ConfigError::InvalidSetting {
        name: "jobs",
        reason: "a batch holds one job at least".into(),
    }
}

/// Checks a batch id: a job id's form.
fn check_batch_id(id: &str) -> Result<()> {
    if crate::envelope::is_job_id(id) {
        Ok(())
    } else {
        Err(ConfigError::InvalidSetting {
            name: "batch",
            reason: format!(
                "{id:?} is not a batch id: 1 to {} of A-Z a-z 0-9 . _ : -",
                crate::envelope::MAX_JOB_ID_LEN
            ),
        }
        .into())
    }
}

/// The batch members `jobs` as nodes with no dependencies.
fn members(jobs: &[NewJob]) -> Result<Vec<Node<'_>>> {
    if jobs.is_empty() {
        return Err(no_jobs().into());
    }
    if jobs.len() > MAX_BATCH_JOBS_PER_CALL {
        return Err(ConfigError::InvalidSetting {
            name: "jobs",
            reason: format!(
                "{} jobs: at most {MAX_BATCH_JOBS_PER_CALL} in one call (add more with add_to_batch)",
                jobs.len()
            ),
        }
        .into());
    }
    for job in jobs {
        if let Some(id) = &job.id {
            crate::envelope::check_given_job_id(id).map_err(|reason| {
                ConfigError::InvalidSetting {
                    name: "job_id",
                    reason,
                }
            })?;
        }
    }
    Ok(jobs
        .iter()
        .map(|job| Node {
            job,
            id: job
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            deps: Vec::new(),
            policy: OnDependencyFailure::Fail,
        })
        .collect())
}
