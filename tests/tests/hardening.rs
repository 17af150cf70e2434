//! Faults that production Redis deployments bring (issue 9): a failover
//! behind one address, connections closed while idle, typed errors for
//! what an operator must fix. Each test reproduces the fault with real
//! redis-server processes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_queue::{Client, EnqueueOptions, Job, JobContext, JobError, Worker};
use ferry_tests::proxy::Proxy;
use ferry_tests::{info_field, unique, wait_until, RedisServer};
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

/// The ids of the jobs a worker ran.
type Ran = Arc<Mutex<HashSet<String>>>;

/// Starts an in-process worker on `url` that records the ids it runs.
fn start_worker(
    url: &str,
    prefix: &str,
    ran: &Ran,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let ran = Arc::clone(ran);
    let worker = Worker::builder(url)
        .prefix(prefix)
        .handle(move |_: Note, ctx: JobContext| {
            let ran = Arc::clone(&ran);
            async move {
                ran.lock().unwrap().insert(ctx.job_id);
                Ok::<_, JobError>(())
            }
        })
        .concurrency(8)
        .lease(Duration::from_secs(5))
        .build()
        .unwrap();
    run_in_background(worker)
}

/// Runs `worker` until the returned token is cancelled; the task ends with it.
fn run_in_background(worker: Worker) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run_until(stop.cancelled_owned()).await.unwrap() }
    });
    (stop, task)
}

/// Waits until every job of `ids` has run on a worker recording into `ran`.
async fn wait_all_ran(ran: &Ran, ids: &[String], within: Duration, what: &str) {
    wait_until(within, what, || {
        let ran = Arc::clone(ran);
        async move { ids.iter().all(|id| ran.lock().unwrap().contains(id)) }
    })
    .await;
}

async fn enqueue_notes(client: &Client, n: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            client
                .enqueue_with(&Note { n: i }, EnqueueOptions::new())
                .await
                .unwrap_or_else(|e| panic!("enqueue {i}: {e}")),
        );
    }
    ids
}

async fn role(server: &RedisServer) -> String {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut server.conn().await)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("role:"))
        .unwrap_or("?")
        .trim()
        .to_owned()
}

/// Item 1. Two servers swap roles behind one address, as Sentinel with a
/// VIP or a managed endpoint does: the primary is demoted to a replica,
/// keeping its clients' connections (so they get READONLY on writes), and
/// the address now leads to the new primary. A long-lived client and a
/// running worker must follow within seconds, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_behind_one_address_is_followed_within_seconds() {
    let a = RedisServer::start_own(&[]).await;
    let b = RedisServer::start_own(&[]).await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(a.port())
        .query_async(&mut b.conn().await)
        .await
        .unwrap();
    let proxy = Proxy::start(a.port()).await;
    let prefix = unique("failover");
    let client = Client::builder(proxy.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let ran: Ran = Arc::default();
    let (stop, worker) = start_worker(&proxy.url(), &prefix, &ran);

    let before = enqueue_notes(&client, 20).await;
    wait_all_ran(
        &ran,
        &before,
        Duration::from_secs(30),
        "the first 20 jobs run",
    )
    .await;
    // B has everything A has before the switch.
    wait_until(
        Duration::from_secs(10),
        "the replica catches up",
        || async {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut b.conn().await)
                .await
                .unwrap();
            info.contains("master_link_status:up")
        },
    )
    .await;

    // Fail over: promote B, point the address at it, demote A. Connections
    // already open through the proxy stay on A.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut b.conn().await)
        .await
        .unwrap();
    proxy.switch_to(b.port());
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(b.port())
        .query_async(&mut a.conn().await)
        .await
        .unwrap();
    assert_eq!(role(&a).await, "slave");
    assert_eq!(role(&b).await, "master");
    let switched = Instant::now();

    // The same client, the same worker: 200 new jobs enqueue and run.
    let after = enqueue_notes(&client, 200).await;
    wait_all_ran(
        &ran,
        &after,
        Duration::from_secs(30),
        "200 jobs enqueued after the failover run",
    )
    .await;
    println!(
        "failover: 200 jobs enqueued and run {:.1} s after the switch",
        switched.elapsed().as_secs_f64()
    );
    stop.cancel();
    worker.await.unwrap();
}

