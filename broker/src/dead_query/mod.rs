//! Finding dead letters, for operators: one by its entry id or its job
//! id, pages filtered by job type and error text, walks over the whole
//! stream, and replaying every match (each one atomically, with
//! `replay.lua`).
//!
//! Reads are `XRANGE`s of the dead-letter stream, each of at most
//! [`CHUNK`] entries (a page reads no more than it needs: see
//! [`Queue::dead_page`]); nothing here holds more than one chunk of dead
//! letters at a time, and nothing writes except through
//! [`Queue::replay_dead`].
//!
//! Here: finding one letter, pages and chunks of them. `filter.rs` holds
//! which letters a query takes ([`DeadFilter`]), `replay.rs` replaying
//! every match ([`Queue::replay_matching`]).

use redis::aio::ConnectionLike;
use redis::Value;

use crate::dead_letter::{letters, DeadLetter};
use crate::envelope::is_entry_id;
use crate::error::{ConfigError, Result};
use crate::queue::Queue;

mod filter;
mod replay;

pub use filter::{fold_case, DeadFilter, DeadMatcher};
pub use replay::ReplayedLetter;

/// Most dead letters read per `XRANGE`.
pub const CHUNK: usize = 1000;

/// The first `XRANGE` of a filtered page reads at least this many entries
/// (later ones read as many as the page has read so far, up to [`CHUNK`]).
const FIRST_FILTERED_CHUNK: usize = 16;

/// One page of dead letters (see [`Queue::dead_page`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadPage {
    /// The matching dead letters, oldest first.
    pub letters: Vec<DeadLetter>,
    /// The cursor of the next page (the last entry id looked at), or
    /// `None` when the stream has nothing after this page.
    pub next: Option<String>,
    /// How many entries were read to fill this page.
    pub scanned: u64,
}

