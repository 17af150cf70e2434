//! The delayed set: jobs enqueued to run later and retries waiting out their
//! backoff, promoted into their priority streams when due.

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::reply;
use crate::scripts;

/// Most members one promote call moves.
pub const PROMOTE_BATCH: usize = 500;

/// The outcome of one promote call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promoted {
    /// Jobs moved into their streams.
    pub moved: u64,
    /// Run-at (ms) of the earliest job still waiting, if any.
    pub next_at: Option<u64>,
}

impl Queue {
    /// Moves up to [`PROMOTE_BATCH`] jobs due at `now_ms` into their priority
    /// streams, atomically, and says when the next one is due.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn promote_due<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        now_ms: u64,
    ) -> Result<Promoted> {
        let mut inv = scripts::PROMOTE.prepare_invoke();
        inv.key(self.keys.delayed());
        for s in self.keys.streams() {
            inv.key(s);
        }
        inv.arg(now_ms).arg(PROMOTE_BATCH);
        let v: Value = inv.invoke_async(conn).await?;
        match reply::array(&v) {
            Some([moved, next]) => {
                let next = reply::int(next).unwrap_or(-1);
                Ok(Promoted {
                    moved: reply::int(moved).unwrap_or(0).max(0) as u64,
                    next_at: (next >= 0).then_some(next as u64),
                })
            }
            _ => Err(Error::Protocol(format!("promote: {v:?}"))),
        }
    }

    /// Number of jobs in the delayed set (scheduled or waiting to retry).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn delayed_len<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<u64> {
        Ok(redis::cmd("ZCARD")
            .arg(self.keys.delayed())
            .query_async(conn)
            .await?)
    }
}
