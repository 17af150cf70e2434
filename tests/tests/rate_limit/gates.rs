//! Rate limits of a type or key, and holds on them, without worker
//! processes: the claim parks what has no slot and hands out the rest of
//! the queue, a parked job's status and cancel, FIFO and the limit's
//! removal letting the parked go on, a newcomer waiting behind the parked,
//! a key's hold, the bulk claim, and bad input.

use std::time::Duration;

use ferry_broker::{
    CancelOutcome, ConcurrencyScope, Consumer, Error, JobState, NewJob, Queue, RateLimit,
};
use ferry_tests::jobs::new_job;
use ferry_tests::{queue, unique, RedisServer};

/// A job of `job_type` with payload `{"n":n}` under `key`.
fn job(job_type: &'static str, n: u32, key: Option<&str>) -> NewJob {
    new_job(job_type, format!("{{\"n\":{n}}}"), key)
}

/// The job ids of a claim, in order.
async fn claim_ids(
    c: &Consumer,
    conn: &mut redis::aio::MultiplexedConnection,
    n: usize,
) -> Vec<String> {
    c.claim(conn, n)
        .await
        .unwrap()
        .iter()
        .map(|d| d.job_id())
        .collect()
}

async fn setup(
    scope: ConcurrencyScope,
    limit: &str,
) -> (RedisServer, Queue, redis::aio::MultiplexedConnection) {
    let redis = RedisServer::start().await;
    let q = queue(&unique("rategates"), "q");
    let mut conn = redis.conn().await;
    q.set_rate_limit_of(&mut conn, &scope, Some(RateLimit::parse(limit).unwrap()))
        .await
        .unwrap();
    (redis, q, conn)
}

#[tokio::test]
async fn a_limited_type_is_parked_and_the_rest_of_the_queue_goes_on() {
    // Two starts an hour: the first two pass, the rest park.
    let (_redis, q, mut conn) = setup(ConcurrencyScope::Type("echo".into()), "2/1h:2").await;
    let mut jobs: Vec<NewJob> = (0..10).map(|n| job("echo", n, None)).collect();
    jobs.extend((0..3).map(|n| job("sleep", n, None)));
    let ids = q.enqueue(&mut conn, &jobs).await.unwrap();
    let consumer = q.consumer("w");
    let claimed = claim_ids(&consumer, &mut conn, 20).await;
    let mut want: Vec<String> = ids[..2].to_vec();
    want.extend(ids[10..].iter().cloned());
    assert_eq!(claimed, want, "echo's two slots, then every sleep job");
    // The eight parked are out of the stream, and claimed by no one.
    assert!(claim_ids(&consumer, &mut conn, 20).await.is_empty());
    let st = q.status(&mut conn, &ids[5]).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Waiting);
    assert_eq!(
        st.waiting_for.as_deref(),
        Some("rate limited: type echo at its rate limit (2/1h:2; 8 waiting)")
    );
    assert!(st.run_at.is_some(), "the gate's next slot: {st:?}");
    let limits = q.rate_limits(&mut conn).await.unwrap();
    let gate = limits.gates.iter().find(|g| g.gate == "type:echo").unwrap();
    assert_eq!(gate.waiting, 8);
    let state = gate.state.unwrap();
    assert!(state.limited, "{state:?}");
    // Cancel takes a parked job out of the wait.
    assert_eq!(
        q.cancel(&mut conn, &ids[5]).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let st = q.status(&mut conn, &ids[5]).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Cancelled);
    let limits = q.rate_limits(&mut conn).await.unwrap();
    assert_eq!(
        limits
            .gates
            .iter()
            .find(|g| g.gate == "type:echo")
            .unwrap()
            .waiting,
        7
    );
}

#[tokio::test]
async fn removing_the_limit_lets_the_parked_go_on_in_order_before_newcomers() {
    let (_redis, q, mut conn) = setup(ConcurrencyScope::Type("echo".into()), "1/1h:1").await;
    let ids = q
        .enqueue(
            &mut conn,
            &(0..5).map(|n| job("echo", n, None)).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let consumer = q.consumer("w");
    assert_eq!(claim_ids(&consumer, &mut conn, 10).await, ids[..1].to_vec());
    // A newcomer while four are parked waits behind them.
    let late = q.enqueue(&mut conn, &[job("echo", 9, None)]).await.unwrap();
    assert!(claim_ids(&consumer, &mut conn, 10).await.is_empty());
    q.set_rate_limit_of(&mut conn, &ConcurrencyScope::Type("echo".into()), None)
        .await
        .unwrap();
    let promoted = q.promote_due(&mut conn).await.unwrap();
    assert_eq!(promoted.moved, 5, "{promoted:?}");
    let mut want = ids[1..].to_vec();
    want.extend(late);
    assert_eq!(
        claim_ids(&consumer, &mut conn, 10).await,
        want,
        "oldest first"
    );
    let limits = q.rate_limits(&mut conn).await.unwrap();
    assert!(limits.gates.is_empty(), "no gate left: {limits:?}");
    let rates: bool = redis::cmd("EXISTS")
        .arg(q.keys().rates())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!rates, "the rates hash is gone with its last limit");
}

