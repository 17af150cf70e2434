//! Batches against a real Redis: callbacks enqueued once when due (on
//! complete whatever the outcome, on success when every job succeeded,
//! with a dead job's replay counting); a job failed for good drops the
//! success callback; jobs added to an open batch (from a handler too) are
//! waited for; bad batches refused; and, under SIGKILL chaos of four
//! worker processes, each callback enqueued exactly once.

use std::time::Duration;

use ferry_broker::{
    BatchState, CallbackState, DeadLetterKind, Delivery, Error, NewBatch, NewJob, Priority, Queue,
    Schedule,
};
use ferry_tests::events;
use ferry_tests::jobs::sleep_job;
use ferry_tests::{heavy, queue, scenario, unique, wait_until, RedisServer};

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

fn batch(id: &str, jobs: &[&str]) -> NewBatch {
    NewBatch {
        id: Some(id.to_owned()),
        description: Some("a test batch".into()),
        jobs: jobs.iter().map(|j| job(j)).collect(),
        on_success: Some(job(&format!("{id}-success"))),
        on_complete: Some(job(&format!("{id}-complete"))),
    }
}

async fn setup() -> (RedisServer, Queue, redis::aio::MultiplexedConnection) {
    let redis = RedisServer::start().await;
    let q = queue(&unique("batches"), "q");
    let conn = redis.conn().await;
    (redis, q, conn)
}

async fn claim(q: &Queue, conn: &mut redis::aio::MultiplexedConnection) -> Vec<Delivery> {
    q.consumer("w").claim(conn, 100).await.unwrap()
}

fn ids(d: &[Delivery]) -> Vec<String> {
    let mut ids: Vec<String> = d.iter().map(Delivery::job_id).collect();
    ids.sort();
    ids
}

async fn ack(q: &Queue, conn: &mut redis::aio::MultiplexedConnection, d: &[Delivery]) {
    let entries: Vec<_> = d.iter().map(|d| d.entry.clone()).collect();
    q.consumer("w").ack(conn, &entries).await.unwrap();
}

async fn kill(q: &Queue, conn: &mut redis::aio::MultiplexedConnection, d: &Delivery) {
    q.consumer("w")
        .dead_letter(conn, d, "boom", DeadLetterKind::Failed)
        .await
        .unwrap();
}

#[tokio::test]
async fn both_callbacks_are_enqueued_once_when_every_job_succeeds() {
    let (_redis, q, mut conn) = setup().await;
    let created = q
        .create_batch(&mut conn, &batch("b", &["a", "c"]))
        .await
        .unwrap();
    assert_eq!(created.jobs, ["a", "c"]);
    assert_eq!(created.on_success.as_deref(), Some("b-success"));
    let st = q.batch(&mut conn, "b").await.unwrap().unwrap();
    assert_eq!((st.state, st.total, st.pending), (BatchState::Open, 2, 2));
    assert_eq!(st.on_success.unwrap().state, CallbackState::Waiting);
    assert_eq!(
        q.status(&mut conn, "a")
            .await
            .unwrap()
            .unwrap()
            .batch
            .as_deref(),
        Some("b")
    );

    let first = claim(&q, &mut conn).await;
    assert_eq!(ids(&first), ["a", "c"]);
    ack(&q, &mut conn, &first[..1]).await;
    assert!(
        claim(&q, &mut conn).await.is_empty(),
        "no callback while c runs"
    );
    ack(&q, &mut conn, &first[1..]).await;
    let callbacks = claim(&q, &mut conn).await;
    assert_eq!(ids(&callbacks), ["b-complete", "b-success"]);
    let st = q.batch(&mut conn, "b").await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.total, st.pending, st.succeeded, st.failed),
        (BatchState::Succeeded, 2, 0, 2, 0)
    );
    assert_eq!(st.on_success.unwrap().state, CallbackState::Enqueued);
    assert_eq!(st.on_complete.unwrap().state, CallbackState::Enqueued);
    assert!(st.completed_at.is_some() && st.succeeded_at.is_some());
    // Its keys are kept for the record retention, then expire.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(q.keys().job_batch("b"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "the finished batch expires: {ttl}");
    let (_, members) = q.batch_jobs(&mut conn, "b", 0, 100).await.unwrap();
    assert_eq!(members.len(), 2);
    let listed = q.batches(&mut conn, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, "b");
    // No bookkeeping of the members is left.
    let dependents: u64 = redis::cmd("HLEN")
        .arg(q.keys().dependents())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(dependents, 0);
}