/// Item 2. The server closes a long-lived client's idle connection (its
/// `timeout`, a proxy, NAT), or restarts quickly while the client is idle:
/// the next call succeeds, with no error to the caller.
#[tokio::test]
async fn a_client_whose_idle_connection_was_closed_carries_on() {
    let mut redis = RedisServer::start_own(&[]).await;
    let prefix = unique("idle");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    enqueue_notes(&client, 1).await;

    for round in 0..3 {
        // Close every client connection but this one, as `timeout` does.
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut redis.conn().await)
            .await
            .unwrap();
        assert!(
            killed >= 1,
            "round {round}: the client's connection was closed"
        );
        client
            .enqueue_with(&Note { n: round }, EnqueueOptions::new())
            .await
            .unwrap_or_else(|e| panic!("round {round}: enqueue after the idle close: {e}"));
        client.stats("notes").await.unwrap();
    }

    // A quick restart while the client is idle.
    redis.restart(&[]).await;
    client
        .enqueue_with(&Note { n: 99 }, EnqueueOptions::new())
        .await
        .unwrap_or_else(|e| panic!("enqueue after a quick restart: {e}"));
    assert_eq!(
        client
            .stats("notes")
            .await
            .unwrap()
            .waiting
            .iter()
            .sum::<u64>(),
        1
    );
}

/// The enqueue of one note, with its error.
async fn enqueue_one(url: &str) -> ferry_queue::Result<String> {
    Client::builder(url)
        .prefix(unique("errors"))
        .connect()?
        .enqueue(&Note { n: 1 })
        .await
}

/// A worker's `run()` on `url`, which must end by itself.
async fn run_worker(worker: Worker) -> ferry_queue::Result<()> {
    tokio::time::timeout(
        Duration::from_secs(30),
        worker.run_until(std::future::pending()),
    )
    .await
    .expect("run() ends by itself")
}

fn note_worker(url: &str) -> ferry_queue::WorkerBuilder {
    Worker::builder(url)
        .prefix(unique("errors"))
        .handle(|_: Note, _: JobContext| async { Ok::<_, JobError>(()) })
}

/// Item 13. Each failure an operator must fix is a distinct typed error
/// whose message names the server (never the password) and says what to do.
#[tokio::test]
async fn errors_name_the_server_and_say_what_to_do() {
    let redis = RedisServer::start_own(&[]).await;
    // A password from now on; this connection is already in.
    let mut admin = redis.conn().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret-pw")
        .query_async(&mut admin)
        .await
        .unwrap();
    let host = format!("127.0.0.1:{}", redis.port());
    let good = format!("redis://:s3cret-pw@{host}");
    let check = |e: &ferry_queue::Error, what: &str| {
        let text = e.to_string();
        assert!(text.contains(&host), "{what}: names the server: {text}");
        assert!(
            !text.contains("s3cret") && !text.contains("wrong-pw"),
            "{what}: no password: {text}"
        );
    };

    // A URL that does not parse: a config error naming the setting.
    let e = Client::connect("redis://127.0.0.1:notaport").unwrap_err();
    assert!(
        matches!(
            e,
            ferry_queue::Error::Config(ferry_queue::ConfigError::InvalidSetting {
                name: "redis_url",
                ..
            })
        ),
        "{e}"
    );

    // A wrong password, then none at all.
    let e = enqueue_one(&format!("redis://:wrong-pw@{host}"))
        .await
        .unwrap_err();
    assert!(matches!(e, ferry_queue::Error::AuthFailed { .. }), "{e:?}");
    check(&e, "wrong password");
    let e = enqueue_one(&format!("redis://{host}")).await.unwrap_err();
    assert!(
        matches!(e, ferry_queue::Error::AuthRequired { .. }),
        "{e:?}"
    );
    check(&e, "missing password");

    // A worker that cannot authenticate fails run() with that error.
    let e = run_worker(
        note_worker(&format!("redis://:wrong-pw@{host}"))
            .build()
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ferry_queue::Error::AuthFailed { .. }), "{e:?}");
    let e = run_worker(note_worker(&format!("redis://{host}")).build().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(e, ferry_queue::Error::AuthRequired { .. }),
        "{e:?}"
    );

    // An unknown dead-letter id, well formed or not.
    let client = Client::connect(good.as_str()).unwrap();
    for id in ["1-0", "not-an-id", ""] {
        let e = client.replay_dead("notes", id).await.unwrap_err();
        assert!(
            matches!(e, ferry_queue::Error::DeadLetterNotFound { .. }),
            "{id}: {e:?}"
        );
        assert!(e.to_string().contains("notes"), "{e}");
    }

    // Out of memory: writes are refused under maxmemory with noeviction.
    let _: () = redis::cmd("SET")
        .arg("filler")
        .arg(vec![b'x'; 4 << 20])
        .query_async(&mut admin)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1mb")
        .query_async(&mut admin)
        .await
        .unwrap();
    let e = enqueue_one(&good).await.unwrap_err();
    assert!(matches!(e, ferry_queue::Error::OutOfMemory { .. }), "{e:?}");
    check(&e, "out of memory");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query_async(&mut admin)
        .await
        .unwrap();

    // A replica: READONLY even after the reconnect.
    let primary = RedisServer::start_own(&[]).await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query_async(&mut admin)
        .await
        .unwrap();
    let e = enqueue_one(&good).await.unwrap_err();
    assert!(matches!(e, ferry_queue::Error::ReadOnly { .. }), "{e:?}");
    assert!(e.is_connection_error(), "a failover in progress may pass");
    check(&e, "read-only replica");
}

