//! Rate limits against a real Redis, with real worker processes: a limit
//! holds fleet-wide, on the server's clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_queue::{EnqueueOptions, Job, JobError, RateLimit};
use ferry_tests::events;
use ferry_tests::jobs::{Echo, Sleep};
use ferry_tests::scenario::{self, Scenario};
use ferry_tests::{heavy, queue, wait_until, WorkerProcess};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// A worker of the scenario's queue with `slots` slots, running in a task,
/// whose handler of `J` records every run (`label` of the job, its attempt,
/// when) and answers the first run with `first_error()`, every later one
/// with success.
struct Recording<L> {
    /// (label, attempt, when) of every run, in order.
    runs: Arc<Mutex<Vec<(L, u32, Instant)>>>,
    stop: CancellationToken,
    running: tokio::task::JoinHandle<ferry_queue::Result<()>>,
}

impl<L: Clone + Send + 'static> Recording<L> {
    /// Starts the worker and waits for its first run (a job must be
    /// enqueued already).
    async fn start<J: Job>(
        s: &Scenario,
        slots: usize,
        label: fn(&J) -> L,
        first_error: fn() -> JobError,
    ) -> Self {
        let runs: Arc<Mutex<Vec<(L, u32, Instant)>>> = Arc::default();
        let seen = Arc::clone(&runs);
        let worker = ferry_queue::Worker::builder(s.redis.url())
            .prefix(s.prefix.clone())
            .queue(s.queue.as_str())
            .concurrency(slots)
            .handle(move |job: J, ctx: ferry_queue::JobContext| {
                let seen = Arc::clone(&seen);
                async move {
                    let mut runs = seen.lock().unwrap();
                    let first_run = runs.is_empty();
                    runs.push((label(&job), ctx.attempt, Instant::now()));
                    if first_run {
                        return Err(first_error());
                    }
                    Ok(())
                }
            })
            .build()
            .unwrap();
        let stop = worker.shutdown_token();
        let running = tokio::spawn(worker.run());
        wait_until(Duration::from_secs(10), "the first run", || async {
            !runs.lock().unwrap().is_empty()
        })
        .await;
        Self {
            runs,
            stop,
            running,
        }
    }

    /// The runs so far.
    fn runs(&self) -> Vec<(L, u32, Instant)> {
        self.runs.lock().unwrap().clone()
    }

    /// Stops the worker (it must stop cleanly); returns every run.
    async fn stop(self) -> Vec<(L, u32, Instant)> {
        self.stop.cancel();
        let runs = Arc::clone(&self.runs);
        self.running.await.unwrap().unwrap();
        let runs = runs.lock().unwrap().clone();
        runs
    }
}

/// 50 per second over four worker processes for 30 s: 1,500 ± 5% jobs
/// start, and no second has more than 50 plus the burst (5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_per_second_holds_across_four_workers() {
    let _heavy = heavy().await;
    let s = scenario::setup("rate-fleet").await;
    let c = s.client();
    let limit = RateLimit::new(50, Duration::from_secs(1)).unwrap();
    c.set_rate_limit(&s.queue, Some(limit)).await.unwrap();
    assert_eq!(c.rate_limit(&s.queue).await.unwrap(), Some(limit));
    c.set_events(&s.queue, Some(1_000_000)).await.unwrap();
    let jobs: Vec<Echo> = (0..2500)
        .map(|i| Echo {
            message: format!("{i}"),
        })
        .collect();
    c.enqueue_batch(&jobs, EnqueueOptions::new().queue(s.queue.as_str()))
        .await
        .unwrap();
    let workers: Vec<WorkerProcess> = (0..4).map(|_| s.worker(&["--concurrency", "20"])).collect();
    let events = queue(&s.prefix, &s.queue).keys().events().to_owned();
    let mut conn = s.redis.conn().await;
    wait_until(Duration::from_secs(30), "the first start", || {
        let mut conn = conn.clone();
        let events = events.clone();
        async move { !events::start_times(&mut conn, &events).await.is_empty() }
    })
    .await;
    let first = events::start_times(&mut conn, &events).await[0];
    let end = first + 30_000;
    wait_until(Duration::from_secs(90), "30 s of starts", || {
        let mut conn = conn.clone();
        let events = events.clone();
        async move {
            events::start_times(&mut conn, &events)
                .await
                .iter()
                .any(|t| *t >= end)
        }
    })
    .await;
    let all = events::start_times(&mut conn, &events).await;
    let window: Vec<u64> = all.into_iter().filter(|t| *t < end).collect();
    assert!(
        (1425..=1575).contains(&window.len()),
        "{} jobs started in 30 s under 50/s",
        window.len()
    );
    let mut per_second = [0u32; 30];
    for t in &window {
        per_second[((t - first) / 1000) as usize] += 1;
    }
    eprintln!(
        "{} starts in 30 s; per second: {per_second:?}",
        window.len()
    );
    assert!(
        per_second.iter().all(|n| *n <= 55),
        "a second over 50 + the burst: {per_second:?}"
    );
    // Nothing failed or was retried for the limit: jobs wait, they do not fail.
    let stats = s.stats().await;
    let count = |name: &str| stats.counters.get(name).copied().unwrap_or(0);
    assert_eq!((count("retried"), count("dead")), (0, 0), "{stats:?}");
    drop(workers);
}