#[tokio::test]
async fn a_slot_freed_lets_the_first_parked_in_and_a_newcomer_waits() {
    // 1 an hour, then a burst of 2: one more slot now.
    let scope = ConcurrencyScope::Type("echo".into());
    let (_redis, q, mut conn) = setup(scope.clone(), "1/1h:1").await;
    let ids = q
        .enqueue(
            &mut conn,
            &(0..3).map(|n| job("echo", n, None)).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let consumer = q.consumer("w");
    assert_eq!(claim_ids(&consumer, &mut conn, 10).await, ids[..1].to_vec());
    q.set_rate_limit_of(&mut conn, &scope, Some(RateLimit::parse("2/1h:2").unwrap()))
        .await
        .unwrap();
    // The promoter lets one go (the one slot there is); a newcomer enqueued
    // meanwhile is behind it in the stream and finds no slot.
    assert_eq!(q.promote_due(&mut conn).await.unwrap().moved, 1);
    let late = q.enqueue(&mut conn, &[job("echo", 9, None)]).await.unwrap();
    assert_eq!(
        claim_ids(&consumer, &mut conn, 10).await,
        ids[1..2].to_vec()
    );
    let limits = q.rate_limits(&mut conn).await.unwrap();
    assert_eq!(
        limits.gates[0].waiting, 2,
        "the third and the newcomer: {limits:?}"
    );
    let st = q.status(&mut conn, &late[0]).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Waiting);
}