// Item 4 (eviction policies) is in memory_policy.rs.

/// Item 12. At `maxclients` a running worker's connections are closed and
/// new ones refused with the server's reason. The reason reaches the log,
/// reconnects back off, and a repeated error is logged once per interval
/// with a count. When a slot frees, the worker carries on.
#[tokio::test]
async fn at_maxclients_the_reason_is_logged_rarely_and_reconnects_back_off() {
    let redis = RedisServer::start_own(&[]).await;
    let mut admin = redis.conn().await;
    let prefix = unique("maxclients");
    let mut worker = ferry_tests::WorkerProcess::spawn(redis.url(), &prefix, &["--queue", "notes"]);
    wait_until(Duration::from_secs(60), "the worker starts", || {
        let log = worker.log_text();
        async move { log.contains("worker started") }
    })
    .await;
    let lines_before = worker.log_text().lines().count();
    let rejected_before = info_field(&mut admin, "stats", "rejected_connections").await;

    // Only the admin connection fits; every other one is closed.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg("1")
        .query_async(&mut admin)
        .await
        .unwrap();
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "the server's reason reaches the log",
        || {
            let log = worker.log_text();
            async move { log.contains("max number of clients reached") }
        },
    )
    .await;
    // A fixed window to count in (a measurement, not a synchronisation).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let window = started.elapsed().as_secs_f64();
    let lines = worker.log_text().lines().count() - lines_before;
    let rejected = info_field(&mut admin, "stats", "rejected_connections").await - rejected_before;
    println!(
        "maxclients: {lines} log lines and {rejected} refused connections in {window:.1} s \
         ({:.1} lines/s, {:.1} connections/s)",
        lines as f64 / window,
        rejected as f64 / window
    );
    assert!(
        lines as f64 / window < 2.0,
        "at most a few lines per interval: {lines} in {window:.1} s\n{}",
        worker.log_text()
    );
    assert!(
        rejected as f64 / window < 15.0,
        "reconnects back off: {rejected} in {window:.1} s"
    );
    assert!(worker.exited().is_none(), "the worker waits for redis");

    // A slot frees: the worker runs a new job.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg("100")
        .query_async(&mut admin)
        .await
        .unwrap();
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    client
        .enqueue(&Echo {
            message: "again".into(),
        })
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the worker runs a job again",
        || {
            let client = client.clone();
            async move { client.stats("notes").await.unwrap().counter("completed") == 1 }
        },
    )
    .await;
    worker.kill().await;
}