#[tokio::test]
async fn a_dead_job_completes_the_batch_and_its_replay_brings_success() {
    let (_redis, q, mut conn) = setup().await;
    q.create_batch(&mut conn, &batch("b", &["a", "c"]))
        .await
        .unwrap();
    let first = claim(&q, &mut conn).await;
    ack(&q, &mut conn, &first[..1]).await;
    kill(&q, &mut conn, &first[1]).await;
    assert_eq!(ids(&claim(&q, &mut conn).await), ["b-complete"]);
    let st = q.batch(&mut conn, "b").await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.succeeded, st.failed, st.dead),
        (BatchState::Complete, 1, 1, 1)
    );
    assert_eq!(st.on_success.unwrap().state, CallbackState::Waiting);
    // The member's status still names its batch in the dead letters.
    assert_eq!(
        q.status(&mut conn, "c")
            .await
            .unwrap()
            .unwrap()
            .batch
            .as_deref(),
        Some("b")
    );
    let dead = q.dead_letters(&mut conn, 10).await.unwrap();
    q.replay_dead(&mut conn, &dead[0].entry_id)
        .await
        .unwrap()
        .unwrap();
    let again = claim(&q, &mut conn).await;
    assert_eq!(ids(&again), ["c"]);
    ack(&q, &mut conn, &again).await;
    assert_eq!(ids(&claim(&q, &mut conn).await), ["b-success"]);
    let st = q.batch(&mut conn, "b").await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.succeeded, st.failed, st.dead),
        (BatchState::Succeeded, 2, 0, 0)
    );
}

#[tokio::test]
async fn a_job_failed_for_good_drops_the_success_callback() {
    let (_redis, q, mut conn) = setup().await;
    // Cancelled while queued.
    q.create_batch(&mut conn, &batch("b", &["a", "c"]))
        .await
        .unwrap();
    q.cancel(&mut conn, "c").await.unwrap();
    let a = claim(&q, &mut conn).await;
    assert_eq!(ids(&a), ["a"]);
    ack(&q, &mut conn, &a).await;
    assert_eq!(ids(&claim(&q, &mut conn).await), ["b-complete"]);
    let st = q.batch(&mut conn, "b").await.unwrap().unwrap();
    assert_eq!((st.state, st.failed, st.dead), (BatchState::Complete, 1, 0));
    assert_eq!(st.on_success.unwrap().state, CallbackState::Dropped);
    // Dead, then its dead letter purged.
    q.create_batch(&mut conn, &batch("d", &["x"]))
        .await
        .unwrap();
    let x = claim(&q, &mut conn).await;
    kill(&q, &mut conn, &x[0]).await;
    assert_eq!(ids(&claim(&q, &mut conn).await), ["d-complete"]);
    assert_eq!(
        q.batch(&mut conn, "d")
            .await
            .unwrap()
            .unwrap()
            .on_success
            .unwrap()
            .state,
        CallbackState::Waiting
    );
    q.purge_dead(&mut conn).await.unwrap();
    let st = q.batch(&mut conn, "d").await.unwrap().unwrap();
    assert_eq!((st.failed, st.dead), (1, 0));
    assert_eq!(st.on_success.unwrap().state, CallbackState::Dropped);
    assert!(claim(&q, &mut conn).await.is_empty(), "no success callback");
}

#[tokio::test]
async fn jobs_added_to_an_open_batch_are_waited_for_and_a_closed_one_refuses() {
    let (_redis, q, mut conn) = setup().await;
    q.create_batch(&mut conn, &batch("b", &["a"]))
        .await
        .unwrap();
    let a = claim(&q, &mut conn).await;
    // While a runs, it adds two jobs.
    let added = q
        .add_to_batch(&mut conn, "b", &[job("more-1"), job("more-2")])
        .await
        .unwrap();
    assert_eq!(added, ["more-1", "more-2"]);
    ack(&q, &mut conn, &a).await;
    let more = claim(&q, &mut conn).await;
    assert_eq!(ids(&more), ["more-1", "more-2"], "no callback yet");
    let st = q.batch(&mut conn, "b").await.unwrap().unwrap();
    assert_eq!((st.total, st.pending, st.succeeded), (3, 2, 1));
    ack(&q, &mut conn, &more).await;
    assert_eq!(
        ids(&claim(&q, &mut conn).await),
        ["b-complete", "b-success"]
    );
    let err = q
        .add_to_batch(&mut conn, "b", &[job("late")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BatchClosed { .. }), "{err}");
    let err = q
        .add_to_batch(&mut conn, "nope", &[job("late")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BatchNotFound { .. }), "{err}");
    assert!(
        q.status(&mut conn, "late").await.unwrap().is_none(),
        "nothing written"
    );
}

