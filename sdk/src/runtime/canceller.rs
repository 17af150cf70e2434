//! The canceller: tells running handlers that their job was cancelled.
//!
//! `cancel.lua` publishes a running job's id on its queue's channel
//! `P:{Q}:cancel` (and keeps the request in `P:{Q}:cancels`). This
//! component keeps one Pub/Sub connection subscribed to the channels of
//! the queues this worker serves and fires the job's cancellation token
//! (`JobContext::cancel`) when the job runs here: within a round trip of
//! the cancel, with no polling per job. After it (re)connects it reads the
//! pending requests (`HKEYS P:{Q}:cancels`), since messages sent while it
//! was disconnected are lost. Whatever the handler returns then, the job
//! ends cancelled (the finishing scripts check the request).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::link::Link;
use crate::notices::Notice;

use super::served::ServedQueue;

/// How often the Pub/Sub connection is pinged (a half-open connection is
/// found within twice this).
const KEEPALIVE: Duration = Duration::from_secs(10);

/// The cancellation tokens of the jobs running on this worker, by queue
/// and job id (`"<queue> <id>"`: a queue name has no space), and the
/// cancellations heard for jobs not running here (yet: a job claimed but
/// waiting for a slot, or held through a pause, gets its token fired as it
/// starts). Those are forgotten after [`HEARD_KEPT`].
#[derive(Default)]
pub(crate) struct Running {
    tokens: Mutex<Tokens>,
}

#[derive(Default)]
struct Tokens {
    running: HashMap<String, (u64, CancellationToken)>,
    heard: HashMap<String, std::time::Instant>,
    next: u64,
}

/// How long a cancellation heard for a job not running here is kept.
const HEARD_KEPT: Duration = Duration::from_secs(600);

impl Running {
    /// Registers job `id` of `queue` as running here; its token,
    /// unregistered when the guard drops.
    pub(crate) fn start(self: &Arc<Self>, queue: &str, id: &str) -> RunningGuard {
        let token = CancellationToken::new();
        let key = format!("{queue} {id}");
        let mut t = self.lock();
        if t.heard.remove(&key).is_some() {
            token.cancel();
        }
        t.next += 1;
        let seq = t.next;
        t.running.insert(key.clone(), (seq, token.clone()));
        RunningGuard {
            running: Arc::clone(self),
            id: key,
            seq,
            token,
        }
    }

    /// Fires the token of job `id` of `queue` if it runs here (true), or
    /// keeps the request for when it starts here (false).
    pub(crate) fn cancel(&self, queue: &str, id: &str) -> bool {
        let key = format!("{queue} {id}");
        let mut t = self.lock();
        if let Some((_, token)) = t.running.get(&key) {
            token.cancel();
            return true;
        }
        let now = std::time::Instant::now();
        t.heard.retain(|_, at| now.duration_since(*at) < HEARD_KEPT);
        t.heard.insert(key, now);
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tokens> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A job registered as running; unregisters it when dropped.
pub(crate) struct RunningGuard {
    running: Arc<Running>,
    id: String,
    /// Which registration this is (another attempt of the same job may
    /// have registered since, on this worker).
    seq: u64,
    pub token: CancellationToken,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut t = self.running.lock();
        if t.running
            .get(&self.id)
            .is_some_and(|(seq, _)| *seq == self.seq)
        {
            t.running.remove(&self.id);
        }
    }
}

pub(crate) struct Canceller {
    pub queues: Vec<Arc<ServedQueue>>,
    pub conn: Link,
    pub running: Arc<Running>,
}

impl Canceller {
    /// Listens until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut failures = 0u32;
        while !stop.is_cancelled() {
            tokio::select! {
                _ = stop.cancelled() => break,
                ended = self.listen() => {
                    if let Err(e) = ended {
                        failures += 1;
                        if failures == 1 || failures.is_multiple_of(30) {
                            tracing::warn!(error = %e, "cancellations: the Pub/Sub connection failed; reconnecting (running jobs cancelled meanwhile are told at the reconnect)");
                        }
                    }
                }
            }
            let delay = Duration::from_millis(100 * u64::from(failures.clamp(1, 10)));
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        tracing::debug!("canceller stopped");
    }

    /// One connection's life: subscribe, catch up, relay messages.
    async fn listen(&self) -> redis::RedisResult<()> {
        let (mut sink, mut stream) = self.conn.notices().connect().await?;
        let channels: HashMap<String, &str> = self
            .queues
            .iter()
            .map(|q| (q.consumer.queue().keys().cancel_channel(), q.name()))
            .collect();
        for channel in channels.keys() {
            sink.subscribe(channel).await?;
        }
        // Requests made while not subscribed.
        for q in &self.queues {
            let mut conn = self.conn.clone();
            let pending: Vec<String> = redis::cmd("HKEYS")
                .arg(q.consumer.queue().keys().cancels())
                .query_async(&mut conn)
                .await?;
            for id in pending {
                self.fire(q.name(), &id);
            }
        }
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            tokio::select! {
                notice = stream.next() => {
                    let Some(Notice::Message { channel, payload }) = notice else {
                        return Err(redis::RedisError::from((redis::ErrorKind::Io, "Pub/Sub connection closed or its subscriptions dropped")));
                    };
                    let queue = channels.get(channel.as_str());
                    if let (Some(queue), Ok(id)) = (queue, std::str::from_utf8(&payload)) {
                        self.fire(queue, id);
                    }
                }
                _ = keepalive.tick() => {
                    match tokio::time::timeout(KEEPALIVE, sink.ping()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(e),
                        Err(_) => return Err(redis::RedisError::from((redis::ErrorKind::Io, "Pub/Sub ping timed out"))),
                    }
                }
            }
        }
    }

    fn fire(&self, queue: &str, id: &str) {
        if self.running.cancel(queue, id) {
            tracing::info!(
                queue,
                id,
                "job cancelled: its handler's cancellation token fired"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_heard_before_the_job_starts_fires_as_it_starts() {
        let running = Arc::new(Running::default());
        assert!(!running.cancel("q", "job-1"), "not running yet: kept");
        let guard = running.start("q", "job-1");
        assert!(guard.token.is_cancelled());
        let other = running.start("q", "job-2");
        assert!(!other.token.is_cancelled());
        assert!(running.cancel("q", "job-2"));
        assert!(other.token.is_cancelled());
        // Another attempt of job-2 registered meanwhile survives the first's end.
        let again = running.start("q", "job-2");
        drop(other);
        assert!(running.cancel("q", "job-2"));
        assert!(again.token.is_cancelled());
        drop(guard);
    }
}