/// Item 14. A cleanly stopped worker leaves the group of every stream
/// where it owns nothing, so XINFO CONSUMERS lists live workers only.
#[tokio::test]
async fn a_cleanly_stopped_worker_removes_its_own_consumer() {
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("leave");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let ran: Ran = Arc::default();
    let (stop, worker) = start_worker(redis.url(), &prefix, &ran);
    let ids = enqueue_notes(&client, 5).await;
    wait_all_ran(&ran, &ids, Duration::from_secs(30), "the jobs run").await;
    let keys = client.keys("notes").unwrap();
    let mut conn = redis.conn().await;
    let consumers = |conn: &mut redis::aio::MultiplexedConnection| {
        let stream = keys.stream(ferry_queue::Priority::Normal).to_owned();
        let mut conn = conn.clone();
        async move {
            let list: Vec<redis::Value> = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(stream)
                .arg("workers")
                .query_async(&mut conn)
                .await
                .unwrap();
            list.len()
        }
    };
    assert_eq!(
        consumers(&mut conn).await,
        1,
        "the running worker is listed"
    );
    stop.cancel();
    worker.await.unwrap();
    assert_eq!(
        consumers(&mut conn).await,
        0,
        "the stopped worker is gone from XINFO CONSUMERS"
    );
}

/// Item 14. Schedules that would never run are refused.
#[tokio::test]
async fn a_schedule_that_would_never_run_is_refused() {
    let redis = RedisServer::start_own(&[]).await;
    let client = Client::builder(redis.url())
        .prefix(unique("sched"))
        .connect()
        .unwrap();
    for options in [
        EnqueueOptions::new().delay(Duration::from_millis(u64::MAX)),
        EnqueueOptions::new().delay(Duration::MAX),
        EnqueueOptions::new()
            .run_at(std::time::SystemTime::now() + Duration::from_secs(11 * 365 * 24 * 3600)),
    ] {
        let e = client
            .enqueue_with(&Note { n: 1 }, options)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ferry_queue::Error::Config(ferry_queue::ConfigError::InvalidSetting { .. })
            ),
            "{e:?}"
        );
    }
    // A year ahead is fine.
    client
        .enqueue_with(
            &Note { n: 2 },
            EnqueueOptions::new().delay(Duration::from_secs(365 * 24 * 3600)),
        )
        .await
        .unwrap();
}

/// Item 5. Redis at `maxmemory` with `noeviction`: a worker started then
/// still drains what is queued (draining frees memory), although Redis
/// refuses XGROUP CREATE even for a group that exists; an enqueue gets a
/// typed out-of-memory error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_during_oom_drains_the_queue() {
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("oom");
    let mut admin = redis.conn().await;
    ferry_tests::queue(&prefix, "notes")
        .ensure_groups(&mut admin)
        .await
        .unwrap();
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let ids = enqueue_notes(&client, 300).await;
    // Full: maxmemory below what is used.
    let used = info_field(&mut admin, "memory", "used_memory").await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg((used - 200_000).to_string())
        .query_async(&mut admin)
        .await
        .unwrap();
    let e = client.enqueue(&Note { n: 0 }).await.unwrap_err();
    assert!(matches!(e, ferry_queue::Error::OutOfMemory { .. }), "{e:?}");

    let ran: Ran = Arc::default();
    let (stop, worker) = start_worker(redis.url(), &prefix, &ran);
    wait_all_ran(
        &ran,
        &ids,
        Duration::from_secs(60),
        "the 300 queued jobs run during OOM",
    )
    .await;
    stop.cancel();
    worker.await.unwrap();
    let stats = client.stats("notes").await.unwrap();
    assert_eq!(
        stats.total_pending() + stats.total_waiting(),
        0,
        "{stats:?}"
    );
}

/// A job type a worker of the old deploy does not know.
#[derive(Serialize, Deserialize, Debug)]
struct Fresh {
    n: u32,
}
impl Job for Fresh {
    const TYPE: &'static str = "fresh";
    const QUEUE: &'static str = "notes";
}