#[tokio::test]
async fn a_held_key_waits_and_other_keys_go_on() {
    let redis = RedisServer::start().await;
    let q = queue(&unique("ratehold"), "q");
    let mut conn = redis.conn().await;
    q.hold_scope(
        &mut conn,
        &ConcurrencyScope::Key("acme".into()),
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let ids = q
        .enqueue(
            &mut conn,
            &[
                job("echo", 1, Some("acme")),
                job("echo", 2, Some("other")),
                job("echo", 3, None),
            ],
        )
        .await
        .unwrap();
    let consumer = q.consumer("w");
    assert_eq!(claim_ids(&consumer, &mut conn, 10).await, ids[1..].to_vec());
    let st = q.status(&mut conn, &ids[0]).await.unwrap().unwrap();
    assert_eq!(
        st.waiting_for.as_deref(),
        Some("rate limited: concurrency key acme held by a handler (1 waiting)")
    );
    let limits = q.rate_limits(&mut conn).await.unwrap();
    let gate = limits.gates.iter().find(|g| g.gate == "key:acme").unwrap();
    assert!(gate.state.unwrap().held_until_ms.is_some(), "{limits:?}");
    // Holding every key at once is refused: hold one.
    let e = q
        .hold_scope(
            &mut conn,
            &ConcurrencyScope::EachKey,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}

#[tokio::test]
async fn a_held_type_goes_on_once_the_hold_ends() {
    let redis = RedisServer::start().await;
    let q = queue(&unique("ratehold"), "q");
    let mut conn = redis.conn().await;
    let scope = ConcurrencyScope::Type("echo".into());
    q.hold_scope(&mut conn, &scope, Duration::from_millis(300))
        .await
        .unwrap();
    let ids = q.enqueue(&mut conn, &[job("echo", 1, None)]).await.unwrap();
    let consumer = q.consumer("w");
    assert!(claim_ids(&consumer, &mut conn, 10).await.is_empty());
    // The promoter's wake is the hold's end: it lets the job go and removes
    // the hold, and with it the rates hash.
    let wake = q.promote_due(&mut conn).await.unwrap();
    let until = wake.next_in().expect("a wake at the hold's end");
    tokio::time::sleep(until).await;
    let mut moved = 0;
    for _ in 0..50 {
        moved += q.promote_due(&mut conn).await.unwrap().moved;
        if moved > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(moved, 1);
    assert_eq!(claim_ids(&consumer, &mut conn, 10).await, ids);
    let rates: bool = redis::cmd("EXISTS")
        .arg(q.keys().rates())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!rates, "an ended hold leaves nothing behind");
}

#[tokio::test]
async fn the_bulk_claim_parks_too() {
    let (_redis, q, mut conn) = setup(ConcurrencyScope::EachKey, "1/1h:1").await;
    let jobs: Vec<NewJob> = (0..300)
        .map(|n| job("echo", n, Some(if n < 200 { "big" } else { "small" })))
        .collect();
    let ids = q.enqueue(&mut conn, &jobs).await.unwrap();
    let consumer = q.consumer("w");
    let mut got: Vec<String> = Vec::new();
    // Every claim reads at most 1,000 entries; the first may find only
    // parked ones and ask to be called again.
    for _ in 0..5 {
        got.extend(
            consumer
                .claim_bulk(&mut conn, 100)
                .await
                .unwrap()
                .iter()
                .map(|d| d.job_id()),
        );
    }
    assert_eq!(
        got,
        vec![ids[0].clone(), ids[200].clone()],
        "one of each key"
    );
    let limits = q.rate_limits(&mut conn).await.unwrap();
    let waiting: u64 = limits.gates.iter().map(|g| g.waiting).sum();
    assert_eq!(waiting, 298);
    assert_eq!(limits.each_key, Some(RateLimit::parse("1/1h:1").unwrap()));
}

#[tokio::test]
async fn bad_scopes_are_refused() {
    let redis = RedisServer::start().await;
    let q = queue(&unique("ratebad"), "q");
    let mut conn = redis.conn().await;
    let limit = Some(RateLimit::parse("5/1s").unwrap());
    for scope in [
        ConcurrencyScope::Key("a\nb".into()),
        ConcurrencyScope::Key("k".repeat(300)),
        ConcurrencyScope::Key(String::new()),
        ConcurrencyScope::Type("bad\ttype".into()),
    ] {
        let e = q
            .set_rate_limit_of(&mut conn, &scope, limit)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("rate_limit"), "{scope:?}: {e}");
    }
}

#[tokio::test]
async fn the_waiting_list_pages_through_both_kinds_of_gate() {
    let (_redis, q, mut conn) = setup(ConcurrencyScope::Type("echo".into()), "1/1h:1").await;
    q.set_concurrency(&mut conn, &ConcurrencyScope::Key("t".into()), Some(1))
        .await
        .unwrap();
    // Two sleep jobs of key t: one holds t's slot, one waits at its gate.
    let gated = q
        .enqueue(
            &mut conn,
            &[job("sleep", 1, Some("t")), job("sleep", 2, Some("t"))],
        )
        .await
        .unwrap();
    let echoes = q
        .enqueue(
            &mut conn,
            &(0..4).map(|n| job("echo", n, None)).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let consumer = q.consumer("w");
    assert_eq!(
        claim_ids(&consumer, &mut conn, 10).await,
        vec![gated[0].clone(), echoes[0].clone()]
    );
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let page = q
            .jobs(
                &mut conn,
                ferry_broker::ListState::Waiting,
                cursor.as_deref(),
                2,
            )
            .await
            .unwrap();
        assert!(page.jobs.len() <= 2);
        for j in &page.jobs {
            assert_eq!(j.state, JobState::Waiting);
            seen.push((j.id.clone(), j.waiting_for.clone().unwrap()));
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    let mut want: Vec<&str> = vec![gated[1].as_str()];
    want.extend(echoes[1..].iter().map(String::as_str));
    assert_eq!(ids, want, "{seen:?}");
    assert_eq!(seen[0].1, "concurrency key t at its limit (1 of 1 running)");
    assert!(seen[1].1.starts_with("rate limited: type echo"), "{seen:?}");
}

#[tokio::test]
async fn a_queued_jobs_status_says_why_its_queue_starts_nothing() {
    let (_redis, q, mut conn) = setup(ConcurrencyScope::Queue, "1/1h:1").await;
    let ids = q
        .enqueue(&mut conn, &[job("echo", 1, None), job("echo", 2, None)])
        .await
        .unwrap();
    let st = q.status(&mut conn, &ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.waiting_for),
        (JobState::Queued, None),
        "a slot is free"
    );
    let consumer = q.consumer("w");
    assert_eq!(claim_ids(&consumer, &mut conn, 10).await, ids[..1].to_vec());
    let st = q.status(&mut conn, &ids[1]).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Queued);
    let why = st.waiting_for.unwrap();
    assert!(
        why.starts_with("rate limited: the queue's rate limit (next slot in "),
        "{why}"
    );
    q.pause(&mut conn).await.unwrap();
    let st = q.status(&mut conn, &ids[1]).await.unwrap().unwrap();
    assert_eq!(st.waiting_for.as_deref(), Some("the queue is paused"));
}
