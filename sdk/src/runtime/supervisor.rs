//! The supervisor: builds a running worker's components, each with only
//! what it uses, runs them, and stops them in order:
//!
//! 1. stop claiming: fetchers, recoverer and promoters end (a blocking read
//!    in progress runs to its end, at most the block time);
//! 2. the executor gives running jobs the grace period, then drops the rest
//!    (their entries stay pending for recovery);
//! 3. the acker writes what finished;
//! 4. the heartbeat stops last, so leases are renewed until the very end.

use std::future::Future;
use std::sync::Arc;

use ferry_broker::Queue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::acker::Acker;
use super::activity::Activity;
use super::canceller::{Canceller, Running};
use super::control::Control;
use super::executor::{Executor, ExecutorParts};
use super::fetcher::Fetcher;
use super::heartbeat::Heartbeat;
use super::memory_watch::MemoryWatch;
use super::promoter::Promoter;
use super::recoverer::Recoverer;
use super::retry::RedisRetry;
use super::scheduler::Scheduler;
use super::served::ServedQueue;
use super::settler::Settler;
use super::slots::Slots;
use crate::config::WorkerConfig;
use crate::connection::RedisConfig;
use crate::error::Result;
use crate::handler::Registry;
use crate::link::Link;
use futures::future::{FusedFuture, FutureExt};

/// A worker about to run (made by [`Worker::run_until`](crate::Worker::run_until)).
pub(crate) struct Supervisor {
    pub redis: RedisConfig,
    pub config: WorkerConfig,
    pub queues: Vec<Queue>,
    pub handlers: Registry,
    pub consumer: String,
    pub activity: Arc<Activity>,
    /// Whether the worker owns the process's signals (set by
    /// [`Worker::run`](crate::Worker::run)): SIGINT/SIGTERM start the
    /// shutdown, a second one forces it, and a shutdown that handlers
    /// blocking their threads hold past the grace period exits the process.
    pub force_on_second_signal: bool,
}

