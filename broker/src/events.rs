//! A queue's lifecycle events: a capped stream (`P:{Q}:events`), written
//! by the scripts that move jobs (and by workers, for `started`) while the
//! queue's `events` setting is on. Read them with `XREAD` in redis-cli, or
//! [`Queue::read_events`].

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use redis::Value;
use serde::Serialize;

use crate::error::{ConfigError, Result};
use crate::queue::Queue;
use crate::reply;
use crate::settings::name;

/// One lifecycle event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Its entry id in the events stream (read on from here).
    pub entry_id: String,
    /// enqueued, started, progress, retrying, succeeded, dead, cancelled
    /// or recovered.
    pub event: String,
    /// The job id.
    pub job_id: String,
    /// What else the event carries: `worker`, `attempt`, `error`,
    /// `progress` (JSON text), `run_at`.
    pub fields: BTreeMap<String, String>,
}

impl Queue {
    /// Turns the queue's events on, capped at about `cap` entries (`Some`),
    /// or off (`None`; the stream stays until it is deleted). Every worker
    /// and producer sees the setting at its next write.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis); a config error for `Some(0)`.
    pub async fn set_events<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        cap: Option<u64>,
    ) -> Result<()> {
        let cmd = match cap {
            Some(0) => {
                return Err(ConfigError::InvalidSetting {
                    name: "events",
                    reason: "a cap of 0 keeps nothing; use None to turn events off".into(),
                }
                .into())
            }
            Some(cap) => {
                let mut c = redis::cmd("HSET");
                c.arg(self.keys().settings()).arg(name::EVENTS).arg(cap);
                c
            }
            None => {
                let mut c = redis::cmd("HDEL");
                c.arg(self.keys().settings()).arg(name::EVENTS);
                c
            }
        };
        let _: i64 = cmd.query_async(conn).await?;
        Ok(())
    }

    /// Writes `started` events for `job_ids`, started by `worker`, in one
    /// pipeline, capped at `cap` (workers learn the cap from the promoter).
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn write_started<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        job_ids: &[String],
        worker: &str,
        cap: u64,
    ) -> Result<()> {
        if job_ids.is_empty() || cap == 0 {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for id in job_ids {
            pipe.cmd("XADD")
                .arg(self.keys().events())
                .arg("MAXLEN")
                .arg("~")
                .arg(cap)
                .arg("*")
                .arg("event")
                .arg("started")
                .arg("id")
                .arg(id)
                .arg("worker")
                .arg(worker)
                .ignore();
        }
        pipe.query_async::<()>(conn).await?;
        Ok(())
    }

    /// The id of the newest event kept (`0-0` when none): read on from it
    /// to see only what comes next, without missing any.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn last_event_id<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<String> {
        let v: Value = redis::cmd("XREVRANGE")
            .arg(self.keys().events())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        Ok(reply::entries(v)?
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _, _, _)| id))
    }

    /// Reads up to `count` events after entry `after` (`$` for only new
    /// ones, `0` for all kept), blocking up to `block_ms` when there are
    /// none (0: do not block). Use a connection whose response timeout
    /// outlasts the block.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis).
    pub async fn read_events<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        after: &str,
        count: usize,
        block_ms: u64,
    ) -> Result<Vec<Event>> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count.max(1));
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(self.keys().events()).arg(after);
        let v: Value = cmd.query_async(conn).await?;
        let entries = match v {
            Value::Nil => return Ok(Vec::new()),
            Value::Map(mut m) => m.pop().map(|(_, e)| e).unwrap_or(Value::Nil),
            Value::Array(mut a) => match a.pop() {
                Some(Value::Array(mut kv)) => kv.pop().unwrap_or(Value::Nil),
                _ => Value::Nil,
            },
            _ => Value::Nil,
        };
        Ok(reply::entries(entries)?
            .into_iter()
            .map(|(entry_id, fields, _, _)| {
                let mut fields: BTreeMap<String, String> = fields
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(&k).into_owned(),
                            String::from_utf8_lossy(&v).into_owned(),
                        )
                    })
                    .collect();
                Event {
                    entry_id,
                    event: fields.remove("event").unwrap_or_default(),
                    job_id: fields.remove("id").unwrap_or_default(),
                    fields,
                }
            })
            .collect())
    }
}