/// A bad limit is refused before anything is written.
#[test]
fn bad_limits_are_refused() {
    assert!(RateLimit::new(0, Duration::from_secs(1)).is_err());
    assert!(RateLimit::new(5, Duration::ZERO).is_err());
    let e = RateLimit::parse("-1/s").unwrap_err().to_string();
    assert!(e.contains("rate_limit"), "{e}");
}

#[derive(Serialize, Deserialize)]
struct CallUpstream {
    n: u32,
}
impl Job for CallUpstream {
    const TYPE: &'static str = "call-upstream";
}

/// A handler whose upstream says 429: its job goes back without using an
/// attempt, and no job of the queue starts until the hold ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handlers_rate_limited_holds_the_queue_and_keeps_the_attempt() {
    let s = scenario::setup("rate-429").await;
    let c = s.client();
    let to = || EnqueueOptions::new().queue(s.queue.as_str());
    let first = c.enqueue_with(&CallUpstream { n: 1 }, to()).await.unwrap();
    // Runs: (job n, attempt, when).
    let worker = Recording::start(
        &s,
        1,
        |job: &CallUpstream| job.n,
        || JobError::rate_limited(Duration::from_millis(1500)),
    )
    .await;
    let second = c.enqueue_with(&CallUpstream { n: 2 }, to()).await.unwrap();
    for id in [&first, &second] {
        let done = c.wait(&s.queue, id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(done.state, ferry_queue::JobState::Succeeded, "{done:?}");
    }
    let runs = worker.stop().await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    let held_from = runs[0].2;
    for (n, attempt, at) in &runs[1..] {
        assert_eq!(*attempt, 1, "job {n} used an attempt: {runs:?}");
        assert!(
            at.duration_since(held_from) >= Duration::from_millis(1400),
            "job {n} started {:?} into the 1.5 s hold",
            at.duration_since(held_from)
        );
    }
}

