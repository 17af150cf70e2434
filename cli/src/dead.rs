//! Dead letters: list (filtered by type and error text, paged, or grouped
//! by error), show one (by entry id or job id), replay one or every match,
//! purge.

use std::collections::BTreeMap;

use ferry_broker::{DeadFilter, DeadLetter, ReplayedLetter};
use serde::Serialize;

use crate::admin::Admin;
use crate::error::{Error, Result};

/// Most entries one page of [`Admin::dead_list`] reads to find its matches.
pub const MAX_SCAN_PER_PAGE: usize = 10_000;

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

/// Dead letters sharing one error text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeadGroup {
    /// The error text.
    pub error: String,
    /// How many dead letters have it.
    pub count: u64,
    /// How many of each job type.
    pub types: BTreeMap<String, u64>,
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
    /// The groups, by count (largest first), then error text.
    pub groups: Vec<DeadGroup>,
    /// Matching dead letters in all groups.
    pub total: u64,
    /// Entries read.
    pub scanned: u64,
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
    /// Each of them, oldest first.
    pub replayed: Vec<ReplayedView>,
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

    /// Every dead letter of `queue` passing `filter` after entry `after`,
    /// grouped by error text. Reads the rest of the stream, a page at a
    /// time.
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
        let mut groups: BTreeMap<String, DeadGroup> = BTreeMap::new();
        let (mut cursor, mut scanned) = (after.map(str::to_owned), 0);
        loop {
            let page = q
                .dead_page(
                    &mut conn,
                    filter,
                    cursor.as_deref(),
                    MAX_SCAN_PER_PAGE,
                    MAX_SCAN_PER_PAGE,
                )
                .await
                .map_err(|e| self.fail(e))?;
            scanned += page.scanned;
            for letter in page.letters {
                let error = letter.get("error").unwrap_or_default().to_owned();
                let job_type = letter.get("type").unwrap_or("(none)").to_owned();
                let group = groups.entry(error.clone()).or_insert_with(|| DeadGroup {
                    error,
                    count: 0,
                    types: BTreeMap::new(),
                    first_entry: letter.entry_id.clone(),
                    last_entry: letter.entry_id.clone(),
                });
                group.count += 1;
                *group.types.entry(job_type).or_default() += 1;
                group.last_entry = letter.entry_id;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut groups: Vec<DeadGroup> = groups.into_values().collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.error.cmp(&b.error)));
        Ok(DeadGroups {
            queue: queue.to_owned(),
            total: groups.iter().map(|g| g.count).sum(),
            groups,
            scanned,
        })
    }

    /// The dead letter of `queue` with entry id `id`, or else the one of
    /// job `id`.
    ///
    /// # Errors
    /// [`Error::DeadLetterNotFound`]; Redis errors.
    pub async fn dead_show(&self, queue: &str, id: &str) -> Result<DeadView> {
        Ok(self.find_dead(queue, id).await?.into())
    }

    /// Moves one dead letter of `queue` (by entry id or job id) back to
    /// its priority stream as attempt 1, keeping its job id (`replay.lua`,
    /// atomic).
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
        })
    }

    /// Moves every dead letter of `queue` passing `filter` (every one, for
    /// an empty filter) back to its stream, each atomically; only those
    /// there when the call starts (see
    /// [`Queue::replay_matching`](ferry_broker::Queue::replay_matching)).
    ///
    /// # Errors
    /// Redis errors (the letters replayed before stay replayed).
    pub async fn dead_replay_matching(&self, queue: &str, filter: &DeadFilter) -> Result<Replayed> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        let replayed: Vec<ReplayedView> = q
            .replay_matching(&mut conn, filter)
            .await
            .map_err(|e| self.fail(e))?
            .into_iter()
            .map(ReplayedView::from)
            .collect();
        Ok(Replayed {
            queue: queue.to_owned(),
            count: replayed.len(),
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
