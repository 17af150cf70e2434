//! Finding dead letters, for operators: one by its entry id or its job
//! id, pages filtered by job type and error text, and replaying every
//! match (each one atomically, with `replay.lua`).
//!
//! Reads are `XRANGE`s of the dead-letter stream in chunks of
//! [`CHUNK`] entries; nothing here writes except through
//! [`Queue::replay_dead`].

use redis::aio::ConnectionLike;
use redis::Value;

use crate::dead_letter::{letters, DeadLetter};
use crate::error::{ConfigError, Result};
use crate::queue::Queue;

/// Dead letters read per `XRANGE`.
pub const CHUNK: usize = 1000;

/// Which dead letters to take. Empty (the default) takes every one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadFilter {
    /// Only dead letters of this job type (exact match).
    pub job_type: Option<String>,
    /// Only dead letters whose error contains this text (ignoring ASCII case).
    pub error: Option<String>,
}

impl DeadFilter {
    /// True when `letter` passes every condition given.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let type_ok = self
            .job_type
            .as_deref()
            .is_none_or(|t| letter.get("type") == Some(t));
        let error_ok = self.error.as_deref().is_none_or(|needle| {
            letter.get("error").is_some_and(|e| {
                e.to_ascii_lowercase()
                    .contains(&needle.to_ascii_lowercase())
            })
        });
        type_ok && error_ok
    }

    /// True when the filter takes every dead letter.
    pub fn is_empty(&self) -> bool {
        self.job_type.is_none() && self.error.is_none()
    }
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
    /// The dead letter with entry id `id` (`<ms>-<seq>`), or else the one
    /// of job `id` (through `P:{Q}:index`); `None` when neither exists.
    /// One or two round trips.
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
                return Ok(Some(letter));
            }
        }
        let at: Option<String> = redis::cmd("HGET")
            .arg(self.keys().index())
            .arg(id)
            .query_async(conn)
            .await?;
        match at.as_deref().and_then(|a| a.strip_prefix("dead-")) {
            Some(entry) if is_entry_id(entry) => {
                Ok(self.dead_range(conn, entry, entry, 1).await?.pop())
            }
            _ => Ok(None),
        }
    }

    /// Up to `limit` dead letters passing `filter`, oldest first, after
    /// entry `after` (a cursor from a previous page; `None` from the
    /// start). Reads at most `max_scan` entries (at least one chunk), so a
    /// filter that matches little cannot make one call read a huge
    /// stream: a page may then hold fewer than `limit` letters and still
    /// have a `next` cursor.
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
        let mut start = match after {
            Some(a) if is_entry_id(a) => format!("({a}"),
            Some(a) => {
                return Err(ConfigError::InvalidSetting {
                    name: "after",
                    reason: format!("{a:?} is not a dead-letter entry id (<ms>-<seq>)"),
                }
                .into())
            }
            None => "-".to_owned(),
        };
        let mut page = DeadPage::default();
        let budget = max_scan.max(CHUNK) as u64;
        loop {
            let want = CHUNK.min((budget - page.scanned) as usize);
            let chunk = self.dead_range(conn, &start, "+", want).await?;
            let exhausted = chunk.len() < want;
            let count = chunk.len();
            for (i, letter) in chunk.into_iter().enumerate() {
                page.scanned += 1;
                let id = letter.entry_id.clone();
                if filter.matches(&letter) {
                    page.letters.push(letter);
                }
                let last_of_stream = exhausted && i + 1 == count;
                if page.letters.len() == limit || page.scanned == budget {
                    page.next = (!last_of_stream).then_some(id);
                    return Ok(page);
                }
                start = format!("({id}");
            }
            if exhausted {
                return Ok(page);
            }
        }
    }

    /// Moves every dead letter passing `filter` (all of them for an empty
    /// one) back to its priority stream as attempt 1, keeping its job id:
    /// one [`Queue::replay_dead`] (`replay.lua`, atomic) per letter, read
    /// a chunk of [`CHUNK`] at a time. Only the dead letters there when the
    /// call starts are replayed, so a job that dies again meanwhile is not
    /// replayed twice; a letter someone else replays or purges meanwhile is
    /// skipped. Returns what moved, oldest first.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis): the letters replayed before
    /// the error stay replayed.
    pub async fn replay_matching<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        filter: &DeadFilter,
    ) -> Result<Vec<ReplayedLetter>> {
        let mut out = Vec::new();
        let Some(last) = self.last_dead(conn).await?.and_then(|l| entry_key(&l)) else {
            return Ok(out);
        };
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .dead_page(conn, filter, cursor.as_deref(), CHUNK, CHUNK)
                .await?;
            for letter in page.letters {
                if entry_key(&letter.entry_id).is_none_or(|k| k > last) {
                    return Ok(out);
                }
                if let Some(entry_id) = self.replay_dead(conn, &letter.entry_id).await? {
                    out.push(ReplayedLetter {
                        job_id: letter.get("id").map(str::to_owned),
                        dead_entry: letter.entry_id,
                        entry_id,
                    });
                }
            }
            match page.next {
                Some(next) if entry_key(&next).is_some_and(|k| k < last) => cursor = Some(next),
                _ => return Ok(out),
            }
        }
    }

    /// The id of the newest dead letter, if any.
    async fn last_dead<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<Option<String>> {
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

    /// `XRANGE dead start end COUNT count`, as dead letters.
    async fn dead_range<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        start: &str,
        end: &str,
        count: usize,
    ) -> Result<Vec<DeadLetter>> {
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
    fn entry_ids_are_told_from_job_ids() {
        assert!(is_entry_id("1700000000000-0"));
        for not in ["", "-", "1-", "normal-1-0", "order-17", "1-2-3"] {
            assert!(!is_entry_id(not), "{not}");
        }
        assert!(entry_key("10-0") > entry_key("9-5"));
        assert!(entry_key("10-1") > entry_key("10-0"));
    }
}
