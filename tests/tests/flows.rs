//! Flows against a real Redis, run by a real (in-process) SDK worker: a
//! tree three levels deep runs children first, each parent reading its
//! children's typed results (with the queue keeping no records), and its
//! bookkeeping is gone once it has run; a failed child fails or releases
//! its parent as the parent's policy says, down the tree; a flow is
//! written all or none; and bad flows are refused before anything is
//! sent.

use std::time::Duration;

use ferry_queue::{
    Client, EnqueueOptions, Error, Flow, Job, JobContext, JobError, JobState, OnDependencyFailure,
    Worker,
};
use ferry_tests::{unique, RedisServer};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

const QUEUE: &str = "flows";

/// A leaf: returns its number squared.
#[derive(Serialize, Deserialize)]
struct Square {
    n: u64,
}
impl Job for Square {
    const TYPE: &'static str = "square";
    const QUEUE: &'static str = QUEUE;
}

/// A parent: returns the sum of its children's results.
#[derive(Serialize, Deserialize)]
struct Sum;
impl Job for Sum {
    const TYPE: &'static str = "sum";
    const QUEUE: &'static str = QUEUE;
}

/// Fails for good.
#[derive(Serialize, Deserialize)]
struct Boom;
impl Job for Boom {
    const TYPE: &'static str = "boom";
    const QUEUE: &'static str = QUEUE;
}

/// What a handler saw: its job id, and for a parent its children's
/// results (sorted by id) and their sum.
type Ran = (String, Vec<(String, u64)>, u64);

fn id(id: &str) -> EnqueueOptions {
    EnqueueOptions::new().job_id(id)
}

fn square(job: &str, n: u64) -> Flow {
    Flow::with_options(&Square { n }, id(job))
}

fn sum(job: &str) -> Flow {
    Flow::with_options(&Sum, id(job))
}

struct Setup {
    redis: RedisServer,
    prefix: String,
    client: Client,
    ran: mpsc::UnboundedReceiver<Ran>,
    _worker: tokio::task::JoinHandle<ferry_queue::Result<()>>,
}

async fn setup() -> Setup {
    let redis = RedisServer::start().await;
    let prefix = unique("flows");
    let client = Client::builder(redis.url())
        .prefix(prefix.clone())
        .connect()
        .unwrap();
    let (tx, ran) = mpsc::unbounded_channel();
    let (t1, t2) = (tx.clone(), tx);
    let worker = Worker::builder(redis.url())
        .prefix(prefix.clone())
        .handle(move |job: Square, ctx: JobContext| {
            let tx = t1.clone();
            async move {
                let _ = tx.send((ctx.job_id, Vec::new(), job.n * job.n));
                Ok::<u64, JobError>(job.n * job.n)
            }
        })
        .handle(move |_: Sum, ctx: JobContext| {
            let tx = t2.clone();
            async move {
                let results = ctx
                    .dependency_results_as::<u64>()
                    .await
                    .map_err(JobError::permanent)?;
                let mut results: Vec<(String, u64)> = results.into_iter().collect();
                results.sort();
                let total = results.iter().map(|(_, n)| n).sum();
                let _ = tx.send((ctx.job_id, results, total));
                Ok::<u64, JobError>(total)
            }
        })
        .handle(|_: Boom, _: JobContext| async { Err::<(), _>(JobError::permanent("boom")) })
        .build()
        .unwrap();
    let worker = tokio::spawn(worker.run_until(std::future::pending()));
    Setup {
        redis,
        prefix,
        client,
        ran,
        _worker: worker,
    }
}

impl Setup {
    async fn next(&mut self) -> Ran {
        tokio::time::timeout(Duration::from_secs(20), self.ran.recv())
            .await
            .expect("a handler ran within 20 s")
            .expect("channel open")
    }

