//! Changing the priority of a waiting job (`reprioritise.lua`).

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::{Error, Result};
use crate::priority::Priority;
use crate::queue::Queue;
use crate::reply;
use crate::scripts;

/// What a re-prioritisation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reprioritised {
    /// The job has the new priority: a queued job is now the newest of its
    /// new priority's stream (FIFO starts again there); a scheduled or
    /// retrying one is queued at it when due.
    Moved,
    /// It had that priority already.
    Unchanged,
    /// It is not waiting: `running`, `finished` or `dead`.
    NotWaiting(String),
    /// No job with this id.
    NotFound,
}

impl Queue {
    /// Gives job `id` the priority `to`, atomically, keeping its id.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn reprioritise<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        id: &str,
        to: Priority,
    ) -> Result<Reprioritised> {
        if !crate::envelope::is_job_id(id) {
            return Ok(Reprioritised::NotFound);
        }
        let mut inv = self.invoke(&scripts::REPRIORITISE);
        inv.arg(id).arg(to.script_index());
        let v: Value = inv.invoke_async(conn).await?;
        if matches!(v, Value::Nil | Value::Boolean(false)) {
            return Ok(Reprioritised::NotFound);
        }
        let bad = || Error::Protocol(format!("reprioritise: {v:?}"));
        let items = reply::array(&v).ok_or_else(bad)?;
        let tag = items.first().and_then(reply::string).ok_or_else(bad)?;
        Ok(match (tag.as_str(), items) {
            ("moved", _) => Reprioritised::Moved,
            ("same", _) => Reprioritised::Unchanged,
            ("not_waiting", [_, state]) => {
                Reprioritised::NotWaiting(reply::string(state).unwrap_or_default())
            }
            _ => return Err(bad()),
        })
    }
}
