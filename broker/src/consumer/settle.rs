//! Settling deliveries: acknowledge (done), retry (to the delayed set) or
//! dead-letter, each one script that first checks the consumer still owns
//! the entry (`lua/shared/ownership.lua`), so a worker that lost its lease
//! cannot finish the new owner's job.

use redis::aio::ConnectionLike;
use redis::Value;

use super::{id_range, Consumer, Delivery, EntryId, MAX_IDS_PER_CALL};
use crate::envelope::{parse_derived_id, Envelope};
use crate::error::{Error, Result};
use crate::priority::Priority;
use crate::reply;
use crate::scripts;
use crate::stats::counter;

/// Why an entry is dead-lettered, which decides the counter it bumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterKind {
    /// A job that failed for good (counter `dead`).
    Failed,
    /// An entry that is not a valid job (counter `malformed`).
    Malformed,
}

impl DeadLetterKind {
    fn counter(self) -> &'static str {
        match self {
            DeadLetterKind::Failed => counter::DEAD,
            DeadLetterKind::Malformed => counter::MALFORMED,
        }
    }
}

/// A finished job to acknowledge: its entry, its id, and its record's
/// fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Its entry.
    pub entry: EntryId,
    /// The job id (the envelope's); empty to have `ack.lua` read it from
    /// the entry (one XRANGE more).
    pub job_id: String,
    /// The record's fields as JSON object members without the braces, for
    /// example `"type":"x","attempt":1,"result":{"n":2}` (`ack.lua` adds
    /// `state` and `finished_at`); empty for none. See [`record_fields`].
    pub record: String,
    /// The job's own record retention in ms (its envelope's
    /// `retention_ms`), instead of the queue's; `None` for the queue's.
    pub retention_ms: Option<u64>,
}

/// The members of a finished job's record (see [`Finished::record`]):
/// what ran, when, where, and the handler's result (JSON; `null` leaves it out).
pub fn record_fields(
    env: &Envelope,
    priority: Priority,
    started_at: u64,
    worker: &str,
    result: &serde_json::Value,
) -> String {
    let mut out = String::with_capacity(160);
    let q = |s: &str| serde_json::Value::from(s).to_string();
    out.push_str(&format!(
        "\"type\":{},\"priority\":\"{}\",\"attempt\":{},\"max_retries\":{},\"enqueued_at\":{},\"started_at\":{started_at},\"worker\":{}",
        q(&env.job_type),
        priority.as_str(),
        env.attempt,
        env.max_retries,
        env.enqueued_at,
        q(worker),
    ));
    if !result.is_null() {
        out.push_str(",\"result\":");
        out.push_str(&result.to_string());
    }
    out
}

/// What settling a delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Moved as asked (scheduled for a retry, or dead-lettered).
    Moved,
    /// Its cancellation was asked for while it ran: it ended cancelled.
    Cancelled,
    /// Nothing: the entry is no longer this consumer's (recovery gave it
    /// to another worker).
    NotOwned,
}

/// What happened to a dead-letter move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadLettered {
    /// False when the entry was no longer this consumer's (nothing was moved).
    pub moved: bool,
    /// True when, instead, the job ended cancelled: its cancellation was
    /// asked for while it ran (`moved` is true too: it left its stream).
    pub cancelled: bool,
    /// Old dead-letter entries the cap removed to make room.
    pub dropped: u64,
}

