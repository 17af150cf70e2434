//! Unique jobs against a real Redis: concurrent producers make one job;
//! each lifetime and mode; the key is released when the job ends in any
//! way (success, dead letter, cancel) and held through crash recovery.

use std::time::Duration;

use ferry_queue::{Client, Duplicate, EnqueueOptions, Job, JobState, Unique};
use ferry_tests::jobs::{Echo, Sleep};
use ferry_tests::scenario::{self, Scenario};
use ferry_tests::{heavy, queue, wait_until};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct AlwaysFail {}
impl Job for AlwaysFail {
    const TYPE: &'static str = "always-fail";
}

fn to(s: &Scenario) -> EnqueueOptions {
    EnqueueOptions::new().queue(s.queue.as_str())
}

fn echo(m: &str) -> Echo {
    Echo { message: m.into() }
}

async fn state(c: &Client, s: &Scenario, id: &str) -> JobState {
    c.status(&s.queue, id).await.unwrap().state
}

/// Eight producers at once with one key: one job, and all eight get its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_producers_make_one_job() {
    let s = scenario::setup("uniq-race").await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let c = s.client();
            let q = s.queue.clone();
            tokio::spawn(async move {
                c.enqueue_unique(
                    &echo(&format!("from producer {i}")),
                    Unique::key("nightly-sync"),
                    EnqueueOptions::new().queue(q),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let new: Vec<_> = results.iter().filter(|r| r.duplicate.is_none()).collect();
    assert_eq!(new.len(), 1, "{results:?}");
    assert!(results.iter().all(|r| r.id == new[0].id), "{results:?}");
    assert_eq!(s.stats().await.total_waiting(), 1);
}

/// By arguments: equal payloads are one job, different ones two; a
/// producer that asks for an error gets one.
#[tokio::test]
async fn by_args_keys_equal_payloads_and_errors_when_asked() {
    let s = scenario::setup("uniq-args").await;
    let c = s.client();
    let a = c
        .enqueue_unique(&echo("a"), Unique::by_args(), to(&s))
        .await
        .unwrap();
    let again = c
        .enqueue_unique(&echo("a"), Unique::by_args(), to(&s))
        .await
        .unwrap();
    let b = c
        .enqueue_unique(&echo("b"), Unique::by_args(), to(&s))
        .await
        .unwrap();
    assert_eq!(
        (again.id.as_str(), again.duplicate),
        (a.id.as_str(), Some(Duplicate::Existing))
    );
    assert_ne!(b.id, a.id);
    assert_eq!(b.duplicate, None);
    let e = c
        .enqueue_unique(&echo("a"), Unique::by_args().error_on_duplicate(), to(&s))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ferry_queue::Error::DuplicateJob { ref id, .. } if *id == a.id),
        "{e}"
    );
    let e = c
        .enqueue_unique(&echo("a"), Unique::key("x".repeat(513)), to(&s))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unique"), "{e}");
}

/// Until finished: held while queued and running, released by success,
/// by a dead letter and by a cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn until_finished_is_released_by_success_dead_letter_and_cancel() {
    let _heavy = heavy().await;
    let s = scenario::setup("uniq-finished").await;
    let c = s.client();
    // Cancel (no worker yet: the job is queued).
    let first = c
        .enqueue_unique(&echo("x"), Unique::key("k"), to(&s))
        .await
        .unwrap();
    let dup = c
        .enqueue_unique(&echo("x"), Unique::key("k"), to(&s))
        .await
        .unwrap();
    assert_eq!(dup.duplicate, Some(Duplicate::Existing));
    c.cancel(&s.queue, &first.id).await.unwrap();
    let second = c
        .enqueue_unique(&echo("x"), Unique::key("k"), to(&s))
        .await
        .unwrap();
    assert_eq!(second.duplicate, None, "released by the cancel");

    // Success.
    let _worker = s.worker(&[]);
    let done = c
        .wait(&s.queue, &second.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    let third = c
        .enqueue_unique(&echo("x"), Unique::key("k"), to(&s))
        .await
        .unwrap();
    assert_eq!(third.duplicate, None, "released by the success");
    c.wait(&s.queue, &third.id, Duration::from_secs(30))
        .await
        .unwrap();

    // Dead letter.
    let fails = to(&s).max_retries(0);
    let doomed = c
        .enqueue_unique(&AlwaysFail {}, Unique::key("d"), fails.clone())
        .await
        .unwrap();
    let dead = c
        .wait(&s.queue, &doomed.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(dead.state, JobState::Dead);
    let next = c
        .enqueue_unique(&AlwaysFail {}, Unique::key("d"), fails)
        .await
        .unwrap();
    assert_eq!(next.duplicate, None, "released by the dead letter");
}

/// Until started: a duplicate while the job waits is dropped; once it
/// runs, the same key makes a new job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn until_started_is_released_when_the_job_starts() {
    let _heavy = heavy().await;
    let s = scenario::setup("uniq-started").await;
    let c = s.client();
    let u = || Unique::key("refresh").until_started();
    let first = c
        .enqueue_unique(&Sleep { ms: 3000 }, u(), to(&s))
        .await
        .unwrap();
    let dup = c
        .enqueue_unique(&Sleep { ms: 3000 }, u(), to(&s))
        .await
        .unwrap();
    assert_eq!(dup.id, first.id);
    let _worker = s.worker(&[]);
    wait_until(Duration::from_secs(30), "the job to run", || async {
        state(&c, &s, &first.id).await == JobState::Running
    })
    .await;
    let next = c
        .enqueue_unique(&Sleep { ms: 3000 }, u(), to(&s))
        .await
        .unwrap();
    assert_eq!(next.duplicate, None);
    assert_ne!(next.id, first.id);
}

