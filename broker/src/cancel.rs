//! Cancelling a job by id (`cancel.lua`).

use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::reply;
use crate::scripts;
use crate::status::JobState;

/// What a cancel did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was scheduled, retrying or queued: removed, and recorded cancelled.
    Cancelled,
    /// It is running on `worker`: its worker is told (its handler's
    /// cancellation token fires) and the job ends cancelled when the
    /// attempt ends, whatever the handler returns. Asking again is harmless.
    Cancelling {
        /// The consumer running it (empty when asked before).
        worker: String,
    },
    /// It had finished already, in this state (`Cancelled` when it was
    /// cancelled before).
    Final(JobState),
    /// No job with this id (or its record is no longer kept).
    NotFound,
}

impl Queue {
    /// Cancels job `id`: a scheduled, retrying or queued job is removed
    /// atomically and recorded cancelled; a running one's worker is told
    /// through Pub/Sub (`P:{Q}:cancel`) and the job ends cancelled when its
    /// attempt ends. One round trip.
    ///
    /// # Errors
    /// [`Error::Redis`] or [`Error::Protocol`].
    pub async fn cancel<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        id: &str,
    ) -> Result<CancelOutcome> {
        if !crate::envelope::is_job_id(id) {
            return Ok(CancelOutcome::NotFound);
        }
        let mut inv = self.invoke(&scripts::CANCEL);
        inv.arg(id);
        let v: Value = inv.invoke_async(conn).await?;
        let bad = || Error::Protocol(format!("cancel: {v:?}"));
        if matches!(v, Value::Nil | Value::Boolean(false)) {
            return Ok(CancelOutcome::NotFound);
        }
        let items = reply::array(&v).ok_or_else(bad)?;
        let tag = items.first().and_then(reply::string).ok_or_else(bad)?;
        Ok(match (tag.as_str(), items) {
            ("cancelled", _) => CancelOutcome::Cancelled,
            ("cancelling", [_, worker]) => CancelOutcome::Cancelling {
                worker: reply::string(worker).unwrap_or_default(),
            },
            ("final", [_, state]) => CancelOutcome::Final(
                reply::string(state)
                    .as_deref()
                    .and_then(JobState::parse)
                    .ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        })
    }
}
