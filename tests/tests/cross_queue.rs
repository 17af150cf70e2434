//! Dependencies across queues, against a real Redis: a job of queue B
//! waits for jobs of queue A (`"A/<id>"`), registered in A before it is
//! written in B; A's outbox carries each outcome to B, applied once
//! however often it is applied (an idempotent step, as on a Redis Cluster
//! where the two queues' keys are on different slots); failure policies;
//! an outcome that comes before its job; no cycle across queues; and an
//! SDK worker's promoter carrying the release.

use std::time::Duration;

use ferry_broker::{Error, JobState, NewJob, OnDependencyFailure, Priority, Queue, Schedule};
use ferry_tests::{queue, unique, RedisServer};

fn job(id: &str) -> NewJob {
    NewJob {
        job_type: "echo".into(),
        payload: "{\"message\":\"x\"}".into(),
        priority: Priority::Normal,
        max_retries: 0,
        schedule: Schedule::Now,
        id: Some(id.to_owned()),
        retention_ms: None,
        concurrency_key: None,
    }
}

struct Two {
    _redis: RedisServer,
    a: Queue,
    b: Queue,
    conn: redis::aio::MultiplexedConnection,
}

async fn setup() -> Two {
    let redis = RedisServer::start().await;
    let prefix = unique("xq");
    let conn = redis.conn().await;
    Two {
        a: queue(&prefix, "a"),
        b: queue(&prefix, "b"),
        _redis: redis,
        conn,
    }
}

impl Two {
    async fn state(&mut self, q: &Queue, id: &str) -> JobState {
        q.status(&mut self.conn, id).await.unwrap().unwrap().state
    }

    /// Claims everything of `q` and finishes it: acked, or dead-lettered
    /// when `dead`.
    async fn finish(&mut self, q: &Queue, dead: bool) -> Vec<String> {
        let c = q.consumer("w");
        let claimed = c.claim(&mut self.conn, 100).await.unwrap();
        for d in &claimed {
            if dead {
                c.dead_letter(
                    &mut self.conn,
                    d,
                    "boom",
                    ferry_broker::DeadLetterKind::Failed,
                )
                .await
                .unwrap();
            }
        }
        if !dead {
            let entries: Vec<_> = claimed.iter().map(|d| d.entry.clone()).collect();
            c.ack(&mut self.conn, &entries).await.unwrap();
        }
        claimed.iter().map(|d| d.job_id()).collect()
    }

    async fn after(
        &mut self,
        q: &Queue,
        id: &str,
        deps: &[&str],
        policy: OnDependencyFailure,
    ) -> ferry_broker::Result<u64> {
        let deps: Vec<String> = deps.iter().map(|d| (*d).to_owned()).collect();
        q.enqueue_after(&mut self.conn, &job(id), &deps, policy)
            .await
            .map(|e| e.waiting_for)
    }
}

