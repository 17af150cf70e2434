//! The job lifecycle (issue 10): ids, status by id, results and their
//! retention, wait, pause and resume, and the maximum depth. Real Redis in
//! every test; real worker processes where processes matter.

use std::sync::Arc;
use std::time::Duration;

use ferry_broker::recovery::RecoverOptions;
use ferry_broker::{record_fields, Finished, JobState, NewJob, Priority, Schedule};
use ferry_queue::{
    Cancel, Client, EnqueueOptions, Error, Handler, Job, JobContext, JobError, OnDuplicate, Worker,
};
use ferry_tests::scenario::{setup as scenario, EXIT};
use ferry_tests::{example, queue, unique, wait_until, RedisServer};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "life";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Square {
    n: u64,
}
impl Job for Square {
    const TYPE: &'static str = "square";
    const QUEUE: &'static str = QUEUE;
}

/// Returns n², after taking a permit when it has a gate (so a test can hold
/// jobs running); fails for good on 13, fails (to be retried) on 9998
/// (beyond the ranges other tests enqueue), and fails the first attempt
/// of 99.
struct SquareHandler(Option<Arc<Semaphore>>);
impl Handler for SquareHandler {
    type Job = Square;
    type Output = u64;
    async fn handle(&self, job: Square, ctx: JobContext) -> Result<u64, JobError> {
        if job.n == 99 && ctx.attempt == 1 {
            return Err(JobError::retry("99 fails its first attempt"));
        }
        if let Some(gate) = &self.0 {
            let _permit = gate.acquire().await.map_err(JobError::retry)?;
        }
        if job.n == 13 {
            return Err(JobError::permanent("13 is unlucky"));
        }
        if job.n == 9998 {
            return Err(JobError::retry("9998 fails after its gate"));
        }
        Ok(job.n * job.n)
    }
}

struct Setup {
    redis: RedisServer,
    client: Client,
    prefix: String,
}

async fn setup() -> Setup {
    let redis = RedisServer::start().await;
    let prefix = unique("life");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    Setup {
        redis,
        client,
        prefix,
    }
}

impl Setup {
    /// An in-process worker for [`Square`]; stop it with the token.
    fn worker(
        &self,
        gate: Option<Arc<Semaphore>>,
    ) -> (
        tokio::task::JoinHandle<ferry_queue::Result<()>>,
        CancellationToken,
    ) {
        let worker = Worker::builder(self.redis.url())
            .prefix(self.prefix.clone())
            .register(SquareHandler(gate))
            .backoff(
                ferry_queue::Backoff::new(Duration::from_millis(50), Duration::from_millis(100))
                    .unwrap(),
            )
            .concurrency(4)
            .build()
            .unwrap();
        let token = worker.shutdown_token();
        (
            tokio::spawn(worker.run_until(std::future::pending())),
            token,
        )
    }

    fn queue(&self) -> ferry_broker::Queue {
        queue(&self.prefix, QUEUE)
    }
}

fn new_job(id: Option<&str>) -> NewJob {
    NewJob {
        job_type: "square".into(),
        payload: r#"{"n":3}"#.into(),
        priority: Priority::High,
        max_retries: 2,
        schedule: Schedule::Now,
        id: id.map(str::to_owned),
        retention_ms: None,
        concurrency_key: None,
    }
}

#[tokio::test]
async fn a_fresh_job_is_named_by_its_entry_and_a_given_id_is_unique() {
    let s = setup().await;
    let q = s.queue();
    let mut conn = s.redis.conn().await;
    let ids = q.enqueue(&mut conn, &[new_job(None)]).await.unwrap();
    let stream = q.keys().stream(Priority::High);
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        ids,
        [format!("high-{}", entries[0].0)],
        "the id names the entry"
    );
    let names: Vec<&str> = entries[0].1.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["type", "payload", "attempt", "max_retries"],
        "no id or enqueued_at field"
    );

    // A given id is carried by the entry and indexed; enqueuing it again is
    // refused with nothing written, or returns the existing job.
    let given = q
        .enqueue(&mut conn, &[new_job(Some("order-17"))])
        .await
        .unwrap();
    assert_eq!(given, ["order-17"]);
    let err = q
        .enqueue(&mut conn, &[new_job(Some("order-17"))])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ferry_broker::Error::DuplicateJob { id, .. } if id == "order-17"),
        "{err}"
    );
    let again = q
        .enqueue_with(
            &mut conn,
            &[new_job(Some("order-17")), new_job(Some("order-18"))],
            ferry_broker::OnDuplicate::ReturnExisting,
        )
        .await
        .unwrap();
    assert_eq!(again, ["order-17", "order-18"]);
    let len: u64 = redis::cmd("XLEN")
        .arg(stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 3, "one fresh job, order-17 once, order-18");
    let at: String = redis::cmd("HGET")
        .arg(q.keys().index())
        .arg("order-17")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(at.starts_with("high-"), "{at}");

    // A given id of a delayed job is unique too.
    let later = NewJob {
        schedule: Schedule::After(Duration::from_secs(3600)),
        ..new_job(Some("later-1"))
    };
    q.enqueue(&mut conn, std::slice::from_ref(&later))
        .await
        .unwrap();
    let err = q.enqueue(&mut conn, &[later]).await.unwrap_err();
    assert!(
        matches!(err, ferry_broker::Error::DuplicateJob { .. }),
        "{err}"
    );

    // Ids of Ferry's own form, or with characters outside the set, are refused.
    for bad in ["high-1-0", "a b", ""] {
        let err = q
            .enqueue(&mut conn, &[new_job(Some(bad))])
            .await
            .unwrap_err();
        assert!(
            matches!(err, ferry_broker::Error::Config(_)),
            "{bad}: {err}"
        );
    }
    // Through the SDK, the same.
    let dup = s
        .client
        .enqueue_with(&Square { n: 1 }, EnqueueOptions::new().job_id("order-17"))
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::DuplicateJob { .. }), "{dup}");
    let same = s
        .client
        .enqueue_with(
            &Square { n: 1 },
            EnqueueOptions::new()
                .job_id("order-17")
                .on_duplicate(OnDuplicate::ReturnExisting),
        )
        .await
        .unwrap();
    assert_eq!(same, "order-17");
}

