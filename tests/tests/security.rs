//! Least privilege: Ferry runs as a Redis ACL user limited to its key prefix
//! and the commands it needs (the line documented in the README).

use std::time::Duration;

use ferry_queue::{Client, EnqueueOptions, Job};
use ferry_tests::scenario::EXIT;
use ferry_tests::{produce, wait_until, RedisServer, WorkerProcess};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Echo {
    message: String,
}
impl Job for Echo {
    const TYPE: &'static str = "echo";
}

/// The `ACL SETUSER ferry ...` line of the README, as arguments.
fn readme_acl_line() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("ACL SETUSER ferry "))
        .expect("the README documents an ACL SETUSER ferry line");
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn acl_user_limited_to_the_prefix_runs_producer_and_workers() {
    let redis = RedisServer::start_own(&[]).await;
    let mut admin = redis.conn().await;
    let acl = readme_acl_line();
    let mut cmd = redis::cmd(&acl[0]);
    for arg in &acl[1..] {
        cmd.arg(arg);
    }
    let _: () = cmd.query_async(&mut admin).await.unwrap();
    let url = format!("redis://ferry:CHANGE-ME@127.0.0.1:{}", redis.port());
    let (prefix, queue, audit) = ("ferry", "secure", "ferry:audit");

    // Producer: plain, retrying, dead-lettered and delayed jobs.
    let mut ids = produce(&url, prefix, &["--queue", queue, "--count", "50"]).await;
    ids.extend(produce(&url, prefix, &["--queue", queue, "--kind", "fail:1"]).await);
    ids.extend(produce(&url, prefix, &["--queue", queue, "--delay-ms", "100"]).await);
    produce(
        &url,
        prefix,
        &[
            "--queue",
            queue,
            "--kind",
            "always-fail",
            "--max-retries",
            "1",
        ],
    )
    .await;
    // A long job on a worker that is killed: renewal, then recovery.
    let long = produce(&url, prefix, &["--queue", queue, "--kind", "sleep:1500"]).await;
    let args = [
        "--queue",
        queue,
        "--audit",
        audit,
        "--lease-ms",
        "600",
        "--concurrency",
        "1",
    ];
    let mut doomed = WorkerProcess::spawn(&url, prefix, &args);
    let q = ferry_tests::queue(prefix, queue);
    // The long job itself (not one of the jobs queued before it, which may
    // be acknowledged by the time of the kill).
    wait_until(Duration::from_secs(30), "the long job is running", || {
        let (mut conn, q, id) = (admin.clone(), q.clone(), long[0].clone());
        async move {
            q.status(&mut conn, &id)
                .await
                .unwrap()
                .is_some_and(|s| s.state == ferry_broker::JobState::Running)
        }
    })
    .await;
    doomed.kill().await;
    let mut rescuer = WorkerProcess::spawn(
        &url,
        prefix,
        &[&args[..], &["--exit-when-idle", "0.5"]].concat(),
    );
    assert!(rescuer.wait(EXIT).await.success());
    ids.extend(long);

    let done: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(audit)
        .query_async(&mut admin)
        .await
        .unwrap();
    for id in &ids {
        assert!(
            done.contains_key(id),
            "job {id} did not run as the ACL user"
        );
    }
    let stats = q.stats(&mut admin).await.unwrap();
    assert_eq!(stats.dead, 1);
    assert!(
        stats.counter("recovered") >= 1,
        "recovery ran as the ACL user: {stats:?}"
    );
    // Operator commands as the ACL user too.
    let client = Client::connect(url.as_str()).unwrap();
    let dead = client.dead_letters(queue, 10).await.unwrap();
    client.replay_dead(queue, &dead[0].entry_id).await.unwrap();
    // The lifecycle as the ACL user: status, wait (Pub/Sub on the
    // prefix's channels), pause and resume, the maximum depth, records.
    let st = client.status(queue, &ids[0]).await.unwrap();
    assert_eq!(st.state, ferry_queue::JobState::Succeeded);
    let waited = client
        .wait(queue, &ids[0], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(waited, st);
    client.pause(queue).await.unwrap();
    assert!(client.stats(queue).await.unwrap().paused);
    client.resume(queue).await.unwrap();
    client.set_max_depth(queue, Some(1_000)).await.unwrap();
    produce(&url, prefix, &["--queue", queue, "--id", "given-1"]).await;
    client.set_max_depth(queue, None).await.unwrap();
    client.clear_results(queue).await.unwrap();
    client.set_events(queue, Some(1_000)).await.unwrap();
    let mut events = client.subscribe(queue, None).await.unwrap();
    let id = produce(&url, prefix, &["--queue", queue]).await.remove(0);
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.event.as_str(), event.job_id.as_str()),
        ("enqueued", id.as_str())
    );
    client.set_events(queue, None).await.unwrap();

    // Nothing Ferry did was denied.
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(log.is_empty(), "ACL denials: {log:?}");

    // Keys outside the prefix are refused, even for commands Ferry may use.
    let noperm = |e: &dyn std::fmt::Display| e.to_string().to_lowercase().contains("noperm");
    let mut user = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let err = redis::cmd("XADD")
        .arg("other:stream")
        .arg("*")
        .arg("a")
        .arg("b")
        .query_async::<String>(&mut user)
        .await
        .unwrap_err();
    assert!(noperm(&err), "{err}");
    let outside = Client::builder(url.as_str())
        .prefix("other")
        .connect()
        .unwrap();
    let err = outside
        .enqueue_with(
            &Echo {
                message: "x".into(),
            },
            EnqueueOptions::new().queue("q"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ferry_queue::Error::Redis(_)) && noperm(&err),
        "{err}"
    );
    // And so are commands it does not need.
    for cmd in ["FLUSHALL", "KEYS"] {
        let mut c = redis::cmd(cmd);
        if cmd == "KEYS" {
            c.arg("*");
        }
        let err = c.query_async::<redis::Value>(&mut user).await.unwrap_err();
        assert!(noperm(&err), "{cmd}: {err}");
    }
}

