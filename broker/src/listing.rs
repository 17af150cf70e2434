//! A queue's jobs by state, a page at a time (`list_jobs.lua`): what a
//! dashboard's "queued", "running", "scheduled", "finished" and "dead" tabs
//! show.
//!
//! Each page is one round trip and costs O(page + log n) in Redis, however
//! deep the queue: the cursor is a position (an entry id, or a rank in a
//! sorted set), never a scan from the start.

use redis::aio::ConnectionLike;
use redis::Value;
use serde::{Deserialize, Serialize};

use crate::envelope::{derived_id, field};
use crate::error::{ConfigError, Error, Result};
use crate::queue::Queue;
use crate::reply;
use crate::scripts;
use crate::status::{envelope_map, field_map, from_record, priority_at, JobState, JobStatus};

/// The most jobs one page may hold.
pub const MAX_PAGE: usize = 1_000;

/// Which jobs a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ListState {
    /// Waiting in their streams for a worker, in the order workers claim
    /// them (priority, then age).
    Queued,
    /// Claimed by a worker, by priority and entry id.
    Running,
    /// In the delayed set: scheduled for later, or waiting out a retry's
    /// backoff; soonest first.
    Scheduled,
    /// Waiting at a concurrency gate for a slot, or parked at a rate gate
    /// for its next slot: by gate, oldest first within each.
    Waiting,
    /// Finished (succeeded or cancelled) with a record kept; the records
    /// expiring last first (the newest, under one retention).
    Finished,
    /// Dead letters, newest first.
    Dead,
}

impl ListState {
    /// The name, as in the API and the script.
    pub fn as_str(self) -> &'static str {
        match self {
            ListState::Queued => "queued",
            ListState::Running => "running",
            ListState::Scheduled => "scheduled",
            ListState::Waiting => "waiting",
            ListState::Finished => "finished",
            ListState::Dead => "dead",
        }
    }

    /// Whether `cursor` is one this state's pages return: entry ids that
    /// Redis takes as exclusive bounds (each part a u64; not the last id
    /// after which nothing can come, nor `0-0` before which nothing can),
    /// offsets that fit Lua's numbers exactly.
    fn cursor_ok(self, cursor: &str) -> bool {
        if cursor.len() > 64 {
            return false;
        }
        let entry_id = |s: &str| {
            s.split_once('-').and_then(|(ms, seq)| {
                // Canonical numbers only: Redis and the scripts compare ids
                // as written, without leading zeros.
                let digits = |p: &str| {
                    !p.is_empty()
                        && p.bytes().all(|b| b.is_ascii_digit())
                        && (p == "0" || !p.starts_with('0'))
                };
                if !(digits(ms) && digits(seq)) {
                    return None;
                }
                Some((ms.parse::<u64>().ok()?, seq.parse::<u64>().ok()?))
            })
        };
        match self {
            ListState::Queued | ListState::Running => {
                cursor.split_once(':').is_some_and(|(i, id)| {
                    matches!(i, "1" | "2" | "3" | "4")
                        && entry_id(id).is_some_and(|e| e != (u64::MAX, u64::MAX))
                })
            }
            ListState::Scheduled | ListState::Finished => {
                cursor.len() <= 15
                    && !cursor.is_empty()
                    && cursor.bytes().all(|b| b.is_ascii_digit())
            }
            ListState::Dead => entry_id(cursor).is_some_and(|e| e != (0, 0)),
            ListState::Waiting => {
                let mut parts = cursor.splitn(3, ':');
                matches!(
                    (parts.next(), parts.next(), parts.next()),
                    (Some("c" | "r"), Some(o), Some(g))
                        if !o.is_empty() && o.len() <= 15
                            && o.bytes().all(|b| b.is_ascii_digit())
                            && !g.is_empty()
                )
            }
        }
    }
}

impl std::fmt::Display for ListState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ListState {
    type Err = ConfigError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        [
            ListState::Queued,
            ListState::Running,
            ListState::Scheduled,
            ListState::Waiting,
            ListState::Finished,
            ListState::Dead,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
        .ok_or_else(|| ConfigError::InvalidSetting {
            name: "state",
            reason: format!("{s:?}: use queued, running, scheduled, waiting, finished or dead"),
        })
    }
}

/// One page of jobs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobPage {
    /// The state listed.
    pub state: ListState,
    /// The jobs (each with its own state: a scheduled list holds scheduled
    /// and retrying jobs, a finished list succeeded and cancelled ones),
    /// without their payloads.
    pub jobs: Vec<JobStatus>,
    /// The cursor of the next page, or `None` on the last one.
    pub next: Option<String>,
}