/// Throttle: duplicates are dropped for the window from the first
/// enqueue, even after the job has finished; then the key is free.
#[tokio::test]
async fn throttle_drops_duplicates_for_its_window() {
    let s = scenario::setup("uniq-throttle").await;
    let c = s.client();
    let window = Duration::from_millis(1500);
    let u = || Unique::key("digest").throttle(window);
    let first = c.enqueue_unique(&echo("1"), u(), to(&s)).await.unwrap();
    let started = std::time::Instant::now();
    c.cancel(&s.queue, &first.id).await.unwrap();
    let dup = c.enqueue_unique(&echo("2"), u(), to(&s)).await.unwrap();
    assert_eq!(
        dup.duplicate,
        Some(Duplicate::Existing),
        "held though the job ended"
    );
    // Poll until the window has passed (the first enqueue that is new).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let fresh = loop {
        let r = c.enqueue_unique(&echo("3"), u(), to(&s)).await.unwrap();
        if r.duplicate.is_none() {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still throttled after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(started.elapsed() >= window - Duration::from_millis(100));
    assert_ne!(fresh.id, first.id);
}

/// Debounce: a burst of duplicates while the job waits is one job, with
/// the latest payload, due one delay after the last of the burst.
#[tokio::test]
async fn debounce_keeps_the_latest_payload_and_restarts_the_delay() {
    let s = scenario::setup("uniq-debounce").await;
    let c = s.client();
    let delay = Duration::from_secs(60);
    let u = || Unique::key("reindex").debounce(delay);
    let first = c.enqueue_unique(&echo("v1"), u(), to(&s)).await.unwrap();
    let q = queue(&s.prefix, &s.queue);
    let score = |conn: redis::aio::MultiplexedConnection| {
        let key = q.keys().delayed().to_owned();
        let id = first.id.clone();
        async move {
            let mut conn = conn;
            let v: f64 = redis::cmd("ZSCORE")
                .arg(key)
                .arg(id)
                .query_async(&mut conn)
                .await
                .unwrap();
            v as u64
        }
    };
    let due_first = score(s.redis.conn().await).await;
    let mut last = None;
    for v in ["v2", "v3", "v4"] {
        let r = c.enqueue_unique(&echo(v), u(), to(&s)).await.unwrap();
        assert_eq!(
            (r.id.as_str(), r.duplicate),
            (first.id.as_str(), Some(Duplicate::Debounced))
        );
        last = Some(r);
    }
    assert!(last.is_some());
    let due_last = score(s.redis.conn().await).await;
    assert!(due_last >= due_first, "{due_last} < {due_first}");
    let envelope: String = redis::cmd("HGET")
        .arg(q.keys().scheduled())
        .arg(&first.id)
        .query_async(&mut s.redis.conn().await)
        .await
        .unwrap();
    assert!(envelope.contains("v4"), "{envelope}");
    assert_eq!(s.stats().await.delayed, 1);
}

/// A worker killed while running a unique job: the key stays held while
/// the job waits for recovery, and is released once the recovered job
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_job_holds_its_key_until_recovered_and_done() {
    let _heavy = heavy().await;
    let s = scenario::setup("uniq-crash").await;
    let c = s.client();
    let u = || Unique::key("import");
    let job = c
        .enqueue_unique(&Sleep { ms: 1500 }, u(), to(&s))
        .await
        .unwrap();
    let mut doomed = s.worker(&["--lease-ms", "2000"]);
    wait_until(Duration::from_secs(30), "the job to run", || async {
        state(&c, &s, &job.id).await == JobState::Running
    })
    .await;
    doomed.kill().await;
    let dup = c
        .enqueue_unique(&Sleep { ms: 1500 }, u(), to(&s))
        .await
        .unwrap();
    assert_eq!(dup.id, job.id, "held while the job waits for recovery");
    let _rescuer = s.worker(&["--lease-ms", "2000"]);
    let done = c
        .wait(&s.queue, &job.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    let next = c
        .enqueue_unique(&Sleep { ms: 1 }, u(), to(&s))
        .await
        .unwrap();
    assert_eq!(
        next.duplicate, None,
        "released after the recovered job succeeded"
    );
}