/// Item 8. A rolling deploy, producers first: jobs of a new type reach a
/// worker that has no handler for it. They go back for another worker,
/// retries untouched, and run once a worker that knows the type starts;
/// none is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_type_no_worker_knows_yet_wait_for_one_that_does() {
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("deploy");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    // The old worker: knows `note` only.
    let ran: Ran = Arc::default();
    let (stop_old, old) = start_worker(redis.url(), &prefix, &ran);
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(client.enqueue(&Fresh { n }).await.unwrap());
    }
    // The old worker has seen every one of them and put it back.
    wait_until(
        Duration::from_secs(30),
        "the old worker puts the 20 jobs back",
        || {
            let client = client.clone();
            async move { client.stats("notes").await.unwrap().counter("retried") >= 20 }
        },
    )
    .await;
    assert_eq!(client.stats("notes").await.unwrap().dead, 0);

    // The new worker knows `fresh`.
    let attempts: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let stop_new = CancellationToken::new();
    let new = Worker::builder(redis.url())
        .prefix(&prefix)
        .handle({
            let attempts = Arc::clone(&attempts);
            move |_: Fresh, ctx: JobContext| {
                let attempts = Arc::clone(&attempts);
                async move {
                    attempts.lock().unwrap().push((ctx.job_id, ctx.attempt));
                    Ok::<_, JobError>(())
                }
            }
        })
        .build()
        .unwrap();
    let new = tokio::spawn({
        let stop = stop_new.clone();
        async move { new.run_until(stop.cancelled_owned()).await.unwrap() }
    });
    wait_until(
        Duration::from_secs(60),
        "the 20 jobs run on the new worker",
        || {
            let attempts = Arc::clone(&attempts);
            async move { attempts.lock().unwrap().len() >= 20 }
        },
    )
    .await;
    let attempts = attempts.lock().unwrap().clone();
    let mut seen: Vec<&String> = attempts.iter().map(|(id, _)| id).collect();
    seen.sort();
    let mut want: Vec<&String> = ids.iter().collect();
    want.sort();
    assert_eq!(seen, want, "each job ran once, on the new worker");
    assert!(
        attempts.iter().all(|(_, a)| *a == 1),
        "retries untouched: {attempts:?}"
    );
    assert_eq!(
        client.stats("notes").await.unwrap().dead,
        0,
        "none dead-lettered"
    );
    stop_old.cancel();
    stop_new.cancel();
    old.await.unwrap();
    new.await.unwrap();
}

/// Item 3. Redis is down for 16 s (AOF on) while 16 jobs finish, with a
/// 30 s lease: the worker keeps trying to record their outcomes for as
/// long as the lease could hold, renews its leases as soon as Redis is
/// back, and no job runs twice. (Before: outcome writes gave up after
/// about 6 to 11 s, and recovery ran every job again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_shorter_than_the_lease_runs_nothing_twice() {
    const AOF: &[&str] = &["--appendonly", "yes"];
    let mut redis = RedisServer::start_own(AOF).await;
    let prefix = unique("restart");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let worker = Worker::builder(redis.url())
        .prefix(&prefix)
        .handle({
            let runs = Arc::clone(&runs);
            move |_: Note, ctx: JobContext| {
                let runs = Arc::clone(&runs);
                async move {
                    *runs.lock().unwrap().entry(ctx.job_id).or_default() += 1;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    Ok::<_, JobError>(())
                }
            }
        })
        .concurrency(16)
        .lease(Duration::from_secs(30))
        .build()
        .unwrap();
    let (stop, task) = run_in_background(worker);
    let ids = enqueue_notes(&client, 16).await;
    wait_until(Duration::from_secs(20), "all 16 jobs started", || {
        let runs = Arc::clone(&runs);
        async move { runs.lock().unwrap().len() == 16 }
    })
    .await;

    redis.kill();
    // The outage itself, not a wait for an event: the jobs finish 3 s in.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let down_until = Instant::now();
    redis.restart(AOF).await;

    let q = ferry_tests::queue(&prefix, "notes");
    wait_until(Duration::from_secs(20), "every outcome recorded", || {
        let (redis, q) = (&redis, &q);
        async move {
            let s = q.stats(&mut redis.conn().await).await.unwrap();
            s.total_pending() + s.total_waiting() == 0 && s.counter("completed") == 16
        }
    })
    .await;
    eprintln!(
        "outcomes recorded {:?} after Redis was back",
        down_until.elapsed()
    );
    stop.cancel();
    task.await.unwrap();
    let runs = runs.lock().unwrap();
    for id in &ids {
        assert_eq!(
            runs.get(id),
            Some(&1),
            "job {id} ran {:?} times",
            runs.get(id)
        );
    }
}

