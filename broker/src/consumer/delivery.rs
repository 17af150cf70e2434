//! What a claim hands out: a [`Delivery`], found by its [`EntryId`], parsed
//! from XREADGROUP, `claim.lua` and `recover.lua` replies without panicking.

use redis::Value;

use crate::envelope::{Envelope, Malformed};
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::priority::Priority;
use crate::reply::{self, RawFields};

/// Where a pending entry sits: its priority stream and its stream entry id.
/// Enough to acknowledge it or renew its lease.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId {
    /// The stream it is in.
    pub priority: Priority,
    /// The stream entry id (`ms-seq`).
    pub id: String,
}

/// A stream entry handed to one consumer: it stays in the group's pending
/// list (PEL) until acknowledged, retried or dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Which entry it is.
    pub entry: EntryId,
    /// The entry's fields as stored.
    pub fields: RawFields,
    /// How many times the group has delivered this entry, this time included:
    /// 1 for a fresh claim; more for an entry recovered from a worker that
    /// died or lost its lease while running it.
    pub deliveries: u32,
    /// A recovered entry whose earlier deliveries crashed (or one more
    /// delivery from `max_deliveries`): run it alone, and call
    /// [`Consumer::start_suspect`](crate::Consumer::start_suspect) when it
    /// starts; its delivery is not counted yet.
    pub suspect: bool,
    /// When its handler started (ms since the epoch), once a worker has
    /// started it: retry and dead-letter moves pass it on, for the record
    /// of a job whose cancellation was asked for while it ran.
    pub started_at: Option<u64>,
}

impl Delivery {
    /// The job id, for an entry whose envelope may not decode: its `id`
    /// field, or the id derived from its entry.
    pub fn job_id(&self) -> String {
        self.fields
            .iter()
            .find(|(k, _)| k.as_slice() == crate::envelope::field::ID.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| crate::envelope::derived_id(self.entry.priority, &self.entry.id))
    }

    /// The stream it came from.
    pub fn priority(&self) -> Priority {
        self.entry.priority
    }

    /// Decodes the envelope (a fresh job's id derived from its entry).
    ///
    /// # Errors
    /// [`Malformed`] with the reason the entry is not a valid envelope.
    pub fn envelope(&self, max_payload: usize) -> Result<Envelope, Malformed> {
        Envelope::from_entry(
            &self.fields,
            max_payload,
            self.entry.priority,
            &self.entry.id,
        )
    }
}

/// Appends the entries of one stream's reply,
/// `{{id, {field, value, ...}[, deliveries[, suspect]]}, ...}`, moving the
/// field bytes out of the reply.
pub(crate) fn push_entries(
    out: &mut Vec<Delivery>,
    priority: Priority,
    entries: Value,
) -> Result<()> {
    for (id, fields, deliveries, suspect) in reply::entries(entries)? {
        out.push(Delivery {
            entry: EntryId { priority, id },
            fields: fields.unwrap_or_default(),
            deliveries: deliveries.unwrap_or(1),
            suspect,
            started_at: None,
        });
    }
    Ok(())
}

/// Appends the entries of an XREADGROUP reply (RESP2 or RESP3, one or more
/// of the queue's streams, named by `keys`).
pub(crate) fn push_read(out: &mut Vec<Delivery>, keys: &Keys, v: Value) -> Result<()> {
    let per_stream: Vec<(Value, Value)> = match v {
        Value::Nil => return Ok(()),
        Value::Map(m) => m,
        Value::Array(a) => a
            .into_iter()
            .map(|kv| match kv {
                Value::Array(p) => match <[Value; 2]>::try_from(p) {
                    Ok([k, e]) => Ok((k, e)),
                    Err(p) => Err(Error::Protocol(format!("xreadgroup stream: {p:?}"))),
                },
                other => Err(Error::Protocol(format!("xreadgroup stream: {other:?}"))),
            })
            .collect::<Result<_>>()?,
        other => return Err(Error::Protocol(format!("xreadgroup: {other:?}"))),
    };
    for (key, entries) in per_stream {
        let key = reply::string(&key).unwrap_or_default();
        let priority = Priority::ALL
            .into_iter()
            .find(|p| keys.stream(*p) == key)
            .ok_or_else(|| Error::Protocol(format!("xreadgroup returned unknown stream {key}")))?;
        push_entries(out, priority, entries)?;
    }
    Ok(())
}
