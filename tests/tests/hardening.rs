//! Faults that production Redis deployments bring (issue 9): a failover
//! behind one address, connections closed while idle, typed errors for
//! what an operator must fix. Each test reproduces the fault with real
//! redis-server processes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_queue::{Client, EnqueueOptions, Job, JobContext, JobError, Worker};
use ferry_tests::proxy::Proxy;
use ferry_tests::{unique, wait_until, RedisServer};
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

/// The ids of the jobs a worker ran.
type Ran = Arc<Mutex<HashSet<String>>>;

/// Starts an in-process worker on `url` that records the ids it runs.
fn start_worker(
    url: &str,
    prefix: &str,
    ran: &Ran,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
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
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run_until(stop.cancelled_owned()).await.unwrap() }
    });
    (stop, task)
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
    wait_until(Duration::from_secs(30), "the first 20 jobs run", || {
        let ran = Arc::clone(&ran);
        let before = before.clone();
        async move { before.iter().all(|id| ran.lock().unwrap().contains(id)) }
    })
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
    wait_until(
        Duration::from_secs(30),
        "200 jobs enqueued after the failover run",
        || {
            let ran = Arc::clone(&ran);
            let after = after.clone();
            async move { after.iter().all(|id| ran.lock().unwrap().contains(id)) }
        },
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