#[tokio::test]
async fn a_job_of_b_runs_once_after_its_dependency_in_a_succeeds() {
    let mut t = setup().await;
    let (a, b) = (t.a.clone(), t.b.clone());
    a.enqueue(&mut t.conn, &[job("x")]).await.unwrap();
    assert_eq!(
        t.after(&b, "j", &["a/x"], OnDependencyFailure::Fail)
            .await
            .unwrap(),
        1
    );
    let st = b.status(&mut t.conn, "j").await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Waiting);
    assert_eq!(st.depends_on, ["a/x"]);
    let x = a.status(&mut t.conn, "x").await.unwrap().unwrap();
    assert_eq!(x.dependents, ["b/j"], "x names the job of b waiting for it");
    assert_eq!(t.finish(&a, false).await, ["x"]);
    // Until a's outbox is applied, j waits: the two queues' keys share no
    // script.
    assert_eq!(t.state(&b, "j").await, JobState::Waiting);
    let outbox: Vec<String> = redis::cmd("LRANGE")
        .arg(a.keys().outbox())
        .arg(0)
        .arg(-1)
        .query_async(&mut t.conn)
        .await
        .unwrap();
    assert_eq!(outbox, ["succeeded\nb/j\nx"]);
    assert_eq!(a.apply_outbox(&mut t.conn).await.unwrap(), 1);
    assert_eq!(t.state(&b, "j").await, JobState::Queued);
    // Applied again (a retried step, a second worker): nothing changes.
    let _: () = redis::cmd("RPUSH")
        .arg(a.keys().outbox())
        .arg(&outbox[0])
        .query_async(&mut t.conn)
        .await
        .unwrap();
    assert_eq!(a.apply_outbox(&mut t.conn).await.unwrap(), 1);
    assert_eq!(t.finish(&b, false).await, ["j"], "released once");
    let left: u64 = redis::cmd("LLEN")
        .arg(a.keys().outbox())
        .query_async(&mut t.conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn done_unknown_and_badly_named_dependencies_of_another_queue() {
    let mut t = setup().await;
    let (a, b) = (t.a.clone(), t.b.clone());
    a.enqueue(&mut t.conn, &[job("done")]).await.unwrap();
    t.finish(&a, false).await;
    assert_eq!(
        t.after(&b, "j", &["a/done"], OnDependencyFailure::Fail)
            .await
            .unwrap(),
        0
    );
    assert_eq!(t.state(&b, "j").await, JobState::Queued);
    for bad in ["a/nope", "c/x", "bad name/x", "a/", "a/bad id"] {
        let err = t
            .after(&b, "k", &[bad], OnDependencyFailure::Fail)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::BadDependency { .. }), "{bad}: {err}");
    }
    assert!(
        b.status(&mut t.conn, "k").await.unwrap().is_none(),
        "nothing written"
    );
    // Its own queue's name is a dependency of its own queue.
    b.enqueue(&mut t.conn, &[job("local")]).await.unwrap();
    assert_eq!(
        t.after(&b, "m", &["b/local"], OnDependencyFailure::Fail)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn each_failure_policy_across_queues_and_a_replay_that_succeeds() {
    let mut t = setup().await;
    let (a, b) = (t.a.clone(), t.b.clone());
    a.enqueue(&mut t.conn, &[job("x")]).await.unwrap();
    t.after(&b, "fail", &["a/x"], OnDependencyFailure::Fail)
        .await
        .unwrap();
    t.after(&b, "release", &["a/x"], OnDependencyFailure::Release)
        .await
        .unwrap();
    t.after(&b, "wait", &["a/x"], OnDependencyFailure::Wait)
        .await
        .unwrap();
    t.finish(&a, true).await;
    assert_eq!(a.apply_outbox(&mut t.conn).await.unwrap(), 3);
    let failed = b.status(&mut t.conn, "fail").await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Cancelled);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("dependency a/x failed (dead)")
    );
    assert_eq!(t.state(&b, "release").await, JobState::Queued);
    assert_eq!(t.state(&b, "wait").await, JobState::Waiting);
    // A new job that waits for the dead x's replay, and one that fails with it.
    assert_eq!(
        t.after(&b, "wait-2", &["a/x"], OnDependencyFailure::Wait)
            .await
            .unwrap(),
        1
    );
    let err = t
        .after(&b, "fail-2", &["a/x"], OnDependencyFailure::Fail)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("failed (dead)"), "{err}");
    let dead = a.dead_letters(&mut t.conn, 10).await.unwrap();
    a.replay_dead(&mut t.conn, &dead[0].entry_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.finish(&a, false).await, ["x"]);
    a.apply_outbox(&mut t.conn).await.unwrap();
    assert_eq!(t.state(&b, "wait").await, JobState::Queued);
    assert_eq!(t.state(&b, "wait-2").await, JobState::Queued);
}

#[tokio::test]
async fn an_outcome_that_comes_before_its_job_is_kept_for_it() {
    let mut t = setup().await;
    let (a, b) = (t.a.clone(), t.b.clone());
    a.enqueue(&mut t.conn, &[job("x")]).await.unwrap();
    // As if x succeeded between j's registration in a and its write in b.
    let _: () = redis::cmd("RPUSH")
        .arg(a.keys().outbox())
        .arg("succeeded\nb/j\nx")
        .query_async(&mut t.conn)
        .await
        .unwrap();
    a.apply_outbox(&mut t.conn).await.unwrap();
    let early: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(b.keys().early("j"))
        .query_async(&mut t.conn)
        .await
        .unwrap();
    assert_eq!(early.get("a/x").map(String::as_str), Some("succeeded"));
    assert_eq!(
        t.after(&b, "j", &["a/x"], OnDependencyFailure::Fail)
            .await
            .unwrap(),
        0
    );
    assert_eq!(t.state(&b, "j").await, JobState::Queued);
    let left: bool = redis::cmd("EXISTS")
        .arg(b.keys().early("j"))
        .query_async(&mut t.conn)
        .await
        .unwrap();
    assert!(!left, "read, and gone");
}

/// No cycle across queues, in any order of calls with the producer's ids:
/// a dependency must exist when it is registered, and a job is written
/// only after its registration.
#[tokio::test]
async fn no_cycle_forms_across_queues() {
    let mut t = setup().await;
    let (a, b) = (t.a.clone(), t.b.clone());
    // x (in a) after b/y, before y exists: refused.
    let err = t
        .after(&a, "x", &["b/y"], OnDependencyFailure::Fail)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadDependency { .. }), "{err}");
    // y after a/x, x not there: refused as well.
    let err = t
        .after(&b, "y", &["a/x"], OnDependencyFailure::Fail)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadDependency { .. }), "{err}");
    // y plain, then x after it: fine; y cannot come to wait for x (its id is taken).
    b.enqueue(&mut t.conn, &[job("y")]).await.unwrap();
    assert_eq!(
        t.after(&a, "x", &["b/y"], OnDependencyFailure::Fail)
            .await
            .unwrap(),
        1
    );
    let err = t
        .after(&b, "y", &["a/x"], OnDependencyFailure::Fail)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateJob { .. }), "{err}");
}

