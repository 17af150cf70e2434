//! A fleet against a Redis at `maxclients` (issue 20 part 3): workers that
//! could not open every connection they need (claims, blocking reads,
//! heartbeat, control, cancel and pause subscriptions) keep trying, with
//! backoff, until they can, and then run jobs. Real worker processes.

use std::time::Duration;

use ferry_tests::scenario::{with_redis, EXIT};
use ferry_tests::{info_field, wait_until, RedisServer, WorkerProcess};

const WORKERS: usize = 8;

async fn set_maxclients(conn: &mut redis::aio::MultiplexedConnection, n: u32) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg(n)
        .query_async(conn)
        .await
        .unwrap();
}

/// Eight workers start against `maxclients 12`: some of their connections
/// are refused. Once the limit is raised, every one of the eight has its
/// connections back and runs jobs. Then the same with the fleet running:
/// the limit drops back, every connection is closed, and the limit is
/// raised again.
#[tokio::test]
async fn every_worker_rejoins_after_maxclients_frees() {
    let _heavy = ferry_tests::heavy().await;
    let redis = RedisServer::start_own(&["--maxclients", "12"]).await;
    let mut admin = redis.conn().await;
    let s = with_redis(redis, "notes");
    let mut workers: Vec<WorkerProcess> = (0..WORKERS)
        .map(|_| s.worker(&["--concurrency", "1"]))
        .collect();

    // The fleet has met the limit: connections were refused, and each
    // worker has said so or started with what it got.
    wait_until(
        Duration::from_secs(60),
        "connections are refused at maxclients",
        || {
            let mut admin = admin.clone();
            async move { info_field(&mut admin, "stats", "rejected_connections").await >= 5 }
        },
    )
    .await;
    for w in &mut workers {
        assert!(
            w.exited().is_none(),
            "a worker waits for redis:\n{}",
            w.log_text()
        );
    }

    set_maxclients(&mut admin, 1000).await;
    every_worker_joins_and_runs(&s, &mut admin, "after a start at maxclients").await;

    // Again with the fleet running: the limit drops to 12 and every
    // connection (commands, blocking reads, subscriptions) is closed; then
    // the limit is raised.
    set_maxclients(&mut admin, 12).await;
    let refused = info_field(&mut admin, "stats", "rejected_connections").await;
    for kind in ["normal", "pubsub"] {
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg(kind)
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut admin)
            .await
            .unwrap();
    }
    wait_until(
        Duration::from_secs(60),
        "reconnects are refused at maxclients",
        || {
            let mut admin = admin.clone();
            async move { info_field(&mut admin, "stats", "rejected_connections").await >= refused + 5 }
        },
    )
    .await;
    set_maxclients(&mut admin, 1000).await;
    every_worker_joins_and_runs(
        &s,
        &mut admin,
        "after every connection was closed at maxclients",
    )
    .await;

    for w in &workers {
        w.terminate();
    }
    for w in &mut workers {
        assert!(w.wait(EXIT).await.success(), "{}", w.log_text());
    }
    let audit = s.audit().await;
    assert_eq!(audit.len(), 160, "every job ran");
}

/// Waits until every worker has its connections back (its fetcher blocks
/// for new entries, its canceller is subscribed, its heartbeat registers
/// it), then runs 80 jobs of 100 ms, one at a time per worker, and checks
/// from the jobs' records that every worker ran some.
async fn every_worker_joins_and_runs(
    s: &ferry_tests::scenario::Scenario,
    admin: &mut redis::aio::MultiplexedConnection,
    when: &str,
) {
    // Every worker's connections come back: its fetcher blocks for new
    // entries, its canceller is subscribed, its heartbeat registers it.
    wait_until(
        Duration::from_secs(60),
        "all eight workers block for new entries",
        || {
            let mut admin = admin.clone();
            async move { info_field(&mut admin, "clients", "blocked_clients").await >= WORKERS as u64 }
        },
    )
    .await;
    let channel = ferry_tests::queue(&s.prefix, &s.queue)
        .keys()
        .cancel_channel();
    wait_until(
        Duration::from_secs(60),
        "all eight workers listen for cancellations",
        || {
            let (mut admin, channel) = (admin.clone(), channel.clone());
            async move {
                let (_, n): (String, u64) = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(&channel)
                    .query_async(&mut admin)
                    .await
                    .unwrap();
                n == WORKERS as u64
            }
        },
    )
    .await;
    let client = ferry_queue::Client::builder(s.redis.url())
        .prefix(&s.prefix)
        .connect()
        .unwrap();
    wait_until(
        Duration::from_secs(60),
        "all eight workers are registered",
        || {
            let client = client.clone();
            async move { client.workers("notes").await.unwrap().len() == WORKERS }
        },
    )
    .await;

    // 80 jobs of 100 ms, one at a time per worker: each worker takes some.
    let ids = s.produce(&["--count", "80", "--kind", "sleep:100"]).await;
    let mut ran_by = std::collections::BTreeMap::<String, u32>::new();
    for id in &ids {
        let st = client
            .wait(&s.queue, id, Duration::from_secs(120))
            .await
            .unwrap();
        assert_eq!(st.state, ferry_queue::JobState::Succeeded, "{id}");
        *ran_by.entry(st.worker.unwrap_or_default()).or_default() += 1;
    }
    println!(
        "{when}: jobs per worker {:?}",
        ran_by.values().collect::<Vec<_>>()
    );
    assert_eq!(
        ran_by.len(),
        WORKERS,
        "{when}: every worker runs jobs once connections free: {ran_by:?}"
    );
}
