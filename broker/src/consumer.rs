//! The consumer side of the protocol: consumer groups, claiming entries in
//! strict priority, acknowledging, retrying and dead-lettering them.

use redis::aio::ConnectionLike;
use redis::Value;

use crate::envelope::{field, Envelope, Malformed};
use crate::error::{Error, Result};
use crate::keys::GROUP;
use crate::priority::Priority;
use crate::queue::{now_ms, Queue};
use crate::reply::{self, RawFields};
use crate::scripts;

/// A stream entry handed to one consumer: it stays in the group's pending
/// list (PEL) until acknowledged, retried or dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The stream it came from.
    pub priority: Priority,
    /// The stream entry id.
    pub entry_id: String,
    /// The entry's fields as stored.
    pub fields: RawFields,
    /// How many times the group has delivered this entry, this time included:
    /// 1 for a fresh claim; more for an entry recovered from a worker that
    /// died or lost its lease while running it.
    pub deliveries: u32,
    /// A recovered entry whose earlier deliveries crashed (or one more
    /// delivery from `max_deliveries`): run it alone, and call
    /// [`Queue::start_suspect`] when it starts; its delivery is not counted yet.
    pub suspect: bool,
}

impl Delivery {
    /// Decodes the envelope.
    ///
    /// # Errors
    /// [`Malformed`] with the reason the entry is not a valid envelope.
    pub fn envelope(&self, max_payload: usize) -> Result<Envelope, Malformed> {
        Envelope::from_fields(&self.fields, max_payload)
    }
}

/// What happened to a dead-letter move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadLettered {
    /// False when the entry was no longer this consumer's (nothing was moved).
    pub moved: bool,
    /// Old dead-letter entries the cap removed to make room.
    pub dropped: u64,
}

