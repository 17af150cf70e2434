//! Item 6 of issue 9: hosts whose clocks are wrong. Every timing decision
//! (when a delayed job is due, when a retry's backoff ends) is made by the
//! Redis server's clock, so one host an hour off can neither fire a fleet's
//! delayed jobs early nor park its retries for an hour. Real processes: the
//! `worker-example` binary with libfaketime preloaded (`faketime` package).

use std::collections::HashMap;
use std::time::Duration;

use ferry_tests::clock::skewed;
use ferry_tests::scenario::{self, Scenario};
use ferry_tests::{produce_with_env, queue, wait_until, WorkerProcess};

/// The server's time, ms since the epoch.
async fn server_now(s: &Scenario) -> u64 {
    let (secs, micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut s.redis.conn().await)
        .await
        .unwrap();
    secs * 1000 + micros / 1000
}

/// Job id -> run-at (ms) of every member of the queue's delayed set.
async fn delayed(s: &Scenario) -> HashMap<String, u64> {
    let members: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(queue(&s.prefix, &s.queue).keys().delayed())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut s.redis.conn().await)
        .await
        .unwrap();
    // Members are job ids (their envelopes are in the scheduled hash).
    members
        .into_iter()
        .map(|(id, score)| (id, score as u64))
        .collect()
}

fn skewed_worker(s: &Scenario, offset: &str, extra: &[&str]) -> WorkerProcess {
    let mut args = vec!["--queue", &s.queue, "--audit", &s.audit];
    args.extend_from_slice(extra);
    WorkerProcess::spawn_with_env(s.redis.url(), &s.prefix, &args, &skewed(offset))
}

async fn skewed_produce(s: &Scenario, offset: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["--queue", s.queue.as_str()];
    args.extend_from_slice(extra);
    produce_with_env(s.redis.url(), &s.prefix, &args, &skewed(offset)).await
}

/// A producer 1 h slow delays a job by 30 minutes, and a worker 1 h fast
/// serves the queue: the job stays delayed, due 30 minutes after the
/// enqueue by the server's clock. (Before: the slow producer's job was
/// already due by the server's clock, and the fast worker promoted any job
/// due within the hour.) A 1 s job enqueued the same way runs, so the
/// worker's promoter did look at the set after the 30-minute job was there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_an_hour_off_neither_fires_nor_parks_delayed_jobs() {
    let s = scenario::setup("clocks").await;
    let before = server_now(&s).await;
    let later = skewed_produce(&s, "-1h", &["--delay-ms", "1800000"]).await;
    let soon = skewed_produce(&s, "-1h", &["--delay-ms", "1000"]).await;
    let due = delayed(&s).await;
    let later_due = due[&later[0]];
    assert!(
        later_due >= before + 1_800_000 && later_due < before + 1_800_000 + 60_000,
        "a 30-minute delay from a producer 1 h slow is due 30 minutes after now by the server's clock; \
         it is due at {later_due}, the server's time was {before}"
    );

    let mut worker = skewed_worker(&s, "+1h", &[]);
    wait_until(Duration::from_secs(30), "the 1 s job runs", || async {
        s.audit().await.contains_key(&soon[0])
    })
    .await;
    // The 1 s job's promotion was the fast worker's first look at a set
    // holding both; the 30-minute job is still there.
    assert!(
        delayed(&s).await.contains_key(&later[0]),
        "a worker 1 h fast must not run a job delayed by 30 minutes"
    );
    assert!(!s.audit().await.contains_key(&later[0]));

    worker.kill().await;
}

/// A retry scheduled by a worker 1 h fast waits its backoff (30 to 60 s
/// here) by the server's clock, not an hour more: a worker with a true
/// clock that takes over after the fast one dies runs it on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_an_hour_fast_schedules_retries_by_the_servers_clock() {
    let s = scenario::setup("clocks-retry").await;
    let mut worker = skewed_worker(
        &s,
        "+1h",
        &["--backoff-base-ms", "60000", "--backoff-max-ms", "60000"],
    );
    let ids = s.produce(&["--kind", "fail:1"]).await;
    wait_until(
        Duration::from_secs(30),
        "the first attempt fails and is retried",
        || async { delayed(&s).await.contains_key(&ids[0]) },
    )
    .await;
    let now = server_now(&s).await;
    let due = delayed(&s).await[&ids[0]];
    assert!(
        due >= now + 25_000 && due <= now + 61_000,
        "a 30-60 s backoff from a worker 1 h fast: due {} s after the server's now",
        (due as i64 - now as i64) / 1000
    );
    worker.kill().await;
}
