//! A queue's cron and periodic schedules (`P:{Q}:schedules` and
//! `P:{Q}:schedule:<name>`): list them (each with its last job's state),
//! add or replace one, show, remove, pause, resume and trigger one. The
//! same for `ferry schedules`, `ferry schedule ...` and
//! `/v1/queues/{queue}/schedules`. Workers fire them (see
//! [`ferry_broker::schedules`]); these operations only store and change them.
//!
//! `spec.rs` holds [`ScheduleSpec`], what is given, and its checks.

mod spec;

pub use spec::{schedule_name, ScheduleSpec, DEFAULT_PAYLOAD, DEFAULT_TIME_ZONE, MAX_INTERVAL_MS};

use ferry_broker::ScheduleInfo;
use ferry_queue::{JobState, Priority};
use serde::Serialize;

use crate::admin::Admin;
use crate::error::{Error, Result};

/// A schedule as the command line and the API show it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    /// The queue it lives in and enqueues to.
    pub queue: String,
    /// Its name, unique in the queue.
    pub name: String,
    /// `cron <expression> <zone>` or `every <ms>`, as stored.
    pub spec: String,
    /// The cron expression (null for an interval).
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in (null for an
    /// interval).
    pub time_zone: Option<String>,
    /// The interval, ms (null for a cron expression).
    pub every_ms: Option<u64>,
    /// What it does with missed ticks: `skip`, `run-once` or `catch-up:<n>`.
    pub missed: String,
    /// The type of the jobs it enqueues.
    #[serde(rename = "type")]
    pub job_type: String,
    /// The jobs' payload (a JSON value; stored text that is not JSON as a
    /// string).
    pub payload: serde_json::Value,
    /// The jobs' priority.
    pub priority: Priority,
    /// The jobs' retries after their first attempt.
    pub max_retries: u32,
    /// True while paused: it fires no tick until resumed.
    pub paused: bool,
    /// Its next tick, ms since the epoch by the Redis server's clock; null
    /// while paused.
    pub next_at: Option<u64>,
    /// The latest tick a job was enqueued for.
    pub last_tick: Option<u64>,
    /// The id of the latest job it enqueued.
    pub last_job: Option<String>,
    /// That job's state now; null when there is none, or its record is no
    /// longer kept.
    pub last_job_state: Option<JobState>,
    /// When it last fired (server ms), missed ticks skipped included.
    pub last_fired_at: Option<u64>,
    /// When it was created (server ms).
    pub created_at: Option<u64>,
    /// When it was last added or replaced (server ms).
    pub updated_at: Option<u64>,
}

impl ScheduleView {
    /// The view of `info` of `queue`, its last job being in `last_job_state`.
    pub fn new(queue: &str, info: ScheduleInfo, last_job_state: Option<JobState>) -> Self {
        let (cron, time_zone, every_ms) = split_spec(&info.spec);
        let payload = serde_json::from_str(&info.payload)
            .unwrap_or_else(|_| serde_json::Value::String(info.payload.clone()));
        Self {
            queue: queue.to_owned(),
            name: info.name,
            cron,
            time_zone,
            every_ms,
            spec: info.spec,
            missed: info.missed,
            job_type: info.job_type,
            payload,
            priority: info.priority,
            max_retries: info.max_retries,
            paused: info.paused,
            next_at: info.next_at,
            last_tick: info.last_tick,
            last_job: info.last_job,
            last_job_state,
            last_fired_at: info.last_fired_at,
            created_at: info.created_at,
            updated_at: info.updated_at,
        }
    }
}

/// A stored spec's parts: (cron expression, zone) or the interval.
fn split_spec(spec: &str) -> (Option<String>, Option<String>, Option<u64>) {
    if let Some(ms) = spec.strip_prefix("every ") {
        return (None, None, ms.parse().ok());
    }
    match spec.strip_prefix("cron ").and_then(|r| r.rsplit_once(' ')) {
        Some((expression, zone)) => (Some(expression.to_owned()), Some(zone.to_owned()), None),
        None => (None, None, None),
    }
}
/// What [`Admin::upsert_schedule`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScheduleUpserted {
    /// True for a new schedule, false for a replaced one.
    pub created: bool,
    /// The schedule as it is now.
    #[serde(flatten)]
    pub schedule: ScheduleView,
}

/// What [`Admin::remove_schedule`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScheduleRemoved {
    /// The queue.
    pub queue: String,
    /// The schedule's name.
    pub name: String,
    /// Always true (removing a schedule that is not there is not found).
    pub removed: bool,
}

/// What [`Admin::trigger_schedule`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScheduleTriggered {
    /// The queue.
    pub queue: String,
    /// The schedule's name.
    pub name: String,
    /// The id of the job it enqueued now.
    pub id: String,
}

