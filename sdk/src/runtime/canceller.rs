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

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::link::Link;

use super::served::ServedQueue;

/// How often the Pub/Sub connection is pinged (a half-open connection is
/// found within twice this).
const KEEPALIVE: Duration = Duration::from_secs(10);

/// The cancellation tokens of the jobs running on this worker, by queue
/// and job id (`"<queue> <id>"`: a queue name has no space).
#[derive(Default)]
pub(crate) struct Running {
    tokens: Mutex<HashMap<String, CancellationToken>>,
}

impl Running {
    /// Registers job `id` of `queue` as running here; its token,
    /// unregistered when the guard drops.
    pub(crate) fn start(self: &Arc<Self>, queue: &str, id: &str) -> RunningGuard {
        let token = CancellationToken::new();
        let key = format!("{queue} {id}");
        self.lock().insert(key.clone(), token.clone());
        RunningGuard {
            running: Arc::clone(self),
            id: key,
            token,
        }
    }

    /// Fires the token of job `id` of `queue` if it runs here; true when it did.
    pub(crate) fn cancel(&self, queue: &str, id: &str) -> bool {
        match self.lock().get(&format!("{queue} {id}")) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A job registered as running; unregisters it when dropped.
pub(crate) struct RunningGuard {
    running: Arc<Running>,
    id: String,
    pub token: CancellationToken,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.running.lock().remove(&self.id);
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
        let pubsub = self.conn.client().get_async_pubsub().await?;
        let (mut sink, mut stream) = pubsub.split();
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
                msg = stream.next() => {
                    let Some(msg) = msg else {
                        return Err(redis::RedisError::from((redis::ErrorKind::Io, "Pub/Sub connection closed")));
                    };
                    let queue = channels.get(msg.get_channel_name());
                    if let (Some(queue), Ok(id)) = (queue, msg.get_payload::<String>()) {
                        self.fire(queue, &id);
                    }
                }
                _ = keepalive.tick() => {
                    match tokio::time::timeout(KEEPALIVE, sink.ping::<redis::Value>()).await {
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
