//! Leases: recovery of entries whose worker died (XAUTOCLAIM), lease renewal
//! for live workers, and removal of consumers that are gone; all on a
//! [`Consumer`].

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::Value;

use crate::consumer::delivery::push_entries;
use crate::consumer::{Consumer, Delivery, EntryId};
use crate::error::{Error, Result};
use crate::priority::Priority;
use crate::reply;
use crate::scripts;

/// What one recovery pass over one stream looks for, and where it goes on
/// from. Keep one per stream and carry [`Recovered::cursor`] into the next
/// pass, so passes sweep the whole pending list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoverOptions {
    /// The stream to recover from.
    pub priority: Priority,
    /// Entries idle longer than this have lost their lease.
    pub lease: Duration,
    /// Deliveries after which an entry is dead-lettered instead of handed out again.
    pub max_deliveries: u32,
    /// Most entries to take over in this pass (at least 1 is asked for).
    pub count: usize,
    /// The XAUTOCLAIM cursor to start from (`0-0`: the start).
    pub cursor: String,
    /// How many suspects (entries recovered before) may run together after
    /// their second delivery: halved with each delivery after that (see
    /// `recover.lua`). The worker's slot count; 1 runs every suspect alone.
    pub group_base: usize,
    /// Most bytes of entries in one group of suspects (0: no bound).
    pub group_bytes: u64,
}

impl RecoverOptions {
    /// A pass over `priority`'s stream from the start, taking one entry.
    pub fn new(priority: Priority, lease: Duration, max_deliveries: u32) -> Self {
        Self {
            priority,
            lease,
            max_deliveries,
            count: 1,
            cursor: "0-0".to_owned(),
            group_base: 1,
            group_bytes: 0,
        }
    }

    /// Bounds a group of suspects to `bytes` of entries (it always holds
    /// at least one).
    pub fn group_bytes(mut self, bytes: u64) -> Self {
        self.group_bytes = bytes;
        self
    }

    /// Lets up to `base` suspects run together after their second delivery.
    pub fn group_base(mut self, base: usize) -> Self {
        self.group_base = base.max(1);
        self
    }

    /// Takes up to `count` entries.
    pub fn count(mut self, count: usize) -> Self {
        self.count = count;
        self
    }

    /// Starts from `cursor`.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = cursor.into();
        self
    }
}

/// The outcome of one recovery pass over one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Where the next pass continues (XAUTOCLAIM cursor; `0-0` after a full sweep).
    pub cursor: String,
    /// Entries now owned by this consumer, to run. Suspects
    /// ([`Delivery::suspect`]) come as a group of their own: run the group
    /// alone, nothing else beside it.
    pub claimed: Vec<Delivery>,
    /// Pending ids whose entry was deleted; removed from the PEL.
    pub deleted: u64,
    /// Entries over `max_deliveries`, moved to the dead-letter stream.
    pub dead: u64,
    /// Old dead-letter entries the cap removed.
    pub dropped: u64,
}

impl Consumer {
    /// Takes over up to `options.count` entries of one stream that have been
    /// idle longer than the lease (their worker died or stopped renewing),
    /// starting at the cursor. An entry already delivered `max_deliveries`
    /// times is dead-lettered with that reason instead. A delivery is counted
    /// only for the entries taken, and entries recovered before are taken
    /// in ever smaller groups, their last delivery alone (see
    /// `recover.lua`), so a poison job is found in a few rounds and cannot
    /// push the jobs claimed with it to `max_deliveries`.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn recover<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        options: &RecoverOptions,
    ) -> Result<Recovered> {
        let mut inv = self.queue().invoke(&scripts::RECOVER);
        inv.arg(self.name())
            .arg(options.priority.script_index())
            .arg(options.lease.as_millis() as u64)
            .arg(&options.cursor)
            .arg(options.count.max(1))
            .arg(options.max_deliveries)
            .arg(self.queue().dead_letter_limit())
            .arg(options.group_base.max(1))
            .arg(options.group_bytes);
        let v: Value = inv.invoke_async(conn).await?;
        let parts: Option<[Value; 5]> = match v {
            Value::Array(a) => a.try_into().ok(),
            _ => None,
        };
        let Some([cursor, claimed, deleted, dead, dropped]) = parts else {
            return Err(Error::Protocol("recover: expected 5 parts".into()));
        };
        let mut out = Recovered {
            cursor: reply::string(&cursor)
                .ok_or_else(|| Error::Protocol(format!("recover: cursor {cursor:?}")))?,
            deleted: reply::count(&deleted)?,
            dead: reply::count(&dead)?,
            dropped: reply::count(&dropped)?,
            claimed: Vec::new(),
        };
        push_entries(&mut out.claimed, options.priority, claimed)?;
        Ok(out)
    }

    /// Counts the delivery of a suspect entry as it starts (see
    /// [`Delivery::suspect`]); returns its delivery count, or `None` when the
    /// entry is no longer pending for this consumer (it must not run).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn start_suspect<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        delivery: &Delivery,
    ) -> Result<Option<u32>> {
        let mut inv = self.queue().invoke(&scripts::START_SUSPECT);
        inv.arg(self.name())
            .arg(delivery.priority().script_index())
            .arg(&delivery.entry.id);
        let n: u32 = inv.invoke_async(conn).await?;
        Ok((n > 0).then_some(n))
    }

    /// Resets the idle time of entries this consumer is still running, so
    /// recovery leaves them alone. Returns those it no longer owns (recovery
    /// gave them to another worker after a missed renewal).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn renew<'e, C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        entries: impl IntoIterator<Item = &'e EntryId>,
    ) -> Result<Vec<EntryId>> {
        let mut lost = Vec::new();
        for (priority, call) in self.calls_on_entries(&scripts::RENEW, entries) {
            let ids: Vec<String> = call.invoke_async(conn).await?;
            lost.extend(ids.into_iter().map(|id| EntryId { priority, id }));
        }
        Ok(lost)
    }

    /// Removes this consumer from the group of each stream where it owns
    /// no pending entry (a worker that stops cleanly). Returns in how many
    /// streams it still owns entries, and so stays listed.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn leave<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<u64> {
        let mut inv = self.queue().invoke(&scripts::REMOVE_CONSUMER);
        inv.arg(self.name());
        Ok(inv.invoke_async(conn).await?)
    }

    /// Deletes the queue's other consumers that have been idle for more than
    /// `idle` and own no pending entries. Returns how many were removed.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn remove_idle_consumers<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        idle: Duration,
    ) -> Result<u64> {
        let mut inv = self.queue().invoke(&scripts::REMOVE_IDLE_CONSUMERS);
        inv.arg(self.name()).arg(idle.as_millis() as u64);
        Ok(inv.invoke_async(conn).await?)
    }
}