impl Queue {
    /// One page of this queue's jobs in `state`: up to `limit` (1 to
    /// [`MAX_PAGE`]) from `cursor` (`None` for the first page, else the
    /// `next` of the page before). Jobs move while one pages: a job may
    /// show on two pages, or on none, as it changes state.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] for a limit out of range or a cursor
    /// that is not one of this state's; [`Error::Redis`]; [`Error::Protocol`]
    /// for a reply that is not what the script returns.
    pub async fn jobs<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        state: ListState,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<JobPage> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(ConfigError::InvalidSetting {
                name: "limit",
                reason: format!("{limit}: use 1 to {MAX_PAGE}"),
            }
            .into());
        }
        let cursor = cursor.unwrap_or_default();
        if !cursor.is_empty() && !state.cursor_ok(cursor) {
            return Err(ConfigError::InvalidSetting {
                name: "cursor",
                reason: format!("{cursor:?} is not a cursor of a {state} list: pass the `next` of the page before"),
            }
            .into());
        }
        let mut inv = self.invoke(&scripts::LIST_JOBS);
        inv.arg(state.as_str()).arg(cursor).arg(limit);
        let v: Value = inv.invoke_async(conn).await?;
        let bad = || Error::Protocol(format!("list_jobs: {v:?}"));
        let items = reply::array(&v).ok_or_else(bad)?;
        let (next, items) = items.split_first().ok_or_else(bad)?;
        let next = reply::string(next).filter(|n| !n.is_empty());
        let mut jobs = Vec::with_capacity(items.len());
        for item in items {
            let parts = reply::array(item).ok_or_else(bad)?;
            if let Some(mut job) = listed(state, parts) {
                job.payload = None;
                jobs.push(job);
            }
        }
        Ok(JobPage { state, jobs, next })
    }
}

/// A listed item as a status; `None` for one that is not what the script
/// returns (skipped, like a foreign writer's entry, rather than failing
/// the whole page).
fn listed(state: ListState, parts: &[Value]) -> Option<JobStatus> {
    match (state, parts) {
        (ListState::Queued, [index, entry, fields, ..])
        | (ListState::Running, [index, entry, fields, ..]) => {
            let priority = priority_at(index)?;
            let entry = reply::string(entry)?;
            let f = field_map(fields);
            let id = f
                .get(field::ID)
                .cloned()
                .unwrap_or_else(|| derived_id(priority, &entry));
            let job_state = if state == ListState::Running {
                JobState::Running
            } else {
                JobState::Queued
            };
            let mut s = JobStatus::in_stream(&id, job_state, priority, entry, &f);
            if let [_, _, _, consumer, deliveries, _, progress] = parts {
                s = s.with_claim(consumer, deliveries).with_progress(progress);
            }
            Some(s)
        }
        (ListState::Scheduled, [member, due, envelope]) => {
            let member = reply::string(member)?;
            let env = envelope_map(envelope);
            // A member from before 0.6 is the envelope itself (the script
            // returns it as the envelope): its id is the envelope's.
            let id = if member.starts_with('{') {
                env.get(field::ID).cloned().unwrap_or_default()
            } else {
                member
            };
            Some(JobStatus::delayed(&id, due, &env))
        }
        (ListState::Waiting, [id, kind, gate, envelope, a, b, c]) => {
            let id = reply::string(id)?;
            let gate = reply::string(gate)?;
            let env = envelope_map(envelope);
            Some(if reply::string(kind)? == "c" {
                JobStatus::gated(&id, &gate, reply::int(a)?, reply::int(b)?, &env)
            } else {
                JobStatus::rate_limited(
                    &id,
                    &gate,
                    &reply::string(a).unwrap_or_default(),
                    reply::int(b).and_then(|n| u64::try_from(n).ok()),
                    reply::int(c).unwrap_or(0),
                    &env,
                )
            })
        }
        (ListState::Finished, [id, record]) => {
            let id = reply::string(id)?;
            from_record(&id, &reply::string(record)?).ok()
        }
        (ListState::Dead, [entry, fields]) => {
            let entry = reply::string(entry)?;
            let f = field_map(fields);
            let id = f.get(field::ID).cloned().unwrap_or_else(|| {
                let priority = f
                    .get(field::PRIORITY)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_default();
                derived_id(priority, &entry)
            });
            Some(JobStatus::dead(&id, entry, &f))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_checked_per_state() {
        assert!(ListState::Queued.cursor_ok("1:1700000000000-0"));
        assert!(ListState::Running.cursor_ok("4:1-2"));
        assert!(!ListState::Queued.cursor_ok("5:1-2"));
        assert!(!ListState::Queued.cursor_ok("1:1-"));
        assert!(!ListState::Queued.cursor_ok("10"));
        assert!(ListState::Scheduled.cursor_ok("100"));
        assert!(!ListState::Finished.cursor_ok("-1"));
        assert!(!ListState::Finished.cursor_ok("1:1-1"));
        assert!(ListState::Dead.cursor_ok("1-1"));
        assert!(!ListState::Dead.cursor_ok("x-1"));
        assert!(ListState::Waiting.cursor_ok("c:0:key:tenant-42"));
        assert!(ListState::Waiting.cursor_ok("r:12:type:send"));
        assert!(!ListState::Waiting.cursor_ok("x:1:type:send"));
        assert!(!ListState::Waiting.cursor_ok("c::type:send"));
        assert!(!ListState::Waiting.cursor_ok("c:1:"));
        // Bounds Redis refuses as exclusive ones, and parts past a u64.
        assert!(!ListState::Dead.cursor_ok("0-0"));
        assert!(!ListState::Queued.cursor_ok("1:18446744073709551615-18446744073709551615"));
        assert!(ListState::Queued.cursor_ok("1:18446744073709551615-0"));
        assert!(!ListState::Running.cursor_ok("2:18446744073709551616-0"));
        assert!(!ListState::Dead.cursor_ok("99999999999999999999-1"));
        assert!(!ListState::Queued.cursor_ok("1:000001-0"));
        assert!(!ListState::Dead.cursor_ok(&format!("{}1-0", "0".repeat(130))));
        assert!(ListState::Dead.cursor_ok("0-1"));
        assert_eq!("dead".parse::<ListState>(), Ok(ListState::Dead));
        assert!("succeeded".parse::<ListState>().is_err());
    }
}
