//! The queue protocol (ferry-broker) against a real Redis: claim order, ack,
//! leases, recovery, delayed jobs, dead letters, bad input.

use std::time::Duration;

use ferry_broker::{
    ConfigError, DeadLetterKind, EntryId, Error, NewJob, Priority, Queue, RecoverOptions, Schedule,
};
use ferry_tests::{queue, unique, wait_until, RedisServer};
use redis::aio::MultiplexedConnection;

fn job(kind: &str, priority: Priority) -> NewJob {
    NewJob {
        job_type: kind.to_owned().into(),
        payload: "{}".to_owned(),
        priority,
        max_retries: 3,
        schedule: Schedule::Now,
        id: None,
        retention_ms: None,
        concurrency_key: None,
    }
}

async fn setup() -> (RedisServer, MultiplexedConnection, Queue) {
    let redis = RedisServer::start().await;
    let mut conn = redis.conn().await;
    let q = queue(&unique("p"), "q");
    q.ensure_groups(&mut conn).await.unwrap();
    (redis, conn, q)
}

/// The entries `ids` of the stream of `priority`.
fn entries(priority: Priority, ids: &[String]) -> Vec<EntryId> {
    ids.iter()
        .map(|id| EntryId {
            priority,
            id: id.clone(),
        })
        .collect()
}

/// A recovery pass over `priority`'s stream.
fn rec(priority: Priority, lease_ms: u64, cursor: &str, count: usize, max: u32) -> RecoverOptions {
    RecoverOptions::new(priority, Duration::from_millis(lease_ms), max)
        .count(count)
        .cursor(cursor)
}

fn ids_of(ds: &[ferry_broker::Delivery], max_payload: usize) -> Vec<String> {
    ds.iter()
        .map(|d| d.envelope(max_payload).unwrap().job_type)
        .collect()
}