/// A type's limit of 50/s over four worker processes, in a queue that also
/// holds 2,000 jobs of another type: 500 ± 5% of the limited type start in
/// the 10 s after its first second, no second from its first start has
/// more than 50 plus the burst, the
/// other type all run while the limited one is still waiting (no
/// head-of-line blocking), and nothing starts twice, fails or retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_types_limit_holds_across_four_workers_and_the_rest_flows() {
    use std::collections::HashSet;
    let _heavy = heavy().await;
    let s = scenario::setup("rate-type-fleet").await;
    let c = s.client();
    let limit = RateLimit::new(50, Duration::from_secs(1)).unwrap();
    let scope = ferry_queue::ConcurrencyScope::Type("echo".into());
    c.set_rate_limit_of(&s.queue, &scope, Some(limit))
        .await
        .unwrap();
    c.set_events(&s.queue, Some(1_000_000)).await.unwrap();
    let to = || EnqueueOptions::new().queue(s.queue.as_str());
    let echoes: Vec<Echo> = (0..1000)
        .map(|i| Echo {
            message: format!("{i}"),
        })
        .collect();
    let echo_ids: HashSet<String> = c
        .enqueue_batch(&echoes, to())
        .await
        .unwrap()
        .into_iter()
        .collect();
    let quick: Vec<Sleep> = (0..2000).map(|_| Sleep { ms: 0 }).collect();
    let quick_ids: HashSet<String> = c
        .enqueue_batch(&quick, to())
        .await
        .unwrap()
        .into_iter()
        .collect();
    let workers: Vec<WorkerProcess> = (0..4).map(|_| s.worker(&["--concurrency", "20"])).collect();
    let key = queue(&s.prefix, &s.queue).keys().events().to_owned();
    let mut conn = s.redis.conn().await;
    // The window is the limited type's: from its first start, 10 s (the
    // quick jobs and the parking of the first claims come before it).
    let first_echo = |all: Vec<(u64, String)>| {
        all.into_iter()
            .find(|(_, id)| echo_ids.contains(id))
            .map(|(t, _)| t)
    };
    wait_until(Duration::from_secs(30), "the first echo start", || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move { first_echo(events::started(&mut conn, &key).await).is_some() }
    })
    .await;
    let first = first_echo(events::started(&mut conn, &key).await).unwrap();
    // Every second from the first start holds the limit; the count is of
    // the 10 s after the first, once the quick jobs, which compete for
    // the workers' slots with the limited jobs let back, have drained.
    let (from, end) = (first + 1000, first + 11_000);
    wait_until(Duration::from_secs(60), "10 s of starts", || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move {
            events::started(&mut conn, &key)
                .await
                .iter()
                .any(|(t, _)| *t >= end)
        }
    })
    .await;
    let all = events::started(&mut conn, &key).await;
    drop(workers);
    let ids: Vec<&String> = all.iter().map(|(_, id)| id).collect();
    let distinct: HashSet<&String> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "a job started twice");
    let echo_times: Vec<u64> = all
        .iter()
        .filter(|(t, id)| (first..end).contains(t) && echo_ids.contains(id))
        .map(|(t, _)| *t)
        .collect();
    let mut per_second = [0u32; 11];
    for t in &echo_times {
        per_second[((t - first) / 1000) as usize] += 1;
    }
    let echo_starts: Vec<u64> = echo_times.into_iter().filter(|t| *t >= from).collect();
    eprintln!(
        "{} echo starts in the 10 s after the first; per second from the first start: {per_second:?}",
        echo_starts.len()
    );
    assert!(
        (475..=525).contains(&echo_starts.len()),
        "{} echo jobs started in 10 s under 50/s",
        echo_starts.len()
    );
    assert!(
        per_second.iter().all(|n| *n <= 55),
        "a second over 50 + the burst: {per_second:?}"
    );
    // Every quick job started before the 100th echo job: the limited type
    // never held the rest of the queue back.
    let hundredth_echo = all
        .iter()
        .filter(|(_, id)| echo_ids.contains(id))
        .nth(99)
        .map(|(t, _)| *t)
        .unwrap();
    let quick_started: Vec<u64> = all
        .iter()
        .filter(|(_, id)| quick_ids.contains(id))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(quick_started.len(), 2000, "every quick job started");
    assert!(
        quick_started.iter().all(|t| *t <= hundredth_echo),
        "a quick job started after the 100th echo job"
    );
    let stats = s.stats().await;
    let count = |name: &str| stats.counters.get(name).copied().unwrap_or(0);
    assert_eq!((count("retried"), count("dead")), (0, 0), "{stats:?}");
}

#[derive(Serialize, Deserialize)]
struct Tenant {
    key: String,
}
impl Job for Tenant {
    const TYPE: &'static str = "tenant-call";
}

/// A handler whose upstream says 429 for one tenant holds only that
/// tenant's key: the other tenant's jobs run meanwhile, and the held job
/// runs after the hold with its attempt unused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handlers_rate_limited_can_hold_only_its_key() {
    let s = scenario::setup("rate-429-key").await;
    let c = s.client();
    let to = |k: &str| {
        EnqueueOptions::new()
            .queue(s.queue.as_str())
            .concurrency_key(k)
    };
    let acme = c
        .enqueue_with(&Tenant { key: "acme".into() }, to("acme"))
        .await
        .unwrap();
    // Runs: (key, attempt, when).
    let worker = Recording::start(
        &s,
        2,
        |job: &Tenant| job.key.clone(),
        || JobError::rate_limited(Duration::from_millis(1500)).holding(ferry_queue::Hold::Key),
    )
    .await;
    let acme2 = c
        .enqueue_with(&Tenant { key: "acme".into() }, to("acme"))
        .await
        .unwrap();
    let other = c
        .enqueue_with(
            &Tenant {
                key: "other".into(),
            },
            to("other"),
        )
        .await
        .unwrap();
    let done = c
        .wait(&s.queue, &other, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.state, ferry_queue::JobState::Succeeded, "{done:?}");
    let held_from = worker.runs()[0].2;
    assert_eq!(
        worker
            .runs()
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        ["acme", "other"],
        "the other tenant ran while acme was held, before any acme job"
    );
    for id in [&acme, &acme2] {
        let done = c.wait(&s.queue, id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(done.state, ferry_queue::JobState::Succeeded, "{done:?}");
    }
    let runs = worker.stop().await;
    assert_eq!(runs.len(), 4, "{runs:?}");
    for (key, attempt, at) in runs.iter().skip(1).filter(|r| r.0 == "acme") {
        assert_eq!(*attempt, 1, "{key} used an attempt: {runs:?}");
        assert!(
            at.duration_since(held_from) >= Duration::from_millis(1400),
            "an acme job started {:?} into the 1.5 s hold",
            at.duration_since(held_from)
        );
    }
}

#[path = "rate_limit/gates.rs"]
mod gates;
