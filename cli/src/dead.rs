//! Dead letters: list (filtered by type and error text, paged, or grouped
//! by error), show one (by entry id or job id), replay one or every match,
//! purge.

use std::collections::BTreeMap;

use ferry_broker::dead_query::CHUNK;
use ferry_broker::{DeadFilter, DeadLetter, ReplayedLetter};
use serde::Serialize;

use crate::admin::Admin;
use crate::error::{Error, Result};

/// Most entries one page of [`Admin::dead_list`] reads to find its matches.
pub const MAX_SCAN_PER_PAGE: usize = 10_000;

/// Most distinct error texts [`Admin::dead_groups`] counts apart; dead
/// letters with further texts are counted together (`ungrouped`).
pub const MAX_GROUPS: usize = 1_000;

/// Most job types a [`DeadGroup`] counts apart; letters of further types
/// are counted together (`other_types`).
pub const MAX_TYPES_PER_GROUP: usize = 100;

/// Most replayed dead letters a [`Replayed`] lists one by one; it counts
/// them all (`count`) and says how many it leaves out (`omitted`).
pub const MAX_REPLAYED_LISTED: usize = 1_000;

/// Fields of a dead letter that [`DeadView`] shows by name.
const NAMED_FIELDS: [&str; 9] = [
    "id",
    "type",
    "payload",
    "error",
    "failed_at",
    "priority",
    "attempt",
    "max_retries",
    "enqueued_at",
];

/// One dead letter, its fields named.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadView {
    /// The dead-letter entry id (a cursor, and what replay takes).
    pub entry_id: String,
    /// The job id.
    pub job_id: Option<String>,
    /// The job type.
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    /// Why it died.
    pub error: Option<String>,
    /// When it died (ms since the epoch).
    pub failed_at: Option<u64>,
    /// Its priority.
    pub priority: Option<String>,
    /// The attempt that failed last.
    pub attempt: Option<u32>,
    /// Retries it was allowed.
    pub max_retries: Option<u32>,
    /// When it was first enqueued (ms since the epoch).
    pub enqueued_at: Option<u64>,
    /// The payload: JSON when it is JSON, else the text as stored.
    pub payload: Option<serde_json::Value>,
    /// Any other fields (`last_error`, or those of an entry that was not a
    /// valid job).
    pub fields: BTreeMap<String, String>,
}

impl From<DeadLetter> for DeadView {
    fn from(l: DeadLetter) -> Self {
        let text = |k: &str| l.get(k).map(str::to_owned);
        let num = |k: &str| l.get(k).and_then(|v| v.parse::<u64>().ok());
        Self {
            job_id: text("id"),
            job_type: text("type"),
            error: text("error"),
            failed_at: num("failed_at"),
            priority: text("priority"),
            attempt: num("attempt").and_then(|n| u32::try_from(n).ok()),
            max_retries: num("max_retries").and_then(|n| u32::try_from(n).ok()),
            enqueued_at: num("enqueued_at"),
            payload: l.get("payload").map(|p| {
                serde_json::from_str(p).unwrap_or_else(|_| serde_json::Value::String(p.to_owned()))
            }),
            fields: l
                .fields
                .iter()
                .filter(|(k, _)| !NAMED_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            entry_id: l.entry_id,
        }
    }
}

/// A page of dead letters.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadListing {
    /// The queue.
    pub queue: String,
    /// The matching dead letters, oldest first.
    pub letters: Vec<DeadView>,
    /// The cursor of the next page (`--after`), or `None` at the end.
    pub next: Option<String>,
    /// How many entries were read for this page.
    pub scanned: u64,
}

/// Dead letters sharing one error text: counts, and the entry ids of the
/// oldest and newest as a sample (never the letters themselves).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeadGroup {
    /// The error text.
    pub error: String,
    /// How many dead letters have it.
    pub count: u64,
    /// How many of each job type (at most [`MAX_TYPES_PER_GROUP`] types).
    pub types: BTreeMap<String, u64>,
    /// Dead letters of the group whose job type is not in `types` (it was
    /// full).
    pub other_types: u64,
    /// The oldest dead letter's entry id.
    pub first_entry: String,
    /// The newest dead letter's entry id.
    pub last_entry: String,
}

/// Dead letters grouped by error text, the biggest group first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeadGroups {
    /// The queue.
    pub queue: String,
    /// The groups, by count (largest first), then error text: the first
    /// [`MAX_GROUPS`] distinct error texts met, oldest letter first.
    pub groups: Vec<DeadGroup>,
    /// Matching dead letters: those in `groups` plus `ungrouped`.
    pub total: u64,
    /// Matching dead letters whose error text was met only after
    /// [`MAX_GROUPS`] groups were full (0 unless there are more texts).
    pub ungrouped: u64,
    /// Entries read.
    pub scanned: u64,
}