/// Item 5. At `maxmemory` (noeviction) a failed attempt's retry is still
/// recorded (the script frees the entry before it adds the retry), so the
/// job waits its backoff instead of running again every lease and being
/// dead-lettered as "crashed". A job out of retries is dead-lettered with
/// its own error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_oom_a_failure_is_retried_after_its_backoff_and_dead_letters_say_why() {
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("oom-retry");
    let mut admin = redis.conn().await;
    let q = ferry_tests::queue(&prefix, "notes");
    q.ensure_groups(&mut admin).await.unwrap();
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    // n = 0 fails once then succeeds; n = 1 always fails (no retries).
    let retried = client
        .enqueue_with(&Note { n: 0 }, EnqueueOptions::new().max_retries(3))
        .await
        .unwrap();
    let doomed = client
        .enqueue_with(&Note { n: 1 }, EnqueueOptions::new().max_retries(0))
        .await
        .unwrap();
    let used = info_field(&mut admin, "memory", "used_memory").await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg((used - 100_000).to_string())
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(matches!(
        client.enqueue(&Note { n: 2 }).await,
        Err(ferry_queue::Error::OutOfMemory { .. })
    ));

    let starts: Arc<Mutex<Vec<(u32, u32, Instant)>>> = Arc::default();
    let worker = Worker::builder(redis.url())
        .prefix(&prefix)
        .handle({
            let starts = Arc::clone(&starts);
            move |note: Note, ctx: JobContext| {
                let starts = Arc::clone(&starts);
                async move {
                    starts
                        .lock()
                        .unwrap()
                        .push((note.n, ctx.attempt, Instant::now()));
                    if note.n == 1 || ctx.attempt == 1 {
                        return Err(JobError::retry(format!("note {} failed", note.n)));
                    }
                    Ok(())
                }
            }
        })
        .backoff(ferry_queue::Backoff::new(Duration::from_secs(4), Duration::from_secs(4)).unwrap())
        .lease(Duration::from_secs(2))
        .build()
        .unwrap();
    let (stop, task) = run_in_background(worker);
    wait_until(Duration::from_secs(30), "the retried job succeeds", || {
        let starts = Arc::clone(&starts);
        async move { starts.lock().unwrap().iter().any(|s| s.0 == 0 && s.1 == 2) }
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    let starts = starts.lock().unwrap().clone();
    let first: Vec<_> = starts.iter().filter(|s| s.0 == 0).collect();
    assert_eq!(
        first.iter().map(|s| s.1).collect::<Vec<_>>(),
        [1, 2],
        "one failure, one retry, nothing run again in between: {starts:?}"
    );
    let gap = first[1].2 - first[0].2;
    assert!(
        gap >= Duration::from_secs(2),
        "the retry waited its backoff (2-4 s): {gap:?}"
    );

    let dead = client.dead_letters("notes", 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].get("id"), Some(doomed.as_str()));
    let error = dead[0].get("error").unwrap_or_default();
    assert!(
        error.contains("note 1 failed"),
        "the dead letter gives the job's own error: {error}"
    );
    let _ = retried;
}

/// A job with a big payload.
#[derive(Serialize, Deserialize, Debug)]
struct Blob {
    data: String,
}
impl Job for Blob {
    const TYPE: &'static str = "blob";
    const QUEUE: &'static str = "blobs";
}

