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

use redis::aio::ConnectionLike;
use redis::Value;

use crate::dead_letter::{letters, DeadLetter};
use crate::error::{ConfigError, Result};
use crate::queue::Queue;

/// Most dead letters read per `XRANGE`.
pub const CHUNK: usize = 1000;

/// The first `XRANGE` of a filtered page reads at least this many entries
/// (later ones read as many as the page has read so far, up to [`CHUNK`]).
const FIRST_FILTERED_CHUNK: usize = 16;

/// Which dead letters to take. Empty (the default) takes every one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadFilter {
    /// Only dead letters of this job type (exact match).
    pub job_type: Option<String>,
    /// Only dead letters whose error contains this text, ignoring case
    /// (Unicode: both sides go through [`fold_case`]).
    pub error: Option<String>,
}

impl DeadFilter {
    /// True when `letter` passes every condition given.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        self.matcher().matches(letter)
    }

    /// True when the filter takes every dead letter.
    pub fn is_empty(&self) -> bool {
        self.job_type.is_none() && self.error.is_none()
    }

    /// The filter with its error text folded once, for matching many letters.
    pub fn matcher(&self) -> DeadMatcher<'_> {
        DeadMatcher {
            job_type: self.job_type.as_deref(),
            error: self.error.as_deref().map(fold_case),
        }
    }
}

/// A [`DeadFilter`] ready to match many letters, its error text folded
/// once (see [`DeadFilter::matcher`]).
#[derive(Clone, Debug)]
pub struct DeadMatcher<'a> {
    job_type: Option<&'a str>,
    error: Option<String>,
}

impl DeadMatcher<'_> {
    /// True when `letter` passes every condition (as [`DeadFilter::matches`]).
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let type_ok = self.job_type.is_none_or(|t| letter.get("type") == Some(t));
        type_ok
            && self.error.as_deref().is_none_or(|needle| {
                letter
                    .get("error")
                    .is_some_and(|e| fold_case(e).contains(needle))
            })
    }
}

/// `text` for matching without regard to case: every character replaced
/// by its Unicode lowercase ([`char::to_lowercase`], one character at a
/// time, so no context rules), with the final sigma `ς` read as `σ`. Not
/// full case folding: `ß` stays `ß` (it does not match `ss`).
pub fn fold_case(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}

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

/// One dead letter moved back to its stream (see [`Queue::replay_matching`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayedLetter {
    /// The dead-letter entry it was.
    pub dead_entry: String,
    /// The job's id (kept by the replay).
    pub job_id: Option<String>,
    /// Its new entry in its priority stream.
    pub entry_id: String,
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

    /// Moves every dead letter passing `filter` (all of them for an empty
    /// one) back to its priority stream as attempt 1, keeping its job id,
    /// and returns what moved, oldest first. As
    /// [`Queue::replay_matching_each`], but holds a [`ReplayedLetter`] per
    /// letter moved: for a stream of any size, use that.
    ///
    /// # Errors
    /// As [`Queue::replay_matching_each`].
    pub async fn replay_matching<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        filter: &DeadFilter,
    ) -> Result<Vec<ReplayedLetter>> {
        let mut out = Vec::new();
        self.replay_matching_each(conn, filter, |r| out.push(r))
            .await?;
        Ok(out)
    }

    /// Moves every dead letter passing `filter` (all of them for an empty
    /// one) back to its priority stream as attempt 1, keeping its job id:
    /// one [`Queue::replay_dead`] (`replay.lua`, atomic) per letter, handing
    /// each one moved to `each`, oldest first; returns how many moved.
    ///
    /// Only the dead letters up to the newest one there when the call
    /// starts are read: a letter written meanwhile (a replayed job that
    /// dies again at once, say) is not replayed, so the call ends however
    /// fast letters arrive. A letter someone else replays or purges
    /// meanwhile is skipped. The stream is read [`CHUNK`] entries at a
    /// time, and only one chunk is held at once.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis): the letters replayed before
    /// the error stay replayed (and were handed to `each`).
    pub async fn replay_matching_each<C, F>(
        &self,
        conn: &mut C,
        filter: &DeadFilter,
        mut each: F,
    ) -> Result<u64>
    where
        C: ConnectionLike + Send,
        F: FnMut(ReplayedLetter),
    {
        let Some(last) = self.last_dead_id(conn).await? else {
            return Ok(0);
        };
        let matcher = filter.matcher();
        let mut after: Option<String> = None;
        let mut moved = 0;
        loop {
            let chunk = self
                .dead_chunk(conn, after.as_deref(), Some(&last), CHUNK)
                .await?;
            let full = chunk.len() == CHUNK;
            for letter in chunk {
                after = Some(letter.entry_id.clone());
                if !matcher.matches(&letter) {
                    continue;
                }
                if let Some(entry_id) = self.replay_dead(conn, &letter.entry_id).await? {
                    moved += 1;
                    each(ReplayedLetter {
                        job_id: letter.get("id").map(str::to_owned),
                        dead_entry: letter.entry_id,
                        entry_id,
                    });
                }
            }
            if !full {
                return Ok(moved);
            }
        }
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

/// A stream entry id `<ms>-<seq>` as numbers, for ordering.
fn entry_key(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    let part = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| p.parse::<u64>().ok())
            .flatten()
    };
    Some((part(ms)?, part(seq)?))
}

