//! The firing pass every worker runs ([`Queue::fire_due`]): what is due
//! by the server's clock, the ticks to fire, and the compare-and-set that
//! lets one caller per tick enqueue its job.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::Value;

use super::{parse_spec, recurrence, Missed, ScheduleName};
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::reply;
use crate::scripts;

/// Most due schedules one firing pass handles (the rest are due at once
/// again).
const DUE_BATCH: usize = 64;

/// What one firing pass did ([`Queue::fire_due`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FireRound {
    /// The ids of the jobs this pass enqueued.
    pub fired: Vec<String>,
    /// How long until the earliest tick not yet due, by the server's clock;
    /// `None` when no schedule waits.
    pub next_in: Option<Duration>,
}
impl Queue {
    /// One firing pass: enqueues the jobs of every schedule due by the
    /// server's clock (at most one per tick fleet-wide, whoever else runs
    /// this at the same time), and says how long until the next tick.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`]. A schedule whose stored
    /// spec this version cannot read is skipped with a warning, not an
    /// error (another version of Ferry may have written it).
    pub async fn fire_due<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<FireRound> {
        let mut inv = self.invoke_schedule(&scripts::DUE_SCHEDULES, None);
        inv.arg(DUE_BATCH);
        let v: Value = inv.invoke_async(conn).await?;
        let bad = || Error::Protocol(format!("due_schedules: {v:?}"));
        let items = reply::array(&v).ok_or_else(bad)?;
        let [now, earliest, due @ ..] = items else {
            return Err(bad());
        };
        let now = reply::count(now)?;
        let mut round = FireRound {
            fired: Vec::new(),
            next_in: reply::string(earliest)
                .and_then(|s| s.parse::<f64>().ok())
                .map(|at| Duration::from_millis((at as u64).saturating_sub(now))),
        };
        for pair in due.chunks(2) {
            let [name, tick] = pair else { break };
            let (Some(name), Some(tick)) = (reply::string(name), reply::string(tick)) else {
                return Err(bad());
            };
            let Ok(name) = ScheduleName::new(name) else {
                continue;
            };
            let Some(tick) = tick.parse::<f64>().ok().map(|t| t as u64) else {
                continue;
            };
            let ids = self.fire_one(conn, &name, tick, now).await?;
            round.fired.extend(ids);
        }
        if due.len() >= DUE_BATCH * 2 {
            round.next_in = Some(Duration::ZERO);
        }
        Ok(round)
    }

    /// Fires schedule `name`, read as due at `tick` when the server's time
    /// was `now`.
    async fn fire_one<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        name: &ScheduleName,
        tick: u64,
        now: u64,
    ) -> Result<Vec<String>> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys().schedule(name))
            .arg("spec")
            .arg("missed")
            .query_async(conn)
            .await?;
        let missed = fields.get(1).cloned().flatten();
        let Some(spec) = fields.first().cloned().flatten() else {
            return Ok(Vec::new()); // removed since it was listed
        };
        let (recurrence, missed) = match (
            parse_spec(&spec),
            Missed::parse(missed.as_deref().unwrap_or("skip")),
        ) {
            (Ok(r), Ok(m)) => (r, m),
            (Err(e), _) => {
                tracing::warn!(queue = %self.name(), schedule = %name, error = %e, "schedule not fired: its spec is not one this version reads");
                return Ok(Vec::new());
            }
            (_, Err(e)) => {
                tracing::warn!(queue = %self.name(), schedule = %name, error = %e, "schedule not fired");
                return Ok(Vec::new());
            }
        };
        let Some(firing) = recurrence::firing(&recurrence, missed, tick, now.max(tick)) else {
            tracing::warn!(queue = %self.name(), schedule = %name, "schedule has no tick left; pausing it");
            self.pause_schedule(conn, name).await?;
            return Ok(Vec::new());
        };
        let mut inv = self.invoke_schedule(&scripts::FIRE_SCHEDULE, Some(name));
        inv.arg(name.as_str()).arg(tick).arg(&spec).arg(firing.next);
        for t in &firing.ticks {
            inv.arg(*t);
        }
        let v: Value = inv.invoke_async(conn).await?;
        match reply::array(&v) {
            Some([state, ids]) if reply::string(state).as_deref() == Some("fired") => {
                let ids: Vec<String> = reply::array(ids)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(reply::string)
                    .collect();
                if firing.ticks.len() > ids.len() || firing.ticks.is_empty() {
                    tracing::debug!(queue = %self.name(), schedule = %name, tick, "missed ticks skipped");
                }
                Ok(ids)
            }
            Some(_) => Ok(Vec::new()), // another worker fired it, or it changed
            None => Err(Error::Protocol(format!("fire_schedule: {v:?}"))),
        }
    }
}