/// Item 11. A 200-slot worker drains 200 jobs of 1 MB: each claim is
/// bounded by bytes, so Redis never builds a reply of hundreds of MB.
/// Measured by the server's memory peak, which a 200 MB claim reply would
/// raise by 200 MB. (Before: one claim took all 200.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_big_payloads_are_bounded_by_bytes() {
    let _heavy = ferry_tests::heavy().await;
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("blobs");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let data = "x".repeat(1_000_000);
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(client.enqueue(&Blob { data: data.clone() }).await.unwrap());
    }
    let mut admin = redis.conn().await;
    let peak_before = info_field(&mut admin, "memory", "used_memory_peak").await;

    let ran: Ran = Arc::default();
    let worker = Worker::builder(redis.url())
        .prefix(&prefix)
        .handle({
            let ran = Arc::clone(&ran);
            move |_: Blob, ctx: JobContext| {
                let ran = Arc::clone(&ran);
                async move {
                    ran.lock().unwrap().insert(ctx.job_id);
                    Ok::<_, JobError>(())
                }
            }
        })
        .concurrency(200)
        .build()
        .unwrap();
    let (stop, task) = run_in_background(worker);
    wait_all_ran(&ran, &ids, Duration::from_secs(60), "the 200 big jobs run").await;
    stop.cancel();
    task.await.unwrap();
    let peak_after = info_field(&mut admin, "memory", "used_memory_peak").await;
    let rise = peak_after.saturating_sub(peak_before);
    eprintln!(
        "memory peak rose {} MB while 200 MB of jobs were claimed",
        rise / 1_000_000
    );
    assert!(
        rise < 50_000_000,
        "a claim is bounded by bytes: the memory peak rose {} MB",
        rise / 1_000_000
    );
}

/// `INFO commandstats` calls of `command` (lowercase).
async fn command_calls(conn: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|v| v.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Item 9. A batch of 200,000 jobs goes in chunks of 1,000 jobs (one
/// `enqueue.lua` call each, atomic like the transaction it replaced), one
/// after the other, so no single transaction holds Redis for long and
/// Redis does not buffer the whole batch. (Before: one MULTI/EXEC of
/// 200,000 XADDs stalled every other client for 225 ms, with a memory peak
/// of 204 MB for 38 MB of jobs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_batch_goes_in_bounded_chunks() {
    let _heavy = ferry_tests::heavy().await;
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("huge");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let mut admin = redis.conn().await;
    // Loaded beforehand, so each chunk is one EVALSHA (no NOSCRIPT retry).
    ferry_broker::scripts::load_all(&mut admin).await.unwrap();
    let used_before = info_field(&mut admin, "memory", "used_memory").await;
    let jobs: Vec<Note> = (0..200_000).map(|n| Note { n }).collect();
    let ids = client
        .enqueue_batch(&jobs, EnqueueOptions::new())
        .await
        .unwrap();
    assert_eq!(ids.len(), 200_000);
    assert_eq!(
        command_calls(&mut admin, "evalsha").await,
        200,
        "200,000 jobs in 200 script calls of 1,000"
    );
    let stats = client.stats("notes").await.unwrap();
    assert_eq!(stats.total_waiting(), 200_000);
    let used = info_field(&mut admin, "memory", "used_memory").await - used_before;
    let peak = info_field(&mut admin, "memory", "used_memory_peak").await - used_before;
    eprintln!(
        "200,000 jobs: {} MB stored, peak {} MB",
        used / 1_000_000,
        peak / 1_000_000
    );
    assert!(
        peak < used + used / 2,
        "Redis buffered the batch: peak {peak} bytes for {used} stored"
    );
}

/// Item 9. A batch that fails part way says exactly what was written, and
/// enqueued again under the same idempotency key it adds only what is
/// missing, with the same ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_keyed_batch_adds_only_what_is_missing() {
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("keyed");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let mut admin = redis.conn().await;
    ferry_broker::scripts::load_all(&mut admin).await.unwrap();
    // Whole retries: same key, same jobs, same ids, nothing added.
    let small: Vec<Note> = (0..2_500).map(|n| Note { n }).collect();
    let keyed = || EnqueueOptions::new().idempotency_key("import:small");
    let first = client.enqueue_batch(&small, keyed()).await.unwrap();
    let again = client.enqueue_batch(&small, keyed()).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(client.stats("notes").await.unwrap().total_waiting(), 2_500);

    // A batch of 2 KB jobs that Redis refuses after its first chunk (1,000
    // jobs, about 2.5 MB) is written: maxmemory is 3.5 MB above now, and the
    // 2 MB request counts too while Redis reads it.
    let blobs: Vec<Blob> = (0..2_500)
        .map(|n| Blob {
            data: format!("{n:02048}"),
        })
        .collect();
    let used = info_field(&mut admin, "memory", "used_memory").await;
    let set_maxmemory = |bytes: u64| {
        let mut admin = admin.clone();
        async move {
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory")
                .arg(bytes.to_string())
                .query_async(&mut admin)
                .await
                .unwrap();
        }
    };
    set_maxmemory(used + 3_500_000).await;
    let options = || EnqueueOptions::new().idempotency_key("import:blobs");
    let e = client.enqueue_batch(&blobs, options()).await.unwrap_err();
    let ferry_queue::Error::PartialBatch {
        written,
        unknown,
        not_sent,
        source,
    } = e
    else {
        panic!("a partial batch error: {e:?}")
    };
    assert_eq!(
        (written.len(), unknown.len(), not_sent),
        (1_000, 0, 1_500),
        "{source}"
    );
    assert!(
        matches!(*source, ferry_queue::Error::OutOfMemory { .. }),
        "{source:?}"
    );
    let blob_stream = ferry_tests::queue(&prefix, "blobs");
    let waiting = |admin: &redis::aio::MultiplexedConnection| {
        let (mut admin, q) = (admin.clone(), blob_stream.clone());
        async move { q.stats(&mut admin).await.unwrap().total_waiting() }
    };
    assert_eq!(waiting(&admin).await, 1_000, "exactly the jobs it says");

    set_maxmemory(0).await;
    let ids = client.enqueue_batch(&blobs, options()).await.unwrap();
    assert_eq!(ids[..1_000], written[..]);
    assert_eq!(
        waiting(&admin).await,
        2_500,
        "the retry added only the missing 1,500"
    );
    let stored: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(blob_stream.keys().stream(ferry_queue::Priority::Normal))
        .arg("-")
        .arg("+")
        .query_async(&mut admin)
        .await
        .unwrap();
    let stored_ids: HashSet<&str> = stored
        .iter()
        .filter_map(|(_, f)| f.iter().find(|(k, _)| k == "id").map(|(_, v)| v.as_str()))
        .collect();
    assert_eq!(stored_ids.len(), 2_500, "no job twice");
    assert!(ids.iter().all(|id| stored_ids.contains(id.as_str())));
}