/// Through real SDK workers: the promoter of the dependency's queue
/// carries the release; the dependent runs after its dependency, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_promoter_carries_the_release_to_the_other_queue() {
    use ferry_queue::{Client, EnqueueOptions, Job, JobContext, JobError, Worker};
    use serde::{Deserialize, Serialize};
    #[derive(Serialize, Deserialize)]
    struct Build;
    impl Job for Build {
        const TYPE: &'static str = "build";
        const QUEUE: &'static str = "builds";
    }
    #[derive(Serialize, Deserialize)]
    struct Deploy;
    impl Job for Deploy {
        const TYPE: &'static str = "deploy";
        const QUEUE: &'static str = "deploys";
    }
    let redis = RedisServer::start().await;
    let prefix = unique("xq");
    let client = Client::builder(redis.url())
        .prefix(prefix.clone())
        .connect()
        .unwrap();
    let (tx, mut ran) = tokio::sync::mpsc::unbounded_channel::<String>();
    let t2 = tx.clone();
    let worker = Worker::builder(redis.url())
        .prefix(prefix.clone())
        .handle(move |_: Build, ctx: JobContext| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(ctx.job_id);
                Ok::<(), JobError>(())
            }
        })
        .handle(move |_: Deploy, ctx: JobContext| {
            let tx = t2.clone();
            async move {
                let _ = tx.send(ctx.job_id);
                Ok::<(), JobError>(())
            }
        })
        .build()
        .unwrap();
    client
        .enqueue_with(&Build, EnqueueOptions::new().job_id("build-1"))
        .await
        .unwrap();
    let deploy = client
        .enqueue_after(
            &Deploy,
            EnqueueOptions::new()
                .job_id("deploy-1")
                .depends_on(["builds/build-1"]),
        )
        .await
        .unwrap();
    assert_eq!(deploy.waiting_for, 1);
    let _worker = tokio::spawn(worker.run_until(std::future::pending()));
    let mut order = Vec::new();
    while order.len() < 2 {
        order.push(
            tokio::time::timeout(Duration::from_secs(20), ran.recv())
                .await
                .expect("a job ran within 20 s")
                .expect("channel open"),
        );
    }
    assert_eq!(order, ["build-1", "deploy-1"]);
    let st = client
        .wait("deploys", "deploy-1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(st.state, JobState::Succeeded);
}

/// Eight tasks at once each finish children in a and apply a's outbox:
/// the parent in b, waiting for 80 children in a, is released once, and
/// never before the last child succeeded (its entry is written at its
/// release, on the server's clock, as the children's events are).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_appliers_release_the_parent_once_and_never_early() {
    let mut t = setup().await;
    let (a, b) = (t.a.clone(), t.b.clone());
    let _: () = redis::cmd("HSET")
        .arg(a.keys().settings())
        .arg("events")
        .arg(10_000)
        .query_async(&mut t.conn)
        .await
        .unwrap();
    let children: Vec<String> = (0..80).map(|i| format!("c-{i}")).collect();
    let jobs: Vec<NewJob> = children.iter().map(|c| job(c)).collect();
    a.enqueue(&mut t.conn, &jobs).await.unwrap();
    let deps: Vec<String> = children.iter().map(|c| format!("a/{c}")).collect();
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    assert_eq!(
        t.after(&b, "parent", &deps, OnDependencyFailure::Fail)
            .await
            .unwrap(),
        80
    );
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (a, b) = (a.clone(), b.clone());
        let mut conn = t.conn.clone();
        tasks.push(tokio::spawn(async move {
            let c = a.consumer(format!("w{w}"));
            loop {
                let claimed = c.claim(&mut conn, 3).await.unwrap();
                let entries: Vec<_> = claimed.iter().map(|d| d.entry.clone()).collect();
                if !entries.is_empty() {
                    c.ack(&mut conn, &entries).await.unwrap();
                }
                a.apply_outbox(&mut conn).await.unwrap();
                let st = b.status(&mut conn, "parent").await.unwrap().unwrap().state;
                if st != JobState::Waiting {
                    break;
                }
                if claimed.is_empty() {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("released within 30 s")
            .unwrap();
    }
    let claimed = b.consumer("w").claim(&mut t.conn, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "the parent entered its stream once");
    assert_eq!(claimed[0].job_id(), "parent");
    let released_ms = ferry_broker::envelope::entry_ms(&claimed[0].entry.id);
    let events = ferry_tests::events::all(&mut t.conn, a.keys().events()).await;
    let succeeded: Vec<u64> = events
        .iter()
        .filter(|(_, e, _)| e == "succeeded")
        .map(|(ms, _, _)| *ms)
        .collect();
    assert_eq!(succeeded.len(), 80);
    let last = succeeded.iter().copied().max().unwrap_or(0);
    assert!(
        released_ms >= last,
        "released at {released_ms}, the last child at {last}"
    );
}
