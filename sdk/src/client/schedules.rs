//! Cron and periodic schedules: create or replace, pause, resume, trigger,
//! remove and list them. Workers fire them (see
//! [`WorkerConfig::fire_schedules`](crate::WorkerConfig::fire_schedules)).

use ferry_broker::{
    Missed, NewSchedule, Priority, Recurrence, ScheduleInfo, ScheduleName, Upserted,
};

use super::Client;
use crate::error::Result;
use crate::job::Job;

/// How a schedule's jobs differ from their type's defaults, and what it
/// does with missed ticks. Setters chain:
///
/// ```
/// use ferry_queue::{Missed, Priority, ScheduleOptions};
/// let options = ScheduleOptions::new()
///     .missed(Missed::CatchUp(3))
///     .queue("reports-eu")
///     .priority(Priority::High);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScheduleOptions {
    missed: Missed,
    queue: Option<String>,
    priority: Option<Priority>,
    max_retries: Option<u32>,
}

impl ScheduleOptions {
    /// The job type's defaults; missed ticks skipped.
    pub fn new() -> Self {
        Self::default()
    }

    /// What to do with ticks missed while no worker fired the schedule
    /// (default [`Missed::Skip`]).
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }

    /// The queue the schedule lives in and enqueues to, instead of the
    /// job type's [`Job::QUEUE`].
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// The jobs' priority, instead of [`Job::PRIORITY`].
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// The jobs' retries, instead of [`Job::MAX_RETRIES`].
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }
}

impl Client {
    /// Creates or replaces schedule `name` in the job type's queue: at each
    /// tick of `recurrence` (by the Redis server's clock) one job `job` is
    /// enqueued, whichever worker fires it, with the id
    /// `sched:<name>:<tick ms>`. Replacing a schedule with the same
    /// recurrence keeps its next tick, so upserting at every start is safe.
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Report { day: Option<String> }
    /// # impl ferry_queue::Job for Report { const TYPE: &'static str = "report"; const QUEUE: &'static str = "reports"; }
    /// # async fn example(client: ferry_queue::Client) -> ferry_queue::Result<()> {
    /// use ferry_queue::Recurrence;
    /// let nightly = Recurrence::cron_in("0 2 * * *", "Europe/Paris")?;
    /// client.schedule("nightly-report", nightly, &Report { day: None }).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a bad name, queue, job
    /// type or payload; [`Error::Redis`](crate::Error::Redis).
    pub async fn schedule<J: Job>(
        &self,
        name: &str,
        recurrence: Recurrence,
        job: &J,
    ) -> Result<Upserted> {
        self.schedule_with(name, recurrence, job, ScheduleOptions::new())
            .await
    }

    /// As [`Client::schedule`], with `options`.
    ///
    /// # Errors
    /// As [`Client::schedule`].
    pub async fn schedule_with<J: Job>(
        &self,
        name: &str,
        recurrence: Recurrence,
        job: &J,
        options: ScheduleOptions,
    ) -> Result<Upserted> {
        let queue = self.queue(options.queue.as_deref().unwrap_or(J::QUEUE))?;
        let schedule = NewSchedule {
            name: ScheduleName::new(name)?,
            recurrence,
            missed: options.missed,
            job_type: J::TYPE.to_owned(),
            payload: serde_json::to_string(job)?,
            priority: options.priority.unwrap_or(J::PRIORITY),
            max_retries: options.max_retries.unwrap_or(J::MAX_RETRIES),
        };
        let mut conn = self.conn().await?;
        queue
            .upsert_schedule(&mut conn, &schedule)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Removes schedule `name` of `queue`: no tick fires after this
    /// returns; jobs it enqueued stay. False when there was none.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) or [`Error::Redis`](crate::Error::Redis).
    pub async fn remove_schedule(&self, queue: &str, name: &str) -> Result<bool> {
        let (queue, name) = (self.queue(queue)?, ScheduleName::new(name)?);
        let mut conn = self.conn().await?;
        queue
            .remove_schedule(&mut conn, &name)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Pauses schedule `name`: no tick fires until it is resumed. False
    /// when there is none.
    ///
    /// # Errors
    /// As [`Client::remove_schedule`].
    pub async fn pause_schedule(&self, queue: &str, name: &str) -> Result<bool> {
        let (queue, name) = (self.queue(queue)?, ScheduleName::new(name)?);
        let mut conn = self.conn().await?;
        queue
            .pause_schedule(&mut conn, &name)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Resumes schedule `name` from its next tick after now (no tick of
    /// the pause runs). False when there is none.
    ///
    /// # Errors
    /// As [`Client::remove_schedule`].
    pub async fn resume_schedule(&self, queue: &str, name: &str) -> Result<bool> {
        let (queue, name) = (self.queue(queue)?, ScheduleName::new(name)?);
        let mut conn = self.conn().await?;
        queue
            .resume_schedule(&mut conn, &name)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Enqueues schedule `name`'s job now, outside its cadence; returns the
    /// job's id, or `None` when there is no such schedule.
    ///
    /// # Errors
    /// As [`Client::remove_schedule`].
    pub async fn trigger_schedule(&self, queue: &str, name: &str) -> Result<Option<String>> {
        let (queue, name) = (self.queue(queue)?, ScheduleName::new(name)?);
        let mut conn = self.conn().await?;
        queue
            .trigger_schedule(&mut conn, &name)
            .await
            .map_err(|e| self.fail(e))
    }

    /// The schedules of `queue`, by name, with their next tick and last job.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) or [`Error::Redis`](crate::Error::Redis).
    pub async fn schedules(&self, queue: &str) -> Result<Vec<ScheduleInfo>> {
        let queue = self.queue(queue)?;
        let mut conn = self.conn().await?;
        queue.schedules(&mut conn).await.map_err(|e| self.fail(e))
    }
}
