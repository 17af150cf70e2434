//! Rate limits against a real Redis, with real worker processes: a limit
//! holds fleet-wide, on the server's clock.

use std::time::Duration;

use ferry_queue::{Client, EnqueueOptions, Job, RateLimit};
use ferry_tests::scenario::{self};
use ferry_tests::{heavy, queue, wait_until, WorkerProcess};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Echo {
    message: String,
}
impl Job for Echo {
    const TYPE: &'static str = "echo";
}

/// The server time (ms) of every `started` event of the queue.
async fn starts(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<u64> {
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    entries
        .into_iter()
        .filter(|(_, f)| f.chunks(2).any(|kv| kv == ["event", "started"]))
        .map(|(id, _)| id.split('-').next().unwrap().parse().unwrap())
        .collect()
}

/// 50 per second over four worker processes for 30 s: 1,500 ± 5% jobs
/// start, and no second has more than 50 plus the burst (5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_per_second_holds_across_four_workers() {
    let _heavy = heavy().await;
    let s = scenario::setup("rate-fleet").await;
    let c = Client::builder(s.redis.url())
        .prefix(s.prefix.as_str())
        .connect()
        .unwrap();
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
        async move { !starts(&mut conn, &events).await.is_empty() }
    })
    .await;
    let first = starts(&mut conn, &events).await[0];
    let end = first + 30_000;
    wait_until(Duration::from_secs(90), "30 s of starts", || {
        let mut conn = conn.clone();
        let events = events.clone();
        async move { starts(&mut conn, &events).await.iter().any(|t| *t >= end) }
    })
    .await;
    let all = starts(&mut conn, &events).await;
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
    use std::sync::{Arc, Mutex};
    let s = scenario::setup("rate-429").await;
    let c = Client::builder(s.redis.url())
        .prefix(s.prefix.as_str())
        .connect()
        .unwrap();
    let to = || EnqueueOptions::new().queue(s.queue.as_str());
    let first = c.enqueue_with(&CallUpstream { n: 1 }, to()).await.unwrap();
    // Runs: (job n, attempt, when).
    let runs: Arc<Mutex<Vec<(u32, u32, std::time::Instant)>>> = Arc::default();
    let seen = Arc::clone(&runs);
    let worker = ferry_queue::Worker::builder(s.redis.url())
        .prefix(s.prefix.clone())
        .queue(s.queue.as_str())
        .concurrency(1)
        .handle(move |job: CallUpstream, ctx: ferry_queue::JobContext| {
            let seen = Arc::clone(&seen);
            async move {
                let mut runs = seen.lock().unwrap();
                let first_run = runs.is_empty();
                runs.push((job.n, ctx.attempt, std::time::Instant::now()));
                if first_run {
                    return Err(ferry_queue::JobError::rate_limited(Duration::from_millis(
                        1500,
                    )));
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
    let second = c.enqueue_with(&CallUpstream { n: 2 }, to()).await.unwrap();
    for id in [&first, &second] {
        let done = c.wait(&s.queue, id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(done.state, ferry_queue::JobState::Succeeded, "{done:?}");
    }
    stop.cancel();
    running.await.unwrap().unwrap();
    let runs = runs.lock().unwrap().clone();
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
