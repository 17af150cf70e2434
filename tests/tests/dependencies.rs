//! Jobs that wait for other jobs of their queue, against a real Redis: a
//! chain runs in order, a diamond runs its last job once after both, a
//! fan-in of 1,000 children finished by four worker processes releases the
//! parent once, each failure policy (with a replay that succeeds), bad
//! dependencies refused, no cycle through the API, and eight concurrent
//! releasers never release a job twice or early.

use std::collections::HashSet;
use std::time::Duration;

use ferry_broker::{
    DeadLetterKind, Error, JobState, NewJob, OnDependencyFailure, Priority, Queue, Schedule,
};
use ferry_tests::scenario;
use ferry_tests::{heavy, queue, unique, wait_until, RedisServer};

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

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn setup() -> (RedisServer, Queue, redis::aio::MultiplexedConnection) {
    let redis = RedisServer::start().await;
    let q = queue(&unique("deps"), "q");
    let conn = redis.conn().await;
    (redis, q, conn)
}

/// Claims everything claimable as consumer `w`; the job ids in order.
async fn claim(
    q: &Queue,
    conn: &mut redis::aio::MultiplexedConnection,
) -> Vec<ferry_broker::Delivery> {
    q.consumer("w").claim(conn, 100).await.unwrap()
}

async fn ack(
    q: &Queue,
    conn: &mut redis::aio::MultiplexedConnection,
    d: &[ferry_broker::Delivery],
) {
    let entries: Vec<_> = d.iter().map(|d| d.entry.clone()).collect();
    q.consumer("w").ack(conn, &entries).await.unwrap();
}

fn job_ids(d: &[ferry_broker::Delivery]) -> Vec<String> {
    d.iter().map(|d| d.job_id()).collect()
}

async fn state(q: &Queue, conn: &mut redis::aio::MultiplexedConnection, id: &str) -> JobState {
    q.status(conn, id).await.unwrap().unwrap().state
}

#[tokio::test]
async fn a_chain_of_100_runs_in_order() {
    let (_redis, q, mut conn) = setup().await;
    q.enqueue(&mut conn, &[job("c-0")]).await.unwrap();
    for i in 1..100 {
        let after = q
            .enqueue_after(
                &mut conn,
                &job(&format!("c-{i}")),
                &[format!("c-{}", i - 1)],
                OnDependencyFailure::Fail,
            )
            .await
            .unwrap();
        assert_eq!(after.waiting_for, 1);
    }
    for i in 0..100 {
        let got = claim(&q, &mut conn).await;
        assert_eq!(
            job_ids(&got),
            vec![format!("c-{i}")],
            "only the next link is ever claimable"
        );
        ack(&q, &mut conn, &got).await;
    }
    assert!(claim(&q, &mut conn).await.is_empty());
    let left: u64 = redis::cmd("HLEN")
        .arg(q.keys().dependents())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "no bookkeeping left");
}

#[tokio::test]
async fn a_diamond_runs_its_last_job_once_after_both() {
    let (_redis, q, mut conn) = setup().await;
    q.enqueue(&mut conn, &[job("a")]).await.unwrap();
    for (id, deps) in [("b", vec!["a"]), ("c", vec!["a"]), ("d", vec!["b", "c"])] {
        q.enqueue_after(&mut conn, &job(id), &ids(&deps), OnDependencyFailure::Fail)
            .await
            .unwrap();
    }
    let st = q.status(&mut conn, "a").await.unwrap().unwrap();
    assert_eq!(
        (st.dependents.clone(), st.dependents_count),
        (ids(&["b", "c"]), Some(2))
    );
    let st = q.status(&mut conn, "d").await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Waiting);
    assert_eq!(st.depends_on, ids(&["b", "c"]));
    assert_eq!(
        st.waiting_for.as_deref(),
        Some("dependencies: b, c (2 left)")
    );
    let a = claim(&q, &mut conn).await;
    assert_eq!(job_ids(&a), ids(&["a"]));
    ack(&q, &mut conn, &a).await;
    let bc = claim(&q, &mut conn).await;
    let mut got = job_ids(&bc);
    got.sort();
    assert_eq!(got, ids(&["b", "c"]));
    ack(&q, &mut conn, &bc[..1]).await;
    assert_eq!(
        state(&q, &mut conn, "d").await,
        JobState::Waiting,
        "one of two done"
    );
    assert!(claim(&q, &mut conn).await.is_empty());
    ack(&q, &mut conn, &bc[1..]).await;
    let d = claim(&q, &mut conn).await;
    assert_eq!(job_ids(&d), ids(&["d"]));
    ack(&q, &mut conn, &d).await;
    assert!(claim(&q, &mut conn).await.is_empty(), "d ran once");
}