impl Queue {
    /// Creates the consumer group on every priority stream (MKSTREAM,
    /// reading from the start); an existing group is left as it is.
    ///
    /// # Errors
    /// [`Error::Redis`] for anything but BUSYGROUP.
    pub async fn ensure_groups<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<()> {
        for stream in self.keys.streams() {
            let res: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(conn)
                .await;
            match res {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Claims up to `n` new entries for `consumer`: all of critical first,
    /// then high, normal, low; FIFO within each. Never blocks. One round trip
    /// (`claim.lua`); the entries pass through Lua, which costs Redis about
    /// 2.4 µs per entry, so for large batches [`Queue::claim_bulk`] is cheaper.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn claim<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        consumer: &str,
        n: usize,
    ) -> Result<Vec<Delivery>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut inv = self.on_streams(&scripts::CLAIM);
        inv.arg(GROUP).arg(consumer).arg(n);
        let v: Value = inv.invoke_async(conn).await?;
        let Value::Array(flat) = v else {
            return Err(Error::Protocol(format!("claim: {v:?}")));
        };
        let mut out = Vec::with_capacity(n);
        let mut flat = flat.into_iter();
        while let (Some(idx), Some(entries)) = (flat.next(), flat.next()) {
            let priority = reply::int(&idx)
                .and_then(|i| Priority::ALL.get((i as usize).wrapping_sub(1)).copied())
                .ok_or_else(|| Error::Protocol(format!("claim index: {idx:?}")))?;
            push_deliveries(&mut out, priority, entries)?;
        }
        Ok(out)
    }

    /// Like [`Queue::claim`], in two round trips that keep the entries out of
    /// Lua: `claim_counts.lua` says how many to take from each stream
    /// (strict priority), then plain XREADGROUPs, pipelined, take them, so
    /// entries do not pass through Lua. Another consumer may take some in
    /// between; then fewer come back, never more than `n`.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn claim_bulk<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        consumer: &str,
        n: usize,
    ) -> Result<Vec<Delivery>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut inv = self.on_streams(&scripts::CLAIM_COUNTS);
        inv.arg(GROUP).arg(n);
        let counts: Vec<u64> = inv.invoke_async(conn).await?;
        let mut pipe = redis::pipe();
        let mut reads = 0;
        for (stream, count) in self.keys.streams().iter().zip(&counts) {
            if *count > 0 {
                pipe.cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(consumer)
                    .arg("COUNT")
                    .arg(*count)
                    .arg("STREAMS")
                    .arg(stream)
                    .arg(">");
                reads += 1;
            }
        }
        let mut out = Vec::with_capacity(n);
        if reads == 0 {
            return Ok(out);
        }
        let replies: Vec<Value> = pipe.query_async(conn).await?;
        for v in replies {
            self.push_read(&mut out, v)?;
        }
        Ok(out)
    }

    /// Parses an XREADGROUP reply (RESP2 or RESP3, one or more streams) into deliveries.
    fn push_read(&self, out: &mut Vec<Delivery>, v: Value) -> Result<()> {
        let per_stream: Vec<(Value, Value)> = match v {
            Value::Nil => return Ok(()),
            Value::Map(m) => m,
            Value::Array(a) => a
                .into_iter()
                .filter_map(|kv| match kv {
                    Value::Array(mut p) if p.len() == 2 => {
                        let e = p.pop()?;
                        let k = p.pop()?;
                        Some((k, e))
                    }
                    _ => None,
                })
                .collect(),
            other => return Err(Error::Protocol(format!("xreadgroup: {other:?}"))),
        };
        for (key, entries) in per_stream {
            let key = reply::string(&key).unwrap_or_default();
            let priority = Priority::ALL
                .into_iter()
                .find(|p| self.keys.stream(*p) == key)
                .ok_or_else(|| {
                    Error::Protocol(format!("xreadgroup returned unknown stream {key}"))
                })?;
            push_deliveries(out, priority, entries)?;
        }
        Ok(())
    }

    /// Blocks up to `block_ms` on XREADGROUP over the four streams for the
    /// next new entry (COUNT 1 per stream). Use a connection of its own with a
    /// response timeout longer than `block_ms`. On Redis 7.2+ one wake-up can
    /// return an entry from each stream that received one at that moment.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`]. A missing group is created and
    /// reported as no entries.
    pub async fn read_blocking<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        consumer: &str,
        block_ms: u64,
    ) -> Result<Vec<Delivery>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms);
        cmd.arg("STREAMS");
        for s in self.keys.streams() {
            cmd.arg(s);
        }
        for _ in self.keys.streams() {
            cmd.arg(">");
        }
        let v: Value = match cmd.query_async(conn).await {
            Ok(v) => v,
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_groups(conn).await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        self.push_read(&mut out, v)?;
        out.sort_by_key(|d| d.priority);
        Ok(out)
    }

    /// Acknowledges finished entries of one priority that `consumer` still
    /// owns and removes them from the stream (in bulk, see `ack.lua` and
    /// `shared/remove_done.lua`); returns how many were acknowledged.
    /// Entries recovery gave to another consumer are left to their new owner.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn ack<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        consumer: &str,
        priority: Priority,
        entry_ids: &[String],
    ) -> Result<u64> {
        if entry_ids.is_empty() {
            return Ok(0);
        }
        let mut acked = 0;
        for chunk in entry_ids.chunks(crate::MAX_IDS_PER_CALL) {
            let (lo, hi) = id_range(chunk);
            let mut inv = scripts::ACK.prepare_invoke();
            inv.key(self.keys.stream(priority)).key(self.keys.stats());
            inv.arg(GROUP).arg(consumer).arg(lo).arg(hi);
            for id in chunk {
                inv.arg(id);
            }
            let n: u64 = inv.invoke_async(conn).await?;
            acked += n;
        }
        Ok(acked)
    }

    /// Moves a failed delivery to the delayed set as its next attempt, to run
    /// at `run_at` (ms). Returns false, moving nothing, when the entry is no
    /// longer pending for `consumer`.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn retry<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        consumer: &str,
        delivery: &Delivery,
        next: &Envelope,
        run_at: u64,
    ) -> Result<bool> {
        let moved: i64 = scripts::RETRY
            .key(self.keys.stream(delivery.priority))
            .key(self.keys.delayed())
            .key(self.keys.stats())
            .arg(GROUP)
            .arg(consumer)
            .arg(&delivery.entry_id)
            .arg(next.to_delayed_member(delivery.priority))
            .arg(run_at)
            .invoke_async(conn)
            .await?;
        Ok(moved == 1)
    }

    /// Moves a delivery to the dead-letter stream with its original fields
    /// plus `error`, `failed_at` and `priority`, atomically with its ack (its
    /// `attempt` field is the number of attempts made). `malformed` counts it
    /// under `malformed` in the stats instead of `dead`.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn dead_letter<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        consumer: &str,
        delivery: &Delivery,
        error: &str,
        malformed: bool,
    ) -> Result<DeadLettered> {
        let mut inv = scripts::DEAD_LETTER.prepare_invoke();
        inv.key(self.keys.stream(delivery.priority))
            .key(self.keys.dead())
            .key(self.keys.stats());
        inv.arg(GROUP)
            .arg(consumer)
            .arg(&delivery.entry_id)
            .arg(self.dead_letter_cap)
            .arg(if malformed { "malformed" } else { "dead" });
        for (k, v) in dead_letter_fields(&delivery.fields) {
            inv.arg(k).arg(v);
        }
        inv.arg(field::ERROR).arg(error);
        inv.arg(field::FAILED_AT).arg(now_ms());
        inv.arg(field::PRIORITY).arg(delivery.priority.as_str());
        let v: Value = inv.invoke_async(conn).await?;
        match reply::array(&v) {
            Some([moved, dropped]) => Ok(DeadLettered {
                moved: reply::int(moved) == Some(1),
                dropped: reply::int(dropped).unwrap_or(0).max(0) as u64,
            }),
            _ => Err(Error::Protocol(format!("dead_letter: {v:?}"))),
        }
    }
}

