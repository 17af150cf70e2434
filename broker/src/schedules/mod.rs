//! Cron and periodic schedules: jobs enqueued on a cadence, fired by
//! whichever worker of the fleet gets there first, exactly once per tick.
//!
//! A schedule lives in Redis under its queue's hash tag: its hash
//! `P:{Q}:schedule:<name>` (the recurrence, the job it enqueues, its last
//! tick and job) and its member in the set `P:{Q}:schedules`, scored by its
//! next tick (ms, server clock; `inf` while paused). Every worker runs a
//! firing loop ([`Queue::fire_due`]): `due_schedules.lua` lists the members
//! due by the server's clock, the worker computes the ticks to fire and the
//! next one ([`recurrence::firing`]), and `fire_schedule.lua` enqueues them
//! and moves the score on, only if the score is still the tick it read. So
//! two workers racing for a tick enqueue one job (`sched:<name>:<tick>`),
//! and no host's clock decides when.
//!
//! `recurrence.rs` holds the cron and interval arithmetic, `firing.rs`
//! the firing pass.

use redis::aio::ConnectionLike;
use redis::Value;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::error::{ConfigError, Error, Result};
use crate::priority::Priority;
use crate::queue::Queue;
use crate::reply;
use crate::scripts::{self, QueueScript};

mod firing;
pub mod recurrence;

pub use firing::FireRound;
pub use recurrence::{Missed, Recurrence};

/// Longest schedule name: 64 bytes (its jobs' ids add the tick).
pub const MAX_SCHEDULE_NAME_LEN: usize = 64;

/// A validated schedule name: `[A-Za-z0-9._-]{1,64}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScheduleName(String);

impl ScheduleName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `schedule` for an empty,
    /// over-long or ill-formed name.
    pub fn new(name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= MAX_SCHEDULE_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(name))
        } else {
            Err(ConfigError::InvalidSetting {
                name: "schedule",
                reason: format!("{name:?}: use 1 to 64 characters from [A-Za-z0-9._-]"),
            })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScheduleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A schedule to create or replace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSchedule {
    /// Its name, unique in the queue.
    pub name: ScheduleName,
    /// When it fires.
    pub recurrence: Recurrence,
    /// What it does with missed ticks.
    pub missed: Missed,
    /// The type of the job it enqueues.
    pub job_type: String,
    /// The job's payload (JSON text).
    pub payload: String,
    /// The job's priority.
    pub priority: Priority,
    /// The job's retries.
    pub max_retries: u32,
}

/// A schedule as read from Redis.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleInfo {
    /// Its name.
    pub name: String,
    /// `cron <expression> <zone>` or `every <ms>`.
    pub spec: String,
    /// `skip`, `run-once` or `catch-up:<n>`.
    pub missed: String,
    /// The type of the job it enqueues.
    pub job_type: String,
    /// The job's payload (JSON text).
    pub payload: String,
    /// The job's priority.
    pub priority: Priority,
    /// The job's retries.
    pub max_retries: u32,
    /// True while paused.
    pub paused: bool,
    /// The next tick (ms since the epoch, server clock); `None` while paused.
    pub next_at: Option<u64>,
    /// The latest tick a job was enqueued for.
    pub last_tick: Option<u64>,
    /// The id of the latest job it enqueued.
    pub last_job: Option<String>,
    /// When it last fired (server ms), missed ticks skipped included.
    pub last_fired_at: Option<u64>,
    /// When it was first created (server ms).
    pub created_at: Option<u64>,
    /// When it was last upserted (server ms).
    pub updated_at: Option<u64>,
}

/// What [`Queue::upsert_schedule`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upserted {
    /// True for a new schedule, false for a replaced one.
    pub created: bool,
    /// Its next tick (ms, server clock); `None` while paused.
    pub next_at: Option<u64>,
}

/// The job id of a schedule's job for `tick`.
pub fn tick_job_id(name: &ScheduleName, tick: u64) -> String {
    format!("sched:{name}:{tick}")
}