#[tokio::test]
async fn a_dependency_that_already_succeeded_counts_as_done() {
    let (_redis, q, mut conn) = setup().await;
    q.enqueue(&mut conn, &[job("a")]).await.unwrap();
    let a = claim(&q, &mut conn).await;
    ack(&q, &mut conn, &a).await;
    let after = q
        .enqueue_after(
            &mut conn,
            &job("b"),
            &ids(&["a"]),
            OnDependencyFailure::Fail,
        )
        .await
        .unwrap();
    assert_eq!(after.waiting_for, 0);
    assert_eq!(job_ids(&claim(&q, &mut conn).await), ids(&["b"]));
}

#[tokio::test]
async fn each_failure_policy_and_a_replay_that_succeeds() {
    let (_redis, q, mut conn) = setup().await;
    q.enqueue(&mut conn, &[job("a")]).await.unwrap();
    q.enqueue_after(
        &mut conn,
        &job("fail"),
        &ids(&["a"]),
        OnDependencyFailure::Fail,
    )
    .await
    .unwrap();
    q.enqueue_after(
        &mut conn,
        &job("fail-next"),
        &ids(&["fail"]),
        OnDependencyFailure::Fail,
    )
    .await
    .unwrap();
    q.enqueue_after(
        &mut conn,
        &job("release"),
        &ids(&["a"]),
        OnDependencyFailure::Release,
    )
    .await
    .unwrap();
    q.enqueue_after(
        &mut conn,
        &job("wait"),
        &ids(&["a"]),
        OnDependencyFailure::Wait,
    )
    .await
    .unwrap();
    // a is dead-lettered.
    let a = claim(&q, &mut conn).await;
    assert_eq!(job_ids(&a), ids(&["a"]));
    let moved = q
        .consumer("w")
        .dead_letter(&mut conn, &a[0], "boom", DeadLetterKind::Failed)
        .await
        .unwrap();
    assert!(moved.moved);
    let failed = q.status(&mut conn, "fail").await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Cancelled);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("dependency a failed (dead)")
    );
    let next = q.status(&mut conn, "fail-next").await.unwrap().unwrap();
    assert_eq!(
        next.state,
        JobState::Cancelled,
        "and so do its own dependents"
    );
    assert_eq!(
        next.last_error.as_deref(),
        Some("dependency fail failed (cancelled)")
    );
    assert_eq!(state(&q, &mut conn, "wait").await, JobState::Waiting);
    // release runs anyway.
    let r = claim(&q, &mut conn).await;
    assert_eq!(job_ids(&r), ids(&["release"]));
    ack(&q, &mut conn, &r).await;
    // The replayed a succeeds: wait goes on.
    let dead = q.dead_letters(&mut conn, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    q.replay_dead(&mut conn, &dead[0].entry_id)
        .await
        .unwrap()
        .unwrap();
    let a = claim(&q, &mut conn).await;
    assert_eq!(job_ids(&a), ids(&["a"]));
    ack(&q, &mut conn, &a).await;
    assert_eq!(job_ids(&claim(&q, &mut conn).await), ids(&["wait"]));
    // A failed dependency refuses a new job whose policy is to fail.
    q.enqueue(&mut conn, &[job("x")]).await.unwrap();
    assert_eq!(
        q.cancel(&mut conn, "x").await.unwrap(),
        ferry_broker::CancelOutcome::Cancelled
    );
    let e = q
        .enqueue_after(
            &mut conn,
            &job("y"),
            &ids(&["x"]),
            OnDependencyFailure::Fail,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::BadDependency { ref dependency, .. } if dependency == "x"),
        "{e}"
    );
}

#[tokio::test]
async fn a_waiting_job_can_be_cancelled_and_its_dependents_follow() {
    let (_redis, q, mut conn) = setup().await;
    q.enqueue(&mut conn, &[job("a")]).await.unwrap();
    q.enqueue_after(
        &mut conn,
        &job("b"),
        &ids(&["a"]),
        OnDependencyFailure::Fail,
    )
    .await
    .unwrap();
    q.enqueue_after(
        &mut conn,
        &job("c"),
        &ids(&["b"]),
        OnDependencyFailure::Fail,
    )
    .await
    .unwrap();
    assert_eq!(
        q.cancel(&mut conn, "b").await.unwrap(),
        ferry_broker::CancelOutcome::Cancelled
    );
    assert_eq!(state(&q, &mut conn, "c").await, JobState::Cancelled);
    let a = claim(&q, &mut conn).await;
    ack(&q, &mut conn, &a).await;
    assert!(
        claim(&q, &mut conn).await.is_empty(),
        "b stays cancelled when a succeeds"
    );
}

