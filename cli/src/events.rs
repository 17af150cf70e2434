//! A queue's lifecycle events (the stream `P:{Q}:events`, written while
//! the queue's `events` setting is on): a page of those kept, or a
//! subscription to those to come. For `ferry events` and
//! `/v1/queues/{queue}/events`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::admin::Admin;
use crate::error::{Error, Result};

/// Most events in one page.
pub const MAX_EVENTS_PAGE: usize = 1_000;

/// One lifecycle event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// Its entry id in the events stream: read on after it.
    pub entry_id: String,
    /// enqueued, started, progress, retrying, succeeded, dead, cancelled
    /// or recovered.
    pub event: String,
    /// The job id.
    pub job_id: String,
    /// What else it carries: `worker`, `error`, `progress` (JSON text),
    /// `run_at`, where they apply.
    pub fields: BTreeMap<String, String>,
}

impl From<ferry_broker::Event> for EventView {
    fn from(e: ferry_broker::Event) -> Self {
        Self {
            entry_id: e.entry_id,
            event: e.event,
            job_id: e.job_id,
            fields: e.fields,
        }
    }
}

/// A page of events, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// The queue.
    pub queue: String,
    /// The events after the position asked for, oldest first.
    pub events: Vec<EventView>,
    /// Where to read on from: the last event's entry id, or the position
    /// asked for when there was none.
    pub next: String,
}

/// True for a position in the events stream: `0`, `ms` or `ms-seq`
/// (canonical numbers, each within a u64).
pub fn is_position(s: &str) -> bool {
    let number = |p: &str| {
        !p.is_empty()
            && p.len() <= 20
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'))
            && p.parse::<u64>().is_ok()
    };
    match s.split_once('-') {
        Some((ms, seq)) => number(ms) && number(seq),
        None => number(s),
    }
}

/// Checks a position given by a caller.
///
/// # Errors
/// [`Error::Input`] naming what a position looks like.
pub fn check_position(s: &str) -> Result<()> {
    if is_position(s) {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "{s:?} is not a position in the events stream: use 0 (from the oldest kept) or an event's entry id (ms-seq)"
        )))
    }
}

impl Admin {
    /// Up to `limit` (1 to [`MAX_EVENTS_PAGE`]) of `queue`'s events after
    /// `after` (an entry id, or `0` for the oldest kept), without waiting.
    ///
    /// # Errors
    /// A bad queue name, position or limit; Redis errors.
    pub async fn events(&self, queue: &str, after: &str, limit: usize) -> Result<EventPage> {
        check_position(after)?;
        if limit == 0 || limit > MAX_EVENTS_PAGE {
            return Err(Error::Input(format!(
                "limit {limit}: a page holds 1 to {MAX_EVENTS_PAGE} events"
            )));
        }
        let q = self.queue(queue)?;
        let events: Vec<EventView> = q
            .read_events(&mut self.conn(), after, limit, 0)
            .await
            .map_err(|e| self.fail(e))?
            .into_iter()
            .map(EventView::from)
            .collect();
        let next = events
            .last()
            .map_or_else(|| after.to_owned(), |e| e.entry_id.clone());
        Ok(EventPage {
            queue: queue.to_owned(),
            events,
            next,
        })
    }

    /// `queue`'s events after `after` (an entry id), or from now on
    /// (`None`), as they come: a subscription on a connection of its own.
    ///
    /// # Errors
    /// A bad queue name or position; Redis errors.
    pub async fn subscribe(
        &self,
        queue: &str,
        after: Option<&str>,
    ) -> Result<ferry_queue::Subscription> {
        if let Some(a) = after {
            check_position(a)?;
        }
        self.client()
            .subscribe(queue, after)
            .await
            .map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_stream_ids() {
        for ok in ["0", "0-0", "1700000000000-3", "18446744073709551615-0"] {
            assert!(is_position(ok), "{ok}");
        }
        for bad in [
            "",
            "$",
            "+",
            "-",
            "01-0",
            "1-",
            "-1",
            "1-2-3",
            "18446744073709551616",
            "a-b",
            " 1",
        ] {
            assert!(!is_position(bad), "{bad}");
        }
    }
}
