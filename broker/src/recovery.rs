//! Leases: recovery of entries whose worker died (XAUTOCLAIM), lease renewal
//! for live workers, and removal of consumers that are gone.

use redis::aio::ConnectionLike;
use redis::Value;

use crate::consumer::{push_deliveries, Delivery};
use crate::error::{Error, Result};
use crate::keys::GROUP;
use crate::priority::Priority;
use crate::queue::{now_ms, Queue};
use crate::reply;
use crate::scripts;

/// The outcome of one recovery pass over one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Where the next pass continues (XAUTOCLAIM cursor; `0-0` after a full sweep).
    pub cursor: String,
    /// Entries now owned by this consumer, to run. A suspect
    /// ([`Delivery::suspect`]) comes alone: run it alone.
    pub claimed: Vec<Delivery>,
    /// Pending ids whose entry was deleted; removed from the PEL.
    pub deleted: u64,
    /// Entries over `max_deliveries`, moved to the dead-letter stream.
    pub dead: u64,
    /// Old dead-letter entries the cap removed.
    pub dropped: u64,
}

impl Queue {
    /// Takes over up to `count` entries of one stream that have been idle
    /// longer than `lease_ms` (their worker died or stopped renewing), starting
    /// at `cursor`. An entry already delivered `max_deliveries` times is
    /// dead-lettered with that reason instead. A delivery is counted only for
    /// the entries taken, and an entry recovered before is taken alone (see
    /// `recover.lua`), so a poison job cannot push the jobs claimed with it
    /// to `max_deliveries`.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    #[allow(clippy::too_many_arguments)]
    pub async fn recover<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        consumer: &str,
        priority: Priority,
        lease_ms: u64,
        cursor: &str,
        count: usize,
        max_deliveries: u32,
    ) -> Result<Recovered> {
        let v: Value = scripts::RECOVER
            .key(self.keys.stream(priority))
            .key(self.keys.dead())
            .key(self.keys.stats())
            .arg(GROUP)
            .arg(consumer)
            .arg(lease_ms)
            .arg(cursor)
            .arg(count.max(1))
            .arg(max_deliveries)
            .arg(self.dead_letter_cap)
            .arg(now_ms())
            .arg(priority.as_str())
            .invoke_async(conn)
            .await?;
        let parts: Option<[Value; 5]> = match v {
            Value::Array(a) => a.try_into().ok(),
            _ => None,
        };
        let Some([cursor, claimed, deleted, dead, dropped]) = parts else {
            return Err(Error::Protocol("recover: expected 5 parts".into()));
        };
        let mut out = Recovered {
            cursor: reply::string(&cursor).unwrap_or_else(|| "0-0".to_owned()),
            deleted: reply::int(&deleted).unwrap_or(0).max(0) as u64,
            dead: reply::int(&dead).unwrap_or(0).max(0) as u64,
            dropped: reply::int(&dropped).unwrap_or(0).max(0) as u64,
            ..Recovered::default()
        };
        push_deliveries(&mut out.claimed, priority, claimed)?;
        Ok(out)
    }

    /// Counts the delivery of a suspect entry as it starts (see
    /// [`Delivery::suspect`]); returns its delivery count, or `None` when the
    /// entry is no longer pending for `consumer` (it must not run).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn start_suspect<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        consumer: &str,
        priority: Priority,
        entry_id: &str,
    ) -> Result<Option<u32>> {
        let n: u32 = scripts::START_SUSPECT
            .key(self.keys.stream(priority))
            .arg(GROUP)
            .arg(consumer)
            .arg(entry_id)
            .invoke_async(conn)
            .await?;
        Ok((n > 0).then_some(n))
    }

    /// Resets the idle time of entries `consumer` is still running, so
    /// recovery leaves them alone. Returns the ids it no longer owns (recovery
    /// gave them to another worker after a missed renewal).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn renew<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        consumer: &str,
        priority: Priority,
        entry_ids: &[String],
    ) -> Result<Vec<String>> {
        if entry_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut lost = Vec::new();
        for chunk in entry_ids.chunks(crate::MAX_IDS_PER_CALL) {
            let mut inv = scripts::RENEW.prepare_invoke();
            inv.key(self.keys.stream(priority)).arg(GROUP).arg(consumer);
            for id in chunk {
                inv.arg(id);
            }
            let l: Vec<String> = inv.invoke_async(conn).await?;
            lost.extend(l);
        }
        Ok(lost)
    }

    /// Deletes consumers other than `me` that have been idle for more than
    /// `idle_ms` and own no pending entries. Returns how many were removed.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn remove_idle_consumers<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        me: &str,
        idle_ms: u64,
    ) -> Result<u64> {
        let mut inv = self.on_streams(&scripts::REMOVE_IDLE_CONSUMERS);
        inv.arg(GROUP).arg(me).arg(idle_ms);
        Ok(inv.invoke_async(conn).await?)
    }
}