/// Item 6, with an ACL that lacks `+time` (a user who has not applied the
/// migration note): the scripts read the server's clock before they write
/// anything, so a refused TIME moves nothing and loses nothing, and a
/// worker refuses to start with a typed error naming what to add.
#[tokio::test]
async fn a_user_without_time_loses_nothing_and_the_worker_says_what_to_add() {
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("notime");
    let mut admin = redis.conn().await;
    let _: () = redis::cmd("ACL")
        .arg(
            &[
                "SETUSER", "notime", "on", ">pw", "~*", "&*", "+@all", "-time",
            ][..],
        )
        .query_async(&mut admin)
        .await
        .unwrap();
    let url = format!("redis://notime:pw@127.0.0.1:{}", redis.port());
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    client.enqueue(&Note { n: 1 }).await.unwrap();
    let mut user = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let q = ferry_tests::queue(&prefix, "notes");
    let consumer = q.consumer("c");
    let d = consumer.claim(&mut user, 1).await.unwrap().remove(0);
    let env = d.envelope(1 << 20).unwrap();
    let retry = consumer.retry(&mut user, &d, &env, Duration::ZERO).await;
    assert!(retry.is_err(), "{retry:?}");
    let dead = consumer
        .dead_letter(&mut user, &d, "x", ferry_broker::DeadLetterKind::Failed)
        .await;
    assert!(dead.is_err(), "{dead:?}");
    let stats = q.stats(&mut admin).await.unwrap();
    assert_eq!(
        (stats.total_pending(), stats.delayed, stats.dead),
        (1, 0, 0),
        "the entry is still pending, nothing moved: {stats:?}"
    );

    let worker = Worker::builder(url.as_str())
        .prefix(&prefix)
        .handle(|_: Note, _: JobContext| async { Ok::<_, JobError>(()) })
        .build()
        .unwrap();
    let e = run_worker(worker).await.unwrap_err();
    assert!(
        matches!(
            e,
            ferry_queue::Error::CommandRefused {
                command: "TIME",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("+time"), "{e}");
}