#[tokio::test]
async fn claim_is_strict_priority_and_fifo_within_a_priority() {
    let (_r, mut conn, q) = setup().await;
    // Interleave priorities; the type names record enqueue order.
    let plan = [
        ("low-1", Priority::Low),
        ("normal-1", Priority::Normal),
        ("critical-1", Priority::Critical),
        ("high-1", Priority::High),
        ("low-2", Priority::Low),
        ("critical-2", Priority::Critical),
        ("normal-2", Priority::Normal),
        ("high-2", Priority::High),
    ];
    for (name, p) in plan {
        q.enqueue(&mut conn, &[job(name, p)]).await.unwrap();
    }
    // Three slots: both criticals and the first high, nothing lower.
    let first = q.consumer("c1").claim(&mut conn, 3).await.unwrap();
    assert_eq!(ids_of(&first, 1024), ["critical-1", "critical-2", "high-1"]);
    let rest = q.consumer("c1").claim(&mut conn, 10).await.unwrap();
    assert_eq!(
        ids_of(&rest, 1024),
        ["high-2", "normal-1", "normal-2", "low-1", "low-2"]
    );
    assert!(q
        .consumer("c1")
        .claim(&mut conn, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn claim_never_exceeds_the_slots_asked_for() {
    let (_r, mut conn, q) = setup().await;
    let batch: Vec<NewJob> = (0..50).map(|_| job("x", Priority::Normal)).collect();
    q.enqueue(&mut conn, &batch).await.unwrap();
    assert_eq!(q.consumer("c").claim(&mut conn, 7).await.unwrap().len(), 7);
    assert_eq!(q.consumer("c").claim(&mut conn, 0).await.unwrap().len(), 0);
}

#[tokio::test]
async fn ack_removes_the_entry_so_streams_do_not_grow() {
    let (_r, mut conn, q) = setup().await;
    q.enqueue(
        &mut conn,
        &[job("x", Priority::High), job("y", Priority::High)],
    )
    .await
    .unwrap();
    let ds = q.consumer("c").claim(&mut conn, 10).await.unwrap();
    let ids: Vec<String> = ds.iter().map(|d| d.entry.id.clone()).collect();
    assert_eq!(
        q.consumer("c")
            .ack(&mut conn, &entries(Priority::High, &ids))
            .await
            .unwrap(),
        2
    );
    let len: u64 = redis::cmd("XLEN")
        .arg(q.keys().stream(Priority::High))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 0);
    let stats = q.stats(&mut conn).await.unwrap();
    assert_eq!(stats.counter("completed"), 2);
    assert!(stats.is_idle());
}

async fn xlen(conn: &mut MultiplexedConnection, q: &Queue, p: Priority) -> u64 {
    redis::cmd("XLEN")
        .arg(q.keys().stream(p))
        .query_async(conn)
        .await
        .unwrap()
}

/// True when this Redis reports a consumer group's lag (7.0+); before
/// that, finished entries that cannot be trimmed yet are deleted at once.
async fn reports_lag(conn: &mut MultiplexedConnection) -> bool {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(conn)
        .await
        .unwrap();
    let major = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .and_then(|v| v.split('.').next()?.trim().parse::<u32>().ok())
        .unwrap();
    major >= 7
}

fn entry_ids(ds: &[ferry_broker::Delivery]) -> Vec<String> {
    ds.iter().map(|d| d.entry.id.clone()).collect()
}

#[tokio::test]
async fn entries_finished_out_of_order_wait_for_the_trim_without_counting_as_waiting() {
    let (_r, mut conn, q) = setup().await;
    let normal: Vec<NewJob> = (0..3).map(|_| job("n", Priority::Normal)).collect();
    q.enqueue(&mut conn, &normal).await.unwrap();
    let ids = entry_ids(&q.consumer("c").claim(&mut conn, 3).await.unwrap());
    // The 2nd and 3rd finish while the 1st still runs: the trim cannot pass
    // the 1st, so they stay in the stream, finished (before Redis 7.0, with
    // no lag to count waiting entries by, they are deleted at once).
    assert_eq!(
        q.consumer("c")
            .ack(&mut conn, &entries(Priority::Normal, &ids[1..]))
            .await
            .unwrap(),
        2
    );
    let retained = if reports_lag(&mut conn).await { 3 } else { 1 };
    assert_eq!(xlen(&mut conn, &q, Priority::Normal).await, retained);
    let stats = q.stats(&mut conn).await.unwrap();
    assert_eq!(
        stats.waiting,
        [0, 0, 0, 0],
        "finished entries are not waiting"
    );
    assert_eq!(stats.total_pending(), 1);
    // Strict priority is not fooled by them: both claim paths go on to low.
    let low: Vec<NewJob> = (0..4)
        .map(|i| job(&format!("low-{i}"), Priority::Low))
        .collect();
    q.enqueue(&mut conn, &low).await.unwrap();
    let bulk = q.consumer("c").claim_bulk(&mut conn, 2).await.unwrap();
    assert_eq!(ids_of(&bulk, 1024), ["low-0", "low-1"]);
    let one_trip = q.consumer("c").claim(&mut conn, 2).await.unwrap();
    assert_eq!(ids_of(&one_trip, 1024), ["low-2", "low-3"]);
    // Once the 1st finishes, one trim removes all three.
    q.consumer("c")
        .ack(&mut conn, &entries(Priority::Normal, &ids[..1]))
        .await
        .unwrap();
    assert_eq!(xlen(&mut conn, &q, Priority::Normal).await, 0);
    let lows = [entry_ids(&bulk), entry_ids(&one_trip)].concat();
    q.consumer("c")
        .ack(&mut conn, &entries(Priority::Low, &lows))
        .await
        .unwrap();
    assert_eq!(xlen(&mut conn, &q, Priority::Low).await, 0);
    assert!(q.stats(&mut conn).await.unwrap().is_idle());
}

#[tokio::test]
async fn finished_entries_retained_behind_a_long_job_are_bounded() {
    let (_r, mut conn, q) = setup().await;
    q.enqueue(&mut conn, &[job("long", Priority::Normal)])
        .await
        .unwrap();
    let long = entry_ids(&q.consumer("c").claim(&mut conn, 1).await.unwrap());
    // 12,000 jobs finish while the first one runs on.
    let batch: Vec<NewJob> = (0..12_000).map(|_| job("x", Priority::Normal)).collect();
    q.enqueue(&mut conn, &batch).await.unwrap();
    let mut finished = 0;
    loop {
        let ds = q.consumer("c").claim_bulk(&mut conn, 500).await.unwrap();
        if ds.is_empty() {
            break;
        }
        finished += q
            .consumer("c")
            .ack(&mut conn, &entries(Priority::Normal, &entry_ids(&ds)))
            .await
            .unwrap();
    }
    assert_eq!(finished, 12_000);
    let len = xlen(&mut conn, &q, Priority::Normal).await;
    if reports_lag(&mut conn).await {
        assert!(
            (9_001..=10_001).contains(&len),
            "the long job and about 10,000 finished entries behind it, not {len}"
        );
    } else {
        assert!(
            len <= 2,
            "before Redis 7.0 they are deleted at once, not {len}"
        );
    }
    // The long job's entry survived every trim, fields and all: another
    // worker can still recover it.
    let taken = q
        .consumer("d")
        .recover(&mut conn, &rec(Priority::Normal, 0, "0-0", 1, 5))
        .await
        .unwrap()
        .claimed;
    assert_eq!(entry_ids(&taken), long);
    assert_eq!(ids_of(&taken, 1024), ["long"]);
    q.consumer("d")
        .ack(&mut conn, &entries(Priority::Normal, &long))
        .await
        .unwrap();
    assert_eq!(xlen(&mut conn, &q, Priority::Normal).await, 0);
}

#[tokio::test]
async fn retry_and_dead_letter_remove_their_entries_too() {
    let (_r, mut conn, q) = setup().await;
    let normal: Vec<NewJob> = (0..2).map(|_| job("n", Priority::Normal)).collect();
    q.enqueue(&mut conn, &normal).await.unwrap();
    let ds = q.consumer("c").claim(&mut conn, 2).await.unwrap();
    let env = ds[0].envelope(1024).unwrap();
    let next = ferry_broker::Envelope { attempt: 2, ..env };
    assert!(q
        .consumer("c")
        .retry(&mut conn, &ds[0], &next, Duration::ZERO)
        .await
        .unwrap());
    assert_eq!(
        xlen(&mut conn, &q, Priority::Normal).await,
        1,
        "the retried entry is trimmed; the running one stays"
    );
    let moved = q
        .consumer("c")
        .dead_letter(&mut conn, &ds[1], "gave up", DeadLetterKind::Failed)
        .await
        .unwrap();
    assert!(moved.moved);
    assert_eq!(xlen(&mut conn, &q, Priority::Normal).await, 0);
}

#[tokio::test]
async fn without_a_lag_from_redis_finished_entries_are_deleted_and_claims_stay_exact() {
    let (_r, mut conn, q) = setup().await;
    let normal: Vec<NewJob> = (0..3).map(|_| job("n", Priority::Normal)).collect();
    q.enqueue(&mut conn, &normal).await.unwrap();
    if !reports_lag(&mut conn).await {
        // Before Redis 7.0 there is never a lag: the path under test is the
        // only one, and the first test above covers it.
        return;
    }
    let ids = entry_ids(&q.consumer("c").claim(&mut conn, 3).await.unwrap());
    q.enqueue(&mut conn, &[job("n4", Priority::Normal)])
        .await
        .unwrap();
    // An XDEL at the group's read position, with an entry after it, leaves
    // Redis without a lag (as Redis 6.2 always is).
    let _: u64 = redis::cmd("XDEL")
        .arg(q.keys().stream(Priority::Normal))
        .arg(&ids[2])
        .query_async(&mut conn)
        .await
        .unwrap();
    let groups: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(q.keys().stream(Priority::Normal))
        .query_async(&mut conn)
        .await
        .unwrap();
    let group = &groups[0];
    let lag = group
        .iter()
        .position(|v| *v == redis::Value::BulkString(b"lag".to_vec()))
        .map(|i| &group[i + 1]);
    assert_eq!(
        lag,
        Some(&redis::Value::Nil),
        "set-up: no lag reported: {group:?}"
    );
    // Finished ahead of the 1st: deleted at once, since the lag is unknown.
    q.consumer("c")
        .ack(&mut conn, &entries(Priority::Normal, &ids[1..2]))
        .await
        .unwrap();
    assert_eq!(
        xlen(&mut conn, &q, Priority::Normal).await,
        2,
        "the running 1st and the waiting 4th"
    );
    // One normal entry is waiting (counted without the lag), then low.
    q.enqueue(&mut conn, &[job("low", Priority::Low)])
        .await
        .unwrap();
    let bulk = q.consumer("c").claim_bulk(&mut conn, 5).await.unwrap();
    assert_eq!(ids_of(&bulk, 1024), ["n4", "low"]);
}

#[tokio::test]
async fn a_late_ack_after_a_lost_lease_leaves_the_new_owner_alone() {
    let (_r, mut conn, q) = setup().await;
    q.enqueue(&mut conn, &[job("x", Priority::Normal)])
        .await
        .unwrap();
    let d = q
        .consumer("old")
        .claim(&mut conn, 1)
        .await
        .unwrap()
        .remove(0);
    // The old owner stopped renewing; recovery (lease 0 ms here) gives it to "new".
    let r = q
        .consumer("new")
        .recover(&mut conn, &rec(Priority::Normal, 0, "0-0", 10, 5))
        .await
        .unwrap();
    assert_eq!(r.claimed.len(), 1);
    // The old owner's renewal reports the loss and does not take it back.
    let lost = q
        .consumer("old")
        .renew(
            &mut conn,
            &entries(Priority::Normal, std::slice::from_ref(&d.entry.id)),
        )
        .await
        .unwrap();
    assert_eq!(lost, vec![d.entry.clone()]);
    // Its late ack, retry and dead-letter do nothing.
    assert_eq!(
        q.consumer("old")
            .ack(
                &mut conn,
                &entries(Priority::Normal, std::slice::from_ref(&d.entry.id))
            )
            .await
            .unwrap(),
        0
    );
    let env = d.envelope(1024).unwrap();
    assert!(!q
        .consumer("old")
        .retry(&mut conn, &d, &env, Duration::ZERO)
        .await
        .unwrap());
    assert!(
        !q.consumer("old")
            .dead_letter(&mut conn, &d, "late", DeadLetterKind::Failed)
            .await
            .unwrap()
            .moved
    );
    let stats = q.stats(&mut conn).await.unwrap();
    assert_eq!(
        stats.total_pending(),
        1,
        "the new owner's entry is still pending"
    );
    assert_eq!(stats.counter("completed"), 0);
    assert_eq!(stats.delayed + stats.dead, 0);
    // The new owner finishes it.
    assert_eq!(
        q.consumer("new")
            .ack(&mut conn, &entries(Priority::Normal, &[d.entry.id]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(q.stats(&mut conn).await.unwrap().counter("completed"), 1);
}

#[tokio::test]
async fn recovery_skips_entries_whose_lease_is_fresh() {
    let (_r, mut conn, q) = setup().await;
    q.enqueue(&mut conn, &[job("x", Priority::Normal)])
        .await
        .unwrap();
    let d = q
        .consumer("live")
        .claim(&mut conn, 1)
        .await
        .unwrap()
        .remove(0);
    let r = q
        .consumer("thief")
        .recover(&mut conn, &rec(Priority::Normal, 60_000, "0-0", 10, 5))
        .await
        .unwrap();
    assert!(r.claimed.is_empty());
    assert!(q
        .consumer("live")
        .renew(&mut conn, &entries(Priority::Normal, &[d.entry.id]))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_entry_delivered_more_than_max_deliveries_times_is_dead_lettered() {
    let (_r, mut conn, q) = setup().await;
    q.enqueue(&mut conn, &[job("poison", Priority::Normal)])
        .await
        .unwrap();
    q.consumer("w0").claim(&mut conn, 1).await.unwrap(); // delivery 1
                                                         // Each recovery that starts the entry is one more delivery; with max 3,
                                                         // deliveries 2 and 3 are handed out. The second is a suspect: its
                                                         // delivery counts when its worker starts it.
    for (w, suspect) in [("w1", false), ("w2", true)] {
        let r = q
            .consumer(w)
            .recover(&mut conn, &rec(Priority::Normal, 0, "0-0", 10, 3))
            .await
            .unwrap();
        assert_eq!((r.claimed.len(), r.dead), (1, 0));
        let d = &r.claimed[0];
        assert_eq!(d.suspect, suspect);
        if suspect {
            assert_eq!(d.deliveries, 2, "not counted before it starts");
            let n = q.consumer(w).start_suspect(&mut conn, d).await.unwrap();
            assert_eq!(n, Some(3));
            assert_eq!(
                q.consumer("w1").start_suspect(&mut conn, d).await.unwrap(),
                None,
                "only its owner starts it"
            );
        }
    }
    let r = q
        .consumer("w3")
        .recover(&mut conn, &rec(Priority::Normal, 0, "0-0", 10, 3))
        .await
        .unwrap();
    assert_eq!((r.claimed.len(), r.dead), (0, 1));
    let dead = q.dead_letters(&mut conn, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].get("type"), Some("poison"));
    assert!(
        dead[0].get("error").unwrap().contains("max_deliveries 3"),
        "{:?}",
        dead[0]
    );
    assert_eq!(dead[0].get("priority"), Some("normal"));
    assert_eq!(q.stats(&mut conn).await.unwrap().total_pending(), 0);
}

#[tokio::test]
async fn recovery_clears_pending_ids_of_deleted_entries() {
    let (_r, mut conn, q) = setup().await;
    q.enqueue(&mut conn, &[job("x", Priority::Low)])
        .await
        .unwrap();
    let d = q
        .consumer("gone")
        .claim(&mut conn, 1)
        .await
        .unwrap()
        .remove(0);
    let _: i64 = redis::cmd("XDEL")
        .arg(q.keys().stream(Priority::Low))
        .arg(&d.entry.id)
        .query_async(&mut conn)
        .await
        .unwrap();
    let r = q
        .consumer("me")
        .recover(&mut conn, &rec(Priority::Low, 0, "0-0", 10, 5))
        .await
        .unwrap();
    assert_eq!((r.claimed.len(), r.deleted), (0, 1));
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(q.keys().stream(Priority::Low))
        .arg("workers")
        .query_async(&mut conn)
        .await
        .unwrap();
    let redis::Value::Array(parts) = summary else {
        panic!("{summary:?}")
    };
    assert_eq!(parts[0], redis::Value::Int(0));
}

#[tokio::test]
async fn idle_consumers_that_own_nothing_are_removed_and_owners_kept() {
    let (_r, mut conn, q) = setup().await;
    q.enqueue(
        &mut conn,
        &[job("x", Priority::Normal), job("y", Priority::Normal)],
    )
    .await
    .unwrap();
    q.consumer("owner").claim(&mut conn, 1).await.unwrap();
    let done = q
        .consumer("empty-handed")
        .claim(&mut conn, 1)
        .await
        .unwrap()
        .remove(0);
    q.consumer("empty-handed")
        .ack(&mut conn, &entries(Priority::Normal, &[done.entry.id]))
        .await
        .unwrap();
    // Redis 7.2+ also registers a consumer on the streams it read and found
    // empty (critical, high), so the count depends on the version: at least
    // the normal stream's empty-handed consumer.
    let removed = q
        .consumer("me")
        .remove_idle_consumers(&mut conn, Duration::from_millis(0))
        .await
        .unwrap();
    assert!(removed >= 1, "removed {removed}");
    for p in Priority::ALL {
        let info: Vec<redis::Value> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(q.keys().stream(p))
            .arg("workers")
            .query_async(&mut conn)
            .await
            .unwrap();
        let text = format!("{info:?}");
        assert!(!text.contains("empty-handed"), "{p}: {text}");
        if p == Priority::Normal {
            assert!(
                text.contains("owner"),
                "the owner of a pending entry stays: {text}"
            );
        } else {
            assert!(!text.contains("owner"), "{p}: {text}");
        }
    }
}

#[tokio::test]
async fn delayed_jobs_wait_in_the_delayed_set_until_due() {
    let (_r, mut conn, q) = setup().await;
    let mut j = job("later", Priority::High);
    j.schedule = Schedule::After(Duration::from_millis(400));
    q.enqueue(&mut conn, &[j]).await.unwrap();
    assert!(q
        .consumer("c")
        .claim(&mut conn, 10)
        .await
        .unwrap()
        .is_empty());
    let p = q.promote_due(&mut conn).await.unwrap();
    assert_eq!(p.moved, 0);
    let next_in = p.next_in().expect("one job waits");
    assert!(
        next_in > Duration::ZERO && next_in <= Duration::from_millis(400),
        "due within the delay, by the server's clock: {p:?}"
    );
    wait_until(
        Duration::from_secs(5),
        "the job is promoted once due",
        || {
            let (mut conn, q) = (conn.clone(), q.clone());
            async move { q.promote_due(&mut conn).await.unwrap().moved == 1 }
        },
    )
    .await;
    let p = q.promote_due(&mut conn).await.unwrap();
    assert_eq!((p.moved, p.next_at), (0, None));
    let ds = q.consumer("c").claim(&mut conn, 10).await.unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].priority(), Priority::High);
    assert_eq!(ds[0].envelope(1024).unwrap().job_type, "later");
}

/// Item 6 of issue 9: a delay is counted from the server's clock, and an
/// absolute time is the caller's: a producer's wrong clock cannot fire a
/// delayed job early.
#[tokio::test]
async fn a_delay_is_counted_from_the_servers_clock() {
    let (_r, mut conn, q) = setup().await;
    let (secs, _): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let mut j = job("later", Priority::Normal);
    j.schedule = Schedule::After(Duration::from_secs(1800));
    q.enqueue(&mut conn, &[j]).await.unwrap();
    let scores: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(q.keys().delayed())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap();
    let due = scores[0].1 as u64;
    let expected = secs * 1000 + 1_800_000;
    assert!(
        due >= expected && due < expected + 5_000,
        "due {due}, server time + 30 min = {expected}"
    );
}

#[tokio::test]
async fn retry_moves_the_entry_to_the_delayed_set_with_the_next_attempt() {
    let (_r, mut conn, q) = setup().await;
    q.enqueue(&mut conn, &[job("x", Priority::Critical)])
        .await
        .unwrap();
    let d = q.consumer("c").claim(&mut conn, 1).await.unwrap().remove(0);
    let env = d.envelope(1024).unwrap();
    let next = ferry_broker::Envelope {
        attempt: 2,
        last_error: Some("boom".into()),
        ..env.clone()
    };
    assert!(q
        .consumer("c")
        .retry(&mut conn, &d, &next, Duration::ZERO)
        .await
        .unwrap());
    let stats = q.stats(&mut conn).await.unwrap();
    assert_eq!(
        (stats.total_pending(), stats.total_waiting(), stats.delayed),
        (0, 0, 1)
    );
    assert_eq!(q.promote_due(&mut conn).await.unwrap().moved, 1);
    let again = q.consumer("c").claim(&mut conn, 1).await.unwrap().remove(0);
    assert_eq!(again.priority(), Priority::Critical);
    let e2 = again.envelope(1024).unwrap();
    assert_eq!(
        (e2.id, e2.attempt, e2.last_error.as_deref()),
        (env.id, 2, Some("boom"))
    );
}

#[tokio::test]
async fn a_dead_letter_cap_counts_what_it_drops() {
    let redis = RedisServer::start().await;
    let mut conn = redis.conn().await;
    let q = queue(&unique("p"), "q").dead_letter_cap(2);
    for i in 0..5 {
        q.enqueue(&mut conn, &[job(&format!("j{i}"), Priority::Normal)])
            .await
            .unwrap();
        let d = q.consumer("c").claim(&mut conn, 1).await.unwrap().remove(0);
        let r = q
            .consumer("c")
            .dead_letter(&mut conn, &d, "bad", DeadLetterKind::Failed)
            .await
            .unwrap();
        assert!(r.moved);
        assert_eq!(r.dropped, if i >= 2 { 1 } else { 0 });
    }
    let stats = q.stats(&mut conn).await.unwrap();
    assert_eq!(stats.dead, 2);
    assert_eq!(stats.counter("dead_dropped"), 3);
    assert_eq!(stats.counter("dead"), 5);
}

#[tokio::test]
async fn replay_moves_a_dead_letter_back_as_attempt_one() {
    let (_r, mut conn, q) = setup().await;
    let ids = q
        .enqueue(&mut conn, &[job("x", Priority::Low)])
        .await
        .unwrap();
    let d = q.consumer("c").claim(&mut conn, 1).await.unwrap().remove(0);
    q.consumer("c")
        .dead_letter(&mut conn, &d, "gave up", DeadLetterKind::Failed)
        .await
        .unwrap();
    let dead = q.dead_letters(&mut conn, 10).await.unwrap();
    assert!(q
        .replay_dead(&mut conn, &dead[0].entry_id)
        .await
        .unwrap()
        .is_some());
    assert!(q
        .replay_dead(&mut conn, &dead[0].entry_id)
        .await
        .unwrap()
        .is_none());
    let again = q.consumer("c").claim(&mut conn, 1).await.unwrap().remove(0);
    assert_eq!(again.priority(), Priority::Low);
    let env = again.envelope(1024).unwrap();
    assert_eq!((env.id.as_str(), env.attempt), (ids[0].as_str(), 1));
    assert_eq!(q.stats(&mut conn).await.unwrap().dead, 0);
}

#[tokio::test]
async fn a_deleted_stream_gets_its_group_back() {
    let (_r, mut conn, q) = setup().await;
    let _: i64 = redis::cmd("DEL")
        .arg(q.keys().stream(Priority::Normal))
        .query_async(&mut conn)
        .await
        .unwrap();
    q.enqueue(&mut conn, &[job("x", Priority::Normal)])
        .await
        .unwrap();
    assert_eq!(q.consumer("c").claim(&mut conn, 5).await.unwrap().len(), 1);
    q.ensure_groups(&mut conn).await.unwrap(); // idempotent: BUSYGROUP is success
}

#[tokio::test]
async fn bad_input_is_a_typed_error_before_anything_is_sent() {
    for bad in ["", "has space", "a{b}", "a:b", &"x".repeat(129)] {
        assert!(
            matches!(Queue::new(bad), Err(ConfigError::InvalidQueueName(_))),
            "{bad:?}"
        );
    }
    let (_r, mut conn, q) = setup().await;
    let q = q.max_payload_bytes(16);
    let mut big = job("x", Priority::Normal);
    big.payload = format!("\"{}\"", "a".repeat(100));
    let err = q
        .enqueue(&mut conn, &[job("ok", Priority::Normal), big])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config(ConfigError::PayloadTooLarge {
                size: 102,
                limit: 16
            })
        ),
        "{err}"
    );
    let err = q
        .enqueue(&mut conn, &[job("", Priority::Normal)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ConfigError::InvalidJobType(_))),
        "{err}"
    );
    // Nothing of the failed batches was written.
    assert_eq!(q.stats(&mut conn).await.unwrap().total_waiting(), 0);
}

#[tokio::test]
async fn renewal_keeps_the_owner_and_does_not_count_a_delivery() {
    let (_r, mut conn, q) = setup().await;
    q.enqueue(&mut conn, &[job("x", Priority::High)])
        .await
        .unwrap();
    let d = q
        .consumer("me")
        .claim(&mut conn, 1)
        .await
        .unwrap()
        .remove(0);
    for _ in 0..3 {
        let lost = q
            .consumer("me")
            .renew(
                &mut conn,
                &entries(Priority::High, std::slice::from_ref(&d.entry.id)),
            )
            .await
            .unwrap();
        assert!(lost.is_empty());
    }
    let detail: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(q.keys().stream(Priority::High))
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(detail.len(), 1);
    assert_eq!((detail[0].1.as_str(), detail[0].3), ("me", 1));
}

/// XADDs an entry with a valid envelope plus `extra` junk fields.
async fn add_wide_entry(conn: &mut MultiplexedConnection, q: &Queue, extra: usize) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(q.keys().stream(Priority::Normal)).arg("*");
    let id = uuid::Uuid::now_v7().to_string();
    cmd.arg(&[
        "id",
        &id,
        "type",
        "wide",
        "payload",
        "{}",
        "attempt",
        "1",
        "max_retries",
        "0",
        "enqueued_at",
        "1",
    ]);
    for i in 0..extra {
        cmd.arg(format!("junk{i}")).arg("x");
    }
    let _: String = cmd.query_async(conn).await.unwrap();
}

