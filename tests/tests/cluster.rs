//! Ferry on a local 3-master Redis Cluster (`redis+cluster://`): queues on
//! different masters, real worker processes (one SIGKILLed), waits and
//! cancellations over sharded Pub/Sub, and the CLI's queue list reading
//! every master.

use std::collections::BTreeSet;
use std::time::Duration;

use ferry_queue::{Cancel, Client, JobState};
use ferry_tests::cluster::RedisCluster;
use ferry_tests::{audit_counts, ferry, produce, unique, wait_until, WorkerProcess};

const EXIT: Duration = Duration::from_secs(60);

/// Three queue names whose slots are served by three different masters.
async fn queues_on_each_master(cluster: &RedisCluster, prefix: &str) -> Vec<String> {
    let mut by_master = std::collections::BTreeMap::new();
    for i in 0..1000 {
        let name = format!("q{i}");
        let slot = RedisCluster::slot_of(&format!("{prefix}:{{{name}}}:normal"));
        let master = cluster.master_of_slot(slot).await;
        by_master.entry(master).or_insert(name);
        if by_master.len() == 3 {
            break;
        }
    }
    assert_eq!(by_master.len(), 3, "no queue names found on every master");
    by_master.into_values().collect()
}

#[tokio::test]
async fn a_fleet_runs_queues_on_every_master_and_recovers_a_killed_worker() {
    let cluster = RedisCluster::start(3, 0).await;
    let url = cluster.url();
    let prefix = unique("cl");
    let queues = queues_on_each_master(&cluster, &prefix).await;

    let mut ids = Vec::new();
    for q in &queues {
        ids.extend(produce(&url, &prefix, &["--queue", q, "--count", "100"]).await);
        ids.extend(produce(&url, &prefix, &["--queue", q, "--kind", "sleep:1500"]).await);
    }
    let audit = format!("{prefix}:audit");
    let mut args = vec![
        "--concurrency",
        "20",
        "--lease-ms",
        "1000",
        "--audit",
        &audit,
    ];
    for q in &queues {
        args.extend(["--queue", q.as_str()]);
    }

    // The first worker takes the sleeping jobs and dies holding them.
    let mut doomed = WorkerProcess::spawn(&url, &prefix, &args);
    let client = Client::builder(url.as_str())
        .prefix(&prefix)
        .connect()
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the first worker runs the sleeping jobs",
        || async {
            let mut running = 0;
            for q in &queues {
                running += client.stats(q).await.unwrap().total_pending();
            }
            running >= 3
        },
    )
    .await;
    doomed.kill().await;
    doomed.wait(EXIT).await;

    args.extend(["--exit-when-idle", "0.5"]);
    let mut rescuer = WorkerProcess::spawn(&url, &prefix, &args);
    assert!(rescuer.wait(EXIT).await.success(), "{}", rescuer.log_text());

    let mut conn = cluster_conn(&url).await;
    let counts = audit_counts(&mut conn, &audit).await;
    for id in &ids {
        assert!(
            counts.get(id).copied().unwrap_or(0) >= 1,
            "job {id} never ran"
        );
    }
    let mut recovered = 0;
    for q in &queues {
        let stats = client.stats(q).await.unwrap();
        assert_eq!(
            stats.total_pending(),
            0,
            "queue {q} still has running entries"
        );
        recovered += stats.counter("recovered");
    }
    assert!(
        recovered >= 3,
        "the killed worker's jobs were recovered ({recovered})"
    );

    // Discovery walks every master: all three queues are listed.
    let listed = ferry(&url, &prefix, &["queues"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    for q in &queues {
        assert!(
            listed.stdout.contains(q.as_str()),
            "{q} not listed:\n{}",
            listed.stdout
        );
    }
}

#[tokio::test]
async fn waits_and_cancellations_are_heard_over_sharded_pubsub() {
    let cluster = RedisCluster::start(3, 0).await;
    let url = cluster.url();
    let prefix = unique("clw");
    let queues = queues_on_each_master(&cluster, &prefix).await;
    let client = Client::builder(url.as_str())
        .prefix(&prefix)
        .connect()
        .unwrap();

    let mut args = vec!["--concurrency", "4"];
    for q in &queues {
        args.extend(["--queue", q.as_str()]);
    }
    let mut worker = WorkerProcess::spawn(&url, &prefix, &args);

    // A wait on each master's queue, started before the job runs: only the
    // notice (SPUBLISH on the queue's shard) can end it in time.
    let mut waits = Vec::new();
    let mut blocked = Vec::new();
    for q in &queues {
        let id = produce(&url, &prefix, &["--queue", q, "--kind", "sleep:300"]).await;
        let (client, q2, id) = (client.clone(), q.clone(), id[0].clone());
        waits.push(tokio::spawn(async move {
            client.wait(&q2, &id, Duration::from_secs(30)).await
        }));
        blocked.push((
            q.clone(),
            produce(&url, &prefix, &["--queue", q, "--kind", "sleep:60000"]).await[0].clone(),
        ));
    }
    for w in waits {
        let status = w.await.unwrap().unwrap();
        assert_eq!(status.state, JobState::Succeeded);
    }

    // A running job on each master's queue is cancelled through its shard.
    for (q, id) in &blocked {
        wait_until(Duration::from_secs(30), "the long job runs", || async {
            client.status(q, id).await.unwrap().state == JobState::Running
        })
        .await;
        assert!(matches!(
            client.cancel(q, id).await.unwrap(),
            Cancel::Requested { .. }
        ));
    }
    for (q, id) in &blocked {
        let status = client.wait(q, id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(status.state, JobState::Cancelled, "{q}/{id}");
    }
    worker.terminate();
    assert!(worker.wait(EXIT).await.success(), "{}", worker.log_text());
    let names: BTreeSet<_> = queues.iter().collect();
    assert_eq!(names.len(), 3);
}

async fn cluster_conn(url: &str) -> ferry_tests::conn::TestConn {
    let seeds: Vec<String> = url
        .trim_start_matches("redis+cluster://")
        .split(',')
        .map(|h| format!("redis://{h}"))
        .collect();
    let client = redis::cluster::ClusterClient::new(seeds).unwrap();
    ferry_tests::conn::TestConn::Cluster(client.get_async_connection().await.unwrap())
}
