//! Eviction policies (issue 20, item 1). Any `maxmemory-policy` but
//! `noeviction` may delete Ferry's keys: `allkeys-*` queued jobs,
//! `volatile-*` the keys Ferry writes with a TTL (idempotency marks,
//! records, registrations). Producers, workers and `ferry serve` refuse
//! such a server by default, re-check it while they run, and with an
//! explicit opt-in log and count every eviction they see.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_queue::{Client, Job, JobContext, JobError, Worker};
use ferry_tests::{unique, wait_until, RedisServer, WorkerProcess};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Serialize, Deserialize, Debug)]
struct Note {
    n: u32,
}
impl Job for Note {
    const TYPE: &'static str = "note";
    const QUEUE: &'static str = "notes";
}

/// The example worker's `echo` job.
#[derive(Serialize, Deserialize, Debug)]
struct Echo {
    message: String,
}
impl Job for Echo {
    const TYPE: &'static str = "echo";
    const QUEUE: &'static str = "notes";
}

async fn set_policy(redis: &RedisServer, policy: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg(policy)
        .query_async(&mut redis.conn().await)
        .await
        .unwrap();
}

fn note_worker(url: &str, prefix: &str, ran: &Arc<AtomicU64>) -> ferry_queue::WorkerBuilder {
    let ran = Arc::clone(ran);
    Worker::builder(url)
        .prefix(prefix)
        .block_time(Duration::from_millis(200))
        .handle(move |_: Note, _: JobContext| {
            let ran = Arc::clone(&ran);
            async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, JobError>(())
            }
        })
}

/// Both families of evicting policy are refused by a default client and
/// worker, with an error naming the policy and the fix; `noeviction`
/// passes.
#[tokio::test]
async fn every_evicting_policy_is_refused_by_default() {
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("evict");
    for policy in [
        "allkeys-lru",
        "volatile-lru",
        "volatile-ttl",
        "allkeys-random",
    ] {
        set_policy(&redis, policy).await;
        // A new client per policy: each checks on first use.
        let client = Client::builder(redis.url())
            .prefix(&prefix)
            .connect()
            .unwrap();
        let e = client.enqueue(&Note { n: 1 }).await.unwrap_err();
        assert!(
            matches!(e, ferry_queue::Error::EvictionPolicy { policy: ref p, .. } if p == policy),
            "{policy}: {e:?}"
        );
        assert!(
            e.to_string().contains(policy) && e.to_string().contains("maxmemory-policy noeviction"),
            "names the policy and the fix: {e}"
        );
        let ran = Arc::new(AtomicU64::new(0));
        let worker = note_worker(redis.url(), &prefix, &ran).build().unwrap();
        let run = tokio::time::timeout(
            Duration::from_secs(30),
            worker.run_until(std::future::pending()),
        )
        .await
        .expect("run() ends by itself");
        assert!(
            matches!(run, Err(ferry_queue::Error::EvictionPolicy { .. })),
            "{policy}: {run:?}"
        );
    }
    set_policy(&redis, "noeviction").await;
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    client.enqueue(&Note { n: 2 }).await.unwrap();
}