#[tokio::test]
async fn an_entry_with_thousands_of_fields_can_be_dead_lettered() {
    let (_r, mut conn, q) = setup().await;
    add_wide_entry(&mut conn, &q, 5000).await;
    let d = q.consumer("c").claim(&mut conn, 1).await.unwrap().remove(0);
    assert!(
        q.consumer("c")
            .dead_letter(&mut conn, &d, "too wide", DeadLetterKind::Malformed)
            .await
            .unwrap()
            .moved
    );
    // The same through recovery's poison path.
    add_wide_entry(&mut conn, &q, 5000).await;
    q.consumer("c").claim(&mut conn, 1).await.unwrap();
    let r = q
        .consumer("d")
        .recover(&mut conn, &rec(Priority::Normal, 0, "0-0", 1, 0))
        .await
        .unwrap();
    assert_eq!(r.dead, 1);
    let dead = q.dead_letters(&mut conn, 10).await.unwrap();
    assert_eq!(dead.len(), 2);
    for d in &dead {
        assert_eq!(d.get("type"), Some("wide"));
        assert_eq!(
            d.get("omitted_fields"),
            Some("4984"),
            "16 extra fields kept"
        );
    }
    assert_eq!(q.stats(&mut conn).await.unwrap().total_pending(), 0);
}

