//! Rate limits of a job type or a concurrency key, and holds on them:
//! at most `n` starts per period of the jobs of one type (or one key, or
//! each key), fleet-wide, on the server's clock.
//!
//! They are checked as each job starts, inside the claim script
//! (`lua/shared/rates.lua`): a job whose type or key has no slot now is
//! not handed out but parked, in the same script, in that gate's wait
//! list (`P:{Q}:rate_wait:<gate>`, its envelope in `P:{Q}:scheduled`),
//! and the claim reads on for other jobs, so a limited type never holds
//! back the rest of its queue. A worker's promoter lets the parked jobs
//! back, oldest first, as the gate's slots come (`P:{Q}:rate_wakes`);
//! they go before any newcomer. The slot is taken when the job starts,
//! so no period starts more than the limit and its burst however long a
//! job sat in its stream, and a job is parked at most once per slot it
//! waits for. A recovered job (its worker died) starts again without
//! taking a slot: it took one when it first started.
//!
//! While no type or key of a queue has a rate limit or a hold, this costs
//! a claim one EXISTS.

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::concurrency::Scope;
use crate::error::{ConfigError, Result};
use crate::queue::Queue;
use crate::rate_limit::{RateLimit, RateState};
use crate::scripts;

/// One rate gate's state: a type's or a key's limit or hold, and the jobs
/// parked there.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateGate {
    /// `key:<K>` or `type:<T>`.
    pub gate: String,
    /// Its limit and hold as they stand (`None`: neither is in force).
    pub state: Option<RateState>,
    /// Jobs parked there, waiting for a slot.
    pub waiting: u64,
}

/// A queue's rate limits: its own, and those of its types and keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateLimits {
    /// The queue-wide limit and hold.
    pub queue: Option<RateState>,
    /// Every key's limit, where a key has none of its own.
    pub each_key: Option<RateLimit>,
    /// The gates with a limit, a hold or parked jobs (at most 1,000).
    pub gates: Vec<RateGate>,
}

/// The rates hash, the wakes' gates and the server's TIME, as read.
type Read = (Vec<(String, String)>, Vec<String>, (u64, u64));

/// Most gates [`Queue::rate_limits`] reports.
const MAX_GATES_REPORTED: usize = 1000;

impl Queue {
    /// Sets (or with `None` removes) the rate limit of `scope`
    /// ([`Scope::Queue`] is [`Queue::set_rate_limit`]). The jobs parked
    /// under the gates it governs are looked at again at once, under the
    /// new limit.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `rate_limit` for a bad type
    /// or key; [`Error::Redis`](crate::Error::Redis).
    pub async fn set_rate_limit_of<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        scope: &Scope,
        limit: Option<RateLimit>,
    ) -> Result<()> {
        scope.check("rate_limit")?;
        let Some(field) = scope.field() else {
            return self.set_rate_limit(conn, limit).await;
        };
        let mut inv = self.invoke(&scripts::SET_RATE_LIMIT);
        inv.arg(field)
            .arg(limit.map(RateLimit::as_setting).unwrap_or_default());
        let _: i64 = inv.invoke_async(conn).await?;
        Ok(())
    }

    /// Holds `scope` for `d` (by the server's clock), fleet-wide: no job of
    /// the queue ([`Scope::Queue`], as [`Queue::hold`]), of a type, or of
    /// a concurrency key starts before then, unless a longer hold is on.
    /// A handler's `JobError::rate_limited` calls this.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `hold` for a bad type or key,
    /// or for [`Scope::EachKey`] (hold one key); [`Error::Redis`](crate::Error::Redis).
    pub async fn hold_scope<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        scope: &Scope,
        d: Duration,
    ) -> Result<()> {
        scope.check("hold")?;
        let gate = match scope {
            Scope::Queue => return self.hold(conn, d).await,
            Scope::EachKey => {
                return Err(ConfigError::InvalidSetting {
                    name: "hold",
                    reason: "hold one key (or a type, or the queue), not every key".into(),
                }
                .into())
            }
            Scope::Type(_) | Scope::Key(_) => scope.field().unwrap_or_default(),
        };
        let mut inv = self.invoke(&scripts::HOLD_QUEUE);
        inv.arg(u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg(gate);
        let _: i64 = inv.invoke_async(conn).await?;
        Ok(())
    }

    /// The queue's rate limits and holds, its own and its types' and
    /// keys', each with its state now and its parked jobs: the rates hash,
    /// the wakes and the server's TIME in one MULTI, then each gate's
    /// state and wait in a second.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn rate_limits<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<RateLimits> {
        let keys = self.keys();
        let queue = self.rate_state(conn).await?;
        let (rates, wakes, (secs, micros)): Read = redis::pipe()
            .atomic()
            .cmd("HGETALL")
            .arg(keys.rates())
            .cmd("ZRANGE")
            .arg(keys.rate_wakes())
            .arg(0)
            .arg(-1)
            .cmd("TIME")
            .query_async(conn)
            .await?;
        let now = secs * 1000 + micros / 1000;
        let each_key = rates
            .iter()
            .find(|(f, _)| f == "key")
            .and_then(|(_, v)| RateLimit::from_setting(v));
        let mut names: Vec<String> = Vec::new();
        for f in rates
            .iter()
            .map(|(f, _)| f.as_str())
            .chain(wakes.iter().map(String::as_str))
        {
            let gate = f.strip_prefix("hold:").unwrap_or(f);
            if gate != "key" && !names.iter().any(|n| n == gate) {
                names.push(gate.to_owned());
            }
        }
        names.truncate(MAX_GATES_REPORTED);
        if names.is_empty() {
            return Ok(RateLimits {
                queue,
                each_key,
                gates: Vec::new(),
            });
        }
        let mut pipe = redis::pipe();
        for g in &names {
            pipe.cmd("GET")
                .arg(keys.rate_state(g))
                .cmd("LLEN")
                .arg(keys.rate_wait(g));
        }
        let read: Vec<(Option<String>, u64)> = pipe.query_async(conn).await?;
        let field = |name: &str| {
            rates
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.as_str())
        };
        let gates = names
            .into_iter()
            .zip(read)
            .map(|(gate, (tat, waiting))| {
                let own = field(&gate).and_then(RateLimit::from_setting);
                let limit = own.or(if gate.starts_with("key:") {
                    each_key
                } else {
                    None
                });
                let hold = field(&format!("hold:{gate}")).and_then(|h| h.parse::<u64>().ok());
                let tat = tat.and_then(|t| t.parse::<f64>().ok());
                RateGate {
                    state: RateState::at(now, limit, tat, hold),
                    gate,
                    waiting,
                }
            })
            .collect();
        Ok(RateLimits {
            queue,
            each_key,
            gates,
        })
    }
}