impl DeadGroups {
    /// Counts `letter` (which passed the filter) in its group; `index`
    /// maps the error texts of `groups` to their positions.
    fn add(&mut self, index: &mut BTreeMap<String, usize>, letter: &DeadLetter) {
        self.total += 1;
        let error = letter.get("error").unwrap_or_default();
        let at = match index.get(error) {
            Some(&at) => at,
            None if self.groups.len() < MAX_GROUPS => {
                self.groups.push(DeadGroup {
                    error: error.to_owned(),
                    count: 0,
                    types: BTreeMap::new(),
                    other_types: 0,
                    first_entry: letter.entry_id.clone(),
                    last_entry: String::new(),
                });
                index.insert(error.to_owned(), self.groups.len() - 1);
                self.groups.len() - 1
            }
            None => {
                self.ungrouped += 1;
                return;
            }
        };
        let Some(group) = self.groups.get_mut(at) else {
            self.ungrouped += 1;
            return;
        };
        group.count += 1;
        group.last_entry.clone_from(&letter.entry_id);
        let job_type = letter.get("type").unwrap_or("(none)");
        if let Some(n) = group.types.get_mut(job_type) {
            *n += 1;
        } else if group.types.len() < MAX_TYPES_PER_GROUP {
            group.types.insert(job_type.to_owned(), 1);
        } else {
            group.other_types += 1;
        }
    }
}

/// One dead letter moved back to its stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReplayedView {
    /// The dead-letter entry it was.
    pub dead_entry: String,
    /// The job id (kept).
    pub job_id: Option<String>,
    /// Its new entry in its priority stream.
    pub entry_id: String,
}

impl From<ReplayedLetter> for ReplayedView {
    fn from(r: ReplayedLetter) -> Self {
        Self {
            dead_entry: r.dead_entry,
            job_id: r.job_id,
            entry_id: r.entry_id,
        }
    }
}

/// What [`Admin::dead_replay`] and [`Admin::dead_replay_matching`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// The queue.
    pub queue: String,
    /// How many dead letters went back to their streams.
    pub count: usize,
    /// Each of them, oldest first: the first [`MAX_REPLAYED_LISTED`].
    pub replayed: Vec<ReplayedView>,
    /// How many of `count` are not in `replayed` (0 up to
    /// [`MAX_REPLAYED_LISTED`] replayed).
    pub omitted: usize,
}

/// What [`Admin::dead_purge`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Purged {
    /// The queue.
    pub queue: String,
    /// How many dead letters were deleted.
    pub purged: u64,
}

impl Admin {
    /// Up to `limit` dead letters of `queue` passing `filter`, oldest
    /// first, after entry `after` (the `next` cursor of a previous page).
    /// A page reads at most [`MAX_SCAN_PER_PAGE`] entries, so a narrow
    /// filter on a long stream may return fewer than `limit` with a `next`
    /// cursor.
    ///
    /// # Errors
    /// [`Error::Ferry`] for a bad cursor, limit or queue name; Redis errors.
    pub async fn dead_list(
        &self,
        queue: &str,
        filter: &DeadFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<DeadListing> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let page = q
            .dead_page(&mut conn, filter, after, limit, MAX_SCAN_PER_PAGE)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(DeadListing {
            queue: queue.to_owned(),
            letters: page.letters.into_iter().map(DeadView::from).collect(),
            next: page.next,
            scanned: page.scanned,
        })
    }