#[tokio::test]
async fn renew_and_ack_handle_more_ids_than_one_script_call_takes() {
    let (_r, mut conn, q) = setup().await;
    let batch: Vec<NewJob> = (0..9000).map(|_| job("x", Priority::Normal)).collect();
    q.enqueue(&mut conn, &batch).await.unwrap();
    let ids: Vec<String> = q
        .consumer("c")
        .claim(&mut conn, 9000)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.entry.id)
        .collect();
    assert_eq!(ids.len(), 9000);
    assert!(q
        .consumer("c")
        .renew(&mut conn, &entries(Priority::Normal, &ids))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        q.consumer("c")
            .ack(&mut conn, &entries(Priority::Normal, &ids))
            .await
            .unwrap(),
        9000
    );
    assert!(q.stats(&mut conn).await.unwrap().is_idle());
}

#[tokio::test]
async fn recovery_scans_past_a_long_run_of_live_entries() {
    let (_r, mut conn, q) = setup().await;
    // 250 entries held by a live worker (renewed below), then one by a dead one.
    let batch: Vec<NewJob> = (0..250).map(|_| job("live", Priority::Normal)).collect();
    q.enqueue(&mut conn, &batch).await.unwrap();
    let live: Vec<String> = q
        .consumer("live")
        .claim(&mut conn, 250)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.entry.id)
        .collect();
    q.enqueue(&mut conn, &[job("orphan", Priority::Normal)])
        .await
        .unwrap();
    q.consumer("dead").claim(&mut conn, 1).await.unwrap();
    // Let every entry idle past a 50 ms lease (no event marks idle time), then
    // renew only the live ones.
    tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    q.consumer("live")
        .renew(&mut conn, &entries(Priority::Normal, &live))
        .await
        .unwrap();
    // One free slot: XAUTOCLAIM COUNT 1 scans 10 ids per call and recover.lua
    // makes up to 10 calls, so one pass scans 100 ids; the cursor carries on.
    let mut cursor = "0-0".to_owned();
    for pass in 1..=3 {
        let r = q
            .consumer("me")
            .recover(&mut conn, &rec(Priority::Normal, 50, &cursor, 1, 5))
            .await
            .unwrap();
        if let Some(d) = r.claimed.first() {
            assert_eq!(d.envelope(1024).unwrap().job_type, "orphan");
            tracing::debug!(pass, "orphan recovered");
            return;
        }
        cursor = r.cursor;
    }
    panic!("the orphaned entry was not recovered within 3 passes");
}

