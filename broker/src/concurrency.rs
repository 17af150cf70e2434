//! Concurrency limits: how many of a queue's jobs run at once, fleet-wide.
//!
//! - **The whole queue** (the settings field `concurrency`): the claim
//!   scripts count the consumer group's pending entries (the jobs running,
//!   or held by a crashed worker until recovery hands them on) and claim no
//!   more than the limit leaves; a claim at the limit takes nothing
//!   ([`Error::AtConcurrencyLimit`](crate::Error::AtConcurrencyLimit)).
//! - **A job type** or **a concurrency key** (a tenant, a customer, a
//!   repository: [`NewJob::concurrency_key`](crate::NewJob::concurrency_key)),
//!   each with its own limit, or one limit for every key: kept as admission
//!   to the priority streams (`lua/shared/gates.lua`). A job enters its
//!   stream only with a slot of each of its gates; the others wait in the
//!   gate's list, oldest first, and each slot freed lets the next one go
//!   on. The streams never hold more of a key's jobs than its limit, so a
//!   key at its limit never holds back another key's jobs, no job is
//!   claimed only to be put back, and keys share the workers fairly.
//!
//! A slot frees when its job ends in any way (succeeded, dead, cancelled),
//! or goes back to the delayed set for a retry; a crashed worker's job
//! keeps its slot and runs again on the worker recovery hands it to, so it
//! counts once. A new limit applies to the jobs that enter a stream from
//! then on (a job already in its stream is not taken out).

use redis::aio::ConnectionLike;

use crate::envelope::{check_concurrency_key, check_job_type};
use crate::error::{ConfigError, Result};
use crate::queue::Queue;
use crate::scripts;

/// The settings field of the queue-wide limit.
pub const QUEUE_FIELD: &str = "concurrency";

/// What a concurrency limit counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every job of the queue.
    Queue,
    /// The jobs of one type.
    Type(String),
    /// The jobs of one concurrency key.
    Key(String),
    /// The jobs of each concurrency key, every key on its own (a key's own
    /// limit, [`Scope::Key`], comes first).
    EachKey,
}

impl Scope {
    /// The field of the limits hash (`type:<T>`, `key:<K>`, `key`), or
    /// `None` for the queue-wide limit (a settings field).
    pub fn field(&self) -> Option<String> {
        match self {
            Scope::Queue => None,
            Scope::Type(t) => Some(format!("type:{t}")),
            Scope::Key(k) => Some(format!("key:{k}")),
            Scope::EachKey => Some("key".to_owned()),
        }
    }

    /// The scope a limits-hash field names, or `None`.
    pub fn from_field(field: &str) -> Option<Self> {
        match field.split_once(':') {
            Some(("type", t)) => Some(Scope::Type(t.to_owned())),
            Some(("key", k)) => Some(Scope::Key(k.to_owned())),
            None if field == "key" => Some(Scope::EachKey),
            _ => None,
        }
    }

    /// Checks the scope's type or key, naming setting `name` in the error.
    pub(crate) fn check(&self, name: &'static str) -> Result<(), ConfigError> {
        let bad = |reason: String| ConfigError::InvalidSetting { name, reason };
        match self {
            Scope::Type(t) => check_job_type(t).map_err(bad),
            Scope::Key(k) => check_concurrency_key(k).map_err(bad),
            Scope::Queue | Scope::EachKey => Ok(()),
        }
    }
}

/// One gate's state: a type's or a key's limit, the jobs holding its slots
/// and those waiting for one.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateState {
    /// `key:<K>` or `type:<T>`.
    pub gate: String,
    /// Its limit (a key's own, else every key's); `None` once removed.
    pub limit: Option<u32>,
    /// Jobs holding a slot (in their stream: waiting to be claimed, or running).
    pub running: u64,
    /// Jobs waiting for a slot.
    pub waiting: u64,
}

/// A queue's concurrency limits and their state.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Concurrency {
    /// The queue-wide limit.
    pub queue: Option<u32>,
    /// Every key's limit, where a key has none of its own.
    pub each_key: Option<u32>,
    /// The limits of types and keys set, as `(scope field, limit)`.
    pub limits: Vec<(String, u32)>,
    /// The gates that hold or have waiting jobs, busiest first.
    pub gates: Vec<GateState>,
}

/// The queue-wide limit, the limits hash and the gates hash, as read.
type Read = (Option<u32>, Vec<(String, u32)>, Vec<(String, i64)>);

/// Most jobs one `drain_gates.lua` call lets go per gate.
const DRAIN_BATCH: usize = 500;

/// Most gates [`Queue::concurrency`] reports.
const MAX_GATES_REPORTED: usize = 1000;