    /// The dead letters of `queue` passing `filter` after entry `after`,
    /// grouped by error text: every one up to the newest there when the
    /// call starts (letters written meanwhile are left out). Streams
    /// through the dead-letter stream [`CHUNK`] entries at a time and keeps
    /// only counts per group (at most [`MAX_GROUPS`] groups of at most
    /// [`MAX_TYPES_PER_GROUP`] types), so memory stays bounded however long
    /// the stream.
    ///
    /// # Errors
    /// As [`Admin::dead_list`].
    pub async fn dead_groups(
        &self,
        queue: &str,
        filter: &DeadFilter,
        after: Option<&str>,
    ) -> Result<DeadGroups> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let mut out = DeadGroups {
            queue: queue.to_owned(),
            groups: Vec::new(),
            total: 0,
            ungrouped: 0,
            scanned: 0,
        };
        // The walk ends at the newest letter there now. On an empty stream
        // it reads up to 0-0, which no entry can have: nothing, but the
        // cursor is still checked.
        let last = q
            .last_dead_id(&mut conn)
            .await
            .map_err(|e| self.fail(e))?
            .unwrap_or_else(|| "0-0".to_owned());
        let matcher = filter.matcher();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut cursor = after.map(str::to_owned);
        loop {
            let chunk = q
                .dead_chunk(&mut conn, cursor.as_deref(), Some(&last), CHUNK)
                .await
                .map_err(|e| self.fail(e))?;
            for letter in &chunk {
                out.scanned += 1;
                if matcher.matches(letter) {
                    out.add(&mut index, letter);
                }
            }
            match chunk.last() {
                Some(l) if chunk.len() == CHUNK => cursor = Some(l.entry_id.clone()),
                _ => break,
            }
        }
        out.groups
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.error.cmp(&b.error)));
        Ok(out)
    }

    /// The dead letter of `queue` whose entry id is exactly `id`, or else
    /// the one of job `id` (see
    /// [`Queue::find_dead`](ferry_broker::Queue::find_dead)): an entry id
    /// comes first, so a job whose id is also another letter's entry id is
    /// reached by its own letter's entry id.
    ///
    /// # Errors
    /// [`Error::DeadLetterNotFound`]; Redis errors.
    pub async fn dead_show(&self, queue: &str, id: &str) -> Result<DeadView> {
        Ok(self.find_dead(queue, id).await?.into())
    }

    /// Moves one dead letter of `queue` (by exact entry id first, else by
    /// job id, as [`Admin::dead_show`]) back to its priority stream as
    /// attempt 1, keeping its job id (`replay.lua`, atomic).
    ///
    /// # Errors
    /// [`Error::DeadLetterNotFound`]; Redis errors.
    pub async fn dead_replay(&self, queue: &str, id: &str) -> Result<Replayed> {
        let letter = self.find_dead(queue, id).await?;
        let entry_id = self
            .client()
            .replay_dead(queue, &letter.entry_id)
            .await
            .map_err(|e| self.fail(e))?;
        let one = ReplayedView {
            job_id: letter.get("id").map(str::to_owned),
            dead_entry: letter.entry_id,
            entry_id,
        };
        Ok(Replayed {
            queue: queue.to_owned(),
            count: 1,
            replayed: vec![one],
            omitted: 0,
        })
    }

    /// Moves every dead letter of `queue` passing `filter` (every one, for
    /// an empty filter) back to its stream, each atomically; only those up
    /// to the newest there when the call starts, so a job that dies again
    /// meanwhile is not replayed twice (see
    /// [`Queue::replay_matching_each`](ferry_broker::Queue::replay_matching_each)).
    /// Streams through the dead-letter stream a chunk at a time; the report
    /// lists the first [`MAX_REPLAYED_LISTED`] and counts them all.
    ///
    /// # Errors
    /// Redis errors (the letters replayed before stay replayed).
    pub async fn dead_replay_matching(&self, queue: &str, filter: &DeadFilter) -> Result<Replayed> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let mut replayed = Vec::new();
        let moved = q
            .replay_matching_each(&mut conn, filter, |r| {
                if replayed.len() < MAX_REPLAYED_LISTED {
                    replayed.push(ReplayedView::from(r));
                }
            })
            .await
            .map_err(|e| self.fail(e))?;
        let count = usize::try_from(moved).unwrap_or(usize::MAX);
        Ok(Replayed {
            queue: queue.to_owned(),
            omitted: count.saturating_sub(replayed.len()),
            count,
            replayed,
        })
    }

    /// How many dead letters `queue` has.
    ///
    /// # Errors
    /// Redis errors, or a bad queue name.
    pub async fn dead_count(&self, queue: &str) -> Result<u64> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        redis::cmd("XLEN")
            .arg(q.keys().dead())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Deletes the dead letters of `queue` there when it starts (and the
    /// index fields pointing at them), 1,000 per script call.
    ///
    /// # Errors
    /// Redis errors, or a bad queue name.
    pub async fn dead_purge(&self, queue: &str) -> Result<Purged> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let purged = q.purge_dead(&mut conn).await.map_err(|e| self.fail(e))?;
        Ok(Purged {
            queue: queue.to_owned(),
            purged,
        })
    }

    async fn find_dead(&self, queue: &str, id: &str) -> Result<DeadLetter> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        q.find_dead(&mut conn, id)
            .await
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| Error::DeadLetterNotFound {
                queue: queue.to_owned(),
                id: id.to_owned(),
            })
    }
}