#[tokio::test]
async fn status_follows_a_job_from_scheduled_through_running_to_its_result() {
    let s = setup().await;
    let later = s
        .client
        .enqueue_with(
            &Square { n: 2 },
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let st = s.client.status(QUEUE, &later).await.unwrap();
    assert_eq!(st.state, JobState::Scheduled);
    assert_eq!(
        (st.attempt, st.max_retries, st.job_type.as_deref()),
        (Some(1), Some(3), Some("square"))
    );
    assert!(st.run_at.unwrap() > st.enqueued_at.unwrap() + 3_500_000);

    let id = s.client.enqueue(&Square { n: 7 }).await.unwrap();
    let st = s.client.status(QUEUE, &id).await.unwrap();
    assert_eq!(
        (st.state, st.priority, st.attempt),
        (JobState::Queued, Some(Priority::Normal), Some(1))
    );
    assert!(st.enqueued_at.unwrap() > 0);

    let gate = Arc::new(Semaphore::new(0));
    let (handle, token) = s.worker(Some(gate.clone()));
    wait_until(Duration::from_secs(20), "the job runs", || async {
        s.client.status(QUEUE, &id).await.unwrap().state == JobState::Running
    })
    .await;
    let st = s.client.status(QUEUE, &id).await.unwrap();
    assert!(
        st.worker.as_deref().is_some_and(|w| !w.is_empty()),
        "{st:?}"
    );
    assert_eq!(st.deliveries, Some(1));

    gate.add_permits(1);
    let done = s
        .client
        .wait(QUEUE, &id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.result, Some(serde_json::json!(49)));
    assert_eq!(done.attempt, Some(1));
    let (started, finished) = (done.started_at.unwrap(), done.finished_at.unwrap());
    assert!(
        done.enqueued_at.unwrap() <= started && started <= finished + 1000,
        "{done:?}"
    );
    assert!(done.worker.is_some());

    // A permanent failure: dead, with its error; wait answers at once.
    gate.add_permits(100);
    let unlucky = s.client.enqueue(&Square { n: 13 }).await.unwrap();
    let dead = s
        .client
        .wait(QUEUE, &unlucky, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert!(
        dead.last_error
            .as_deref()
            .unwrap()
            .contains("13 is unlucky"),
        "{dead:?}"
    );
    assert!(dead.entry_id.is_some());
    token.cancel();
    handle.await.unwrap().unwrap();

    let missing = s.client.status(QUEUE, "no-such-job").await.unwrap_err();
    assert!(matches!(missing, Error::JobNotFound { .. }), "{missing}");
    // An id of the derived form naming no possible entry: not found, no error.
    let odd = s
        .client
        .status(QUEUE, "low-99999999999999999999999-0")
        .await
        .unwrap_err();
    assert!(matches!(odd, Error::JobNotFound { .. }), "{odd}");
}

#[tokio::test]
async fn a_finished_job_without_a_record_is_not_found_even_while_its_entry_lingers() {
    let s = setup().await;
    let q = s.queue();
    let mut conn = s.redis.conn().await;
    q.set_retention(&mut conn, Duration::from_secs(3600), 0)
        .await
        .unwrap();
    let ids = q
        .enqueue(&mut conn, &[new_job(None), new_job(None)])
        .await
        .unwrap();
    let w = q.consumer("w");
    let claimed = w.claim(&mut conn, 2).await.unwrap();
    // The second finishes while the first still runs: its entry stays in
    // the stream until the bulk trim passes it (Redis 7), yet it is done.
    w.ack(&mut conn, [&claimed[1].entry]).await.unwrap();
    assert!(q.status(&mut conn, &ids[1]).await.unwrap().is_none());
    assert_eq!(
        q.status(&mut conn, &ids[0]).await.unwrap().unwrap().state,
        JobState::Running
    );

    // A record past its retention is gone, trimmed or not, and its given id
    // may be used again.
    q.set_retention(&mut conn, Duration::from_millis(1), 100)
        .await
        .unwrap();
    let given = q
        .enqueue(&mut conn, &[new_job(Some("once"))])
        .await
        .unwrap();
    let d = w.claim(&mut conn, 1).await.unwrap();
    w.ack(&mut conn, [&d[0].entry]).await.unwrap();
    wait_until(Duration::from_secs(10), "the record expires", || {
        let (q, mut conn, id) = (q.clone(), conn.clone(), given[0].clone());
        async move { q.status(&mut conn, &id).await.unwrap().is_none() }
    })
    .await;
    q.enqueue(&mut conn, &[new_job(Some("once"))])
        .await
        .unwrap();
}

#[tokio::test]
async fn status_through_crash_recovery_and_a_retry_keeps_the_id() {
    let s = setup().await;
    let q = s.queue();
    let mut conn = s.redis.conn().await;
    let id = q
        .enqueue(&mut conn, &[new_job(None)])
        .await
        .unwrap()
        .remove(0);
    let a = q.consumer("worker-a");
    let b = q.consumer("worker-b");
    assert_eq!(a.claim(&mut conn, 1).await.unwrap().len(), 1);
    let st = q.status(&mut conn, &id).await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.worker.as_deref()),
        (JobState::Running, Some("worker-a"))
    );

    // worker-a "dies": worker-b recovers the entry after the lease (0 here).
    let options = RecoverOptions::new(Priority::High, Duration::ZERO, 5);
    let taken = b.recover(&mut conn, &options).await.unwrap().claimed;
    assert_eq!(taken.len(), 1);
    let st = q.status(&mut conn, &id).await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.worker.as_deref(), st.deliveries),
        (JobState::Running, Some("worker-b"), Some(2))
    );

    // It fails: a retry an hour away.
    let delivery = &taken[0];
    let env = delivery.envelope(1 << 20).unwrap();
    assert_eq!(env.id, id);
    let next = ferry_broker::Envelope {
        attempt: 2,
        last_error: Some("boom".into()),
        ..env.clone()
    };
    assert!(b
        .retry(&mut conn, delivery, &next, Duration::from_secs(3600))
        .await
        .unwrap());
    let st = q.status(&mut conn, &id).await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.attempt, st.last_error.as_deref()),
        (JobState::Retrying, Some(2), Some("boom"))
    );

    // Due now instead: promoted, it is queued again under the same id, in a
    // new entry that the index points at.
    assert!(b
        .retry(&mut conn, delivery, &next, Duration::ZERO)
        .await
        .is_ok());
    let _: i64 = redis::cmd("ZADD")
        .arg(q.keys().delayed())
        .arg(0)
        .arg(&id)
        .query_async(&mut conn)
        .await
        .unwrap();
    q.promote_due(&mut conn).await.unwrap();
    let st = q.status(&mut conn, &id).await.unwrap().unwrap();
    assert_eq!((st.state, st.attempt), (JobState::Queued, Some(2)));
    assert_ne!(st.entry_id.as_deref(), Some(delivery.entry.id.as_str()));

    let claimed = a.claim(&mut conn, 1).await.unwrap();
    let env = claimed[0].envelope(1 << 20).unwrap();
    assert_eq!(env.id, id, "the id survives the move");
    let record = record_fields(
        &env,
        Priority::High,
        1,
        "worker-a",
        &serde_json::json!({"ok": true}),
    );
    let finished = [Finished {
        entry: claimed[0].entry.clone(),
        job_id: env.id.clone(),
        record,
        retention_ms: None,
    }];
    assert_eq!(a.ack_finished(&mut conn, &finished).await.unwrap(), 1);
    let st = q.status(&mut conn, &id).await.unwrap().unwrap();
    assert_eq!((st.state, st.attempt), (JobState::Succeeded, Some(2)));
    assert_eq!(st.result, Some(serde_json::json!({"ok": true})));
    let index: u64 = redis::cmd("HLEN")
        .arg(q.keys().index())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(index, 0, "a finished job leaves no index field");
}

