//! [`Subscription`]: a queue's lifecycle events as they come
//! ([`Client::subscribe`](crate::Client::subscribe)).

use std::collections::VecDeque;

use ferry_broker::{Event, Queue};

use crate::error::Result;
use crate::link::Link;

/// How long one read blocks in Redis before it is sent again.
const BLOCK_MS: u64 = 1_000;

/// The events of one queue, from the moment of the subscription (or from
/// an entry id), in order. Blocks on Redis (XREAD BLOCK) on a connection of
/// its own; nothing polls. Events are written only while the queue's
/// events are on ([`Client::set_events`](crate::Client::set_events)); a
/// reader slower than the stream's cap misses the oldest.
pub struct Subscription {
    queue: Queue,
    conn: Link,
    after: String,
    buffered: VecDeque<Event>,
}

impl Subscription {
    pub(crate) fn new(queue: Queue, conn: Link, after: String) -> Self {
        Self {
            queue,
            conn,
            after,
            buffered: VecDeque::new(),
        }
    }

    /// The next event, waiting as long as it takes.
    ///
    /// # Errors
    /// [`Error::Redis`](crate::Error::Redis) when Redis cannot be read;
    /// calling again carries on from the last event returned.
    pub async fn next(&mut self) -> Result<Event> {
        loop {
            if let Some(e) = self.buffered.pop_front() {
                self.after = e.entry_id.clone();
                return Ok(e);
            }
            let mut conn = self.conn.clone();
            let read = self
                .queue
                .read_events(&mut conn, &self.after, 100, BLOCK_MS)
                .await?;
            self.buffered.extend(read);
        }
    }

    /// The entry id of the last event returned (subscribe from it again
    /// to carry on after a restart).
    pub fn position(&self) -> &str {
        &self.after
    }
}