impl Consumer {
    /// Acknowledges finished entries that this consumer still owns and
    /// removes them from their streams (in bulk, see `ack.lua` and
    /// `shared/remove_done.lua`), with records that hold no details (each
    /// job id read from its entry); returns how many were acknowledged.
    /// Workers use [`Consumer::ack_finished`].
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn ack<'e, C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        entries: impl IntoIterator<Item = &'e EntryId>,
    ) -> Result<u64> {
        let finished: Vec<Finished> = entries
            .into_iter()
            .map(|e| Finished {
                entry: e.clone(),
                job_id: String::new(),
                record: String::new(),
                retention_ms: None,
            })
            .collect();
        self.ack_finished(conn, &finished).await
    }

    /// Acknowledges finished jobs that this consumer still owns, removes
    /// their entries (in bulk), keeps their records as the queue's
    /// retention says, and tells waiters (`ack.lua`); returns how many were
    /// acknowledged. Entries recovery gave to another consumer are left to
    /// their new owner. One script call per priority (and per 1,000 jobs).
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn ack_finished<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        finished: &[Finished],
    ) -> Result<u64> {
        let mut acked = 0;
        for priority in Priority::ALL {
            let of: Vec<&Finished> = finished
                .iter()
                .filter(|f| f.entry.priority == priority)
                .collect();
            for chunk in of.chunks(MAX_IDS_PER_CALL) {
                let ids: Vec<&str> = chunk.iter().map(|f| f.entry.id.as_str()).collect();
                let (lo, hi) = id_range(&ids);
                let mut inv = self.queue().invoke(&scripts::ACK);
                inv.arg(self.name())
                    .arg(priority.script_index())
                    .arg(lo)
                    .arg(hi)
                    .arg(chunk.len())
                    .arg(&ids);
                // Three sections of (position, value) pairs, only for the
                // jobs that need them (see ack.lua): a fresh job's id is
                // its entry's and goes unsaid.
                let given: Vec<(usize, &str)> = chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| {
                        parse_derived_id(&f.job_id)
                            .is_none_or(|(p, e)| p != priority || e != f.entry.id)
                    })
                    .map(|(i, f)| (i + 1, f.job_id.as_str()))
                    .collect();
                inv.arg(given.len());
                for (i, id) in given {
                    inv.arg(i).arg(id);
                }
                let records: Vec<(usize, &str)> = chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| !f.record.is_empty())
                    .map(|(i, f)| (i + 1, f.record.as_str()))
                    .collect();
                inv.arg(records.len());
                for (i, record) in records {
                    inv.arg(i).arg(record);
                }
                let lifetimes: Vec<(usize, u64)> = chunk
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| f.retention_ms.map(|ms| (i + 1, ms)))
                    .collect();
                inv.arg(lifetimes.len());
                for (i, ms) in lifetimes {
                    inv.arg(i).arg(ms);
                }
                // The notice, joined here: strings made in Lua cost Redis
                // more (see ack.lua).
                if chunk.iter().any(|f| f.job_id.is_empty()) {
                    inv.arg("");
                } else {
                    let mut notice = String::from("succeeded");
                    for f in chunk {
                        notice.push(' ');
                        notice.push_str(&f.job_id);
                    }
                    inv.arg(notice);
                }

                let n: u64 = inv.invoke_async(conn).await?;
                acked += n;
            }
        }
        Ok(acked)
    }

    /// Stores the progress of the running job `job_id` (entry `entry`):
    /// `fields` are JSON object members without braces
    /// (`"percent":42,"info":{..}`), kept in `P:{Q}:progress` with the
    /// server's time until the job ends. Returns false, storing nothing,
    /// when the entry is no longer this consumer's.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn report_progress<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        entry: &EntryId,
        job_id: &str,
        fields: &str,
    ) -> Result<bool> {
        let mut inv = self.queue().invoke(&scripts::PROGRESS);
        inv.arg(self.name())
            .arg(entry.priority.script_index())
            .arg(&entry.id)
            .arg(job_id)
            .arg(fields);
        let stored: i64 = inv.invoke_async(conn).await?;
        Ok(stored == 1)
    }

    /// Moves a failed delivery to the delayed set as its next attempt,
    /// `next`, due `delay` from now by the Redis server's clock (not this
    /// host's), carrying the delivery's trace context
    /// ([`TraceContext`](crate::envelope::TraceContext)). Returns false,
    /// moving nothing, when the entry is no longer pending for this consumer.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn retry<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        delivery: &Delivery,
        next: &Envelope,
        delay: std::time::Duration,
    ) -> Result<bool> {
        Ok(self.retry_settled(conn, delivery, next, delay).await? != Settled::NotOwned)
    }

    /// As [`Consumer::retry`], saying what happened: scheduled
    /// ([`Settled::Moved`]), ended cancelled because its cancellation was
    /// asked for while it ran ([`Settled::Cancelled`]), or nothing (the
    /// entry is no longer this consumer's).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn retry_settled<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        delivery: &Delivery,
        next: &Envelope,
        delay: std::time::Duration,
    ) -> Result<Settled> {
        let mut inv = self.queue().invoke(&scripts::RETRY);
        inv.arg(self.name())
            .arg(delivery.priority().script_index())
            .arg(&delivery.entry.id)
            .arg(next.to_delayed_member_traced(
                delivery.priority(),
                crate::envelope::TraceContext::from_fields(&delivery.fields).as_ref(),
            ))
            .arg(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
            .arg(&next.id)
            .arg(started_arg(delivery));
        let moved: i64 = inv.invoke_async(conn).await?;
        // 2: its cancellation was asked for; it ended cancelled instead.
        Ok(match moved {
            0 => Settled::NotOwned,
            2 => Settled::Cancelled,
            _ => Settled::Moved,
        })
    }

    /// Moves a delivery to the dead-letter stream with its original fields
    /// (those `shared/dead_letter.lua` keeps) plus `error` (`reason`),
    /// `failed_at` and `priority`, atomically with its ack. Its `attempt`
    /// field is the number of attempts made.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn dead_letter<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        delivery: &Delivery,
        reason: &str,
        kind: DeadLetterKind,
    ) -> Result<DeadLettered> {
        let mut inv = self.queue().invoke(&scripts::DEAD_LETTER);
        inv.arg(self.name())
            .arg(delivery.priority().script_index())
            .arg(&delivery.entry.id)
            .arg(self.queue().dead_letter_limit())
            .arg(kind.counter())
            .arg(reason)
            .arg(started_arg(delivery));
        for (k, v) in &delivery.fields {
            inv.arg(k.as_slice()).arg(v.as_slice());
        }
        let v: Value = inv.invoke_async(conn).await?;
        match reply::array(&v) {
            Some([moved, dropped]) => Ok(DeadLettered {
                moved: reply::count(moved)? >= 1,
                cancelled: reply::count(moved)? == 2,
                dropped: reply::count(dropped)?,
            }),
            _ => Err(Error::Protocol(format!("dead_letter: {v:?}"))),
        }
    }
}

/// A delivery's start time as a script argument ('' when not known).
fn started_arg(delivery: &Delivery) -> String {
    delivery
        .started_at
        .map(|ms| ms.to_string())
        .unwrap_or_default()
}
