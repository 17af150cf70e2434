//! Replaying every dead letter a [`DeadFilter`] takes, one `replay.lua`
//! (atomic) per letter, a chunk of the stream at a time.

use redis::aio::ConnectionLike;

use super::{DeadFilter, CHUNK};
use crate::error::Result;
use crate::queue::Queue;

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
}