    /// The queue's keys whose names contain `part`.
    async fn keys_with(&self, part: &str) -> Vec<String> {
        let mut conn = self.redis.conn().await;
        redis::cmd("KEYS")
            .arg(format!("{}:{{{QUEUE}}}:*{part}*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    async fn wait_for(&self, job: &str, state: JobState) -> ferry_queue::JobStatus {
        let mut last = None;
        for _ in 0..200 {
            let st = self.client.status(QUEUE, job).await.unwrap();
            if st.state == state {
                return st;
            }
            last = Some(st.state);
            // The state changes in a script that returns nothing to this
            // test; a short poll of the job's status is what an operator does.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{job} did not become {state:?} within 10 s: {last:?}");
    }
}

/// A tree three levels deep runs each parent after its children, and each
/// reads its children's typed results, although the queue keeps no
/// records; once the root has run, no bookkeeping of the flow is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_runs_children_first_and_each_parent_reads_its_childrens_results() {
    let mut s = setup().await;
    s.client
        .set_retention(QUEUE, Duration::ZERO, 0)
        .await
        .unwrap();
    let flow = sum("root")
        .child(sum("mid-a").child(square("a1", 1)).child(square("a2", 2)))
        .child(sum("mid-b").child(square("b1", 3)))
        .child(square("c", 4));
    assert_eq!(flow.len(), 7);
    let ids = s.client.enqueue_flow(flow).await.unwrap();
    assert_eq!(ids.id, "root");
    assert_eq!(ids.waiting_for, 3);
    let shape: Vec<(&str, u64, usize)> = ids
        .children
        .iter()
        .map(|c| (c.id.as_str(), c.waiting_for, c.children.len()))
        .collect();
    assert_eq!(shape, [("mid-a", 2, 2), ("mid-b", 1, 1), ("c", 0, 0)]);

    let mut order = Vec::new();
    let mut parents = std::collections::HashMap::new();
    while order.len() < 7 {
        let (job, results, total) = s.next().await;
        order.push(job.clone());
        parents.insert(job, (results, total));
    }
    let at = |job: &str| order.iter().position(|j| j == job).unwrap();
    for (parent, children) in [
        ("mid-a", &["a1", "a2"][..]),
        ("mid-b", &["b1"][..]),
        ("root", &["mid-a", "mid-b", "c"][..]),
    ] {
        for child in children {
            assert!(
                at(child) < at(parent),
                "{child} ran before {parent}: {order:?}"
            );
        }
    }
    let pairs = |p: &[(&str, u64)]| -> Vec<(String, u64)> {
        p.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    assert_eq!(parents["mid-a"], (pairs(&[("a1", 1), ("a2", 4)]), 5));
    assert_eq!(parents["mid-b"], (pairs(&[("b1", 9)]), 9));
    assert_eq!(
        parents["root"],
        (pairs(&[("c", 16), ("mid-a", 5), ("mid-b", 9)]), 30)
    );
    // The root's own ack removes what it held; wait for that write.
    for _ in 0..200 {
        if s.keys_with("dep").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        s.keys_with("dep").await,
        Vec::<String>::new(),
        "no dependency bookkeeping left"
    );
}

/// A dead child releases a parent whose policy is `Release` (which reads
/// the results of the children that succeeded), and cancels one whose
/// policy is `Fail`, and so on up to the root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_child_releases_or_fails_its_parent_as_the_parent_says() {
    let mut s = setup().await;
    let released = sum("root").child(
        sum("mid")
            .on_child_failure(OnDependencyFailure::Release)
            .child(square("two", 2))
            .child(Flow::with_options(&Boom, id("boom"))),
    );
    s.client.enqueue_flow(released).await.unwrap();
    let mut seen = std::collections::HashMap::new();
    while !seen.contains_key("root") {
        let (job, results, total) = s.next().await;
        seen.insert(job, (results, total));
    }
    assert_eq!(seen["mid"], (vec![("two".to_owned(), 4)], 4));
    assert_eq!(seen["root"], (vec![("mid".to_owned(), 4)], 4));

    let failed = sum("root-2").child(sum("mid-2").child(Flow::with_options(&Boom, id("boom-2"))));
    s.client.enqueue_flow(failed).await.unwrap();
    let mid = s.wait_for("mid-2", JobState::Cancelled).await;
    assert_eq!(
        mid.last_error.as_deref(),
        Some("dependency boom-2 failed (dead)")
    );
    let root = s.wait_for("root-2", JobState::Cancelled).await;
    assert_eq!(
        root.last_error.as_deref(),
        Some("dependency mid-2 failed (cancelled)")
    );
    assert_eq!(
        s.keys_with("dep").await,
        Vec::<String>::new(),
        "no dependency bookkeeping left"
    );
}

/// A flow is one write: one whose last job's id is taken writes none of
/// its jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_is_written_all_or_none() {
    let redis = RedisServer::start().await;
    let prefix = unique("flows");
    let client = Client::builder(redis.url())
        .prefix(prefix.clone())
        .connect()
        .unwrap();
    client.enqueue_with(&Sum, id("taken")).await.unwrap();
    let flow = sum("taken").child(square("x", 1)).child(square("y", 2));
    let err = client.enqueue_flow(flow).await.unwrap_err();
    assert!(
        matches!(err, Error::DuplicateJob { ref id, .. } if id == "taken"),
        "{err}"
    );
    for job in ["x", "y"] {
        let err = client.status(QUEUE, job).await.unwrap_err();
        assert!(matches!(err, Error::JobNotFound { .. }), "{job}: {err}");
    }
    let stats = client.stats(QUEUE).await.unwrap();
    assert_eq!(stats.total_waiting(), 1, "only the job enqueued before");
}

/// Bad flows are refused with a clear error before anything is sent: a job
/// of another queue, a delay, a tree over the depth limit, and a flow over
/// the job limit.
#[tokio::test]
async fn bad_flows_are_refused() {
    let redis = RedisServer::start().await;
    let client = Client::builder(redis.url())
        .prefix(unique("flows"))
        .connect()
        .unwrap();
    let config = |err: Error, part: &str| {
        assert!(
            matches!(err, Error::Config(_)) && err.to_string().contains(part),
            "{part:?} not in {err}"
        );
    };
    let elsewhere = Flow::new(&Sum).child(Flow::with_options(
        &Square { n: 1 },
        EnqueueOptions::new().queue("other"),
    ));
    config(
        client.enqueue_flow(elsewhere).await.unwrap_err(),
        "share one queue",
    );
    let delayed = Flow::new(&Sum).child(Flow::with_options(
        &Square { n: 1 },
        EnqueueOptions::new().delay(Duration::from_secs(5)),
    ));
    config(client.enqueue_flow(delayed).await.unwrap_err(), "no delay");
    let mut deep = Flow::new(&Square { n: 0 });
    for _ in 0..ferry_queue::MAX_FLOW_DEPTH {
        deep = Flow::new(&Sum).child(deep);
    }
    config(client.enqueue_flow(deep).await.unwrap_err(), "levels");
    let wide = Flow::new(&Sum)
        .children((0..ferry_queue::MAX_FLOW_JOBS).map(|n| Flow::new(&Square { n: n as u64 })));
    config(client.enqueue_flow(wide).await.unwrap_err(), "jobs");
    let stats = client.stats(QUEUE).await.unwrap();
    assert_eq!(stats.total_waiting(), 0, "nothing was written");
}

/// The broker keeps each child's result for its parent, from the record
/// the worker sends at its ack.
#[tokio::test]
async fn the_broker_keeps_a_childs_result_for_its_parent() {
    use ferry_broker::{Finished, FlowJob, NewJob, Priority, Schedule};
    let redis = RedisServer::start().await;
    let q = ferry_tests::queue(&unique("flows"), QUEUE);
    let mut conn = redis.conn().await;
    let job = |id: &str| NewJob {
        job_type: "square".into(),
        payload: "{}".into(),
        priority: Priority::Normal,
        max_retries: 0,
        schedule: Schedule::Now,
        id: Some(id.to_owned()),
        retention_ms: None,
        concurrency_key: None,
    };
    let flow = FlowJob::new(job("p")).child(FlowJob::new(job("c")));
    q.enqueue_flow(&mut conn, &flow).await.unwrap();
    let consumer = q.consumer("w");
    let claimed = consumer.claim(&mut conn, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let finished = Finished {
        entry: claimed[0].entry.clone(),
        job_id: "c".into(),
        record: "\"type\":\"square\",\"attempt\":1,\"result\":{\"n\":12345678901234567890}".into(),
        retention_ms: None,
    };
    consumer.ack_finished(&mut conn, &[finished]).await.unwrap();
    let results = q.dependency_results(&mut conn, "p").await.unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(
        results["c"],
        serde_json::json!({"n": 12345678901234567890u64}),
        "kept as sent, every digit"
    );
}

/// A flow's shape is kept for operators: every job with its parent, depth
/// and state, each job's status naming the root; it expires after the
/// root ends.
#[tokio::test]
async fn a_flow_shows_its_jobs_parents_and_states() {
    use ferry_broker::{FlowJob, JobState, NewJob, Priority, Schedule};
    let redis = RedisServer::start().await;
    let q = ferry_tests::queue(&unique("flows"), QUEUE);
    let mut conn = redis.conn().await;
    let job = |id: &str| NewJob {
        job_type: "square".into(),
        payload: "{}".into(),
        priority: Priority::Normal,
        max_retries: 0,
        schedule: Schedule::Now,
        id: Some(id.to_owned()),
        retention_ms: None,
        concurrency_key: None,
    };
    let flow = FlowJob::new(job("r"))
        .child(
            FlowJob::new(job("m"))
                .child(FlowJob::new(job("l1")))
                .child(FlowJob::new(job("l2"))),
        )
        .child(FlowJob::new(job("c")));
    q.enqueue_flow(&mut conn, &flow).await.unwrap();
    let graph = q.flow(&mut conn, "r").await.unwrap().unwrap();
    let shape: Vec<(&str, Option<&str>, usize, Option<JobState>)> = graph
        .jobs
        .iter()
        .map(|n| (n.id.as_str(), n.parent.as_deref(), n.depth, n.state))
        .collect();
    assert_eq!(
        shape,
        [
            ("r", None, 0, Some(JobState::Waiting)),
            ("c", Some("r"), 1, Some(JobState::Queued)),
            ("m", Some("r"), 1, Some(JobState::Waiting)),
            ("l1", Some("m"), 2, Some(JobState::Queued)),
            ("l2", Some("m"), 2, Some(JobState::Queued)),
        ]
    );
    for id in ["r", "m", "l1"] {
        let st = q.status(&mut conn, id).await.unwrap().unwrap();
        assert_eq!(st.flow.as_deref(), Some("r"), "{id}");
    }
    assert!(
        q.flow(&mut conn, "m").await.unwrap().is_none(),
        "m is no flow's root"
    );
    // Run it all; the shape then expires with the root's record.
    let consumer = q.consumer("w");
    for _ in 0..3 {
        let claimed = consumer.claim(&mut conn, 10).await.unwrap();
        let entries: Vec<_> = claimed.iter().map(|d| d.entry.clone()).collect();
        consumer.ack(&mut conn, &entries).await.unwrap();
    }
    let graph = q.flow(&mut conn, "r").await.unwrap().unwrap();
    assert!(
        graph
            .jobs
            .iter()
            .all(|n| n.state == Some(JobState::Succeeded)),
        "{graph:?}"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(q.keys().flow("r"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "the shape expires after the root: {ttl}");
}