#[tokio::test]
async fn tls_carries_the_whole_job_path_and_an_untrusted_server_is_refused() {
    let redis = RedisServer::start_tls().await;
    let tls = redis.tls().unwrap().clone();
    let ca = std::fs::read(&tls.ca_cert).unwrap();
    let (prefix, queue, audit) = (ferry_tests::unique("tls"), "secure", "audit");
    let audit = format!("{prefix}:{audit}");
    let client = Client::builder(ferry_queue::RedisConfig::new(redis.url()).tls_root_cert(ca))
        .prefix(&prefix)
        .connect()
        .unwrap();
    let jobs: Vec<Echo> = (0..30)
        .map(|i| Echo {
            message: format!("m{i}"),
        })
        .collect();
    let ids = client
        .enqueue_batch(&jobs, EnqueueOptions::new().queue(queue))
        .await
        .unwrap();
    let ca_path = tls.ca_cert.to_str().unwrap();
    let mut worker = WorkerProcess::spawn(
        redis.url(),
        &prefix,
        &[
            "--queue",
            queue,
            "--audit",
            &audit,
            "--tls-ca-cert",
            ca_path,
            "--exit-when-idle",
            "0.3",
        ],
    );
    assert!(worker.wait(EXIT).await.success());
    let mut conn = redis.conn().await;
    let done: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(&audit)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ids.iter().all(|id| done.get(id) == Some(&1)),
        "every job ran once over TLS"
    );
    assert!(client.stats(queue).await.unwrap().is_idle());

    // Without the test CA the server's certificate is not trusted; plain TCP
    // to the TLS port gets no answer. Both are typed errors, not hangs.
    for url in [
        redis.url().to_owned(),
        format!("redis://127.0.0.1:{}", redis.port()),
    ] {
        let mut config = ferry_queue::RedisConfig::new(url.as_str());
        config.connect_timeout = Duration::from_millis(500);
        config.response_timeout = Duration::from_millis(500);
        let refused = Client::connect(config).unwrap();
        let err = tokio::time::timeout(
            Duration::from_secs(30),
            refused.enqueue_with(
                &Echo {
                    message: "x".into(),
                },
                EnqueueOptions::new().queue(queue),
            ),
        )
        .await
        .expect("no hang")
        .unwrap_err();
        assert!(matches!(err, ferry_queue::Error::Redis(_)), "{url}: {err}");
        if url.starts_with("rediss://") {
            assert!(
                err.to_string().contains("certificate"),
                "refused for its certificate: {err}"
            );
        }
    }
}