impl Admin {
    /// Every schedule of `queue`, by name, each with its last job's state
    /// (an empty list for a queue without schedules).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn schedules(&self, queue: &str) -> Result<Vec<ScheduleView>> {
        let q = self.queue(queue)?;
        let list = q
            .schedules(&mut self.conn())
            .await
            .map_err(|e| self.fail(e))?;
        let states =
            futures::future::try_join_all(list.iter().map(|s| self.last_job_state(queue, s)))
                .await?;
        Ok(list
            .into_iter()
            .zip(states)
            .map(|(s, state)| ScheduleView::new(queue, s, state))
            .collect())
    }

    /// Schedule `name` of `queue`, with its last job's state.
    ///
    /// # Errors
    /// [`Error::ScheduleNotFound`]; [`Error::Usage`] for a bad name; a bad
    /// queue name; Redis errors.
    pub async fn schedule(&self, queue: &str, name: &str) -> Result<ScheduleView> {
        let q = self.queue(queue)?;
        let n = schedule_name(name)?;
        let info = q
            .schedule(&mut self.conn(), &n)
            .await
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| not_found(queue, name))?;
        let state = self.last_job_state(queue, &info).await?;
        Ok(ScheduleView::new(queue, info, state))
    }

    /// The state of the last job `info` enqueued, if it has one whose
    /// record is kept.
    async fn last_job_state(&self, queue: &str, info: &ScheduleInfo) -> Result<Option<JobState>> {
        let Some(id) = &info.last_job else {
            return Ok(None);
        };
        match self.show(queue, id).await {
            Ok(status) => Ok(Some(status.state)),
            Err(Error::JobNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds schedule `spec` to `queue`, or replaces the one of that name
    /// (every field checked first). Replacing it with the same recurrence
    /// keeps its next tick and its pause.
    ///
    /// # Errors
    /// As [`ScheduleSpec::check`] (nothing written); a bad queue name; a
    /// payload over the queue's limit; Redis errors.
    pub async fn upsert_schedule(
        &self,
        queue: &str,
        spec: &ScheduleSpec,
    ) -> Result<ScheduleUpserted> {
        let schedule = spec.check()?;
        let q = self.queue(queue)?;
        let done = q
            .upsert_schedule(&mut self.conn(), &schedule)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(ScheduleUpserted {
            created: done.created,
            schedule: self.schedule(queue, &spec.name).await?,
        })
    }

    /// Removes schedule `name` of `queue`: no tick fires after this
    /// returns; the jobs it enqueued stay.
    ///
    /// # Errors
    /// As [`Admin::schedule`].
    pub async fn remove_schedule(&self, queue: &str, name: &str) -> Result<ScheduleRemoved> {
        let (q, n) = (self.queue(queue)?, schedule_name(name)?);
        if !q
            .remove_schedule(&mut self.conn(), &n)
            .await
            .map_err(|e| self.fail(e))?
        {
            return Err(not_found(queue, name));
        }
        Ok(ScheduleRemoved {
            queue: queue.to_owned(),
            name: name.to_owned(),
            removed: true,
        })
    }

    /// Pauses schedule `name` of `queue` (fine when paused); returns it.
    ///
    /// # Errors
    /// As [`Admin::schedule`].
    pub async fn pause_schedule(&self, queue: &str, name: &str) -> Result<ScheduleView> {
        let (q, n) = (self.queue(queue)?, schedule_name(name)?);
        if !q
            .pause_schedule(&mut self.conn(), &n)
            .await
            .map_err(|e| self.fail(e))?
        {
            return Err(not_found(queue, name));
        }
        self.schedule(queue, name).await
    }

    /// Resumes schedule `name` of `queue` from its first tick after now
    /// (no tick of the pause runs; fine when not paused); returns it.
    ///
    /// # Errors
    /// As [`Admin::schedule`].
    pub async fn resume_schedule(&self, queue: &str, name: &str) -> Result<ScheduleView> {
        let (q, n) = (self.queue(queue)?, schedule_name(name)?);
        if !q
            .resume_schedule(&mut self.conn(), &n)
            .await
            .map_err(|e| self.fail(e))?
        {
            return Err(not_found(queue, name));
        }
        self.schedule(queue, name).await
    }

    /// Enqueues schedule `name`'s job now, outside its cadence (its next
    /// tick stays); returns the job's id.
    ///
    /// # Errors
    /// As [`Admin::schedule`]; as [`Admin::enqueue`] (a full queue, say).
    pub async fn trigger_schedule(&self, queue: &str, name: &str) -> Result<ScheduleTriggered> {
        let (q, n) = (self.queue(queue)?, schedule_name(name)?);
        let id = q
            .trigger_schedule(&mut self.conn(), &n)
            .await
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| not_found(queue, name))?;
        Ok(ScheduleTriggered {
            queue: queue.to_owned(),
            name: name.to_owned(),
            id,
        })
    }
}

fn not_found(queue: &str, name: &str) -> Error {
    Error::ScheduleNotFound {
        queue: queue.to_owned(),
        name: name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_split_into_their_parts() {
        assert_eq!(
            split_spec("cron */5 * * * * Europe/Paris"),
            (
                Some("*/5 * * * *".into()),
                Some("Europe/Paris".into()),
                None
            )
        );
        assert_eq!(split_spec("every 60000"), (None, None, Some(60_000)));
        assert_eq!(split_spec("weird"), (None, None, None));
    }
}
