//! Concurrency limits against a real Redis, with real worker processes
//! where the limit is claimed fleet-wide: per key with fair share, per
//! type, per queue; slots free on every ending and return with a crashed
//! worker's lease.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ferry_broker::{ConcurrencyScope, JobState, NewJob, Priority, Queue};
use ferry_tests::events::{self, Event};
use ferry_tests::jobs::sleep_job;
use ferry_tests::scenario::{self, Scenario};
use ferry_tests::{heavy, queue, wait_until};
use redis::aio::MultiplexedConnection;

#[path = "concurrency/gates.rs"]
mod gates;

/// A scenario whose queue has the concurrency limit `limit` of `scope`
/// and keeps its last `events` events; the queue and a connection.
async fn limited(
    name: &str,
    scope: ConcurrencyScope,
    limit: u32,
    events: u64,
) -> (Scenario, Queue, MultiplexedConnection) {
    let s = scenario::setup(name).await;
    let q = queue(&s.prefix, &s.queue);
    let mut conn = s.redis.conn().await;
    q.set_concurrency(&mut conn, &scope, Some(limit))
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(q.keys().settings())
        .arg("events")
        .arg(events)
        .query_async(&mut conn)
        .await
        .unwrap();
    (s, q, conn)
}

/// Enqueues `jobs`; their ids.
async fn enqueue(q: &Queue, conn: &mut MultiplexedConnection, jobs: &[NewJob]) -> HashSet<String> {
    q.enqueue(conn, jobs).await.unwrap().into_iter().collect()
}

/// Waits up to `within` until `n` jobs of the queue succeeded.
async fn wait_done(q: &Queue, conn: &MultiplexedConnection, n: u64, within: Duration) {
    wait_until(within, &format!("{n} jobs done"), || {
        let mut conn = conn.clone();
        let q = q.clone();
        async move { completed(&q, &mut conn).await == n }
    })
    .await;
}

/// The queue's count of jobs that succeeded.
async fn completed(q: &Queue, conn: &mut MultiplexedConnection) -> u64 {
    let stats = q.stats(conn).await.unwrap();
    stats.counters.get("completed").copied().unwrap_or(0)
}

/// The most jobs of `set` running at once by the events' order (a start
/// adds one, a success takes one away).
fn most_running(events: &[Event], set: &HashSet<String>) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for (_, event, id) in events {
        if !set.contains(id) {
            continue;
        }
        match event.as_str() {
            "started" => {
                now += 1;
                most = most.max(now);
            }
            "succeeded" => now = now.saturating_sub(1),
            _ => {}
        }
    }
    most
}

/// 100 keys of limit 2 over four worker processes: one key enqueues
/// 10,000 jobs first, then 99 keys 10 each. The 990 small-key jobs all
/// start within a few seconds, the big key runs at its limit (2, never
/// more) meanwhile, and no job starts twice (nothing is claimed only to be
/// put back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_key_never_holds_back_99_small_ones() {
    let _heavy = heavy().await;
    let (s, q, mut conn) = limited("fair-share", ConcurrencyScope::EachKey, 2, 1_000_000).await;
    let big: Vec<NewJob> = (0..10_000).map(|_| sleep_job(50, Some("big"))).collect();
    let big_ids: HashSet<String> = enqueue(&q, &mut conn, &big).await;
    let small: Vec<NewJob> = (1..100)
        .flat_map(|k| (0..10).map(move |_| sleep_job(50, Some(&format!("small-{k}")))))
        .collect();
    let small_ids: HashSet<String> = enqueue(&q, &mut conn, &small).await;
    assert_eq!((big_ids.len(), small_ids.len()), (10_000, 990));
    // The streams hold 2 of each key: the rest wait at their keys' gates.
    let depth: u64 = redis::cmd("XLEN")
        .arg(q.keys().stream(Priority::Normal))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(depth, 200, "2 per key in the stream");

    let workers: Vec<_> = (0..4).map(|_| s.worker(&["--concurrency", "20"])).collect();
    let key = q.keys().events().to_owned();
    let started = |evs: &[Event], set: &HashSet<String>| {
        evs.iter()
            .filter(|(_, e, id)| e == "started" && set.contains(id))
            .count()
    };
    wait_until(
        Duration::from_secs(60),
        "all 990 small-key jobs started",
        || {
            let mut conn = conn.clone();
            let key = key.clone();
            let small_ids = &small_ids;
            async move { started(&events::all(&mut conn, &key).await, small_ids) == 990 }
        },
    )
    .await;
    let evs = events::all(&mut conn, &key).await;
    let first = evs.iter().find(|(_, e, _)| e == "started").unwrap().0;
    let last_small = evs
        .iter()
        .filter(|(_, e, id)| e == "started" && small_ids.contains(id))
        .map(|(ms, _, _)| *ms)
        .max()
        .unwrap();
    assert!(
        last_small - first <= 5_000,
        "the last small-key job started {} ms after the first start",
        last_small - first
    );
    assert_eq!(
        most_running(&evs, &big_ids),
        2,
        "the big key runs at its limit, never past it"
    );
    // Meanwhile the big key kept going (its next job queues behind the
    // small keys' in the stream: a fair share, not starvation)...
    let big_started = evs
        .iter()
        .filter(|(ms, e, id)| e == "started" && big_ids.contains(id) && *ms <= last_small)
        .count();
    assert!(
        big_started as u64 >= (last_small - first) / 200,
        "{big_started} big-key jobs started in {} ms",
        last_small - first
    );
    // ... and with the small keys done it runs at its limit: 2 at a time,
    // 50 ms each, about 40 a second.
    let until = last_small + 1_000;
    wait_until(
        Duration::from_secs(30),
        "a second of the big key alone",
        || {
            let mut conn = conn.clone();
            let key = key.clone();
            async move {
                events::all(&mut conn, &key)
                    .await
                    .iter()
                    .any(|(ms, _, _)| *ms > until)
            }
        },
    )
    .await;
    let evs = events::all(&mut conn, &key).await;
    let alone = evs
        .iter()
        .filter(|(ms, e, id)| {
            e == "started" && big_ids.contains(id) && *ms > last_small && *ms <= until
        })
        .count();
    assert!(
        alone >= 15,
        "{alone} big-key jobs started in the second after the small keys"
    );
    assert_eq!(most_running(&evs, &big_ids), 2, "never more than its limit");
    let mut starts: HashMap<&str, usize> = HashMap::new();
    for (_, e, id) in &evs {
        if e == "started" {
            *starts.entry(id.as_str()).or_default() += 1;
        }
    }
    assert!(starts.values().all(|n| *n == 1), "a job started twice");
    drop(workers);
}

