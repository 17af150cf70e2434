//! Concurrency gates without worker processes: a waiting job's status, a
//! cancel out of the gate, a retry and a dead letter freeing their slots,
//! a limit raised or removed letting the waiting go on, and bad limits.

use ferry_broker::{ConcurrencyScope, ConfigError, Error, JobState, NewJob, Priority, Queue};
use ferry_tests::{queue, unique, RedisServer};

use ferry_tests::jobs::sleep_job;

/// How many entries the normal stream holds.
async fn in_stream(q: &Queue, conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    redis::cmd("XLEN")
        .arg(q.keys().stream(Priority::Normal))
        .query_async(conn)
        .await
        .unwrap()
}

async fn setup(limit: u32) -> (RedisServer, Queue, redis::aio::MultiplexedConnection) {
    let redis = RedisServer::start().await;
    let q = queue(&unique("gates"), "q");
    let mut conn = redis.conn().await;
    q.set_concurrency(&mut conn, &ConcurrencyScope::Key("t".into()), Some(limit))
        .await
        .unwrap();
    (redis, q, conn)
}

#[tokio::test]
async fn a_key_past_its_limit_waits_and_cancel_takes_it_out() {
    let (_redis, q, mut conn) = setup(1).await;
    let ids = q
        .enqueue(
            &mut conn,
            &[
                sleep_job(1, Some("t")),
                sleep_job(1, Some("t")),
                sleep_job(1, Some("u")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        in_stream(&q, &mut conn).await,
        2,
        "t's first and u's (no limit of its own)"
    );
    let waiting = q.status(&mut conn, &ids[1]).await.unwrap().unwrap();
    assert_eq!(waiting.state, JobState::Waiting);
    assert_eq!(waiting.concurrency_key.as_deref(), Some("t"));
    assert_eq!(
        waiting.waiting_for.as_deref(),
        Some("concurrency key t at its limit (1 of 1 running)")
    );
    assert_eq!(
        q.cancel(&mut conn, &ids[1]).await.unwrap(),
        ferry_broker::CancelOutcome::Cancelled
    );
    let c = q.concurrency(&mut conn).await.unwrap();
    let gate = c.gates.iter().find(|g| g.gate == "key:t").unwrap();
    assert_eq!((gate.running, gate.waiting), (1, 0));
    // The first one ends: t holds nothing, nothing waits.
    let consumer = q.consumer("w");
    let claimed = consumer.claim(&mut conn, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let entries: Vec<_> = claimed.iter().map(|d| d.entry.clone()).collect();
    consumer.ack(&mut conn, &entries).await.unwrap();
    let c = q.concurrency(&mut conn).await.unwrap();
    assert!(
        c.gates.iter().all(|g| g.running == 0 && g.waiting == 0),
        "{c:?}"
    );
}

#[tokio::test]
async fn each_ending_lets_the_next_of_the_key_in_in_order() {
    let (_redis, q, mut conn) = setup(1).await;
    let ids = q
        .enqueue(
            &mut conn,
            &(0..3)
                .map(|_| sleep_job(1, Some("t")))
                .collect::<Vec<NewJob>>(),
        )
        .await
        .unwrap();
    let consumer = q.consumer("w");
    let mut order = Vec::new();
    for _ in 0..3 {
        let claimed = consumer.claim(&mut conn, 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "one of t at a time");
        order.push(claimed[0].job_id());
        let entries: Vec<_> = claimed.iter().map(|d| d.entry.clone()).collect();
        consumer.ack(&mut conn, &entries).await.unwrap();
    }
    assert_eq!(order, ids, "FIFO within the key");
}

#[tokio::test]
async fn a_retry_and_a_dead_letter_free_their_slots() {
    let (_redis, q, mut conn) = setup(1).await;
    let mut jobs: Vec<NewJob> = (0..2).map(|_| sleep_job(1, Some("t"))).collect();
    jobs[0].max_retries = 1;
    let ids = q.enqueue(&mut conn, &jobs).await.unwrap();
    let consumer = q.consumer("w");
    let first = consumer.claim(&mut conn, 10).await.unwrap().remove(0);
    let env = first.envelope(usize::MAX).unwrap();
    let mut next = env.clone();
    next.attempt += 1;
    assert!(consumer
        .retry(
            &mut conn,
            &first,
            &next,
            std::time::Duration::from_millis(1)
        )
        .await
        .unwrap());
    // The retry freed t's slot: the second job is in.
    let second = consumer.claim(&mut conn, 10).await.unwrap().remove(0);
    assert_eq!(second.job_id(), ids[1]);
    consumer
        .dead_letter(
            &mut conn,
            &second,
            "boom",
            ferry_broker::consumer::DeadLetterKind::Failed,
        )
        .await
        .unwrap();
    // The dead letter freed it: the retry (due at once) takes it again.
    q.promote_due(&mut conn).await.unwrap();
    let again = consumer.claim(&mut conn, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job_id(), ids[0]);
    assert_eq!(
        again[0]
            .envelope(usize::MAX)
            .unwrap()
            .concurrency_key
            .as_deref(),
        Some("t")
    );
}

#[tokio::test]
async fn a_limit_raised_or_removed_lets_the_waiting_go_on() {
    let (_redis, q, mut conn) = setup(1).await;
    q.enqueue(
        &mut conn,
        &(0..10)
            .map(|_| sleep_job(1, Some("t")))
            .collect::<Vec<NewJob>>(),
    )
    .await
    .unwrap();
    assert_eq!(in_stream(&q, &mut conn).await, 1);
    q.set_concurrency(&mut conn, &ConcurrencyScope::Key("t".into()), Some(4))
        .await
        .unwrap();
    assert_eq!(in_stream(&q, &mut conn).await, 4);
    q.set_concurrency(&mut conn, &ConcurrencyScope::Key("t".into()), None)
        .await
        .unwrap();
    assert_eq!(in_stream(&q, &mut conn).await, 10);
    let c = q.concurrency(&mut conn).await.unwrap();
    assert!(
        c.limits.is_empty() && c.gates.iter().all(|g| g.waiting == 0),
        "{c:?}"
    );
}

#[tokio::test]
async fn bad_limits_are_refused_with_a_reason() {
    let (_redis, q, mut conn) = setup(1).await;
    let zero = q
        .set_concurrency(&mut conn, &ConcurrencyScope::EachKey, Some(0))
        .await
        .unwrap_err();
    assert!(
        matches!(&zero, Error::Config(ConfigError::InvalidSetting { name: "concurrency", reason }) if reason.contains("limit of 0")),
        "{zero}"
    );
    let bad_key = q
        .set_concurrency(&mut conn, &ConcurrencyScope::Key("a\nb".into()), Some(1))
        .await
        .unwrap_err();
    assert!(bad_key.to_string().contains("concurrency key"), "{bad_key}");
    let mut job = sleep_job(1, Some(&"k".repeat(300)));
    let err = q
        .enqueue(&mut conn, std::slice::from_ref(&job))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("concurrency key"), "{err}");
    job.concurrency_key = Some(String::new());
    assert!(q.enqueue(&mut conn, &[job]).await.is_err());
}

/// Weighted priorities (8 4 2 1): of 150 one-job claims with every stream
/// full, each priority is served in proportion to its weight (80, 40, 20,
/// 10), so low never starves; without weights, strict priority.
#[tokio::test]
async fn weighted_priorities_serve_low_too() {
    let (_redis, q, mut conn) = setup(1).await;
    let mut jobs = Vec::new();
    for p in Priority::ALL {
        for _ in 0..200 {
            let mut j = sleep_job(1, None);
            j.priority = p;
            jobs.push(j);
        }
    }
    q.enqueue(&mut conn, &jobs).await.unwrap();
    let consumer = q.consumer("w");
    let strict = consumer.claim(&mut conn, 1).await.unwrap();
    assert_eq!(strict[0].entry.priority, Priority::Critical);
    q.set_weights(&mut conn, Some([8, 4, 2, 1])).await.unwrap();
    assert_eq!(q.weights(&mut conn).await.unwrap(), Some([8, 4, 2, 1]));
    let mut served = [0; 4];
    for _ in 0..150 {
        let d = consumer.claim(&mut conn, 1).await.unwrap();
        served[d[0].entry.priority.index()] += 1;
    }
    assert_eq!(served, [80, 40, 20, 10]);
    let err = q
        .set_weights(&mut conn, Some([0, 0, 0, 0]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("weights"), "{err}");
    q.set_weights(&mut conn, None).await.unwrap();
    assert_eq!(
        consumer.claim(&mut conn, 1).await.unwrap()[0]
            .entry
            .priority,
        Priority::Critical
    );
}

/// A job whose entry is deleted by hand (XDEL) would hold its key's slot
/// for ever; the repair (workers run it once a minute) frees it and lets
/// the next job of the key in.
#[tokio::test]
async fn a_slot_of_a_job_deleted_by_hand_is_repaired() {
    let (_redis, q, mut conn) = setup(1).await;
    let ids = q
        .enqueue(
            &mut conn,
            &[sleep_job(1, Some("t")), sleep_job(1, Some("t"))],
        )
        .await
        .unwrap();
    assert_eq!(
        q.repair_gates(&mut conn).await.unwrap(),
        0,
        "nothing is gone yet"
    );
    let loc: String = redis::cmd("HGET")
        .arg(q.keys().index())
        .arg(&ids[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    let entry = loc.strip_prefix("normal-").unwrap().to_owned();
    let _: i64 = redis::cmd("XDEL")
        .arg(q.keys().stream(Priority::Normal))
        .arg(&entry)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(in_stream(&q, &mut conn).await, 0);
    assert_eq!(q.repair_gates(&mut conn).await.unwrap(), 1);
    let claimed = q.consumer("w").claim(&mut conn, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job_id(), ids[1]);
}