impl Supervisor {
    /// Runs the worker until `signal` completes, then shuts it down in order.
    pub(crate) async fn run(self, signal: impl Future<Output = ()> + Send) -> Result<()> {
        let Self {
            redis,
            config,
            queues,
            handlers,
            consumer,
            activity,
            force_on_second_signal,
        } = self;
        let conn = redis.link(redis.response_timeout)?;
        let hard_stop = CancellationToken::new();
        // Signals, lease renewal and the shutdown deadline run on a thread
        // of their own, which handlers that block their threads cannot stall.
        let control = Control::start(
            force_on_second_signal,
            hard_stop.clone(),
            config.grace_period,
            Arc::clone(&activity),
        )
        .map_err(|e| {
            crate::Error::Protocol(format!("cannot start the worker's control thread: {e}"))
        })?;
        let signalled = control.signalled.clone();
        let signal = async move {
            tokio::select! {
                _ = signal => {}
                _ = signalled.cancelled() => {}
            }
        }
        .fuse();
        tokio::pin!(signal);
        let host = redis.host();
        let Some(memory) = preflight(&conn, &host, config.allow_eviction, &mut signal).await?
        else {
            return Ok(());
        };
        let queues: Vec<Arc<ServedQueue>> = queues
            .iter()
            .map(|q| {
                Arc::new(ServedQueue::new(
                    q.consumer(consumer.clone()),
                    Arc::clone(&activity),
                ))
            })
            .collect();
        // Whether each queue's events are on, before the first claim (the
        // promoters keep it up to date after).
        for q in &queues {
            let mut probe = conn.clone();
            if let Ok(s) = q.consumer.queue().settings(&mut probe).await {
                q.events_cap
                    .store(s.events.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
                let keeps = !s.retention.is_zero() && s.retention_count > 0;
                q.records.store(keeps, std::sync::atomic::Ordering::Relaxed);
            }
        }
        tracing::info!(
            consumer = %consumer,
            queues = ?queues.iter().map(|q| q.name()).collect::<Vec<_>>(),
            concurrency = config.concurrency,
            lease_ms = config.lease.as_millis() as u64,
            "worker started"
        );

        // One token per stage, cancelled in order.
        let claiming = CancellationToken::new();
        let executing = CancellationToken::new();
        let acking = CancellationToken::new();
        let renewing = CancellationToken::new();

        // The heartbeat's connection is made on the control thread, so its
        // I/O is driven there; a failure to make it stops the start.
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        let registration = ferry_broker::WorkerInfo {
            worker: consumer.clone(),
            host: hostname(),
            pid: std::process::id(),
            queues: queues.iter().map(|q| q.name().to_owned()).collect(),
            concurrency: config.concurrency,
            started_at: ferry_broker::now_ms(),
            heartbeat_at: 0,
            running: 0,
        };
        let heartbeat = {
            let (queues, period, stop) = (queues.clone(), config.lease / 3, renewing.clone());
            let redis = redis.clone();
            let (registration, activity, ttl) = (
                registration.clone(),
                Arc::clone(&activity),
                config.lease + config.lease / 3,
            );
            control.spawn(async move {
                match redis.link(redis.response_timeout) {
                    Ok(conn) => {
                        let _ = ready.send(Ok(()));
                        Heartbeat {
                            queues,
                            conn,
                            period,
                            registration,
                            activity,
                            ttl,
                        }
                        .run(stop)
                        .await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            })
        };
        match is_ready.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot renew leases: no connection; stopping");
                return Err(e);
            }
            Err(_) => {
                return Err(crate::Error::Protocol(
                    "the worker's control thread ended".into(),
                ));
            }
        }

        let slots = Slots::new(config.concurrency);
        let (acks, acks_rx) = mpsc::unbounded_channel();
        let settler = Settler {
            conn: conn.clone(),
            backoff: config.backoff,
            acks,
            activity: Arc::clone(&activity),
            hard_stop: hard_stop.clone(),
            lease: config.lease,
        };
        let running = Arc::new(Running::default());
        let executor = Executor::new(ExecutorParts {
            running: Arc::clone(&running),
            handlers,
            settler,
            slots: slots.clone(),
            conn: conn.clone(),
            activity: Arc::clone(&activity),
            shutdown: claiming.clone(),
            hard_stop: hard_stop.clone(),
            job_timeout: config.job_timeout,
            grace_period: config.grace_period,
            unknown_type_window: config.unknown_type_window,
            unknown_types: Default::default(),
        });

        let claimers = TaskTracker::new();
        for queue in &queues {
            // Blocking reads need a connection of their own whose response
            // timeout outlasts the block time.
            let blocking = redis.link(config.block_time + redis.response_timeout)?;
            let fetcher = Fetcher {
                queue: Arc::clone(queue),
                conn: conn.clone(),
                blocking,
                slots: slots.clone(),
                executor: executor.clone(),
                block_time: config.block_time,
            };
            claimers.spawn(fetcher.run(claiming.clone()));
            let promoter = Promoter {
                queue: Arc::clone(queue),
                conn: conn.clone(),
                interval: config.promote_interval,
            };
            claimers.spawn(promoter.run(claiming.clone()));
            if config.fire_schedules {
                let scheduler = Scheduler {
                    queue: Arc::clone(queue),
                    conn: conn.clone(),
                    interval: config.promote_interval,
                };
                claimers.spawn(scheduler.run(claiming.clone()));
            }
        }
        let recoverer = Recoverer::new(
            &queues,
            conn.clone(),
            slots,
            executor.clone(),
            config.lease,
            config.max_deliveries,
            config.consumer_idle_timeout,
        );
        claimers.spawn(recoverer.run(claiming.clone()));
        let memory_watch = MemoryWatch {
            conn: conn.clone(),
            host: host.clone(),
            allow_eviction: config.allow_eviction,
            activity: Arc::clone(&activity),
            first: memory,
        };
        claimers.spawn(memory_watch.run(claiming.clone()));
        // Cancellations are heard as long as jobs may run (until the
        // executor has finished).
        let canceller = Canceller {
            queues: queues.clone(),
            conn: conn.clone(),
            running,
        };
        let cancelling = CancellationToken::new();
        let canceller = tokio::spawn(canceller.run(cancelling.clone()));
        let executor = tokio::spawn(executor.run(executing.clone()));
        let acker = Acker {
            conn: conn.clone(),
            rx: acks_rx,
            hard_stop: hard_stop.clone(),
            lease: config.lease,
            queues: queues.clone(),
        };
        let acker = tokio::spawn(acker.run(acking.clone()));
        (&mut signal).await;

        tracing::info!(
            running = activity.running(),
            grace_ms = config.grace_period.as_millis() as u64,
            "shutting down: no new jobs; waiting for running ones"
        );
        control.shutdown_started();
        // 1. Stop claiming.
        claiming.cancel();
        claimers.close();
        claimers.wait().await;
        // 2. Let running jobs finish within the grace period.
        executing.cancel();
        let _ = executor.await;
        cancelling.cancel();
        let _ = canceller.await;
        control.handlers_done();
        // 3. Acknowledge what finished (for at most the grace period again:
        // with Redis down, what is not written stays pending for recovery),
        // 4. stop renewing leases last.
        acking.cancel();
        let mut acker = acker;
        if tokio::time::timeout(config.grace_period, &mut acker)
            .await
            .is_err()
        {
            hard_stop.cancel();
            let _ = acker.await;
        }
        renewing.cancel();
        let _ = heartbeat.await;
        control.finish();
        // 5. Leave the group where nothing is left pending, so that XINFO
        // CONSUMERS tells live workers from gone ones.
        for queue in &queues {
            let mut conn = conn.clone();
            let queue_keys = queue.consumer.queue();
            if let Err(e) = queue_keys
                .register_worker(&mut conn, &registration, None)
                .await
            {
                tracing::debug!(error = %e, queue = queue.name(), "could not remove this worker's registration; it expires");
            }
            if let Err(e) = queue.consumer.leave(&mut conn).await {
                tracing::debug!(error = %e, queue = queue.name(), "could not remove this consumer; recovery removes it once idle");
            }
        }
        tracing::info!(completed = activity.completed(), "worker stopped");
        Ok(())
    }
}

/// Checks the server before the worker starts (see
/// [`preflight`](crate::preflight)), waiting with backoff while it cannot be
/// reached; returns the server's memory state, or `None` when `signal` came
/// first.
async fn preflight(
    conn: &Link,
    host: &str,
    allow_eviction: bool,
    signal: &mut (impl FusedFuture<Output = ()> + Unpin),
) -> Result<Option<crate::preflight::RedisMemory>> {
    let mut retry = RedisRetry::new("connecting to redis");
    loop {
        let mut probe = conn.clone();
        match crate::preflight::check(&mut probe, host, allow_eviction, true).await {
            Ok(state) => {
                retry.ok();
                return Ok(Some(state));
            }
            Err(e) if e.needs_operator() => {
                tracing::error!(error = %e, "the worker cannot start");
                return Err(e);
            }
            Err(e) => {
                let wait = retry.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = &mut *signal => return Ok(None),
                }
            }
        }
    }
}

/// Completes on SIGINT (ctrl-c) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only ctrl-c stops the worker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// This host's name, for the worker's registration.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}
