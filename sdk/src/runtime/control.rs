//! The control thread: an OS thread of its own with a current-thread Tokio
//! runtime, for what must not wait on handler threads. A handler that
//! blocks its thread (a sync call, a CPU loop) holds one of the runtime's
//! worker threads; with as many such handlers as threads, nothing else on
//! that runtime runs, timers and signals included. So, here:
//!
//! - the [heartbeat](super::heartbeat) renews leases, on a connection made
//!   on this thread (its I/O is driven here too);
//! - with [`Worker::run`](crate::Worker::run), SIGINT/SIGTERM are received
//!   here: the first starts the shutdown, a second forces it;
//! - once the shutdown starts, a deadline: the grace period plus a few
//!   seconds. A worker not stopped by then has handlers that block their
//!   threads and cannot be cancelled; that is logged, and with
//!   `Worker::run`, which owns the process, the process exits (code
//!   [`BLOCKED_EXIT_CODE`]), leaving their entries pending for recovery.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Exit code of a process whose handlers blocked its shutdown past the
/// grace period (with `Worker::run`).
pub const BLOCKED_EXIT_CODE: i32 = 3;

/// How long past the grace period the shutdown may take before the
/// deadline: cancelled jobs' tasks, the last acks, leaving the group.
const DEADLINE_SLACK: Duration = Duration::from_secs(3);

use super::activity::Activity;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The control thread of one running worker.
pub(crate) struct Control {
    tasks: mpsc::UnboundedSender<Task>,
    /// Cancelled by the first SIGINT/SIGTERM (with own signals).
    pub signalled: CancellationToken,
    /// Cancelled when every handler has returned or been dropped: the
    /// deadline is off.
    handlers_done: CancellationToken,
    /// Cancelled when the worker has stopped.
    stopped: CancellationToken,
    own_signals: bool,
    grace: Duration,
    activity: Arc<Activity>,
}

impl Control {
    /// Starts the thread. With `own_signals`, it listens for SIGINT and
    /// SIGTERM: the first cancels [`Control::signalled`] and arms the
    /// shutdown deadline (here, so that it does not depend on the worker's
    /// runtime running anything), a second cancels `hard_stop`.
    pub(crate) fn start(
        own_signals: bool,
        hard_stop: CancellationToken,
        grace: Duration,
        activity: Arc<Activity>,
    ) -> std::io::Result<Self> {
        let (tasks, mut rx) = mpsc::unbounded_channel::<Task>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("ferry-control".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(task) = rx.recv().await {
                        tokio::spawn(task);
                    }
                });
            })?;
        let control = Self {
            tasks,
            signalled: CancellationToken::new(),
            handlers_done: CancellationToken::new(),
            stopped: CancellationToken::new(),
            own_signals,
            grace,
            activity,
        };
        if own_signals {
            let (first, stopped) = (control.signalled.clone(), control.stopped.clone());
            let deadline = control.deadline();
            control.spawn(async move {
                // One set of listeners for both signals, registered before
                // the first: a second signal sent as soon as the shutdown
                // shows (its log line) must find a listener, not arrive
                // between the first listener's end and a new one's start.
                let mut signals = Signals::new();
                tokio::select! {
                    _ = signals.recv() => {}
                    _ = stopped.cancelled() => return,
                }
                first.cancel();
                tokio::spawn(deadline);
                tokio::select! {
                    _ = signals.recv() => {
                        tracing::warn!("second signal: stopping now");
                        hard_stop.cancel();
                    }
                    _ = stopped.cancelled() => {}
                }
            });
        }
        Ok(control)
    }

    /// Runs `task` on the control thread; the receiver completes when it
    /// has ended.
    pub(crate) fn spawn(
        &self,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<()> {
        let (done, ended) = tokio::sync::oneshot::channel();
        let _ = self.tasks.send(Box::pin(async move {
            task.await;
            let _ = done.send(());
        }));
        ended
    }

    /// The shutdown has started (with `run_until`: with own signals the
    /// deadline is armed at the signal). See [`Control::deadline`].
    pub(crate) fn shutdown_started(&self) {
        if !self.own_signals {
            self.spawn(self.deadline());
        }
    }

    /// Every handler has returned or been dropped: whatever the rest of the
    /// shutdown takes (the last acks), it is not blocked handlers.
    pub(crate) fn handlers_done(&self) {
        self.handlers_done.cancel();
    }

    /// Past the grace period (and a few seconds), handlers that have not
    /// returned are reported, and with own signals the process exits. A
    /// shutdown slowed by something else (Redis not answering the last
    /// acks) is left to finish: those writes are bounded by the grace
    /// period themselves.
    fn deadline(&self) -> impl Future<Output = ()> + Send + 'static {
        let (done, own_signals, grace) = (self.handlers_done.clone(), self.own_signals, self.grace);
        let activity = Arc::clone(&self.activity);
        async move {
            tokio::select! {
                _ = done.cancelled() => {}
                _ = tokio::time::sleep(grace + DEADLINE_SLACK) => {
                    if activity.in_handlers() == 0 {
                        tracing::debug!("past the shutdown deadline with no handler running; finishing the shutdown");
                        return;
                    }
                    if own_signals {
                        tracing::error!(
                            grace_ms = grace.as_millis() as u64,
                            "the worker has not stopped within the grace period: handlers are blocking their threads \
                             and cannot be cancelled (run blocking work in tokio::task::spawn_blocking). Exiting; their \
                             jobs stay pending and are recovered after the lease"
                        );
                        std::process::exit(BLOCKED_EXIT_CODE);
                    }
                    tracing::error!(
                        grace_ms = grace.as_millis() as u64,
                        "the worker has not stopped within the grace period: handlers are blocking their threads and \
                         cannot be cancelled (run blocking work in tokio::task::spawn_blocking)"
                    );
                }
            }
        }
    }

    /// The worker has stopped: ends the thread's tasks and the thread.
    pub(crate) fn finish(self) {
        drop(self);
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.handlers_done.cancel();
        self.stopped.cancel();
    }
}

/// SIGINT and SIGTERM listeners, registered once and received from many
/// times. Where SIGTERM cannot be listened for, only SIGINT (ctrl-c) is.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, signal = name, "cannot listen for this signal");
                    None
                }
            };
            Self {
                term: listen(SignalKind::terminate(), "SIGTERM"),
                int: listen(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// The next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        if s.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.term) => {}
                _ = next(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
