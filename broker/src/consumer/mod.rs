//! The consumer side of the protocol: a [`Consumer`] is one worker process's
//! handle on a queue, and every operation that hands entries to it or
//! settles them takes it.
//!
//! - [`claim`]: strict-priority claims and the blocking read.
//! - [`delivery`]: [`Delivery`] and [`EntryId`], parsed from replies.
//! - [`settle`]: ack, retry and dead-letter.
//! - [`recovery`](crate::recovery): lease renewal and recovery, also on [`Consumer`].

pub mod claim;
pub mod delivery;
pub mod settle;

use redis::aio::ConnectionLike;
use redis::ScriptInvocation;

use crate::error::Result;
use crate::keys::GROUP;
use crate::priority::Priority;
use crate::queue::Queue;
use crate::scripts::QueueScript;

pub use delivery::{Delivery, EntryId};
pub use settle::{record_fields, DeadLetterKind, DeadLettered, Finished, Settled};

/// Most entry ids passed to one script call (ack, renew): Lua's `unpack`
/// accepts about 8,000 values, so longer lists are sent in chunks.
pub const MAX_IDS_PER_CALL: usize = 1000;

/// One consumer of a queue's group: a worker process, by the name it reads
/// with (unique per process; see XINFO CONSUMERS). Cheap to clone.
///
/// ```no_run
/// # async fn example() -> ferry_broker::Result<()> {
/// use ferry_broker::Queue;
/// let client = redis::Client::open("redis://127.0.0.1:6379")?;
/// let mut conn = client.get_multiplexed_async_connection().await?;
/// let queue = Queue::new("emails")?;
/// queue.ensure_groups(&mut conn).await?;
/// let me = queue.consumer("host-1234-abcdef");
/// for delivery in me.claim(&mut conn, 10).await? {
///     // ... run it, then settle it:
///     me.ack(&mut conn, &[delivery.entry]).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Consumer {
    queue: Queue,
    name: String,
    /// Whether the queue's types or keys had rate limits or holds at the
    /// last claim: then claims go through `claim_rated.lua` (the scripts
    /// say when to switch).
    rated: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Consumer {
    pub(crate) fn new(queue: Queue, name: String) -> Self {
        Self {
            queue,
            name,
            rated: std::sync::Arc::default(),
        }
    }

    /// The consumer's name in the group.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue it consumes.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// One invocation of `script` per stream of `entries` and per
    /// [`MAX_IDS_PER_CALL`] of its ids, with the ARGV of the scripts that
    /// take a list of this consumer's entries (`ack.lua`, `renew.lua`):
    /// consumer, priority index, lowest id, highest id, the ids.
    pub(crate) fn calls_on_entries<'s, 'e>(
        &self,
        script: &'s QueueScript,
        entries: impl IntoIterator<Item = &'e EntryId>,
    ) -> Vec<(Priority, ScriptInvocation<'s>)> {
        let mut calls = Vec::new();
        for (priority, ids) in ids_by_priority(entries) {
            for chunk in ids.chunks(MAX_IDS_PER_CALL) {
                let (lo, hi) = id_range(chunk);
                let mut inv = self.queue.invoke(script);
                inv.arg(&self.name)
                    .arg(priority.script_index())
                    .arg(lo)
                    .arg(hi)
                    .arg(chunk);
                calls.push((priority, inv));
            }
        }
        calls
    }
}

impl Queue {
    /// Creates the consumer group on every priority stream (MKSTREAM,
    /// reading from the start); an existing group is left as it is. When
    /// Redis is out of memory it refuses XGROUP CREATE even for a group that
    /// exists; then a group that exists is enough (so a worker started
    /// during OOM still drains the queue, which frees memory).
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis) for anything but BUSYGROUP, and
    /// OOM where a group is missing.
    pub async fn ensure_groups<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<()> {
        for stream in self.keys().streams() {
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
                Err(e) if e.code() == Some("OOM") => {
                    let exists: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
                        .arg("CONSUMERS")
                        .arg(stream)
                        .arg(GROUP)
                        .query_async(conn)
                        .await;
                    if exists.is_err() {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The lowest and highest of stream entry ids (`ms-seq`, compared as
/// numbers), as XPENDING range bounds; `-` and `+` when one does not parse.
pub(crate) fn id_range(ids: &[&str]) -> (String, String) {
    let parse = |id: &str| -> Option<(u64, u64)> {
        let (ms, seq) = id.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    };
    let mut range: Option<((u64, u64), (u64, u64))> = None;
    for id in ids {
        let Some(p) = parse(id) else {
            return ("-".to_owned(), "+".to_owned());
        };
        range = Some(match range {
            None => (p, p),
            Some((lo, hi)) => (lo.min(p), hi.max(p)),
        });
    }
    match range {
        Some((lo, hi)) => (format!("{}-{}", lo.0, lo.1), format!("{}-{}", hi.0, hi.1)),
        None => ("-".to_owned(), "+".to_owned()),
    }
}

/// The ids of `entries` grouped by priority, highest first, for the scripts
/// that take the ids of one stream per call.
fn ids_by_priority<'e>(
    entries: impl IntoIterator<Item = &'e EntryId>,
) -> impl Iterator<Item = (Priority, Vec<&'e str>)> {
    let mut groups: [Vec<&str>; 4] = Default::default();
    for e in entries {
        groups[e.priority.index()].push(e.id.as_str());
    }
    Priority::ALL
        .into_iter()
        .zip(groups)
        .filter(|(_, ids)| !ids.is_empty())
}
