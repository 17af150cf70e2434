//! A job's status by id (`status.lua`): where it is, and what is known of it.
//!
//! Queued, running, scheduled and dead jobs are read where they are (the
//! stream entry and the group's pending list, the delayed set, the
//! dead-letter stream); finished jobs from their record in the results
//! hash. Look-up is O(log n) in the queue's depth.

use std::collections::HashMap;

use redis::Value;
use serde::Serialize;

use crate::envelope::{entry_ms, field};
use crate::error::{Error, Result};
use crate::priority::Priority;
use crate::reply;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobState {
    /// Delayed: waiting for its first run-at time.
    Scheduled,
    /// In its priority stream, waiting for a worker (also while the queue is paused).
    Queued,
    /// Not in its stream yet: waiting for a slot of a concurrency limit
    /// (its key's or its type's; [`JobStatus::waiting_for`] says which).
    Waiting,
    /// Claimed by a worker, which holds its lease.
    Running,
    /// Failed, and waiting out its backoff before the next attempt.
    Retrying,
    /// Finished: its handler succeeded.
    Succeeded,
    /// Failed for good: in the dead-letter stream.
    Dead,
    /// Cancelled before it finished.
    Cancelled,
}

impl JobState {
    /// The state's name, as in status output and records.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Queued => "queued",
            JobState::Waiting => "waiting",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            JobState::Scheduled,
            JobState::Queued,
            JobState::Waiting,
            JobState::Running,
            JobState::Retrying,
            JobState::Succeeded,
            JobState::Dead,
            JobState::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// True for the states a job does not leave by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Dead | JobState::Cancelled
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known of one job. Times are ms since the epoch; a field is
/// `None` where the job's state does not have it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobStatus {
    /// The job id.
    pub id: String,
    /// Its state.
    pub state: JobState,
    /// Its priority.
    pub priority: Option<Priority>,
    /// Its type.
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    /// The attempt running, waiting, or last made (from 1).
    pub attempt: Option<u32>,
    /// Retries allowed after the first attempt.
    pub max_retries: Option<u32>,
    /// When it was first enqueued.
    pub enqueued_at: Option<u64>,
    /// When its last attempt started (a finished job).
    pub started_at: Option<u64>,
    /// When it finished (succeeded or dead).
    pub finished_at: Option<u64>,
    /// When a scheduled or retrying job is due (a job parked under a rate
    /// limit: its gate's next slot).
    pub run_at: Option<u64>,
    /// The worker (consumer name) running it, or that finished it.
    pub worker: Option<String>,
    /// How many times the group delivered its entry (running jobs).
    pub deliveries: Option<u32>,
    /// The error of its last failed attempt (why it died, for a dead job).
    pub last_error: Option<String>,
    /// Its handler's output (a succeeded job whose record has one).
    pub result: Option<serde_json::Value>,
    /// Its last reported progress, while it runs: `{"at": ms, "percent":
    /// n, "info": ...}`.
    pub progress: Option<serde_json::Value>,
    /// Its stream or dead-letter entry id, where it has one.
    pub entry_id: Option<String>,
    /// Its concurrency key, when its producer gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// The batch it belongs to, when it was enqueued in one (see
    /// [`batches`](crate::batches)); a finished job's record does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// The root of the flow it belongs to, when it was enqueued in one
    /// (see [`Queue::flow`](crate::Queue::flow)); a finished job's record
    /// does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// What a [`JobState::Waiting`] job waits for, in words: "concurrency
    /// key K at its limit (2 of 2)", "type T at its limit (5 of 5)", or
    /// "rate limited: type T at its rate limit (50/1s; 12 waiting)" (then
    /// `run_at` is the gate's next slot); and why a queued job's queue
    /// starts nothing now: "the queue is paused", "the queue at its
    /// concurrency limit", "rate limited: the queue's rate limit (next
    /// slot in 12 ms)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// Jobs waiting for this one to succeed (a first page of them, at most
    /// 50, sorted; `dependents_count` says how many).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<String>,
    /// How many jobs wait for this one, when any do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependents_count: Option<u64>,
    /// The dependencies a job waiting for them still waits for (at most
    /// 50, sorted; `waiting_for` says how many).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Its payload, where its entry, envelope or dead letter holds it (a
    /// finished job's record does not): the JSON value, or a string where
    /// the payload is not JSON. Job lists leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

impl JobStatus {
    /// A finished job of which only the id and state are known (its record
    /// is not kept).
    pub fn finished(id: &str, state: JobState) -> Self {
        Self::new(id, state)
    }

