//! Each priority stream's consumer-group state (`stream_info.lua`): the
//! group's lag (entries not yet delivered, as Redis counts them), what it
//! holds pending, and how old its oldest pending and oldest waiting
//! entries are, by the server's clock. What an operator reads with
//! `XINFO GROUPS` and `XPENDING`, in one round trip.

use redis::aio::ConnectionLike;
use redis::Value;
use serde::Serialize;

use crate::envelope::entry_ms;
use crate::error::{Error, Result};
use crate::priority::Priority;
use crate::queue::Queue;
use crate::reply;
use crate::scripts;

/// One priority stream and its consumer group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamInfo {
    /// The stream's priority.
    pub priority: Priority,
    /// Its key.
    pub key: String,
    /// Entries in the stream (XLEN): waiting, running, and finished ones
    /// the bulk trim has not removed yet.
    pub length: u64,
    /// False while the stream or its consumer group does not exist yet.
    pub group: bool,
    /// Entries delivered and not acknowledged (running, or left by a
    /// worker that died, until recovered).
    pub pending: u64,
    /// The group's lag: entries not yet delivered, as Redis counts them;
    /// `None` where Redis cannot tell (before 7.0, or after a deletion at
    /// the group's read position).
    pub lag: Option<u64>,
    /// Entries the group has read since it was created (Redis 7.0+).
    pub entries_read: Option<u64>,
    /// The last entry id delivered to the group.
    pub last_delivered_id: Option<String>,
    /// Consumers (worker connections) the group knows.
    pub consumers: u64,
    /// The oldest pending entry's id.
    pub oldest_pending_id: Option<String>,
    /// Its age: ms since it entered the stream (server clock).
    pub oldest_pending_age_ms: Option<u64>,
    /// Ms since it was last delivered or its lease renewed.
    pub oldest_pending_idle_ms: Option<u64>,
    /// The oldest entry not yet delivered: the next a worker claims.
    pub oldest_waiting_id: Option<String>,
    /// Its age: how long the head of the stream has waited (server clock).
    pub oldest_waiting_age_ms: Option<u64>,
}

impl Queue {
    /// The four priority streams' group state, highest priority first, in
    /// one round trip.
    ///
    /// # Errors
    /// [`Error::Redis`], or [`Error::Protocol`] for a reply that is not
    /// what the script returns.
    pub async fn streams<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<Vec<StreamInfo>> {
        let v: Value = self
            .invoke(&scripts::STREAM_INFO)
            .invoke_async(conn)
            .await?;
        let bad = || Error::Protocol(format!("stream_info: {v:?}"));
        let items = reply::array(&v).ok_or_else(bad)?;
        let (now, streams) = items.split_first().ok_or_else(bad)?;
        let now = reply::int(now)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(bad)?;
        let num = |v: &Value| reply::int(v).and_then(|n| u64::try_from(n).ok());
        let id = |v: &Value| reply::string(v).filter(|s| !s.is_empty());
        let age = |id: &Option<String>| id.as_deref().map(|e| now.saturating_sub(entry_ms(e)));
        let mut out = Vec::with_capacity(4);
        for (priority, s) in Priority::ALL.into_iter().zip(streams) {
            let Some([length, group, pending, last, lag, read, consumers, oldest, idle, waiting]) =
                reply::array(s)
            else {
                return Err(bad());
            };
            let oldest_pending_id = id(oldest);
            let oldest_waiting_id = id(waiting);
            out.push(StreamInfo {
                priority,
                key: self.keys().stream(priority).to_owned(),
                length: num(length).unwrap_or(0),
                group: num(group) == Some(1),
                pending: num(pending).unwrap_or(0),
                lag: num(lag),
                entries_read: num(read),
                last_delivered_id: id(last),
                consumers: num(consumers).unwrap_or(0),
                oldest_pending_age_ms: age(&oldest_pending_id),
                oldest_pending_id,
                oldest_pending_idle_ms: num(idle),
                oldest_waiting_age_ms: age(&oldest_waiting_id),
                oldest_waiting_id,
            });
        }
        if out.len() != 4 {
            return Err(bad());
        }
        Ok(out)
    }
}