impl Queue {
    /// A schedule script's invocation: the queue's keys it takes, then the
    /// schedules set and, with `name`, the schedule's hash.
    fn invoke_schedule<'a>(
        &self,
        script: &'a QueueScript,
        name: Option<&ScheduleName>,
    ) -> redis::ScriptInvocation<'a> {
        let mut inv = self.invoke(script);
        inv.key(self.keys().schedules());
        if let Some(name) = name {
            inv.key(self.keys().schedule(name));
        }
        inv
    }

    /// Creates or replaces a schedule; its first tick is the first after
    /// the server's now. Replacing one with the same recurrence keeps its
    /// next tick and its pause (so a deploy that upserts its schedules
    /// neither moves nor repeats a tick).
    ///
    /// # Errors
    /// [`ConfigError::PayloadTooLarge`] or [`ConfigError::InvalidJobType`]
    /// before anything is sent; [`Error::Redis`].
    pub async fn upsert_schedule<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        schedule: &NewSchedule,
    ) -> Result<Upserted> {
        crate::envelope::check_job_type(&schedule.job_type)
            .map_err(|_| ConfigError::InvalidJobType(schedule.job_type.clone()))?;
        if schedule.max_retries > crate::envelope::MAX_RETRIES_LIMIT {
            return Err(ConfigError::InvalidSetting {
                name: "max_retries",
                reason: format!(
                    "{} is over the limit of {}",
                    schedule.max_retries,
                    crate::envelope::MAX_RETRIES_LIMIT
                ),
            }
            .into());
        }
        if schedule.payload.len() > self.payload_limit() {
            return Err(ConfigError::PayloadTooLarge {
                size: schedule.payload.len(),
                limit: self.payload_limit(),
            }
            .into());
        }
        let now = crate::producer::server_time_ms(conn).await?;
        let next =
            schedule
                .recurrence
                .next_after(now)
                .ok_or_else(|| ConfigError::InvalidSetting {
                    name: "cron",
                    reason: "never fires again".into(),
                })?;
        let spec = schedule.recurrence.spec();
        let mut inv = self.invoke_schedule(&scripts::UPSERT_SCHEDULE, Some(&schedule.name));
        inv.arg(schedule.name.as_str()).arg(&spec).arg(next);
        inv.arg("spec").arg(&spec);
        inv.arg("missed").arg(schedule.missed.as_text());
        inv.arg("type").arg(&schedule.job_type);
        inv.arg("payload").arg(&schedule.payload);
        inv.arg("priority").arg(schedule.priority.as_str());
        inv.arg("max_retries").arg(schedule.max_retries);
        let v: Value = inv.invoke_async(conn).await?;
        match reply::array(&v) {
            Some([state, score]) => Ok(Upserted {
                created: reply::string(state).as_deref() == Some("created"),
                next_at: reply::string(score).and_then(|s| s.parse().ok()),
            }),
            _ => Err(Error::Protocol(format!("upsert_schedule: {v:?}"))),
        }
    }

    /// Removes a schedule: no tick fires after this returns. Jobs it
    /// enqueued stay. False when there was none.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn remove_schedule<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        name: &ScheduleName,
    ) -> Result<bool> {
        self.schedule_state(conn, name, "remove", 0).await
    }

    /// Pauses a schedule: it fires no tick until resumed. False when there
    /// is none.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn pause_schedule<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        name: &ScheduleName,
    ) -> Result<bool> {
        self.schedule_state(conn, name, "pause", 0).await
    }

    /// Resumes a paused schedule from its first tick after now (the ticks
    /// of the pause are not missed ticks: none runs). False when there is
    /// none.
    ///
    /// # Errors
    /// [`Error::Redis`], [`Error::Protocol`] for a stored spec this
    /// version cannot read.
    pub async fn resume_schedule<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        name: &ScheduleName,
    ) -> Result<bool> {
        let Some(info) = self.schedule(conn, name).await? else {
            return Ok(false);
        };
        let recurrence = parse_spec(&info.spec)?;
        let now = crate::producer::server_time_ms(conn).await?;
        let next = recurrence
            .next_after(now)
            .ok_or_else(|| Error::Protocol(format!("schedule {name} never fires again")))?;
        self.schedule_state(conn, name, "resume", next).await
    }

    async fn schedule_state<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        name: &ScheduleName,
        op: &str,
        next: u64,
    ) -> Result<bool> {
        let mut inv = self.invoke_schedule(&scripts::SCHEDULE_STATE, Some(name));
        inv.arg(name.as_str()).arg(op).arg(next);
        let n: i64 = inv.invoke_async(conn).await?;
        Ok(n == 1)
    }

    /// Enqueues the schedule's job now, outside its cadence (its next tick
    /// stays), and records it as the schedule's last job; returns the
    /// job's id, or `None` when there is no such schedule.
    ///
    /// # Errors
    /// As [`Queue::enqueue`].
    pub async fn trigger_schedule<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        name: &ScheduleName,
    ) -> Result<Option<String>> {
        let Some(info) = self.schedule(conn, name).await? else {
            return Ok(None);
        };
        let job = crate::NewJob {
            job_type: info.job_type.into(),
            payload: info.payload,
            priority: info.priority,
            max_retries: info.max_retries,
            schedule: crate::Schedule::Now,
            id: None,
            retention_ms: None,
            concurrency_key: None,
        };
        let mut ids = self.enqueue(conn, std::slice::from_ref(&job)).await?;
        let id = ids.pop();
        // Its last job now (unless it was removed meanwhile).
        if let Some(id) = &id {
            let mut inv = self.invoke_schedule(&scripts::SCHEDULE_STATE, Some(name));
            inv.arg(name.as_str()).arg("triggered").arg(id);
            let _: i64 = inv.invoke_async(conn).await?;
        }
        Ok(id)
    }

    /// One schedule, if it exists.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn schedule<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        name: &ScheduleName,
    ) -> Result<Option<ScheduleInfo>> {
        let (hash, score): (HashMap<String, String>, Option<String>) = redis::pipe()
            .hgetall(self.keys().schedule(name))
            .zscore(self.keys().schedules(), name.as_str())
            .query_async(conn)
            .await?;
        Ok(info(name.as_str(), hash, score.as_deref()))
    }

    /// Every schedule of the queue, by name.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn schedules<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<Vec<ScheduleInfo>> {
        let members: Vec<(String, String)> = redis::cmd("ZRANGE")
            .arg(self.keys().schedules())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(conn)
            .await?;
        let mut names = Vec::new();
        let mut pipe = redis::pipe();
        for (name, _) in &members {
            if let Ok(n) = ScheduleName::new(name.as_str()) {
                pipe.hgetall(self.keys().schedule(&n));
                names.push(name.as_str());
            }
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(conn).await?;
        let scores: HashMap<&str, &str> = members
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        let mut out: Vec<ScheduleInfo> = names
            .iter()
            .zip(hashes)
            .filter_map(|(name, hash)| info(name, hash, scores.get(name).copied()))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Reads a stored spec back ([`Recurrence::spec`]).
///
/// # Errors
/// [`Error::Protocol`] naming the spec.
pub fn parse_spec(spec: &str) -> Result<Recurrence> {
    let bad = || Error::Protocol(format!("schedule spec {spec:?}"));
    if let Some(ms) = spec.strip_prefix("every ") {
        let ms: u64 = ms.parse().map_err(|_| bad())?;
        return Recurrence::every(Duration::from_millis(ms)).map_err(Error::Config);
    }
    let rest = spec.strip_prefix("cron ").ok_or_else(bad)?;
    let (expression, zone) = rest.rsplit_once(' ').ok_or_else(bad)?;
    Recurrence::cron_in(expression, zone).map_err(Error::Config)
}

/// A schedule's info from its hash and score; `None` for a hash that is
/// gone.
fn info(name: &str, mut h: HashMap<String, String>, score: Option<&str>) -> Option<ScheduleInfo> {
    let spec = h.remove("spec")?;
    let num = |h: &HashMap<String, String>, f: &str| h.get(f).and_then(|v| v.parse::<u64>().ok());
    let paused = h.get("paused").map(String::as_str) == Some("1");
    Some(ScheduleInfo {
        name: name.to_owned(),
        spec,
        missed: h.remove("missed").unwrap_or_else(|| "skip".into()),
        priority: h
            .get("priority")
            .and_then(|p| p.parse().ok())
            .unwrap_or_default(),
        max_retries: h
            .get("max_retries")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        paused,
        next_at: if paused {
            None
        } else {
            score
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| s.is_finite())
                .map(|s| s as u64)
        },
        last_tick: num(&h, "last_tick"),
        last_fired_at: num(&h, "last_fired_at"),
        created_at: num(&h, "created_at"),
        updated_at: num(&h, "updated_at"),
        job_type: h.remove("type").unwrap_or_default(),
        payload: h.remove("payload").unwrap_or_default(),
        last_job: h.remove("last_job"),
    })
}