    pub(crate) fn new(id: &str, state: JobState) -> Self {
        Self {
            id: id.to_owned(),
            state,
            priority: None,
            job_type: None,
            attempt: None,
            max_retries: None,
            enqueued_at: None,
            started_at: None,
            finished_at: None,
            run_at: None,
            worker: None,
            deliveries: None,
            last_error: None,
            result: None,
            progress: None,
            entry_id: None,
            concurrency_key: None,
            batch: None,
            flow: None,
            waiting_for: None,
            depends_on: Vec::new(),
            dependents: Vec::new(),
            dependents_count: None,
            payload: None,
        }
    }

    /// Fills what the entry's (or envelope's) fields say.
    pub(crate) fn with_fields(mut self, f: &HashMap<String, String>) -> Self {
        let num = |name: &str| f.get(name).and_then(|v| v.parse::<u64>().ok());
        self.job_type = f.get(field::TYPE).cloned().or(self.job_type);
        self.attempt = num(field::ATTEMPT)
            .and_then(|n| u32::try_from(n).ok())
            .or(self.attempt);
        self.max_retries = num(field::MAX_RETRIES)
            .and_then(|n| u32::try_from(n).ok())
            .or(self.max_retries);
        self.enqueued_at = num(field::ENQUEUED_AT).or(self.enqueued_at);
        self.last_error = f
            .get(field::ERROR)
            .or_else(|| f.get(field::LAST_ERROR))
            .cloned()
            .or(self.last_error);
        self.concurrency_key = f
            .get(field::CONCURRENCY_KEY)
            .cloned()
            .or(self.concurrency_key);
        self.batch = f.get(field::BATCH).cloned().or(self.batch);
        self.flow = f.get(field::FLOW).cloned().or(self.flow);
        if let Some(p) = f.get(field::PRIORITY).and_then(|p| p.parse().ok()) {
            self.priority = Some(p);
        }
        if let Some(raw) = f.get(field::PAYLOAD) {
            self.payload = Some(
                serde_json::from_str(raw)
                    .unwrap_or_else(|_| serde_json::Value::String(raw.clone())),
            );
        }
        self
    }

    /// A job in its priority stream, `state` [`JobState::Queued`] or
    /// [`JobState::Running`]: entry `entry` of the `priority` stream, with
    /// the entry's fields. A fresh job's entry has no `attempt` (1) nor
    /// `enqueued_at` (its entry id's time).
    pub(crate) fn in_stream(
        id: &str,
        state: JobState,
        priority: Priority,
        entry: String,
        fields: &HashMap<String, String>,
    ) -> Self {
        let mut s = Self::new(id, state).with_fields(fields);
        s.priority = Some(priority);
        s.attempt = s.attempt.or(Some(1));
        s.enqueued_at = s.enqueued_at.or(Some(entry_ms(&entry)));
        s.entry_id = Some(entry);
        s
    }

    /// A running job's claim, as the group's pending list says: the
    /// consumer holding its entry and how many times it was delivered.
    pub(crate) fn with_claim(mut self, consumer: &Value, deliveries: &Value) -> Self {
        self.worker = reply::string(consumer);
        self.deliveries = reply::int(deliveries).and_then(|d| u32::try_from(d).ok());
        self
    }

    /// A running job's last reported progress (its JSON text).
    pub(crate) fn with_progress(mut self, progress: &Value) -> Self {
        self.progress = reply::string(progress).and_then(|p| serde_json::from_str(&p).ok());
        self
    }

    /// A job in the delayed set, due at score `due`: retrying when its
    /// envelope `env` ([`envelope_map`]) is past attempt 1, else scheduled.
    pub(crate) fn delayed(id: &str, due: &Value, env: &HashMap<String, String>) -> Self {
        let retrying = env
            .get(field::ATTEMPT)
            .and_then(|a| a.parse::<u32>().ok())
            .is_some_and(|a| a > 1);
        let state = if retrying {
            JobState::Retrying
        } else {
            JobState::Scheduled
        };
        let mut s = Self::new(id, state).with_fields(env);
        s.run_at = reply::string(due)
            .and_then(|d| d.parse::<f64>().ok())
            .map(|d| d as u64);
        s
    }

    /// A job waiting at concurrency gate `gate` (`key:<K>` or `type:<T>`),
    /// whose limit is `limit` (0: removed since) with `held` slots taken;
    /// `env` its envelope ([`envelope_map`]).
    pub(crate) fn gated(
        id: &str,
        gate: &str,
        limit: i64,
        held: i64,
        env: &HashMap<String, String>,
    ) -> Self {
        let mut s = Self::new(id, JobState::Waiting).with_fields(env);
        let what = gate_words(gate);
        s.waiting_for = Some(format!("{what} at its limit ({held} of {limit} running)"));
        s
    }