impl Queue {
    /// The dead letter whose entry id is exactly `id` (`<ms>-<seq>`, as
    /// Redis writes it: `01-1` is not the entry `1-1`), or else the dead
    /// letter of the job whose id is `id` (through `P:{Q}:index`, checked
    /// against the letter's `id` field); `None` when neither exists.
    ///
    /// An entry id comes first: a job whose id is also the entry id of
    /// another dead letter (producers choose their ids, and `1-1` is a
    /// valid one) is found by its own letter's entry id. A job id that only
    /// looks like an entry id (no dead letter at that entry) is found as a
    /// job id. One to three round trips.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis) or [`Error::Protocol`](crate::Error::Protocol).
    pub async fn find_dead<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        id: &str,
    ) -> Result<Option<DeadLetter>> {
        if is_entry_id(id) {
            if let Some(letter) = self.dead_range(conn, id, id, 1).await?.pop() {
                if letter.entry_id == id {
                    return Ok(Some(letter));
                }
            }
        }
        let at: Option<String> = redis::cmd("HGET")
            .arg(self.keys().index())
            .arg(id)
            .query_async(conn)
            .await?;
        let Some(entry) = at
            .as_deref()
            .and_then(|a| a.strip_prefix("dead-"))
            .filter(|e| is_entry_id(e))
        else {
            return Ok(None);
        };
        Ok(self
            .dead_range(conn, entry, entry, 1)
            .await?
            .pop()
            .filter(|letter| letter.entry_id == entry && letter.get("id") == Some(id)))
    }

    /// Up to `limit` dead letters passing `filter`, oldest first, after
    /// entry `after` (a cursor from a previous page; `None` from the
    /// start). Reads at most `max_scan` entries (at least [`CHUNK`]), so a
    /// filter that matches little cannot make one call read a huge
    /// stream: a page may then hold fewer than `limit` letters and still
    /// have a `next` cursor.
    ///
    /// A page reads no more than it needs, plus one entry to tell whether
    /// anything follows it (so the last page has no `next`): without a
    /// filter each `XRANGE` asks for the letters the page still lacks (at
    /// most [`CHUNK`]); with one, the first asks for at least that many
    /// (at least 16) and each next one for as many as the page has read so
    /// far, up to [`CHUNK`], so a page reads at most about twice the
    /// entries up to its last match.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] for an `after` that is not an entry
    /// id or a `limit` of 0; [`Error::Redis`](crate::Error::Redis).
    pub async fn dead_page<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        filter: &DeadFilter,
        after: Option<&str>,
        limit: usize,
        max_scan: usize,
    ) -> Result<DeadPage> {
        if limit == 0 {
            return Err(ConfigError::InvalidSetting {
                name: "limit",
                reason: "must be at least 1".into(),
            }
            .into());
        }
        let mut start = range_start(after)?;
        let matcher = filter.matcher();
        let mut page = DeadPage::default();
        let budget = u64::try_from(max_scan.max(CHUNK)).unwrap_or(u64::MAX);
        loop {
            let needed = limit - page.letters.len();
            let room = usize::try_from(budget - page.scanned).unwrap_or(usize::MAX);
            let read = usize::try_from(page.scanned).unwrap_or(usize::MAX);
            let want = if filter.is_empty() {
                needed
            } else {
                needed.max(read).max(FIRST_FILTERED_CHUNK)
            }
            .min(CHUNK)
            .min(room);
            // One more than wanted: whether anything follows these.
            let mut chunk = self
                .dead_range(conn, &start, "+", want.saturating_add(1))
                .await?;
            let more = chunk.len() > want;
            chunk.truncate(want);
            let count = chunk.len();
            for (i, letter) in chunk.into_iter().enumerate() {
                page.scanned += 1;
                let id = letter.entry_id.clone();
                if matcher.matches(&letter) {
                    page.letters.push(letter);
                }
                if page.letters.len() == limit || page.scanned == budget {
                    page.next = (i + 1 < count || more).then_some(id);
                    return Ok(page);
                }
                start = format!("({id}");
            }
            if !more {
                return Ok(page);
            }
        }
    }

    /// Up to `count` (at most [`CHUNK`]) dead letters after entry `after`
    /// (exclusive; from the oldest for `None`) up to entry `until`
    /// (inclusive; to the newest for `None`), oldest first: one `XRANGE`.
    /// Fewer than asked for means the range has no more. For walking the
    /// whole stream in bounded steps: pass the last entry id of a chunk as
    /// the next `after`, and the [`Queue::last_dead_id`] read before the
    /// walk as `until` to leave out letters written meanwhile.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] for an `after` or `until` that is not
    /// an entry id; [`Error::Redis`](crate::Error::Redis).
    pub async fn dead_chunk<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        after: Option<&str>,
        until: Option<&str>,
        count: usize,
    ) -> Result<Vec<DeadLetter>> {
        let start = range_start(after)?;
        let end = match until {
            Some(u) if is_entry_id(u) => u,
            Some(u) => return Err(not_an_entry_id("until", u)),
            None => "+",
        };
        self.dead_range(conn, &start, end, count.min(CHUNK)).await
    }

    /// The entry id of the newest dead letter, if any (one round trip).
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis) or [`Error::Protocol`](crate::Error::Protocol).
    pub async fn last_dead_id<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<Option<String>> {
        let v: Value = redis::cmd("XREVRANGE")
            .arg(self.keys().dead())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        Ok(letters(v)?.pop().map(|l| l.entry_id))
    }

    /// `XRANGE dead start end COUNT count`, as dead letters (none for a
    /// `count` of 0, which Redis would read as no limit).
    async fn dead_range<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        start: &str,
        end: &str,
        count: usize,
    ) -> Result<Vec<DeadLetter>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let v: Value = redis::cmd("XRANGE")
            .arg(self.keys().dead())
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(count)
            .query_async(conn)
            .await?;
        letters(v)
    }
}

/// The `XRANGE` start after cursor `after` (exclusive), or the stream's start.
fn range_start(after: Option<&str>) -> Result<String> {
    match after {
        Some(a) if is_entry_id(a) => Ok(format!("({a}")),
        Some(a) => Err(not_an_entry_id("after", a)),
        None => Ok("-".to_owned()),
    }
}

fn not_an_entry_id(name: &'static str, value: &str) -> crate::Error {
    ConfigError::InvalidSetting {
        name,
        reason: format!("{value:?} is not a dead-letter entry id (<ms>-<seq>)"),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_told_from_job_ids() {
        assert!(is_entry_id("1700000000000-0"));
        for not in ["", "-", "1-", "normal-1-0", "order-17", "1-2-3"] {
            assert!(!is_entry_id(not), "{not}");
        }
    }
}