/// With the opt-in, a client and a worker process work on an evicting
/// server and say so; the example's old `--strict-memory-policy` flag
/// still parses (it is the default now).
#[tokio::test]
async fn allow_eviction_works_and_warns() {
    let redis = RedisServer::start_own(&["--maxmemory-policy", "volatile-lru"]).await;
    let prefix = unique("evict");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .allow_eviction(true)
        .connect()
        .unwrap();
    let id = client
        .enqueue(&Echo {
            message: "hi".into(),
        })
        .await
        .unwrap();

    // A default worker process refuses, and says why.
    let mut refused = WorkerProcess::spawn(
        redis.url(),
        &prefix,
        &["--queue", "notes", "--strict-memory-policy"],
    );
    wait_until(Duration::from_secs(30), "the default worker exits", || {
        let exited = refused.exited().is_some();
        async move { exited }
    })
    .await;
    let log = refused.log_text();
    assert!(
        log.contains("volatile-lru") && log.contains("maxmemory-policy noeviction"),
        "{log}"
    );

    let mut worker = WorkerProcess::spawn(
        redis.url(),
        &prefix,
        &["--queue", "notes", "--allow-eviction"],
    );
    let status = client
        .wait("notes", &id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(status.state, ferry_queue::JobState::Succeeded);
    let log = worker.log_text();
    assert!(
        log.contains("maxmemory_policy=volatile-lru") && log.contains("allow_eviction is on"),
        "the worker warns: {log}"
    );
    worker.kill().await;
}

/// An operator who switches the policy while Ferry runs is heard within
/// the re-check interval: the client refuses from then on, a running
/// worker stops claiming (nothing it had is lost), and both resume when
/// the policy is set back.
#[tokio::test]
async fn a_policy_changed_at_run_time_is_refused_until_set_back() {
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("evict");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    client.enqueue(&Note { n: 1 }).await.unwrap();
    let ran = Arc::new(AtomicU64::new(0));
    let worker = note_worker(redis.url(), &prefix, &ran).build().unwrap();
    let activity = worker.activity();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run_until(stop.cancelled_owned()).await }
    });
    wait_until(Duration::from_secs(30), "the first job runs", || {
        let n = ran.load(Ordering::SeqCst);
        async move { n == 1 }
    })
    .await;

    set_policy(&redis, "allkeys-lru").await;
    wait_until(
        Duration::from_secs(30),
        "the worker holds its claims",
        || {
            let held = activity.claims_held();
            async move { held }
        },
    )
    .await;
    wait_until(Duration::from_secs(30), "the client refuses", || {
        let client = client.clone();
        async move {
            matches!(
                client.enqueue(&Note { n: 2 }).await,
                Err(ferry_queue::Error::EvictionPolicy { .. })
            )
        }
    })
    .await;
    // Written past the refusal, as another producer that allows it would.
    let other = Client::builder(redis.url())
        .prefix(&prefix)
        .allow_eviction(true)
        .connect()
        .unwrap();
    let held_id = other.enqueue(&Note { n: 3 }).await.unwrap();
    // The worker's fetcher looks every 500 ms: two seconds without a claim
    // is four looks that took nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = other.status("notes", &held_id).await.unwrap();
    assert_eq!(
        status.state,
        ferry_queue::JobState::Queued,
        "not claimed while held"
    );

    set_policy(&redis, "noeviction").await;
    let done = client
        .wait("notes", &held_id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.state, ferry_queue::JobState::Succeeded);
    assert!(!activity.claims_held());
    client.enqueue(&Note { n: 4 }).await.unwrap();
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// With the opt-in, an eviction the server makes is seen: the worker and
/// the client count it, and the worker logs it as data loss.
#[tokio::test]
async fn with_allow_eviction_each_eviction_is_counted_as_data_loss() {
    let redis = RedisServer::start_own(&["--maxmemory-policy", "allkeys-random"]).await;
    let prefix = unique("evict");
    let ran = Arc::new(AtomicU64::new(0));
    let worker = note_worker(redis.url(), &prefix, &ran)
        .allow_eviction(true)
        .build()
        .unwrap();
    let activity = worker.activity();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run_until(stop.cancelled_owned()).await }
    });
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .allow_eviction(true)
        .connect()
        .unwrap();
    client.enqueue(&Note { n: 1 }).await.unwrap();
    wait_until(Duration::from_secs(30), "the worker runs", || {
        let n = ran.load(Ordering::SeqCst);
        async move { n == 1 }
    })
    .await;

    // Memory pressure: a cap just above what is used, then keys of the
    // test's own until Redis has evicted some.
    let mut conn = redis.conn().await;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + (2 << 20))
        .query_async(&mut conn)
        .await
        .unwrap();
    let filler = "x".repeat(10_000);
    for i in 0..1_000 {
        let _: () = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&filler)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut conn)
        .await
        .unwrap();
    let evicted: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(evicted > 0, "the server evicted keys");

    wait_until(
        Duration::from_secs(30),
        "the worker counts the evictions",
        || {
            let n = activity.evicted_keys();
            async move { n > 0 }
        },
    )
    .await;
    let text = activity.prometheus_text("w");
    assert!(
        !text.contains("ferry_worker_redis_evicted_keys_total{worker=\"w\"} 0\n"),
        "{text}"
    );
    wait_until(Duration::from_secs(30), "the client counts them", || {
        let client = client.clone();
        async move {
            let _ = client.stats("notes").await;
            client.evicted_keys() > 0
        }
    })
    .await;
    assert!(!activity.claims_held(), "allowed: the worker goes on");
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// `ferry serve` will not start on an evicting Redis unless told to, and
/// then its metrics show the policy and the server's eviction count.
#[tokio::test]
async fn ferry_serve_refuses_an_evicting_redis_unless_allowed() {
    let redis = RedisServer::start_own(&["--maxmemory-policy", "allkeys-lru"]).await;
    let out = std::process::Command::new(ferry_tests::ferry_bin())
        .args(["--redis", redis.url(), "serve", "--listen", "127.0.0.1:0"])
        .env_remove("FERRY_ALLOW_EVICTION")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("allkeys-lru")
            && stderr.contains("maxmemory-policy noeviction")
            && stderr.contains("--allow-eviction"),
        "{stderr}"
    );

    let env = ferry_tests::serve::Env::on(redis, "evict", &["--allow-eviction"], &[]);
    let text = env.text("/metrics").await;
    assert!(
        text.contains("ferry_redis_eviction_policy_unsafe{policy=\"allkeys-lru\"} 1"),
        "{text}"
    );
    assert!(text.contains("ferry_redis_evicted_keys_total 0"), "{text}");
}