impl Queue {
    /// Sets (or with `None` removes) the concurrency limit of `scope`.
    /// Jobs waiting at a gate whose limit was raised or removed go on at
    /// once, in batches.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `concurrency` for a limit of
    /// 0 or a bad type or key; [`Error::Redis`](crate::Error::Redis).
    pub async fn set_concurrency<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        scope: &Scope,
        limit: Option<u32>,
    ) -> Result<()> {
        scope.check("concurrency")?;
        if limit == Some(0) {
            return Err(ConfigError::InvalidSetting {
                name: "concurrency",
                reason: "a limit of 0 would run nothing; pause the queue, or remove the limit"
                    .into(),
            }
            .into());
        }
        let keys = self.keys();
        let (key, field) = match scope.field() {
            Some(f) => (keys.limits(), f),
            None => (keys.settings().to_owned(), QUEUE_FIELD.to_owned()),
        };
        let cmd = match limit {
            Some(n) => {
                let mut c = redis::cmd("HSET");
                c.arg(&key).arg(&field).arg(n);
                c
            }
            None => {
                let mut c = redis::cmd("HDEL");
                c.arg(&key).arg(&field);
                c
            }
        };
        let _: () = cmd.query_async(conn).await?;
        let gates: Vec<String> = match scope {
            Scope::Queue => return Ok(()),
            Scope::Type(_) | Scope::Key(_) => vec![field],
            Scope::EachKey => {
                let held: Vec<String> = redis::cmd("HKEYS")
                    .arg(keys.gates())
                    .query_async(conn)
                    .await?;
                held.into_iter().filter(|g| g.starts_with("key:")).collect()
            }
        };
        self.drain_gates(conn, &gates).await
    }

    /// Lets the jobs waiting at `gates` go on while they have free slots,
    /// a batch per call, until none moves.
    async fn drain_gates<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        gates: &[String],
    ) -> Result<()> {
        for part in gates.chunks(100) {
            loop {
                let mut inv = self.invoke(&scripts::DRAIN_GATES);
                inv.arg(DRAIN_BATCH);
                for g in part {
                    inv.arg(g);
                }
                let moved: u64 = inv.invoke_async(conn).await?;
                if moved == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Frees the slots of jobs under a limit that are gone without ending
    /// through Ferry (an entry deleted by hand, a stream key removed), and
    /// lets the next jobs in: a full scan of `P:{Q}:gated`, 100 at a time.
    /// Workers run it once a minute. Returns the slots' jobs freed.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn repair_gates<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<u64> {
        let mut cursor = "0".to_owned();
        let mut freed = 0;
        loop {
            let mut inv = self.invoke(&scripts::REPAIR_GATES);
            inv.arg(&cursor).arg(100);
            let (next, n): (String, u64) = inv.invoke_async(conn).await?;
            freed += n;
            if next == "0" {
                return Ok(freed);
            }
            cursor = next;
        }
    }

    /// The queue's concurrency limits, and each gate's jobs running and
    /// waiting (at most 1,000 gates, busiest first).
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn concurrency<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<Concurrency> {
        let keys = self.keys();
        let (queue, limits, held): Read = redis::pipe()
            .cmd("HGET")
            .arg(keys.settings())
            .arg(QUEUE_FIELD)
            .cmd("HGETALL")
            .arg(keys.limits())
            .cmd("HGETALL")
            .arg(keys.gates())
            .query_async(conn)
            .await?;
        let each_key = limits.iter().find(|(f, _)| f == "key").map(|(_, n)| *n);
        let mut names: Vec<String> = limits
            .iter()
            .filter(|(f, _)| f != "key")
            .map(|(f, _)| f.clone())
            .collect();
        for (g, _) in &held {
            if !names.contains(g) {
                names.push(g.clone());
            }
        }
        names.truncate(MAX_GATES_REPORTED);
        let mut pipe = redis::pipe();
        for g in &names {
            pipe.cmd("LLEN").arg(keys.gate(g));
        }
        let waiting: Vec<u64> = if names.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(conn).await?
        };
        let mut gates: Vec<GateState> = names
            .into_iter()
            .zip(waiting)
            .map(|(gate, waiting)| {
                let own = limits.iter().find(|(f, _)| *f == gate).map(|(_, n)| *n);
                let limit = own.or(if gate.starts_with("key:") {
                    each_key
                } else {
                    None
                });
                let running = held
                    .iter()
                    .find(|(g, _)| *g == gate)
                    .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
                GateState {
                    gate,
                    limit,
                    running,
                    waiting,
                }
            })
            .collect();
        gates.sort_by_key(|g| std::cmp::Reverse(g.running + g.waiting));
        Ok(Concurrency {
            queue: queue.filter(|n| *n > 0),
            each_key,
            limits: limits.into_iter().filter(|(f, _)| f != "key").collect(),
            gates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn scopes_name_their_fields_and_back() {
        for s in [
            Scope::Type("render".into()),
            Scope::Key("tenant:42".into()),
            Scope::EachKey,
        ] {
            let f = s.field().unwrap();
            assert_eq!(Scope::from_field(&f), Some(s));
        }
        assert_eq!(Scope::Queue.field(), None);
        assert_eq!(Scope::from_field("other"), None);
    }
}