#[tokio::test]
async fn bad_batches_are_refused_and_write_nothing() {
    let (_redis, q, mut conn) = setup().await;
    q.create_batch(&mut conn, &batch("b", &["a"]))
        .await
        .unwrap();
    let err = q
        .create_batch(&mut conn, &batch("b", &["z"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BatchExists { .. }), "{err}");
    // A callback's id in use, a member's id in use, and a member taking
    // the callback's id.
    let mut taken = batch("c", &["y"]);
    taken.on_complete = Some(job("a"));
    let err = q.create_batch(&mut conn, &taken).await.unwrap_err();
    assert!(
        matches!(err, Error::DuplicateJob { ref id, .. } if id == "a"),
        "{err}"
    );
    let err = q
        .create_batch(&mut conn, &batch("c", &["y", "a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DuplicateJob { ref id, .. } if id == "a"),
        "{err}"
    );
    let err = q
        .create_batch(&mut conn, &batch("c", &["c-success"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DuplicateJob { ref id, .. } if id == "c-success"),
        "{err}"
    );
    for bad in [batch("c", &[]), batch("bad id", &["y"])] {
        let err = q.create_batch(&mut conn, &bad).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
    assert!(q.batch(&mut conn, "c").await.unwrap().is_none());
    assert!(
        q.status(&mut conn, "y").await.unwrap().is_none(),
        "nothing written"
    );
}

/// A batch of 2,000 jobs run by four worker processes, ten of which are
/// SIGKILLed on the way (each replaced): each callback is enqueued
/// exactly once, after every job of the batch succeeded, and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_enqueued_exactly_once_under_sigkill_chaos() {
    let _heavy = heavy().await;
    let s = scenario::setup("batch-chaos").await;
    let q = queue(&s.prefix, &s.queue);
    let mut conn = s.redis.conn().await;
    let _: () = redis::cmd("HSET")
        .arg(q.keys().settings())
        .arg("events")
        .arg(1_000_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut on_success = sleep_job(1, None);
    on_success.id = Some("on-success".into());
    let mut on_complete = sleep_job(1, None);
    on_complete.id = Some("on-complete".into());
    let created = q
        .create_batch(
            &mut conn,
            &NewBatch {
                id: Some("chaos".into()),
                description: None,
                jobs: (0..2000).map(|_| sleep_job(5, None)).collect(),
                on_success: Some(on_success),
                on_complete: Some(on_complete),
            },
        )
        .await
        .unwrap();
    let args = ["--concurrency", "20", "--lease-ms", "1000"];
    let mut workers: Vec<_> = (0..4).map(|_| s.worker(&args)).collect();
    for kill in 0..10 {
        // Wait for progress between kills, so that every kill lands while
        // jobs run.
        let target = 150 * (kill + 1);
        wait_until(Duration::from_secs(60), "progress between kills", || {
            let mut conn = conn.clone();
            let q = q.clone();
            async move {
                q.batch(&mut conn, "chaos")
                    .await
                    .unwrap()
                    .is_some_and(|b| b.succeeded >= target)
            }
        })
        .await;
        let victim = kill % workers.len() as u64;
        workers[victim as usize].kill().await;
        workers[victim as usize] = s.worker(&args);
    }
    wait_until(Duration::from_secs(120), "both callbacks succeeded", || {
        let mut conn = conn.clone();
        let q = q.clone();
        async move {
            let mut done = 0;
            for id in ["on-success", "on-complete"] {
                if q.status(&mut conn, id)
                    .await
                    .unwrap()
                    .is_some_and(|st| st.state == ferry_broker::JobState::Succeeded)
                {
                    done += 1;
                }
            }
            done == 2
        }
    })
    .await;
    drop(workers);
    let st = q.batch(&mut conn, "chaos").await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.total, st.pending, st.succeeded, st.failed),
        (BatchState::Succeeded, 2000, 0, 2000, 0)
    );
    let all = events::all(&mut conn, q.keys().events()).await;
    let members: std::collections::HashSet<&String> = created.jobs.iter().collect();
    let mut last_member_success = 0;
    for (ms, event, id) in &all {
        if event == "succeeded" && members.contains(id) {
            last_member_success = last_member_success.max(*ms);
        }
    }
    for callback in ["on-success", "on-complete"] {
        let enqueued: Vec<u64> = all
            .iter()
            .filter(|(_, e, id)| e == "enqueued" && id == callback)
            .map(|(ms, _, _)| *ms)
            .collect();
        assert_eq!(enqueued.len(), 1, "{callback} enqueued exactly once");
        assert!(
            enqueued[0] >= last_member_success,
            "{callback} enqueued after the last job succeeded"
        );
        let started = all
            .iter()
            .filter(|(_, e, id)| e == "started" && id == callback)
            .count();
        assert!(started >= 1, "{callback} ran");
    }
}

/// Through the SDK: a batch's handler adds jobs to its batch while it
/// runs, and the callbacks run after those too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_adds_jobs_to_its_batch_and_the_callbacks_wait_for_them() {
    use ferry_queue::{Batch, Client, Job, JobContext, JobError, Worker};
    use serde::{Deserialize, Serialize};
    #[derive(Serialize, Deserialize)]
    struct Split {
        parts: u32,
    }
    impl Job for Split {
        const TYPE: &'static str = "split";
        const QUEUE: &'static str = "batches";
    }
    #[derive(Serialize, Deserialize)]
    struct Part;
    impl Job for Part {
        const TYPE: &'static str = "part";
        const QUEUE: &'static str = "batches";
    }
    #[derive(Serialize, Deserialize)]
    struct Done;
    impl Job for Done {
        const TYPE: &'static str = "done";
        const QUEUE: &'static str = "batches";
    }
    let redis = RedisServer::start().await;
    let prefix = unique("batches");
    let client = Client::builder(redis.url())
        .prefix(prefix.clone())
        .connect()
        .unwrap();
    let (tx, mut ran) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (t1, t2, t3) = (tx.clone(), tx.clone(), tx);
    let worker = Worker::builder(redis.url())
        .prefix(prefix.clone())
        .handle(move |job: Split, ctx: JobContext| {
            let tx = t1.clone();
            async move {
                let parts: Vec<Part> = (0..job.parts).map(|_| Part).collect();
                let added = ctx
                    .add_to_batch(&parts)
                    .await
                    .map_err(JobError::permanent)?;
                let _ = tx.send(format!("split added {}", added.len()));
                Ok::<(), JobError>(())
            }
        })
        .handle(move |_: Part, ctx: JobContext| {
            let tx = t2.clone();
            async move {
                let _ = tx.send(format!("part of {}", ctx.batch.unwrap_or_default()));
                Ok::<(), JobError>(())
            }
        })
        .handle(move |_: Done, _: JobContext| {
            let tx = t3.clone();
            async move {
                let _ = tx.send("done".into());
                Ok::<(), JobError>(())
            }
        })
        .build()
        .unwrap();
    let _worker = tokio::spawn(worker.run_until(std::future::pending()));
    let created = client
        .create_batch(
            Batch::new()
                .id("nightly")
                .job(&Split { parts: 3 })
                .on_complete(&Done),
        )
        .await
        .unwrap();
    assert_eq!(created.jobs.len(), 1);
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("done") {
        let next = tokio::time::timeout(Duration::from_secs(20), ran.recv())
            .await
            .expect("a handler ran within 20 s")
            .expect("channel open");
        seen.push(next);
    }
    assert_eq!(seen[0], "split added 3");
    assert_eq!(
        seen[1..4],
        ["part of nightly", "part of nightly", "part of nightly"]
    );
    assert_eq!(seen.len(), 5, "{seen:?}");
    let st = client.batch_status("batches", "nightly").await.unwrap();
    assert_eq!((st.total, st.succeeded), (4, 4));
    // Bad batches through the SDK.
    let err = client.create_batch(Batch::new()).await.unwrap_err();
    assert!(matches!(err, ferry_queue::Error::Config(_)), "{err}");
    let err = client
        .create_batch(
            Batch::new()
                .job(&Part)
                .job_with(&Part, ferry_queue::EnqueueOptions::new().queue("elsewhere")),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("share one queue"), "{err}");
    let err = client.batch_status("batches", "nope").await.unwrap_err();
    assert!(
        matches!(err, ferry_queue::Error::BatchNotFound { .. }),
        "{err}"
    );
}
