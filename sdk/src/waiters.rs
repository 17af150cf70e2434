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
use tokio::sync::{mpsc, oneshot};

use crate::notices::{Notice, NoticeSource};

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
    source: NoticeSource,
    /// The hub's task, started on the first wait; started again if it
    /// ended (its runtime shut down).
    task: Mutex<Option<mpsc::UnboundedSender<Subscribe>>>,
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
        // Closed first, so this waiter's own sender counts as closed below.
        self.rx.close();
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
    pub(crate) fn new(source: NoticeSource) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            source,
            task: Mutex::new(None),
        }
    }

    /// Registers a wait for job `id` on `channel`, subscribed before this
    /// returns: a notice published after it is not missed.
    pub(crate) async fn register(&self, channel: &str, id: &str) -> redis::RedisResult<Waiting> {
        let (tx, rx) = oneshot::channel();
        let task = self.task();
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

    /// The hub's task, started now if it is not running: it ends when the
    /// client (this) is dropped, or with the runtime it was started on.
    fn task(&self) -> mpsc::UnboundedSender<Subscribe> {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = task.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        // A new connection: nothing is subscribed on it yet.
        lock(&self.state).subscribed.clear();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(self.source.clone(), self.state.clone(), rx));
        *task = Some(tx.clone());
        tx
    }
}

fn closed() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "the wait hub stopped"))
}

/// The hub: keeps one Pub/Sub connection subscribed to every channel
/// waited on, and wakes waiters by notice.
async fn run(
    source: NoticeSource,
    state: Arc<Mutex<State>>,
    mut requests: mpsc::UnboundedReceiver<Subscribe>,
) {
    let mut failures = 0u32;
    let mut reconnect = false;
    loop {
        let (mut sink, mut stream) = match source.connect().await {
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
        failures = 0;
        let channels: Vec<String> = lock(&state).waiting.keys().cloned().collect();
        let mut subscribed = Vec::with_capacity(channels.len());
        for ch in channels {
            match sink.subscribe(&ch).await {
                Ok(()) => subscribed.push(ch),
                // Refused (an ACL without the channel, say): its waiters are
                // told to look again, and it is not retried until a new wait
                // asks for it (and gets the error).
                Err(e) if !is_connection_error(&e) => {
                    tracing::warn!(channel = %ch, error = %e, "wait: subscribing refused");
                    wake_all(&state, Some(&ch));
                    lock(&state).waiting.remove(&ch);
                }
                Err(_) => break,
            }
        }
        {
            let mut st = lock(&state);
            st.subscribed = subscribed.into_iter().collect();
        }
        if reconnect {
            // Notices sent while disconnected are lost: everyone looks again.
            wake_all(&state, None);
        }
        reconnect = true;
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            tokio::select! {
                req = requests.recv() => {
                    let Some(Subscribe { channel, done }) = req else { return };
                    let r = sink.subscribe(&channel).await;
                    let lost = r.as_ref().is_err_and(is_connection_error);
                    match &r {
                        Ok(()) => {
                            lock(&state).subscribed.insert(channel);
                        }
                        Err(_) => {
                            lock(&state).waiting.remove(&channel);
                        }
                    }
                    let _ = done.send(r);
                    if lost {
                        break;
                    }
                }
                notice = stream.next() => {
                    let Some(Notice::Message { channel, payload }) = notice else { break };
                    let Ok(payload) = std::str::from_utf8(&payload) else { continue };
                    wake(&state, &channel, payload);
                }
                _ = keepalive.tick() => {
                    // A half-open connection (a failover, a silent network
                    // drop) answers nothing: found within KEEPALIVE * 2.
                    let ping = tokio::time::timeout(KEEPALIVE, sink.ping()).await;
                    if !matches!(ping, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        lock(&state).subscribed.clear();
        if requests.is_closed() && requests.is_empty() {
            return;
        }
        tracing::debug!("wait: the Pub/Sub connection dropped; reconnecting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How often the hub pings its Pub/Sub connection.
const KEEPALIVE: Duration = Duration::from_secs(10);

fn is_connection_error(e: &redis::RedisError) -> bool {
    ferry_broker::error::is_connection_failure(e)
}

/// Wakes every waiter (of `channel`, or of all channels) to look again.
fn wake_all(state: &Mutex<State>, channel: Option<&str>) {
    let mut st = lock(state);
    for (ch, ids) in st.waiting.iter_mut() {
        if channel.is_some_and(|c| c != ch) {
            continue;
        }
        for (_, senders) in ids.drain() {
            for s in senders {
                let _ = s.send(Wake::LookAgain);
            }
        }
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