#[tokio::test]
async fn a_thousand_waiters_on_one_client_share_one_subscription() {
    let s = setup().await;
    let jobs: Vec<Square> = (0..1000).map(|n| Square { n }).collect();
    let ids = s
        .client
        .enqueue_batch(&jobs, EnqueueOptions::new())
        .await
        .unwrap();
    let mut waits = tokio::task::JoinSet::new();
    for (n, id) in ids.iter().enumerate() {
        let (client, id) = (s.client.clone(), id.clone());
        waits.spawn(async move {
            (
                n as u64,
                client.wait(QUEUE, &id, Duration::from_secs(60)).await,
            )
        });
    }
    let channel = s.queue().keys().finished_channel();
    let mut conn = s.redis.conn().await;
    wait_until(Duration::from_secs(20), "the client subscribed", || {
        let (mut conn, channel) = (conn.clone(), channel.clone());
        async move {
            let v: (String, u64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .unwrap();
            v.1 >= 1
        }
    })
    .await;
    let (handle, token) = s.worker(None);
    let mut done = 0;
    while let Some(r) = waits.join_next().await {
        let (n, status) = r.unwrap();
        let status = status.unwrap();
        if n == 13 {
            assert_eq!(status.state, JobState::Dead);
        } else {
            assert_eq!(status.state, JobState::Succeeded);
            assert_eq!(status.result, Some(serde_json::json!(n * n)));
        }
        done += 1;
    }
    assert_eq!(done, 1000);
    let (_, subscribers): (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(&channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(subscribers, 1, "one subscription for a thousand waiters");
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_wait_on_a_finished_job_answers_at_once_and_a_timeout_leaves_the_job_alone() {
    let s = setup().await;
    let (handle, token) = s.worker(None);
    let id = s.client.enqueue(&Square { n: 5 }).await.unwrap();
    let first = s
        .client
        .wait(QUEUE, &id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(first.result, Some(serde_json::json!(25)));
    token.cancel();
    handle.await.unwrap().unwrap();

    // Finished before this wait began: answered from its record, at once.
    let started = std::time::Instant::now();
    let again = s
        .client
        .wait(QUEUE, &id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert!(started.elapsed() < Duration::from_secs(5));

    // No worker: the wait times out, typed, and the job stays queued.
    let idle = s.client.enqueue(&Square { n: 6 }).await.unwrap();
    let err = s
        .client
        .wait(QUEUE, &idle, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::WaitTimeout {
                state: JobState::Queued,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        s.client.status(QUEUE, &idle).await.unwrap().state,
        JobState::Queued
    );

    // enqueue_and_wait, with a worker again.
    let (handle, token) = s.worker(None);
    let st = s
        .client
        .enqueue_and_wait(
            &Square { n: 9 },
            EnqueueOptions::new(),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(st.result, Some(serde_json::json!(81)));
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_maximum_depth_holds_under_eight_concurrent_producers() {
    let s = setup().await;
    s.client.set_max_depth(QUEUE, Some(100)).await.unwrap();
    let mut producers = tokio::task::JoinSet::new();
    for p in 0..8u64 {
        let client = s.client.clone();
        producers.spawn(async move {
            let (mut ok, mut full) = (0, 0);
            for i in 0..40u64 {
                match client.enqueue(&Square { n: p * 100 + i }).await {
                    Ok(_) => ok += 1,
                    Err(Error::QueueFull { max_depth: 100, .. }) => full += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            (ok, full)
        });
    }
    let (mut ok, mut full) = (0, 0);
    while let Some(r) = producers.join_next().await {
        let (o, f) = r.unwrap();
        ok += o;
        full += f;
    }
    assert_eq!((ok, full), (100, 220));
    assert_eq!(s.client.stats(QUEUE).await.unwrap().total_waiting(), 100);
    // A batch that would pass it is refused whole.
    s.client.set_max_depth(QUEUE, Some(150)).await.unwrap();
    let batch: Vec<Square> = (0..51).map(|n| Square { n }).collect();
    let err = s
        .client
        .enqueue_batch(&batch, EnqueueOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::QueueFull { depth: 100, .. }), "{err}");
    assert_eq!(s.client.stats(QUEUE).await.unwrap().total_waiting(), 100);
    s.client.set_max_depth(QUEUE, None).await.unwrap();
    s.client
        .enqueue_batch(&batch, EnqueueOptions::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_bounds_the_records_of_a_hundred_thousand_finished_jobs() {
    let redis = RedisServer::start_own(&[]).await;
    let prefix = unique("keep");
    let q = queue(&prefix, QUEUE);
    let mut conn = redis.conn().await;
    q.set_retention(&mut conn, Duration::from_secs(3600), 1000)
        .await
        .unwrap();
    let worker = q.consumer("w");
    let used = |info: String| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    let info = || async {
        let s: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut redis.conn().await)
            .await
            .unwrap();
        s
    };
    let mut peak_records = 0u64;
    let mut before = 0;
    let mut last = String::new();
    for round in 0..100 {
        let jobs: Vec<NewJob> = (0..1000).map(|_| new_job(None)).collect();
        q.enqueue(&mut conn, &jobs).await.unwrap();
        let claimed = worker.claim_bulk(&mut conn, 1000).await.unwrap();
        let finished: Vec<Finished> = claimed
            .iter()
            .map(|d| {
                let env = d.envelope(1 << 20).unwrap();
                Finished {
                    entry: d.entry.clone(),
                    record: record_fields(&env, d.priority(), 1, "w", &serde_json::json!(9)),
                    job_id: env.id,
                    retention_ms: None,
                }
            })
            .collect();
        assert_eq!(
            worker.ack_finished(&mut conn, &finished).await.unwrap(),
            1000
        );
        last = finished[999].job_id.clone();
        let kept: u64 = redis::cmd("HLEN")
            .arg(q.keys().results())
            .query_async(&mut conn)
            .await
            .unwrap();
        peak_records = peak_records.max(kept);
        if round == 9 {
            before = used(info().await);
        }
    }
    let after = used(info().await);
    let kept: u64 = redis::cmd("HLEN")
        .arg(q.keys().results())
        .query_async(&mut conn)
        .await
        .unwrap();
    let scored: u64 = redis::cmd("ZCARD")
        .arg(q.keys().retention())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((kept, scored, peak_records), (1000, 1000, 1000));
    assert!(
        after < before + 2_000_000,
        "memory grew {} bytes over 90,000 more finished jobs",
        after.saturating_sub(before)
    );
    // The newest are kept: the last job's record is there, the first's not.
    let st = q.status(&mut conn, &last).await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.result),
        (JobState::Succeeded, Some(serde_json::json!(9)))
    );
    eprintln!(
        "memory over the last 90,000 finished jobs: {} bytes",
        after.saturating_sub(before)
    );
    assert_eq!(q.clear_results(&mut conn).await.unwrap(), 1000);
    let kept: u64 = redis::cmd("HLEN")
        .arg(q.keys().results())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, 0);

    // Retention 0 keeps nothing.
    q.set_retention(&mut conn, Duration::from_secs(3600), 0)
        .await
        .unwrap();
    let id = q
        .enqueue(&mut conn, &[new_job(None)])
        .await
        .unwrap()
        .remove(0);
    let d = worker.claim(&mut conn, 1).await.unwrap();
    worker
        .ack(&mut conn, d.iter().map(|d| &d.entry))
        .await
        .unwrap();
    assert!(q.status(&mut conn, &id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_pause_stops_claims_across_two_worker_processes_until_the_resume() {
    let run = scenario("paused").await;
    let url = run.redis.url().to_owned();
    // A short lease: entries a worker holds through the pause must be
    // renewed, or the other worker would recover and run them.
    let args = [
        "--concurrency",
        "4",
        "--exit-when-idle",
        "0.5",
        "--lease-ms",
        "600",
    ];
    let mut a = run.worker(&args);
    let mut b = run.worker(&args);
    // Both idle in their blocking reads when the pause lands (issue 20,
    // item 5: a blocking XREADGROUP took an entry enqueued after the pause
    // and held it, reading as running, where no other worker could take it).
    wait_until(
        Duration::from_secs(30),
        "both workers block on Redis",
        || {
            let redis = &run.redis;
            async move {
                let mut conn = redis.conn().await;
                let info: String = redis::cmd("INFO")
                    .arg("clients")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                info.lines()
                    .find_map(|l| l.strip_prefix("blocked_clients:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .is_some_and(|n| n >= 2)
            }
        },
    )
    .await;
    let (code, out) = example(
        &url,
        &run.prefix,
        &["pause", "--queue", &run.queue, "--json"],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!(r#"{{"paused":true,"queue":"{}"}}"#, run.queue)
    );
    let ids = run.produce(&["--count", "40", "--print-ids"]).await;
    assert_eq!(ids.len(), 40);
    // Both workers see the pause: nothing runs, for two seconds (a window
    // to observe an absence; the resume below is what ends it).
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < until {
        assert!(run.audit().await.is_empty(), "a job ran in a paused queue");
        let stats = run.stats().await;
        assert!(stats.paused);
        // No worker holds an entry: blocking reads take nothing.
        assert_eq!(stats.total_pending(), 0, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out) = example(
        &url,
        &run.prefix,
        &["status", "--queue", &run.queue, "--id", &ids[0], "--json"],
    )
    .await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "queued", "{v}");
    let (code, _) = example(&url, &run.prefix, &["resume", "--queue", &run.queue]).await;
    assert_eq!(code, 0);
    let (code, out) = example(
        &url,
        &run.prefix,
        &[
            "wait",
            "--queue",
            &run.queue,
            "--id",
            &ids[39],
            "--json",
            "--timeout-ms",
            "60000",
        ],
    )
    .await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "succeeded");
    assert_eq!(
        v["result"]["message"], "hello 39",
        "echo returns its payload"
    );
    assert!(a.wait(EXIT).await.success());
    assert!(b.wait(EXIT).await.success());
    run.assert_exactly_once(&ids).await;
}

#[tokio::test]
async fn cancel_removes_a_waiting_job_and_names_the_state_of_a_finished_one() {
    let s = setup().await;
    let queued = s.client.enqueue(&Square { n: 2 }).await.unwrap();
    let later = s
        .client
        .enqueue_with(
            &Square { n: 3 },
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    for id in [&queued, &later] {
        assert_eq!(s.client.cancel(QUEUE, id).await.unwrap(), Cancel::Cancelled);
        let st = s.client.status(QUEUE, id).await.unwrap();
        assert_eq!(st.state, JobState::Cancelled);
        // Idempotent.
        assert_eq!(s.client.cancel(QUEUE, id).await.unwrap(), Cancel::Cancelled);
        let waited = s
            .client
            .wait(QUEUE, id, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(waited.state, JobState::Cancelled);
    }
    let stats = s.client.stats(QUEUE).await.unwrap();
    assert_eq!((stats.total_waiting(), stats.delayed), (0, 0), "{stats:?}");
    assert_eq!(stats.counter("cancelled"), 2);

    let (handle, token) = s.worker(None);
    let done = s
        .client
        .enqueue_and_wait(
            &Square { n: 4 },
            EnqueueOptions::new(),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let err = s.client.cancel(QUEUE, &done.id).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::NotCancellable {
                state: JobState::Succeeded,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("succeeded"), "{err}");
    let missing = s.client.cancel(QUEUE, "no-such-job").await.unwrap_err();
    assert!(matches!(missing, Error::JobNotFound { .. }), "{missing}");
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_running_job_cancelled_ends_cancelled_whatever_its_handler_returns() {
    let s = setup().await;
    let gate = Arc::new(Semaphore::new(0));
    let (handle, token) = s.worker(Some(gate.clone()));
    let id = s.client.enqueue(&Square { n: 7 }).await.unwrap();
    wait_until(Duration::from_secs(20), "the job runs", || async {
        s.client.status(QUEUE, &id).await.unwrap().state == JobState::Running
    })
    .await;
    let asked = s.client.cancel(QUEUE, &id).await.unwrap();
    assert!(
        matches!(asked, Cancel::Requested { ref worker } if !worker.is_empty()),
        "{asked:?}"
    );
    // This handler ignores its token and succeeds: the job is cancelled still.
    gate.add_permits(1);
    let st = s
        .client
        .wait(QUEUE, &id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(st.state, JobState::Cancelled);
    assert_eq!(st.result, None);
    let stats = s.client.stats(QUEUE).await.unwrap();
    assert_eq!(
        (stats.counter("cancelled"), stats.counter("completed")),
        (1, 0)
    );
    let cancels: u64 = redis::cmd("HLEN")
        .arg(s.queue().keys().cancels())
        .query_async(&mut s.redis.conn().await)
        .await
        .unwrap();
    assert_eq!(cancels, 0, "the request is forgotten once the job ended");
    token.cancel();
    handle.await.unwrap().unwrap();
}

/// Every finished record has the same fields however the job ended: one
/// cancelled while queued or scheduled keeps its type, priority, attempt,
/// max_retries and enqueued_at (no attempt started, so started_at and
/// worker are null), and one cancelled while it ran keeps them all, whether
/// its attempt then succeeded, failed with retries left, or failed for good.
#[tokio::test]
async fn a_cancelled_jobs_record_has_the_fields_of_a_succeeded_one() {
    let s = setup().await;
    let keys = s.queue().keys().clone();
    let conn = s.redis.conn().await;
    let record = |id: String| {
        let mut conn = conn.clone();
        let results = keys.results().to_owned();
        async move {
            let raw: String = redis::cmd("HGET")
                .arg(results)
                .arg(&id)
                .query_async(&mut conn)
                .await
                .unwrap();
            serde_json::from_str::<serde_json::Value>(&raw).unwrap()
        }
    };
    let members = |v: &serde_json::Value| {
        let mut m: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        m.sort();
        m
    };

    let queued = s.client.enqueue(&Square { n: 2 }).await.unwrap();
    let scheduled = s
        .client
        .enqueue_with(
            &Square { n: 3 },
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    for id in [&queued, &scheduled] {
        assert!(matches!(
            s.client.cancel(QUEUE, id).await.unwrap(),
            Cancel::Cancelled
        ));
    }

    let gate = Arc::new(Semaphore::new(0));
    let (handle, token) = s.worker(Some(gate.clone()));
    let mut running = Vec::new();
    for n in [4, 9998, 13] {
        running.push(s.client.enqueue(&Square { n }).await.unwrap());
    }
    for id in &running {
        wait_until(Duration::from_secs(20), "the job runs", || async {
            s.client.status(QUEUE, id).await.unwrap().state == JobState::Running
        })
        .await;
        assert!(matches!(
            s.client.cancel(QUEUE, id).await.unwrap(),
            Cancel::Requested { .. }
        ));
    }
    gate.add_permits(running.len());
    for id in &running {
        let st = s
            .client
            .wait(QUEUE, id, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(st.state, JobState::Cancelled, "{id}");
    }
    let succeeded = s.client.enqueue(&Square { n: 5 }).await.unwrap();
    gate.add_permits(1);
    let st = s
        .client
        .wait(QUEUE, &succeeded, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(st.state, JobState::Succeeded);

    let done = record(succeeded).await;
    let mut want = members(&done);
    want.retain(|m| m != "result");
    for id in [&queued, &scheduled].into_iter().chain(&running) {
        let r = record(id.clone()).await;
        assert_eq!(members(&r), want, "{id}: {r}");
        assert_eq!(r["state"], "cancelled", "{id}: {r}");
        assert_eq!(r["type"], "square", "{id}: {r}");
        assert_eq!(r["priority"], "normal", "{id}: {r}");
        assert_eq!(r["attempt"], 1, "{id}: {r}");
        assert_eq!(r["max_retries"], done["max_retries"], "{id}: {r}");
        assert!(r["enqueued_at"].as_u64().unwrap() > 0, "{id}: {r}");
        if running.contains(id) {
            assert!(
                r["started_at"].as_u64().unwrap() >= r["enqueued_at"].as_u64().unwrap(),
                "{id}: {r}"
            );
            assert!(
                r["worker"].as_str().is_some_and(|w| !w.is_empty()),
                "{id}: {r}"
            );
        } else {
            assert!(
                r["started_at"].is_null() && r["worker"].is_null(),
                "{id}: {r}"
            );
        }
    }
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn cancelling_a_job_running_in_another_worker_process_fires_its_token() {
    let run = scenario("cancel").await;
    let url = run.redis.url().to_owned();
    let ids = run.produce(&["--kind", "sleep:60000"]).await;
    let mut worker = run.worker(&["--concurrency", "2"]);
    let client = Client::builder(run.redis.url())
        .prefix(&run.prefix)
        .connect()
        .unwrap();
    wait_until(Duration::from_secs(30), "the job runs", || async {
        client.status(&run.queue, &ids[0]).await.unwrap().state == JobState::Running
    })
    .await;
    let asked = std::time::Instant::now();
    let (code, out) = example(
        &url,
        &run.prefix,
        &["cancel", "--queue", &run.queue, "--id", &ids[0], "--json"],
    )
    .await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["state"].as_str(), v["cancel_requested"].as_bool()),
        (Some("running"), Some(true))
    );
    let st = client
        .wait(&run.queue, &ids[0], Duration::from_secs(30))
        .await
        .unwrap();
    let took = asked.elapsed();
    eprintln!("a 60 s job on another process ended cancelled {took:?} after the cancel");
    assert_eq!(st.state, JobState::Cancelled);
    assert!(
        took < Duration::from_secs(30),
        "the handler stopped early: {took:?}"
    );
    assert!(run.audit().await.is_empty(), "the sleep did not complete");
    worker.terminate();
    assert!(worker.wait(EXIT).await.success());
    assert!(worker.log_text().contains("cancellation token fired"));
}

#[tokio::test]
async fn a_waiting_job_is_reprioritised_atomically_and_keeps_its_id() {
    let s = setup().await;
    let q = s.queue();
    let mut conn = s.redis.conn().await;
    let low: Vec<String> = s
        .client
        .enqueue_batch(
            &[Square { n: 1 }, Square { n: 2 }],
            EnqueueOptions::new().priority(Priority::Low),
        )
        .await
        .unwrap();
    s.client
        .enqueue_with(
            &Square { n: 3 },
            EnqueueOptions::new().priority(Priority::High),
        )
        .await
        .unwrap();
    // The second low job jumps to critical: claimed first, same id.
    s.client
        .reprioritise(QUEUE, &low[1], Priority::Critical)
        .await
        .unwrap();
    let st = s.client.status(QUEUE, &low[1]).await.unwrap();
    assert_eq!(
        (st.state, st.priority),
        (JobState::Queued, Some(Priority::Critical))
    );
    let w = q.consumer("w");
    let first = w.claim(&mut conn, 1).await.unwrap();
    let env = first[0].envelope(1 << 20).unwrap();
    assert_eq!(
        (first[0].priority(), env.id.as_str()),
        (Priority::Critical, low[1].as_str())
    );
    let len: u64 = redis::cmd("XLEN")
        .arg(q.keys().stream(Priority::Low))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 1, "its low entry is gone");
    // Running now: refused, naming the state.
    let err = s
        .client
        .reprioritise(QUEUE, &low[1], Priority::Low)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotWaiting { state, .. } if state == "running"),
        "{err}"
    );
    // A scheduled job takes its new priority when due.
    let later = s
        .client
        .enqueue_with(
            &Square { n: 4 },
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    s.client
        .reprioritise(QUEUE, &later, Priority::High)
        .await
        .unwrap();
    let st = s.client.status(QUEUE, &later).await.unwrap();
    assert_eq!(
        (st.state, st.priority),
        (JobState::Scheduled, Some(Priority::High))
    );
    let missing = s
        .client
        .reprioritise(QUEUE, "no-such-job", Priority::High)
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::JobNotFound { .. }), "{missing}");
}

#[tokio::test]
async fn live_workers_register_with_a_ttl_and_leave_when_they_stop() {
    let run = scenario("fleet").await;
    let client = Client::builder(run.redis.url())
        .prefix(&run.prefix)
        .connect()
        .unwrap();
    let mut a = run.worker(&["--concurrency", "3"]);
    let mut b = run.worker(&["--concurrency", "5"]);
    wait_until(
        Duration::from_secs(30),
        "both workers registered",
        || async { client.workers(&run.queue).await.unwrap().len() == 2 },
    )
    .await;
    let mut workers = client.workers(&run.queue).await.unwrap();
    workers.sort_by_key(|w| w.concurrency);
    assert_eq!(workers[0].concurrency, 3);
    assert_eq!(workers[1].concurrency, 5);
    for w in &workers {
        assert_eq!(w.queues, std::slice::from_ref(&run.queue));
        assert!(
            w.pid > 0 && !w.host.is_empty() && w.heartbeat_at > 0,
            "{w:?}"
        );
        assert!(w.worker.contains(&w.pid.to_string()), "{w:?}");
    }
    let ttl: i64 = redis::cmd("PTTL")
        .arg(
            queue(&run.prefix, &run.queue)
                .keys()
                .worker(&workers[0].worker),
        )
        .query_async(&mut run.redis.conn().await)
        .await
        .unwrap();
    assert!(ttl > 0, "registered with a TTL: {ttl}");
    // A clean stop removes the registration; a killed worker's expires.
    a.terminate();
    assert!(a.wait(EXIT).await.success());
    assert_eq!(client.workers(&run.queue).await.unwrap().len(), 1);
    b.kill().await;
    let left = client.workers(&run.queue).await.unwrap();
    assert_eq!(left.len(), 1, "until its TTL runs out: {left:?}");
}

#[derive(Serialize, Deserialize, Debug)]
struct Halfway {}
impl Job for Halfway {
    const TYPE: &'static str = "halfway";
    const QUEUE: &'static str = QUEUE;
}

#[tokio::test]
async fn progress_shows_in_status_while_the_job_runs_and_goes_with_it() {
    let s = setup().await;
    let gate = Arc::new(Semaphore::new(0));
    let held = gate.clone();
    let worker = Worker::builder(s.redis.url())
        .prefix(s.prefix.clone())
        .handle(move |_: Halfway, ctx: JobContext| {
            let gate = held.clone();
            async move {
                let stored = ctx
                    .progress(
                        ferry_queue::Progress::percent(50.0).info(serde_json::json!({"rows": 500})),
                    )
                    .await
                    .map_err(JobError::retry)?;
                assert!(stored);
                let _permit = gate.acquire().await.map_err(JobError::retry)?;
                Ok(())
            }
        })
        .build()
        .unwrap();
    let token = worker.shutdown_token();
    let handle = tokio::spawn(worker.run_until(std::future::pending()));
    let id = s.client.enqueue(&Halfway {}).await.unwrap();
    wait_until(Duration::from_secs(20), "progress is reported", || async {
        s.client
            .status(QUEUE, &id)
            .await
            .unwrap()
            .progress
            .is_some()
    })
    .await;
    let st = s.client.status(QUEUE, &id).await.unwrap();
    assert_eq!(st.state, JobState::Running);
    let p = st.progress.unwrap();
    assert_eq!(
        (p["percent"].as_f64(), p["info"]["rows"].as_u64()),
        (Some(50.0), Some(500))
    );
    assert!(p["at"].as_u64().unwrap() > 0);
    gate.add_permits(1);
    let done = s
        .client
        .wait(QUEUE, &id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!((done.state, done.progress), (JobState::Succeeded, None));
    let left: u64 = redis::cmd("HLEN")
        .arg(s.queue().keys().progress())
        .query_async(&mut s.redis.conn().await)
        .await
        .unwrap();
    assert_eq!(left, 0, "progress goes when the job ends");
    // A context made by hand stores nothing.
    assert!(!JobContext::new("x", QUEUE).progress(1.0).await.unwrap());
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn stats_give_wait_time_percentiles_per_queue_and_priority_from_a_known_schedule_and_the_failure_rate(
) {
    let s = setup().await;
    let q = s.queue();
    let mut conn = s.redis.conn().await;
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let now = secs * 1000 + micros / 1000;
    // 100 normal jobs whose entries were added 100 ms, 200 ms, ... 10 s ago
    // and 20 high ones added 21 s, 22 s, ... 40 s ago (the oldest first):
    // their waits are those delays plus the run's own.
    let schedule = (1..=100u64)
        .rev()
        .map(|i| (Priority::Normal, i * 100))
        .chain((21..=40u64).rev().map(|i| (Priority::High, i * 1000)));
    for (priority, ago) in schedule {
        let _: String = redis::cmd("XADD")
            .arg(q.keys().stream(priority))
            .arg(format!("{}-0", now - ago))
            .arg("type")
            .arg("square")
            .arg("payload")
            .arg(format!(r#"{{"n":{}}}"#, 1000 + ago))
            .arg("attempt")
            .arg(1)
            .arg("max_retries")
            .arg(0)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let unlucky = s.client.enqueue(&Square { n: 13 }).await.unwrap();
    let (handle, token) = s.worker(None);
    s.client
        .wait(QUEUE, &unlucky, Duration::from_secs(20))
        .await
        .unwrap();
    wait_until(Duration::from_secs(20), "all 120 completed", || async {
        s.client.stats(QUEUE).await.unwrap().counter("completed") == 120
    })
    .await;
    token.cancel();
    handle.await.unwrap().unwrap();
    let stats = s.client.stats(QUEUE).await.unwrap();
    // Buckets are about 19% wide, and each wait has the time to get there
    // added (well under a second).
    let near = |got: f64, want: f64| got > want * 0.88 && got < want * 1.25;
    let totals = |r: &ferry_queue::Recent| {
        let completed: u64 = r.minutes.iter().map(|m| m.completed).sum();
        let failed: u64 = r.minutes.iter().map(|m| m.failed).sum();
        (completed, failed)
    };

    // Normal: true p50 = 5,000 ms, p95 = 9,500 ms, p99 = 9,900 ms; the
    // unlucky job failed for good.
    let normal = stats.recent_at(Priority::Normal);
    let w = &normal.wait;
    eprintln!("normal wait: {w:?}; run: {:?}", normal.run);
    assert_eq!((w.count, normal.run.count), (100, 100));
    assert!(near(w.p50_ms, 5_000.0), "p50 {}", w.p50_ms);
    assert!(near(w.p95_ms, 9_500.0), "p95 {}", w.p95_ms);
    assert!(near(w.p99_ms, 9_900.0), "p99 {}", w.p99_ms);
    assert!(near(w.avg_ms, 5_050.0), "avg {}", w.avg_ms);
    assert_eq!(totals(normal), (100, 1));
    assert!((normal.failure_rate - 1.0 / 101.0).abs() < 1e-9);

    // High: waits 21 s to 40 s: p50 (10th of 20) = 30 s, p95 (19th) = 39 s.
    let high = stats.recent_at(Priority::High);
    let w = &high.wait;
    eprintln!("high wait: {w:?}");
    assert_eq!((w.count, high.run.count), (20, 20));
    assert!(near(w.p50_ms, 30_000.0), "p50 {}", w.p50_ms);
    assert!(near(w.p95_ms, 39_000.0), "p95 {}", w.p95_ms);
    assert!(near(w.avg_ms, 30_500.0), "avg {}", w.avg_ms);
    assert_eq!((totals(high), high.failure_rate), ((20, 0), 0.0));

    // Nothing ran at the other priorities.
    for p in [Priority::Critical, Priority::Low] {
        let r = stats.recent_at(p);
        assert_eq!((r.wait.count, totals(r)), (0, (0, 0)), "{p:?}");
    }

    // The queue: all 121 jobs. p50 is the 60th of 120 waits (6 s), p95 the
    // 114th (34 s).
    let recent = &stats.recent;
    let w = &recent.wait;
    eprintln!("queue wait: {w:?}; run: {:?}", recent.run);
    assert_eq!((w.count, recent.run.count), (120, 120));
    assert!(near(w.p50_ms, 6_000.0), "p50 {}", w.p50_ms);
    assert!(near(w.p95_ms, 34_000.0), "p95 {}", w.p95_ms);
    assert!(
        near(w.avg_ms, (5_050.0 * 100.0 + 30_500.0 * 20.0) / 120.0),
        "avg {}",
        w.avg_ms
    );
    assert_eq!(totals(recent), (120, 1));
    assert!(
        (recent.failure_rate - 1.0 / 121.0).abs() < 1e-9,
        "{}",
        recent.failure_rate
    );
    assert_eq!(recent.minutes.len(), 15);
}

#[tokio::test]
async fn events_follow_each_job_through_its_life_when_the_queue_has_them_on() {
    let s = setup().await;
    s.client.set_events(QUEUE, Some(10_000)).await.unwrap();
    let mut events = s.client.subscribe(QUEUE, None).await.unwrap();
    let ok = s.client.enqueue(&Square { n: 2 }).await.unwrap();
    let dead = s.client.enqueue(&Square { n: 13 }).await.unwrap();
    let retried = s.client.enqueue(&Square { n: 99 }).await.unwrap();
    let later = s
        .client
        .enqueue_with(
            &Square { n: 4 },
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    s.client.cancel(QUEUE, &later).await.unwrap();
    let (handle, token) = s.worker(None);
    let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
    let deadline = Duration::from_secs(30);
    tokio::time::timeout(deadline, async {
        loop {
            let e = events.next().await.unwrap();
            seen.entry(e.job_id.clone())
                .or_default()
                .push(e.event.clone());
            if e.job_id == retried && e.event == "succeeded" {
                break;
            }
        }
    })
    .await
    .expect("the events came");
    // The dead job may finish after the retried one: read on until it has.
    while seen
        .get(&dead)
        .is_none_or(|v| !v.contains(&"dead".to_owned()))
    {
        let e = tokio::time::timeout(deadline, events.next())
            .await
            .unwrap()
            .unwrap();
        seen.entry(e.job_id.clone())
            .or_default()
            .push(e.event.clone());
    }
    assert_eq!(seen[&ok], ["enqueued", "started", "succeeded"]);
    assert_eq!(seen[&dead], ["enqueued", "started", "dead"]);
    assert_eq!(
        seen[&retried],
        ["enqueued", "started", "retrying", "started", "succeeded"]
    );
    assert_eq!(seen[&later], ["enqueued", "cancelled"]);
    token.cancel();
    handle.await.unwrap().unwrap();

    // Readable with redis-cli too: XRANGE on the events stream.
    let len: u64 = redis::cmd("XLEN")
        .arg(s.queue().keys().events())
        .query_async(&mut s.redis.conn().await)
        .await
        .unwrap();
    assert_eq!(len, 13);
    // Off: nothing more is written.
    s.client.set_events(QUEUE, None).await.unwrap();
    s.client.enqueue(&Square { n: 5 }).await.unwrap();
    let after: u64 = redis::cmd("XLEN")
        .arg(s.queue().keys().events())
        .query_async(&mut s.redis.conn().await)
        .await
        .unwrap();
    assert_eq!(after, 13);
}

#[tokio::test]
async fn status_follows_a_job_through_a_sigkilled_worker_to_the_one_that_recovers_it() {
    let run = scenario("recovered").await;
    let client = Client::builder(run.redis.url())
        .prefix(&run.prefix)
        .connect()
        .unwrap();
    let ids = run.produce(&["--kind", "sleep:1500"]).await;
    let args = ["--concurrency", "1", "--lease-ms", "600"];
    let mut doomed = run.worker(&args);
    wait_until(
        Duration::from_secs(30),
        "the first worker runs the job",
        || async { client.status(&run.queue, &ids[0]).await.unwrap().state == JobState::Running },
    )
    .await;
    let first = client.status(&run.queue, &ids[0]).await.unwrap();
    doomed.kill().await;
    doomed.wait(EXIT).await;
    let mut rescuer = run.worker(&[&args[..], &["--exit-when-idle", "0.5"]].concat());
    wait_until(
        Duration::from_secs(30),
        "another worker runs it",
        || async {
            let st = client.status(&run.queue, &ids[0]).await.unwrap();
            st.state == JobState::Running && st.worker != first.worker
        },
    )
    .await;
    let second = client.status(&run.queue, &ids[0]).await.unwrap();
    assert_eq!((first.deliveries, second.deliveries), (Some(1), Some(2)));
    let done = client
        .wait(&run.queue, &ids[0], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(
        done.worker, second.worker,
        "the record names the worker that finished it"
    );
    assert!(rescuer.wait(EXIT).await.success());
    run.assert_exactly_once(&ids).await;
}

#[tokio::test]
async fn purging_dead_letters_forgets_the_dead_jobs() {
    let s = setup().await;
    let q = s.queue();
    let mut conn = s.redis.conn().await;
    let ids = q
        .enqueue(&mut conn, &[new_job(None), new_job(Some("given-dead"))])
        .await
        .unwrap();
    let w = q.consumer("w");
    for d in w.claim(&mut conn, 2).await.unwrap() {
        let moved = w
            .dead_letter(&mut conn, &d, "no", ferry_broker::DeadLetterKind::Failed)
            .await
            .unwrap();
        assert!(moved.moved);
    }
    for id in &ids {
        assert_eq!(
            q.status(&mut conn, id).await.unwrap().unwrap().state,
            JobState::Dead
        );
    }
    assert_eq!(q.purge_dead(&mut conn).await.unwrap(), 2);
    for id in &ids {
        assert!(q.status(&mut conn, id).await.unwrap().is_none(), "{id}");
    }
    let index: u64 = redis::cmd("HLEN")
        .arg(q.keys().index())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(index, 0);
    // Its id is free again.
    q.enqueue(&mut conn, &[new_job(Some("given-dead"))])
        .await
        .unwrap();
}

/// A job's own retention (an enqueue option) decides how long its record
/// lasts, over the queue's: kept on a queue that keeps none, dropped on one
/// that keeps them, and carried through a retry (the delayed set).
#[tokio::test]
async fn a_job_keeps_its_record_as_long_as_its_own_retention_says() {
    let s = setup().await;
    let mut conn = s.redis.conn().await;
    let q = s.queue();
    // The queue keeps no record by time (count cap 100).
    q.set_retention(&mut conn, Duration::ZERO, 100)
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    let kept = s
        .client
        .enqueue_with(&Square { n: 3 }, EnqueueOptions::new().retention(hour))
        .await
        .unwrap();
    let plain = s.client.enqueue(&Square { n: 4 }).await.unwrap();
    // Fails its first attempt: the retry goes through the delayed set.
    let retried = s
        .client
        .enqueue_with(&Square { n: 99 }, EnqueueOptions::new().retention(hour))
        .await
        .unwrap();
    // The fresh entry carries the option as a readable field.
    let (priority, entry) = ferry_broker::envelope::parse_derived_id(&kept).unwrap();
    let fields: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(q.keys().stream(priority))
        .arg(entry)
        .arg(entry)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        fields.ids[0].get::<String>("retention_ms").as_deref(),
        Some("3600000")
    );

    let (worker, stop) = s.worker(None);
    // (A job without a record is not found once it finished: count them.)
    let completed = |n: u64| {
        let client = s.client.clone();
        async move {
            wait_until(Duration::from_secs(20), "the jobs complete", || {
                let client = client.clone();
                async move { client.stats(QUEUE).await.unwrap().counter("completed") == n }
            })
            .await
        }
    };
    completed(3).await;
    let st = s.client.status(QUEUE, &kept).await.unwrap();
    assert_eq!((st.state, st.result), (JobState::Succeeded, Some(9.into())));
    let st = s.client.status(QUEUE, &retried).await.unwrap();
    assert_eq!((st.state, st.attempt), (JobState::Succeeded, Some(2)));
    assert!(matches!(
        s.client.status(QUEUE, &plain).await,
        Err(Error::JobNotFound { .. })
    ));
    // Kept for about the hour asked.
    let expires: f64 = redis::cmd("ZSCORE")
        .arg(q.keys().retention())
        .arg(&kept)
        .query_async(&mut conn)
        .await
        .unwrap();
    let left = expires - ferry_broker::now_ms() as f64;
    assert!(left > 3_500_000.0 && left <= 3_600_000.0, "{left} ms left");

    // On a queue that keeps records, a job asking for none has none. (A
    // worker learns of a new retention at its next promoter tick: start
    // another.)
    stop.cancel();
    worker.await.unwrap().unwrap();
    q.set_retention(&mut conn, hour, 100).await.unwrap();
    let (worker, stop) = s.worker(None);
    let none = s
        .client
        .enqueue_with(
            &Square { n: 5 },
            EnqueueOptions::new().retention(Duration::ZERO),
        )
        .await
        .unwrap();
    let other = s.client.enqueue(&Square { n: 6 }).await.unwrap();
    completed(5).await;
    assert!(matches!(
        s.client.status(QUEUE, &none).await,
        Err(Error::JobNotFound { .. })
    ));
    assert_eq!(
        s.client.status(QUEUE, &other).await.unwrap().result,
        Some(36.into())
    );
    stop.cancel();
    worker.await.unwrap().unwrap();
}

/// Completed, retried and dead jobs are counted per priority too.
#[tokio::test]
async fn counters_are_kept_per_priority() {
    let s = setup().await;
    let at = |p: Priority| EnqueueOptions::new().priority(p);
    // 99 fails its first attempt (a retry), 13 fails for good.
    s.client
        .enqueue_with(&Square { n: 99 }, at(Priority::High))
        .await
        .unwrap();
    s.client
        .enqueue_with(&Square { n: 13 }, at(Priority::Low))
        .await
        .unwrap();
    s.client
        .enqueue_with(&Square { n: 3 }, at(Priority::Normal))
        .await
        .unwrap();
    s.client
        .enqueue_with(&Square { n: 4 }, at(Priority::Normal))
        .await
        .unwrap();
    let (worker, stop) = s.worker(None);
    wait_until(Duration::from_secs(20), "three complete, one dead", || {
        let client = s.client.clone();
        async move {
            let st = client.stats(QUEUE).await.unwrap();
            st.counter("completed") == 3 && st.counter("dead") == 1
        }
    })
    .await;
    let st = s.client.stats(QUEUE).await.unwrap();
    let by = |name: &str| Priority::ALL.map(|p| st.counter_at(name, p));
    assert_eq!(by("completed"), [0, 1, 2, 0]);
    assert_eq!(by("retried"), [0, 1, 0, 0]);
    assert_eq!(by("dead"), [0, 0, 0, 1]);
    // The last 15 minutes are kept per priority too (completed jobs reach
    // them with the worker's next timing flush, about a second later).
    let recent = |st: &ferry_queue::QueueStats, f: fn(&ferry_queue::Minute) -> u64| {
        Priority::ALL.map(|p| st.recent_at(p).minutes.iter().map(f).sum::<u64>())
    };
    wait_until(
        Duration::from_secs(20),
        "completed jobs in the recent figures",
        || {
            let client = s.client.clone();
            async move {
                let st = client.stats(QUEUE).await.unwrap();
                recent(&st, |m| m.completed) == [0, 1, 2, 0]
            }
        },
    )
    .await;
    let st = s.client.stats(QUEUE).await.unwrap();
    assert_eq!(recent(&st, |m| m.retried), [0, 1, 0, 0]);
    assert_eq!(recent(&st, |m| m.failed), [0, 0, 0, 1]);
    let runs = Priority::ALL.map(|p| st.recent_at(p).run.count);
    assert_eq!(runs, [0, 1, 2, 0]);
    assert_eq!(st.recent_at(Priority::Low).failure_rate, 1.0);
    stop.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn recent_figures_drop_the_minutes_that_left_the_window_for_the_queue_and_each_priority() {
    let s = setup().await;
    let q = s.queue();
    let mut conn = s.redis.conn().await;
    let (secs, _): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let m = secs / 60;
    let (old, kept) = (m - 20, m - 5);
    // As a worker would have left them: the last minute written 20 minutes
    // ago, and one written 5 minutes ago (inside the window).
    let _: () = redis::cmd("HSET")
        .arg(q.keys().timing())
        .arg("minute")
        .arg(old)
        .arg(format!("{old}:n"))
        .arg(5)
        .arg(format!("{old}:w3"))
        .arg(5)
        .arg(format!("{old}:high:n"))
        .arg(5)
        .arg(format!("{old}:high:w3"))
        .arg(5)
        .arg(format!("{old}:low:f"))
        .arg(1)
        .arg(format!("{kept}:n"))
        .arg(2)
        .arg(format!("{kept}:normal:n"))
        .arg(2)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut batch = ferry_broker::TimingBatch::default();
    batch.add(Priority::High, 10, 5);
    batch.count_completed(Priority::High, 1);
    q.record_timing(&mut conn, &batch).await.unwrap();

    let fields: std::collections::BTreeMap<String, u64> = redis::cmd("HGETALL")
        .arg(q.keys().timing())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        !fields.keys().any(|f| f.starts_with(&format!("{old}:"))),
        "the old minute is gone for the queue and every priority: {fields:?}"
    );
    let w = ferry_broker::stats::timing_bucket(10);
    let r = ferry_broker::stats::timing_bucket(5);
    for scope in ["", "high:"] {
        assert_eq!(fields.get(&format!("{m}:{scope}n")), Some(&1), "{fields:?}");
        assert_eq!(fields.get(&format!("{m}:{scope}ws")), Some(&10));
        assert_eq!(fields.get(&format!("{m}:{scope}rs")), Some(&5));
        assert_eq!(fields.get(&format!("{m}:{scope}w{w}")), Some(&1));
        assert_eq!(fields.get(&format!("{m}:{scope}r{r}")), Some(&1));
    }
    assert_eq!(fields.get(&format!("{kept}:normal:n")), Some(&2));
    assert_eq!(fields.get("minute"), Some(&m));

    let stats = s.client.stats(QUEUE).await.unwrap();
    let completed = |r: &ferry_queue::Recent| r.minutes.iter().map(|m| m.completed).sum::<u64>();
    assert_eq!(completed(&stats.recent), 3);
    assert_eq!(completed(stats.recent_at(Priority::High)), 1);
    assert_eq!(completed(stats.recent_at(Priority::Normal)), 2);
    assert_eq!(stats.recent_at(Priority::High).wait.count, 1);
}