    /// A job parked at rate gate `gate` (`key:<K>` or `type:<T>`), whose
    /// limit is `limit` (the rates-hash text; empty for none: a hold), and
    /// whose next slot is at `next_at` (server ms), with `waiting` jobs
    /// parked there; `env` its envelope ([`envelope_map`]).
    pub(crate) fn rate_limited(
        id: &str,
        gate: &str,
        limit: &str,
        next_at: Option<u64>,
        waiting: i64,
        env: &HashMap<String, String>,
    ) -> Self {
        let mut s = Self::new(id, JobState::Waiting).with_fields(env);
        let what = gate_words(gate);
        s.run_at = next_at;
        s.waiting_for = Some(match crate::rate_limit::RateLimit::from_setting(limit) {
            Some(l) => format!("rate limited: {what} at its rate limit ({l}; {waiting} waiting)"),
            None => format!("rate limited: {what} held by a handler ({waiting} waiting)"),
        });
        s
    }

    /// A job waiting for `left` dependencies, the first of them `deps`.
    pub(crate) fn waiting_deps(
        id: &str,
        deps: Vec<String>,
        left: i64,
        env: &HashMap<String, String>,
    ) -> Self {
        let mut s = Self::new(id, JobState::Waiting).with_fields(env);
        let shown = deps.join(", ");
        let more = usize::try_from(left)
            .unwrap_or(0)
            .saturating_sub(deps.len());
        s.waiting_for = Some(if more > 0 {
            format!("dependencies: {shown} and {more} more ({left} left)")
        } else {
            format!("dependencies: {shown} ({left} left)")
        });
        s.depends_on = deps;
        s
    }

    /// A dead job: entry `entry` of the dead-letter stream, with its fields.
    pub(crate) fn dead(id: &str, entry: String, fields: &HashMap<String, String>) -> Self {
        let mut s = Self::new(id, JobState::Dead).with_fields(fields);
        s.finished_at = fields.get(field::FAILED_AT).and_then(|v| v.parse().ok());
        s.entry_id = Some(entry);
        s
    }
}

mod read;

/// Most dependents a status names.
const MAX_DEPENDENTS_SHOWN: usize = 50;

/// A gate (`key:<K>`, `type:<T>`) in words: "concurrency key K", "type T".
fn gate_words(gate: &str) -> String {
    match gate.split_once(':') {
        Some(("key", k)) => format!("concurrency key {k}"),
        Some(("type", t)) => format!("type {t}"),
        _ => gate.to_owned(),
    }
}

/// Why a queued job's queue starts nothing now, in words, from
/// `status.lua`'s `reason` and `ms` (`None`: it does start jobs).
fn held_back(reason: &str, ms: i64) -> Option<String> {
    Some(match reason {
        "paused" => "the queue is paused".to_owned(),
        "concurrency" => "the queue at its concurrency limit".to_owned(),
        "held" => format!("rate limited: the queue held by a handler (next slot in {ms} ms)"),
        "rate" => format!("rate limited: the queue's rate limit (next slot in {ms} ms)"),
        _ => return None,
    })
}

/// The priority a script names by its stream's place in `KEYS` (1 to 4,
/// highest first); `None` for anything else.
pub(crate) fn priority_at(index: &Value) -> Option<Priority> {
    reply::int(index)
        .and_then(|i| usize::try_from(i).ok()?.checked_sub(1))
        .and_then(Priority::from_index)
}

/// A delayed-set envelope (a JSON object of strings) as a map; empty when
/// it is not one.
pub(crate) fn envelope_map(v: &Value) -> HashMap<String, String> {
    reply::string(v)
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

/// A flat field/value reply as a map (lossy UTF-8).
pub(crate) fn field_map(v: &Value) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(flat) = reply::array(v) {
        for pair in flat.chunks(2) {
            if let [k, v] = pair {
                if let (Some(k), Some(v)) = (reply::bytes(k), reply::bytes(v)) {
                    out.insert(
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    );
                }
            }
        }
    }
    out
}

/// A finished job's record (JSON, see `ack.lua`) as a status.
pub(crate) fn from_record(id: &str, json: &str) -> Result<JobStatus> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Error::Protocol(format!("the record of job {id} is not JSON: {e}")))?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    let state = text("state")
        .as_deref()
        .and_then(JobState::parse)
        .ok_or_else(|| Error::Protocol(format!("the record of job {id} has no known state")))?;
    let mut s = JobStatus::new(id, state);
    s.priority = text("priority").and_then(|p| p.parse().ok());
    s.job_type = text("type");
    s.attempt = num("attempt").and_then(|n| u32::try_from(n).ok());
    s.max_retries = num("max_retries").and_then(|n| u32::try_from(n).ok());
    s.enqueued_at = num("enqueued_at");
    s.started_at = num("started_at");
    s.finished_at = num("finished_at");
    s.worker = text("worker");
    s.last_error = text("error");
    s.result = v.get("result").cloned();
    Ok(s)
}