#[tokio::test]
async fn a_poison_job_does_not_push_the_jobs_claimed_with_it_to_max_deliveries() {
    let (_r, mut conn, q) = setup().await;
    let batch = [
        job("poison", Priority::Normal),
        job("a", Priority::Normal),
        job("b", Priority::Normal),
        job("c", Priority::Normal),
    ];
    q.enqueue(&mut conn, &batch).await.unwrap();
    // Delivery 1 in one batch; the poison job kills the worker.
    assert_eq!(
        q.consumer("w0").claim(&mut conn, 10).await.unwrap().len(),
        4
    );
    // First recovery: not suspects yet, taken together (delivery 2); killed again.
    let r = q
        .consumer("w1")
        .recover(&mut conn, &rec(Priority::Normal, 0, "0-0", 10, 3))
        .await
        .unwrap();
    assert_eq!(r.claimed.len(), 4);
    assert!(r.claimed.iter().all(|d| d.deliveries == 2));
    // From now on suspects come one at a time; the poison job kills its
    // worker each time, the others finish.
    let mut done = Vec::new();
    for w in 2..20 {
        let r = q
            .consumer(format!("w{w}"))
            .recover(&mut conn, &rec(Priority::Normal, 0, "0-0", 10, 3))
            .await
            .unwrap();
        assert!(r.claimed.len() <= 1, "suspects come alone: {:?}", r.claimed);
        if let Some(d) = r.claimed.first() {
            assert!(d.suspect);
            // Its worker has made room and starts it: now the delivery counts.
            q.consumer(format!("w{w}"))
                .start_suspect(&mut conn, d)
                .await
                .unwrap()
                .expect("still ours");
            let kind = d.envelope(1024).unwrap().job_type;
            if kind != "poison" {
                q.consumer(format!("w{w}"))
                    .ack(
                        &mut conn,
                        &entries(Priority::Normal, std::slice::from_ref(&d.entry.id)),
                    )
                    .await
                    .unwrap();
                done.push(kind);
            }
        }
        if q.stats(&mut conn).await.unwrap().total_pending() == 0 {
            break;
        }
    }
    done.sort();
    assert_eq!(done, ["a", "b", "c"]);
    let dead = q.dead_letters(&mut conn, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].get("type"), Some("poison"));
}