#[tokio::test]
async fn self_unknown_and_expired_dependencies_are_refused() {
    let (_redis, q, mut conn) = setup().await;
    let bad = |e: Error| match e {
        Error::BadDependency {
            dependency, reason, ..
        } => (dependency, reason),
        other => panic!("{other}"),
    };
    let (dep, why) = bad(q
        .enqueue_after(
            &mut conn,
            &job("s"),
            &ids(&["s"]),
            OnDependencyFailure::Fail,
        )
        .await
        .unwrap_err());
    assert_eq!((dep.as_str(), why.as_str()), ("s", "is the job itself"));
    let (dep, why) = bad(q
        .enqueue_after(
            &mut conn,
            &job("s"),
            &ids(&["nobody"]),
            OnDependencyFailure::Fail,
        )
        .await
        .unwrap_err());
    assert_eq!(dep, "nobody");
    assert!(why.starts_with("does not exist"), "{why}");
    // A finished job whose record expired (the queue keeps records 1 ms).
    q.set_retention(&mut conn, Duration::from_millis(1), 10_000)
        .await
        .unwrap();
    q.enqueue(&mut conn, &[job("brief")]).await.unwrap();
    let b = claim(&q, &mut conn).await;
    ack(&q, &mut conn, &b).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (dep, _) = bad(q
        .enqueue_after(
            &mut conn,
            &job("s"),
            &ids(&["brief"]),
            OnDependencyFailure::Fail,
        )
        .await
        .unwrap_err());
    assert_eq!(dep, "brief");
    // Nothing was written by the refusals.
    assert!(q.status(&mut conn, "s").await.unwrap().is_none());
}

#[tokio::test]
async fn no_cycle_forms_through_any_order_of_calls() {
    let (_redis, q, mut conn) = setup().await;
    // A job cannot name one that does not exist yet, nor be enqueued again.
    assert!(q
        .enqueue_after(
            &mut conn,
            &job("a"),
            &ids(&["b"]),
            OnDependencyFailure::Fail
        )
        .await
        .is_err());
    q.enqueue(&mut conn, &[job("b")]).await.unwrap();
    q.enqueue_after(
        &mut conn,
        &job("a"),
        &ids(&["b"]),
        OnDependencyFailure::Fail,
    )
    .await
    .unwrap();
    let e = q
        .enqueue_after(
            &mut conn,
            &job("b"),
            &ids(&["a"]),
            OnDependencyFailure::Fail,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DuplicateJob { .. }), "{e}");
    // Two producers racing, each naming the other's job: never both.
    for round in 0..50 {
        let (x, y) = (format!("x{round}"), format!("y{round}"));
        let mut c1 = conn.clone();
        let mut c2 = conn.clone();
        let (q1, q2) = (q.clone(), q.clone());
        let (xa, ya) = (x.clone(), y.clone());
        let (xb, yb) = (x.clone(), y.clone());
        let one = tokio::spawn(async move {
            q1.enqueue_after(&mut c1, &job(&xa), &[ya], OnDependencyFailure::Fail)
                .await
                .is_ok()
        });
        let two = tokio::spawn(async move {
            q2.enqueue_after(&mut c2, &job(&yb), &[xb], OnDependencyFailure::Fail)
                .await
                .is_ok()
        });
        let (a, b) = (one.await.unwrap(), two.await.unwrap());
        assert!(!(a && b), "round {round}: both were written, a cycle");
    }
}