/// The lowest and highest of stream entry ids (`ms-seq`, compared as
/// numbers), as XPENDING range bounds; `-`/`+` if one does not parse.
pub(crate) fn id_range(ids: &[String]) -> (String, String) {
    let parse = |id: &str| -> Option<(u64, u64)> {
        let (ms, seq) = id.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    };
    let mut parsed = Vec::with_capacity(ids.len());
    for id in ids {
        match parse(id) {
            Some(p) => parsed.push(p),
            None => return ("-".to_owned(), "+".to_owned()),
        }
    }
    match (parsed.iter().min(), parsed.iter().max()) {
        (Some(lo), Some(hi)) => (format!("{}-{}", lo.0, lo.1), format!("{}-{}", hi.0, hi.1)),
        _ => ("-".to_owned(), "+".to_owned()),
    }
}

/// Most fields, besides the envelope's own, copied from an entry into its
/// dead letter. A hostile entry can have thousands; the rest are counted in
/// `omitted_fields`.
pub const MAX_EXTRA_DEAD_LETTER_FIELDS: usize = 16;

/// The original fields that go into a dead letter: every envelope field, at
/// most [`MAX_EXTRA_DEAD_LETTER_FIELDS`] others, and `omitted_fields` with the
/// count of those left out. Fields the dead letter sets itself are dropped.
fn dead_letter_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], Vec<u8>)> {
    const RESERVED: [&str; 3] = [field::ERROR, field::FAILED_AT, field::PRIORITY];
    let is = |names: &[&str], k: &[u8]| names.iter().any(|n| n.as_bytes() == k);
    let known = |k: &[u8]| is(&field::ENVELOPE, k) || k == field::RAW.as_bytes();
    let mut out = Vec::with_capacity(
        fields
            .len()
            .min(field::ENVELOPE.len() + MAX_EXTRA_DEAD_LETTER_FIELDS + 2),
    );
    let (mut extra, mut omitted) = (0usize, 0usize);
    for (k, v) in fields {
        if is(&RESERVED, k) {
            continue;
        }
        if known(k) {
            out.push((k.as_slice(), v.clone()));
        } else if extra < MAX_EXTRA_DEAD_LETTER_FIELDS {
            extra += 1;
            out.push((k.as_slice(), v.clone()));
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        out.push((
            b"omitted_fields".as_slice(),
            omitted.to_string().into_bytes(),
        ));
    }
    out
}

pub(crate) fn push_deliveries(
    out: &mut Vec<Delivery>,
    priority: Priority,
    entries: Value,
) -> Result<()> {
    for (entry_id, fields, deliveries, suspect) in reply::entries(entries)? {
        out.push(Delivery {
            priority,
            entry_id,
            fields: fields.unwrap_or_default(),
            deliveries: deliveries.unwrap_or(1),
            suspect,
        });
    }
    Ok(())
}
