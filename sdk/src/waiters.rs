//! Waiting for jobs to finish: one Pub/Sub connection per client, shared by
//! every [`Client::wait`](crate::Client::wait) call.
//!
//! The scripts that finish a job (`ack.lua`, dead-lettering) publish
//! `<state> <id> <id> ...` on the queue's channel `P:{Q}:finished`. The
//! first wait on a queue subscribes to its channel; a wait registers its job
//! id, then reads the job's status (so a job that finished before the wait
//! began is answered at once), then sleeps until a notice names its id.
//! Nothing polls. After the Pub/Sub connection drops, the hub reconnects,
//! subscribes again and wakes every waiter to read its job's status again,
//! since notices sent meanwhile were lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferry_broker::JobState;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

/// Why a waiter was woken: a notice with the job's final state, or a
/// reconnect after which it must look again.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wake {
    Finished(JobState),
    LookAgain,
}

type Senders = Vec<oneshot::Sender<Wake>>;

#[derive(Default)]
struct State {
    /// Waiters by channel, then job id.
    waiting: HashMap<String, HashMap<String, Senders>>,
    /// Channels the current connection is subscribed to.
    subscribed: HashSet<String>,
}

/// A request to the hub's task: subscribe to a channel, answer when done.
struct Subscribe {
    channel: String,
    done: oneshot::Sender<redis::RedisResult<()>>,
}

/// The waiters of one client.
pub(crate) struct Waiters {
    state: Arc<Mutex<State>>,
    client: redis::Client,
    task: tokio::sync::OnceCell<mpsc::UnboundedSender<Subscribe>>,
}

/// A registered wait: woken once; unregisters itself when dropped.
pub(crate) struct Waiting {
    state: Arc<Mutex<State>>,
    channel: String,
    id: String,
    rx: oneshot::Receiver<Wake>,
}

impl Waiting {
    /// Waits for the next wake, up to `left`; `None` on timeout.
    pub(crate) async fn woken(&mut self, left: Duration) -> Option<Wake> {
        match tokio::time::timeout(left, &mut self.rx).await {
            Ok(Ok(w)) => Some(w),
            // The hub's task is gone (the client is dropping): look again.
            Ok(Err(_)) => Some(Wake::LookAgain),
            Err(_) => None,
        }
    }

    /// Registers again for the next wake (after a wake that did not end the wait).
    pub(crate) fn rearm(&mut self) {
        let (tx, rx) = oneshot::channel();
        self.rx = rx;
        lock(&self.state)
            .waiting
            .entry(self.channel.clone())
            .or_default()
            .entry(self.id.clone())
            .or_default()
            .push(tx);
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if let Some(ids) = state.waiting.get_mut(&self.channel) {
            if let Some(senders) = ids.get_mut(&self.id) {
                senders.retain(|s| !s.is_closed());
                if senders.is_empty() {
                    ids.remove(&self.id);
                }
            }
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Waiters {
    pub(crate) fn new(client: redis::Client) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            client,
            task: tokio::sync::OnceCell::new(),
        }
    }

    /// Registers a wait for job `id` on `channel`, subscribed before this
    /// returns: a notice published after it is not missed.
    pub(crate) async fn register(&self, channel: &str, id: &str) -> redis::RedisResult<Waiting> {
        let (tx, rx) = oneshot::channel();
        let subscribed = {
            let mut state = lock(&self.state);
            state
                .waiting
                .entry(channel.to_owned())
                .or_default()
                .entry(id.to_owned())
                .or_default()
                .push(tx);
            state.subscribed.contains(channel)
        };
        let waiting = Waiting {
            state: self.state.clone(),
            channel: channel.to_owned(),
            id: id.to_owned(),
            rx,
        };
        if !subscribed {
            let task = self
                .task
                .get_or_init(|| async { self.start() })
                .await
                .clone();
            let (done, answer) = oneshot::channel();
            let request = Subscribe {
                channel: channel.to_owned(),
                done,
            };
            if task.send(request).is_err() {
                return Err(closed());
            }
            answer.await.map_err(|_| closed())??;
        }
        Ok(waiting)
    }

    /// Starts the hub's task; it ends when the client (this) is dropped.
    fn start(&self) -> mpsc::UnboundedSender<Subscribe> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(self.client.clone(), self.state.clone(), rx));
        tx
    }
}

fn closed() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "the wait hub stopped"))
}

/// The hub: keeps one Pub/Sub connection subscribed to every channel
/// waited on, and wakes waiters by notice.
async fn run(
    client: redis::Client,
    state: Arc<Mutex<State>>,
    mut requests: mpsc::UnboundedReceiver<Subscribe>,
) {
    let mut failures = 0u32;
    let mut reconnect = false;
    loop {
        let pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                failures += 1;
                let delay = Duration::from_millis(100 * u64::from(failures.min(10)));
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "wait: cannot open the Pub/Sub connection; retrying");
                // Requests wait meanwhile, in the channel.
                tokio::time::sleep(delay).await;
                if requests.is_closed() && requests.is_empty() {
                    return;
                }
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let channels: Vec<String> = lock(&state).waiting.keys().cloned().collect();
        let mut ok = true;
        for ch in &channels {
            if sink.subscribe(ch).await.is_err() {
                ok = false;
                break;
            }
        }
        if !ok {
            failures += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        failures = 0;
        {
            let mut st = lock(&state);
            st.subscribed = channels.into_iter().collect();
            if reconnect {
                // Notices sent while disconnected are lost: everyone looks again.
                for ids in st.waiting.values_mut() {
                    for (_, senders) in ids.drain() {
                        for s in senders {
                            let _ = s.send(Wake::LookAgain);
                        }
                    }
                }
            }
        }
        reconnect = true;
        loop {
            tokio::select! {
                req = requests.recv() => {
                    let Some(Subscribe { channel, done }) = req else { return };
                    let r = sink.subscribe(&channel).await;
                    if r.is_ok() {
                        lock(&state).subscribed.insert(channel);
                    }
                    let failed = r.is_err();
                    let _ = done.send(r);
                    if failed {
                        break;
                    }
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let payload: String = match msg.get_payload() {
                        Ok(p) => p,
                        Err(_) => continue,
                    };
                    wake(&state, msg.get_channel_name(), &payload);
                }
            }
        }
        lock(&state).subscribed.clear();
        tracing::debug!("wait: the Pub/Sub connection dropped; reconnecting");
    }
}

/// Wakes the waiters of the ids in a notice `<state> <id> <id> ...`.
fn wake(state: &Mutex<State>, channel: &str, notice: &str) {
    let mut words = notice.split(' ');
    let Some(job_state) = words.next().and_then(JobState::parse) else {
        return;
    };
    let mut st = lock(state);
    let Some(ids) = st.waiting.get_mut(channel) else {
        return;
    };
    for id in words {
        if let Some(senders) = ids.remove(id) {
            for s in senders {
                let _ = s.send(Wake::Finished(job_state));
            }
        }
    }
}