/// A type limit of 3 over two worker processes: never more than 3 of the
/// type run at once, every job runs, and when all have ended no slot is
/// held and no job waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_limit_holds_across_two_workers() {
    let _heavy = heavy().await;
    let (s, q, mut conn) = limited(
        "type-limit",
        ConcurrencyScope::Type("sleep".into()),
        3,
        100_000,
    )
    .await;
    let list = q
        .enqueue(
            &mut conn,
            &(0..30).map(|_| sleep_job(100, None)).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    // The last of the 30 waits (every job under a gate has a `gated-` id,
    // the three let in too).
    let st = q.status(&mut conn, &list[29]).await.unwrap().unwrap();
    let ids: HashSet<String> = list.into_iter().collect();
    assert_eq!(st.state, JobState::Waiting);
    assert_eq!(
        st.waiting_for.as_deref(),
        Some("type sleep at its limit (3 of 3 running)")
    );
    let workers: Vec<_> = (0..2).map(|_| s.worker(&["--concurrency", "10"])).collect();
    wait_done(&q, &conn, 30, Duration::from_secs(60)).await;
    let evs = events::all(&mut conn, q.keys().events()).await;
    assert_eq!(most_running(&evs, &ids), 3);
    let c = q.concurrency(&mut conn).await.unwrap();
    assert!(
        c.gates.iter().all(|g| g.running == 0 && g.waiting == 0),
        "{c:?}"
    );
    let gated: u64 = redis::cmd("HLEN")
        .arg(q.keys().gated())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(gated, 0, "no job left under the gate");
    drop(workers);
}

/// A queue-wide limit of 3 over two worker processes of 10 slots each:
/// never more than 3 run at once, and all run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_limit_holds_across_two_workers() {
    let _heavy = heavy().await;
    let (s, q, mut conn) = limited("queue-limit", ConcurrencyScope::Queue, 3, 100_000).await;
    let ids: HashSet<String> = enqueue(
        &q,
        &mut conn,
        &(0..30).map(|_| sleep_job(100, None)).collect::<Vec<_>>(),
    )
    .await;
    let workers: Vec<_> = (0..2).map(|_| s.worker(&["--concurrency", "10"])).collect();
    wait_done(&q, &conn, 30, Duration::from_secs(60)).await;
    let evs = events::all(&mut conn, q.keys().events()).await;
    assert_eq!(most_running(&evs, &ids), 3);
    drop(workers);
}

/// A worker SIGKILLed while it runs a key's two jobs: they keep their
/// slots (the key's third job does not start), recovery hands them to
/// another worker after the lease, each counts once, every job of the key
/// runs, and at the end the key holds no slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_slots_return_with_its_lease() {
    let _heavy = heavy().await;
    let (s, q, mut conn) = limited(
        "gate-crash",
        ConcurrencyScope::Key("tenant".into()),
        2,
        100_000,
    )
    .await;
    let ids: HashSet<String> = enqueue(
        &q,
        &mut conn,
        &(0..6)
            .map(|_| sleep_job(3_000, Some("tenant")))
            .collect::<Vec<_>>(),
    )
    .await;
    let mut first = s.worker(&["--concurrency", "10", "--lease-ms", "2000"]);
    wait_until(Duration::from_secs(30), "two jobs running", || {
        let mut conn = conn.clone();
        let q = q.clone();
        async move {
            q.stats(&mut conn)
                .await
                .unwrap()
                .pending
                .iter()
                .sum::<u64>()
                == 2
        }
    })
    .await;
    first.kill().await;
    let second = s.worker(&["--concurrency", "10", "--lease-ms", "2000"]);
    wait_done(&q, &conn, 6, Duration::from_secs(90)).await;
    let evs = events::all(&mut conn, q.keys().events()).await;
    // The two recovered jobs started twice (once per worker); a recovered
    // one stays in its slot, so at most 2 of the key ever hold one: the
    // events show the key's third job starting only after one succeeded.
    let mut holding: HashSet<&str> = HashSet::new();
    let mut most = 0;
    for (_, e, id) in &evs {
        if !ids.contains(id) {
            continue;
        }
        match e.as_str() {
            "started" | "recovered" => {
                holding.insert(id);
            }
            "succeeded" => {
                holding.remove(id.as_str());
            }
            _ => {}
        }
        most = most.max(holding.len());
    }
    assert_eq!(
        most, 2,
        "the key held at most its 2 slots through the crash"
    );
    let c = q.concurrency(&mut conn).await.unwrap();
    assert!(
        c.gates.iter().all(|g| g.running == 0 && g.waiting == 0),
        "{c:?}"
    );
    drop(second);
}