#[tokio::test]
async fn bulk_claim_is_strict_priority_and_fifo_too() {
    let (_r, mut conn, q) = setup().await;
    let mut batch = Vec::new();
    for i in 0..30 {
        for p in [
            Priority::Low,
            Priority::Normal,
            Priority::Critical,
            Priority::High,
        ] {
            batch.push(job(&format!("{p}-{i:02}"), p));
        }
    }
    q.enqueue(&mut conn, &batch).await.unwrap();
    // 45 slots: all 30 critical, then the first 15 high, nothing lower.
    let first = q.consumer("c").claim_bulk(&mut conn, 45).await.unwrap();
    let names: Vec<String> = first
        .iter()
        .map(|d| d.envelope(1024).unwrap().job_type)
        .collect();
    let expected: Vec<String> = (0..30)
        .map(|i| format!("critical-{i:02}"))
        .chain((0..15).map(|i| format!("high-{i:02}")))
        .collect();
    assert_eq!(names, expected);
    let rest = q.consumer("c").claim_bulk(&mut conn, 1000).await.unwrap();
    assert_eq!(rest.len(), 75);
    assert_eq!(rest[0].envelope(1024).unwrap().job_type, "high-15");
    assert_eq!(rest[74].envelope(1024).unwrap().job_type, "low-29");
    assert!(q
        .consumer("c")
        .claim_bulk(&mut conn, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Issue 9, item 10: after two crashes, the jobs of the crashed batch run
/// in ever smaller groups (half the worker's slots, then a quarter, ...,
/// the last delivery alone), each group alone on its worker: the poison
/// job is found in a few rounds, the innocent ones finish in groups, and
/// none of them is dead-lettered. (Before: every suspect ran alone, one
/// round per job.)
#[tokio::test]
async fn suspects_are_bisected_and_innocent_jobs_finish_in_groups() {
    let (_r, mut conn, q) = setup().await;
    let batch: Vec<NewJob> = (0..16)
        .map(|i| job(if i == 5 { "poison" } else { "innocent" }, Priority::Normal))
        .collect();
    q.enqueue(&mut conn, &batch).await.unwrap();
    let base = conn.clone();
    let recover = |w: usize| {
        let (mut conn, q) = (base.clone(), q.clone());
        async move {
            q.consumer(format!("w{w}"))
                .recover(
                    &mut conn,
                    &rec(Priority::Normal, 0, "0-0", 16, 5).group_base(16),
                )
                .await
                .unwrap()
        }
    };
    // Delivery 1 (a claim) and 2 (a recovery, not suspects yet): both
    // batches of 16 crash their workers.
    assert_eq!(
        q.consumer("w0").claim(&mut conn, 16).await.unwrap().len(),
        16
    );
    assert_eq!(recover(1).await.claimed.len(), 16);

    let (mut rounds, mut done, mut groups) = (0, 0, Vec::new());
    for w in 2..60 {
        let r = recover(w).await;
        let Some(first) = r.claimed.first() else {
            if q.stats(&mut conn).await.unwrap().total_pending() == 0 {
                break;
            }
            continue;
        };
        let d = first.deliveries;
        assert!(
            r.claimed.iter().all(|x| x.suspect && x.deliveries == d),
            "one group of one round: {:?}",
            r.claimed
        );
        rounds += 1;
        groups.push((d, r.claimed.len()));
        let consumer = q.consumer(format!("w{w}"));
        let mut poison = false;
        for x in &r.claimed {
            consumer
                .start_suspect(&mut conn, x)
                .await
                .unwrap()
                .expect("ours");
            poison |= x.envelope(1024).unwrap().job_type == "poison";
        }
        if !poison {
            let ids: Vec<String> = r.claimed.iter().map(|x| x.entry.id.clone()).collect();
            done += consumer
                .ack(&mut conn, &entries(Priority::Normal, &ids))
                .await
                .unwrap();
        }
    }
    println!("groups (deliveries before, size): {groups:?}");
    assert_eq!(done, 15, "every innocent job finished");
    let dead = q.dead_letters(&mut conn, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].get("type"), Some("poison"));
    assert_eq!(
        groups[0],
        (2, 8),
        "after two crashes, half the slots together"
    );
    assert!(rounds <= 10, "found in {rounds} rounds, not one per job");
}

/// A group of suspects is bounded by bytes as a claim is: 8 crashed jobs
/// of 300 KB, group base 8 (so 4 after two crashes), 1 MB per group: 3.
#[tokio::test]
async fn a_group_of_suspects_is_bounded_by_bytes() {
    let (_r, mut conn, q) = setup().await;
    let big: Vec<NewJob> = (0..8)
        .map(|_| NewJob {
            payload: format!("\"{}\"", "x".repeat(300_000)),
            ..job("big", Priority::Normal)
        })
        .collect();
    q.enqueue(&mut conn, &big).await.unwrap();
    assert_eq!(q.consumer("w0").claim(&mut conn, 8).await.unwrap().len(), 8);
    let options = rec(Priority::Normal, 0, "0-0", 8, 5)
        .group_base(8)
        .group_bytes(1_000_000);
    assert_eq!(
        q.consumer("w1")
            .recover(&mut conn, &options)
            .await
            .unwrap()
            .claimed
            .len(),
        8
    );
    let r = q.consumer("w2").recover(&mut conn, &options).await.unwrap();
    assert_eq!(
        r.claimed.len(),
        3,
        "3 x 300 KB fit in 1 MB; the group limit is 4"
    );
    assert!(r.claimed.iter().all(|d| d.suspect));
}

#[tokio::test]
async fn a_failure_after_a_cancellation_ends_cancelled_and_says_so() {
    let (_r, mut conn, q) = setup().await;
    let ids = q
        .enqueue(
            &mut conn,
            &[job("a", Priority::Normal), job("b", Priority::Normal)],
        )
        .await
        .unwrap();
    let c = q.consumer("c");
    let ds = c.claim(&mut conn, 2).await.unwrap();
    for id in &ids {
        q.cancel(&mut conn, id).await.unwrap();
    }
    // Its handler fails once told: dead-lettering it ends it cancelled.
    let dead = c
        .dead_letter(&mut conn, &ds[0], "stopped", DeadLetterKind::Failed)
        .await
        .unwrap();
    assert!(dead.moved && dead.cancelled, "{dead:?}");
    // So does scheduling a retry.
    let env = ds[1].envelope(1 << 20).unwrap();
    let retried = c
        .retry_settled(&mut conn, &ds[1], &env, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(retried, ferry_broker::Settled::Cancelled);
    for id in &ids {
        let st = q.status(&mut conn, id).await.unwrap().unwrap();
        assert_eq!(st.state, ferry_broker::JobState::Cancelled, "{id}");
    }
    let dead_letters: u64 = redis::cmd("XLEN")
        .arg(q.keys().dead())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(dead_letters, 0);
    // A job not cancelled is dead-lettered as before.
    q.enqueue(&mut conn, &[job("c", Priority::Normal)])
        .await
        .unwrap();
    let d = c.claim(&mut conn, 1).await.unwrap();
    let dead = c
        .dead_letter(&mut conn, &d[0], "boom", DeadLetterKind::Failed)
        .await
        .unwrap();
    assert!(dead.moved && !dead.cancelled, "{dead:?}");
}
