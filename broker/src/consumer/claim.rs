//! Claiming: new entries handed to a consumer in strict priority (all of
//! critical first, then high, normal, low; FIFO within each), without
//! blocking, or with a blocking read when the queue is empty.

use redis::aio::ConnectionLike;
use redis::Value;

use super::delivery::{push_entries, push_read};
use super::{Consumer, Delivery};
use crate::error::{Error, Result};
use crate::keys::GROUP;
use crate::priority::Priority;
use crate::reply;
use crate::scripts;

/// What [`Consumer::claim_or_tails`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The entries claimed (at least one).
    Entries(Vec<Delivery>),
    /// Nothing was waiting: each stream's last entry id at that moment
    /// (critical first), from which [`Consumer::wait_for_entries`] waits.
    Empty(Tails),
}

/// Each priority stream's last entry id (`0-0` for none), critical first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tails(pub [String; 4]);

impl Consumer {
    /// [`Error::RateLimited`] for a wait of `ms` (the claim scripts' reply).
    fn rate_limited(&self, ms: i64) -> Error {
        Error::RateLimited {
            queue: self.queue().name().to_owned(),
            wait: std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(1).max(1)),
        }
    }
}

impl Consumer {
    /// Claims up to `n` new entries. Never blocks. One round trip
    /// (`claim.lua`); the entries pass through Lua, which costs Redis about
    /// 2.4 µs per entry, so for large batches [`Consumer::claim_bulk`] is cheaper.
    ///
    /// # Errors
    /// [`Error::Paused`] while the queue is paused (nothing is claimed);
    /// [`Error::RateLimited`] and [`Error::AtConcurrencyLimit`] while its
    /// limits let nothing start; [`Error::Redis`] or [`Error::Protocol`].
    pub async fn claim<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        n: usize,
    ) -> Result<Vec<Delivery>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        Ok(match self.claim_or_tails(conn, n).await? {
            Claimed::Entries(entries) => entries,
            Claimed::Empty(_) => Vec::new(),
        })
    }

    /// As [`Consumer::claim`] (`n` ≥ 1), and when nothing is waiting, the
    /// streams' tails for [`Consumer::wait_for_entries`], read in the same
    /// script so that no entry can slip between the two. Under a rate
    /// limit of a type or key ([`rate_limit`](crate::rate_limit)) the
    /// entries may all be parked and more still wait: then
    /// `Entries` is empty, and the caller claims again.
    ///
    /// # Errors
    /// As [`Consumer::claim`].
    pub async fn claim_or_tails<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        n: usize,
    ) -> Result<Claimed> {
        use std::sync::atomic::Ordering::Relaxed;
        // claim.lua while no type or key has a rate limit or hold, else
        // claim_rated.lua; each says when to use the other ({-5}, {-6}).
        let mut flat = Vec::new();
        for _ in 0..3 {
            let script = if self.rated.load(Relaxed) {
                &scripts::CLAIM_RATED
            } else {
                &scripts::CLAIM
            };
            let mut inv = self.queue().invoke(script);
            inv.arg(self.name()).arg(n);
            let v: Value = inv.invoke_async(conn).await?;
            let Value::Array(reply) = v else {
                return Err(Error::Protocol(format!("claim: {v:?}")));
            };
            match reply.as_slice() {
                [Value::Int(-5)] => self.rated.store(true, Relaxed),
                [Value::Int(-6)] => self.rated.store(false, Relaxed),
                _ => {
                    flat = reply;
                    break;
                }
            }
        }
        if matches!(flat.as_slice(), [Value::Int(-1)]) {
            return Err(Error::Paused(self.queue().name().to_owned()));
        }
        if let [Value::Int(-2), Value::Int(ms)] = flat.as_slice() {
            return Err(self.rate_limited(*ms));
        }
        if matches!(flat.as_slice(), [Value::Int(-3)]) {
            return Err(Error::AtConcurrencyLimit(self.queue().name().to_owned()));
        }
        // Every entry read was parked under a rate limit of its type or
        // key, and more may wait: nothing now, claim again.
        if matches!(flat.as_slice(), [Value::Int(-4)]) {
            return Ok(Claimed::Entries(Vec::new()));
        }
        if let [Value::Int(0), tails @ ..] = flat.as_slice() {
            let tails: Vec<String> = tails
                .iter()
                .map(|t| {
                    reply::string(t).ok_or_else(|| Error::Protocol(format!("claim: tail {t:?}")))
                })
                .collect::<Result<_>>()?;
            let tails: [String; 4] = tails
                .try_into()
                .map_err(|t| Error::Protocol(format!("claim: tails {t:?}")))?;
            return Ok(Claimed::Empty(Tails(tails)));
        }
        let mut out = Vec::with_capacity(n);
        let mut flat = flat.into_iter();
        while let Some(index) = flat.next() {
            let priority = reply::int(&index)
                .and_then(|i| usize::try_from(i).ok()?.checked_sub(1))
                .and_then(Priority::from_index)
                .ok_or_else(|| Error::Protocol(format!("claim: priority index {index:?}")))?;
            let entries = flat
                .next()
                .ok_or_else(|| Error::Protocol("claim: an index without entries".into()))?;
            push_entries(&mut out, priority, entries)?;
        }
        Ok(Claimed::Entries(out))
    }

    /// Waits up to `block_ms` for an entry after `tails` in any of the
    /// streams (one XREAD BLOCK, outside the group: nothing is taken, so a
    /// pause, or a worker that stops claiming, leaves the entry to whoever
    /// claims next). True when one arrived. Use a connection of its own
    /// with a response timeout longer than `block_ms`. Every idle worker
    /// is woken by each new entry, and all but one find nothing to claim.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn wait_for_entries<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        tails: &Tails,
        block_ms: u64,
    ) -> Result<bool> {
        let keys = self.queue().keys();
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS");
        for s in keys.streams() {
            cmd.arg(s);
        }
        for t in &tails.0 {
            cmd.arg(t);
        }
        let v: Value = cmd.query_async(conn).await?;
        Ok(!matches!(v, Value::Nil) && !matches!(&v, Value::Array(a) if a.is_empty()))
    }

    /// Like [`Consumer::claim`], in two round trips that keep the entries out
    /// of Lua: `claim_counts.lua` says how many to take from each stream
    /// (strict priority), then plain XREADGROUPs, pipelined, take them.
    /// Another consumer may take some in between; then fewer come back,
    /// never more than `n`. While a type or key of the queue has a rate
    /// limit or hold, this is [`Consumer::claim`].
    ///
    /// # Errors
    /// [`Error::Paused`] while the queue is paused (nothing is claimed);
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn claim_bulk<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        n: usize,
    ) -> Result<Vec<Delivery>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut inv = self.queue().invoke(&scripts::CLAIM_COUNTS);
        inv.arg(n);
        let counts: Vec<i64> = inv.invoke_async(conn).await?;
        if counts == [-1] {
            return Err(Error::Paused(self.queue().name().to_owned()));
        }
        if let [-2, ms] = counts.as_slice() {
            return Err(self.rate_limited(*ms));
        }
        if counts == [-3] {
            return Err(Error::AtConcurrencyLimit(self.queue().name().to_owned()));
        }
        // A type or key has a rate limit or hold: each entry must pass
        // through Lua.
        if counts == [-4] {
            return self.claim(conn, n).await;
        }
        let [counts @ .., cap] = counts.as_slice() else {
            return Err(Error::Protocol(format!("claim_counts: {counts:?}")));
        };
        if counts.len() != Priority::ALL.len() || counts.iter().any(|c| *c < 0) {
            return Err(Error::Protocol(format!("claim_counts: {counts:?}")));
        }
        let cap = u64::try_from(*cap).unwrap_or(0);
        let keys = self.queue().keys();
        let mut pipe = redis::pipe();
        let mut reads = 0;
        for (stream, count) in keys.streams().iter().zip(counts) {
            if *count > 0 {
                pipe.cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(self.name())
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
            push_read(&mut out, keys, v)?;
        }
        // Before the entries are handed on, so before any event a handler
        // causes.
        if cap > 0 && !out.is_empty() {
            let ids: Vec<String> = out.iter().map(Delivery::job_id).collect();
            // The entries are this consumer's now: losing the events is
            // better than stranding them until recovery.
            if let Err(e) = self
                .queue()
                .write_started(conn, &ids, self.name(), cap)
                .await
            {
                tracing::debug!(error = %e, queue = self.queue().name(), "could not write started events");
            }
        }
        Ok(out)
    }
}