#[tokio::test]
async fn eight_concurrent_releasers_release_the_parent_once_and_never_early() {
    let (redis, q, mut conn) = setup().await;
    for round in 0..20 {
        let children: Vec<String> = (0..8).map(|i| format!("r{round}-c{i}")).collect();
        let jobs: Vec<NewJob> = children.iter().map(|c| job(c)).collect();
        q.enqueue(&mut conn, &jobs).await.unwrap();
        let parent = format!("r{round}-p");
        q.enqueue_after(
            &mut conn,
            &job(&parent),
            &children,
            OnDependencyFailure::Fail,
        )
        .await
        .unwrap();
        // Eight consumers take one child each, then all ack at once.
        let mut held = Vec::new();
        for i in 0..8 {
            let c = q.consumer(format!("w{i}"));
            let got = c.claim(&mut conn, 1).await.unwrap();
            assert_eq!(got.len(), 1, "the parent is never claimable early");
            held.push((c, got));
        }
        let mut tasks = Vec::new();
        for (c, got) in held {
            let mut conn = redis.conn().await;
            tasks.push(tokio::spawn(async move {
                let entries: Vec<_> = got.iter().map(|d| d.entry.clone()).collect();
                c.ack(&mut conn, &entries).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let got = claim(&q, &mut conn).await;
        assert_eq!(job_ids(&got), vec![parent.clone()], "round {round}");
        ack(&q, &mut conn, &got).await;
        assert!(
            claim(&q, &mut conn).await.is_empty(),
            "round {round}: released once"
        );
    }
}

/// A fan-in of 1,000 children into one parent, finished by four worker
/// processes at once: the parent starts exactly once, after every child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_in_of_1000_finished_by_four_workers_releases_the_parent_once() {
    let _heavy = heavy().await;
    let s = scenario::setup("fan-in").await;
    let q = queue(&s.prefix, &s.queue);
    let mut conn = s.redis.conn().await;
    let _: () = redis::cmd("HSET")
        .arg(q.keys().settings())
        .arg("events")
        .arg(1_000_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let children: Vec<String> = (0..1000).map(|i| format!("child-{i}")).collect();
    let jobs: Vec<NewJob> = children.iter().map(|c| job(c)).collect();
    q.enqueue(&mut conn, &jobs).await.unwrap();
    let after = q
        .enqueue_after(
            &mut conn,
            &job("parent"),
            &children,
            OnDependencyFailure::Fail,
        )
        .await
        .unwrap();
    assert_eq!(after.waiting_for, 1000);
    let workers: Vec<_> = (0..4).map(|_| s.worker(&["--concurrency", "20"])).collect();
    wait_until(Duration::from_secs(60), "the parent succeeded", || {
        let mut conn = conn.clone();
        let q = q.clone();
        async move {
            q.status(&mut conn, "parent")
                .await
                .unwrap()
                .is_some_and(|st| st.state == JobState::Succeeded)
        }
    })
    .await;
    drop(workers);
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(q.keys().events())
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let field =
        |f: &[String], name: &str| f.chunks(2).find(|kv| kv[0] == name).map(|kv| kv[1].clone());
    let mut parent_starts = 0;
    let mut succeeded: HashSet<String> = HashSet::new();
    for (_, f) in &entries {
        let (event, id) = (
            field(f, "event").unwrap_or_default(),
            field(f, "id").unwrap_or_default(),
        );
        if event == "started" && id == "parent" {
            parent_starts += 1;
            assert_eq!(
                succeeded.len(),
                1000,
                "the parent started before every child succeeded"
            );
        }
        if event == "succeeded" && id != "parent" {
            succeeded.insert(id);
        }
    }
    assert_eq!(parent_starts, 1, "the parent started exactly once");
}

#[tokio::test]
async fn a_parent_may_wait_for_10000_children() {
    let (_redis, q, mut conn) = setup().await;
    let children: Vec<String> = (0..10_000).map(|i| format!("k-{i}")).collect();
    let jobs: Vec<NewJob> = children.iter().map(|c| job(c)).collect();
    q.enqueue(&mut conn, &jobs).await.unwrap();
    let after = q
        .enqueue_after(&mut conn, &job("top"), &children, OnDependencyFailure::Fail)
        .await
        .unwrap();
    assert_eq!(after.waiting_for, 10_000);
    let st = q.status(&mut conn, "top").await.unwrap().unwrap();
    assert_eq!(st.depends_on.len(), 50, "the first 50 shown");
    assert!(st
        .waiting_for
        .unwrap()
        .ends_with("and 9950 more (10000 left)"));
}

#[tokio::test]
async fn a_dependent_waiting_for_a_replay_ends_when_the_dead_letter_is_purged() {
    let (_redis, q, mut conn) = setup().await;
    q.enqueue(&mut conn, &[job("a")]).await.unwrap();
    q.enqueue_after(
        &mut conn,
        &job("w"),
        &ids(&["a"]),
        OnDependencyFailure::Wait,
    )
    .await
    .unwrap();
    let a = claim(&q, &mut conn).await;
    q.consumer("w")
        .dead_letter(&mut conn, &a[0], "boom", DeadLetterKind::Failed)
        .await
        .unwrap();
    assert_eq!(state(&q, &mut conn, "w").await, JobState::Waiting);
    assert_eq!(q.purge_dead(&mut conn).await.unwrap(), 1);
    let st = q.status(&mut conn, "w").await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Cancelled, "no replay can come now");
    assert_eq!(
        st.last_error.as_deref(),
        Some("dependency a failed (dead letter removed)")
    );
    let left: u64 = redis::cmd("HLEN")
        .arg(q.keys().dependents())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