/// True for a whole stream entry id, `<ms>-<seq>` (each part a u64).
fn is_entry_id(id: &str) -> bool {
    entry_key(id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(job_type: &str, error: &str) -> DeadLetter {
        DeadLetter {
            entry_id: "1-0".into(),
            fields: [("type", job_type), ("error", error)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    #[test]
    fn filters_match_type_exactly_and_error_text_ignoring_case() {
        let l = letter("email", "SMTP timeout after 30s");
        assert!(DeadFilter::default().matches(&l));
        let by_type = |t: &str| DeadFilter {
            job_type: Some(t.into()),
            error: None,
        };
        let by_error = |e: &str| DeadFilter {
            job_type: None,
            error: Some(e.into()),
        };
        assert!(by_type("email").matches(&l));
        assert!(!by_type("emai").matches(&l));
        assert!(by_error("smtp TIMEOUT").matches(&l));
        assert!(!by_error("refused").matches(&l));
        let both = DeadFilter {
            job_type: Some("email".into()),
            error: Some("refused".into()),
        };
        assert!(!both.matches(&l));
    }

    #[test]
    fn error_text_is_matched_ignoring_case_beyond_ascii() {
        let by_error = |e: &str| DeadFilter {
            job_type: None,
            error: Some(e.into()),
        };
        for (error, needle) in [
            ("Délai DÉPASSÉ après 30 s", "délai dépassé"),
            ("ОШИБКА сети", "ошибка СЕТИ"),
            ("ΑΠΟΤΥΧΙΑ ΣΥΝΔΕΣΗΣ", "συνδεσης"),
            ("Straße gesperrt", "STRAßE"),
        ] {
            let l = letter("email", error);
            assert!(by_error(needle).matches(&l), "{error} / {needle}");
            assert!(by_error(needle).matcher().matches(&l), "{error} / {needle}");
        }
        // Lowercase, not full case folding.
        assert!(!by_error("strasse").matches(&letter("t", "Straße")));
        assert_eq!(fold_case("ΟΔΟΣ"), "οδοσ");
        assert_eq!(fold_case("οδος"), "οδοσ");
    }

    #[test]
    fn entry_ids_are_told_from_job_ids() {
        assert!(is_entry_id("1700000000000-0"));
        for not in ["", "-", "1-", "normal-1-0", "order-17", "1-2-3"] {
            assert!(!is_entry_id(not), "{not}");
        }
        assert!(entry_key("10-0") > entry_key("9-5"));
        assert!(entry_key("10-1") > entry_key("10-0"));
    }
}
