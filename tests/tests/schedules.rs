//! Cron and periodic schedules against a real Redis: a fleet of worker
//! processes fires each tick once; missed ticks follow their policy; a
//! host clock an hour fast fires nothing early; a removed or paused
//! schedule stops at once.

use std::collections::HashMap;
use std::time::Duration;

use ferry_queue::{Client, Missed, Recurrence, ScheduleOptions};
use ferry_tests::clock::skewed;
use ferry_tests::scenario::{self, Scenario};
use ferry_tests::{heavy, queue, wait_until, WorkerProcess};
use serde::{Deserialize, Serialize};

/// The example worker's `echo` job.
#[derive(Serialize, Deserialize)]
struct Echo {
    message: String,
}
impl ferry_queue::Job for Echo {
    const TYPE: &'static str = "echo";
}

fn client(s: &Scenario) -> Client {
    Client::builder(s.redis.url())
        .prefix(s.prefix.as_str())
        .connect()
        .unwrap()
}

fn every(secs: u64) -> Recurrence {
    Recurrence::every(Duration::from_secs(secs)).unwrap()
}

fn options(s: &Scenario) -> ScheduleOptions {
    ScheduleOptions::new().queue(s.queue.as_str())
}

fn echo() -> Echo {
    Echo {
        message: "tick".into(),
    }
}

async fn server_now(s: &Scenario) -> u64 {
    let (secs, micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut s.redis.conn().await)
        .await
        .unwrap();
    secs * 1000 + micros / 1000
}

/// Tick (ms) -> runs, of the audited jobs of schedule `name`.
async fn ran(s: &Scenario, name: &str) -> HashMap<u64, i64> {
    let prefix = format!("sched:{name}:");
    s.audit()
        .await
        .into_iter()
        .filter_map(|(id, n)| Some((id.strip_prefix(&prefix)?.parse().ok()?, n)))
        .collect()
}

/// Sets schedule `name`'s next tick to `tick`, as a fleet that stopped
/// before `tick` would have left it.
async fn set_next_tick(s: &Scenario, name: &str, tick: u64) {
    let _: () = redis::cmd("ZADD")
        .arg(queue(&s.prefix, &s.queue).keys().schedules())
        .arg(tick)
        .arg(name)
        .query_async(&mut s.redis.conn().await)
        .await
        .unwrap();
}

/// Four worker processes share a 1 s schedule for 20 s: each tick of the
/// window runs exactly one job (one per tick, none twice), 20 ± 1 in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_fire_a_one_second_schedule_once_per_tick() {
    let _heavy = heavy().await;
    let s = scenario::setup("sched-fleet").await;
    let workers: Vec<WorkerProcess> = (0..4).map(|_| s.worker(&[])).collect();
    client(&s)
        .schedule_with("every-second", every(1), &echo(), options(&s))
        .await
        .unwrap();
    // The window: 20 ticks from the first one every worker can see.
    let start = server_now(&s).await / 1000 * 1000 + 2000;
    let end = start + 20_000;
    let c = client(&s);
    wait_until(
        Duration::from_secs(60),
        "the window's last tick to run",
        || async {
            server_now(&s).await > end + 1000
                && ran(&s, "every-second").await.keys().any(|t| *t >= end)
        },
    )
    .await;
    let runs = ran(&s, "every-second").await;
    let window: Vec<(&u64, &i64)> = runs
        .iter()
        .filter(|(t, _)| **t >= start && **t < end)
        .collect();
    assert!(
        (19..=21).contains(&window.len()),
        "{} jobs in a 20 s window: {window:?}",
        window.len()
    );
    for (tick, n) in &runs {
        assert_eq!(*n, 1, "tick {tick} ran {n} times");
        assert_eq!(tick % 1000, 0, "tick {tick} is not on the second");
    }
    let info = &c.schedules(&s.queue).await.unwrap()[0];
    assert!(info.next_at.unwrap() > end, "{info:?}");
    drop(workers);
}

/// A schedule whose fleet stopped for 10 ticks: skip runs none of them,
/// run-once one (the latest), catch-up:3 the latest three, each once.
#[tokio::test]
async fn missed_ticks_follow_each_policy() {
    let s = scenario::setup("sched-missed").await;
    let c = client(&s);
    for (name, missed) in [
        ("skip", Missed::Skip),
        ("once", Missed::RunOnce),
        ("catch-up", Missed::CatchUp(3)),
    ] {
        c.schedule_with(name, every(1), &echo(), options(&s).missed(missed))
            .await
            .unwrap();
    }
    // Fire when the latest tick is past its grace (500 ms for a 1 s
    // interval), so that skip has no tick on time.
    wait_until(Duration::from_secs(5), "the middle of a second", || async {
        (600..900).contains(&(server_now(&s).await % 1000))
    })
    .await;
    let now = server_now(&s).await;
    let latest = now / 1000 * 1000;
    for name in ["skip", "once", "catch-up"] {
        set_next_tick(&s, name, latest - 9000).await;
    }
    let q = queue(&s.prefix, &s.queue);
    let round = q.fire_due(&mut s.redis.conn().await).await.unwrap();
    let mut fired: HashMap<&str, Vec<u64>> = HashMap::new();
    for id in &round.fired {
        let (name, tick) = id
            .strip_prefix("sched:")
            .and_then(|r| r.rsplit_once(':'))
            .unwrap();
        let name = ["skip", "once", "catch-up"]
            .into_iter()
            .find(|n| *n == name)
            .unwrap();
        fired.entry(name).or_default().push(tick.parse().unwrap());
    }
    assert_eq!(fired.get("skip"), None, "{fired:?}");
    assert_eq!(fired["once"], vec![latest], "{fired:?}");
    assert_eq!(
        fired["catch-up"],
        vec![latest - 2000, latest - 1000, latest],
        "{fired:?}"
    );
    // Each goes on from the first tick after now, and nothing fires twice.
    for info in c.schedules(&s.queue).await.unwrap() {
        assert_eq!(info.next_at, Some(latest + 1000), "{info:?}");
    }
    let again = q.fire_due(&mut s.redis.conn().await).await.unwrap();
    assert!(
        again.fired.iter().all(|id| !round.fired.contains(id)),
        "{again:?}"
    );
}

/// A worker whose host clock is an hour fast serves a queue with an
/// hourly schedule and a 1 s one: the 1 s one fires (the worker does fire
/// schedules), the hourly one does not fire before its tick by the
/// server's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_an_hour_fast_fires_nothing_early() {
    let _heavy = heavy().await;
    let s = scenario::setup("sched-clock").await;
    let c = client(&s);
    let hourly = c
        .schedule_with("hourly", every(3600), &echo(), options(&s))
        .await
        .unwrap();
    c.schedule_with("canary", every(1), &echo(), options(&s))
        .await
        .unwrap();
    let args = ["--queue", s.queue.as_str(), "--audit", s.audit.as_str()];
    let _worker = WorkerProcess::spawn_with_env(s.redis.url(), &s.prefix, &args, &skewed("+1h"));
    wait_until(
        Duration::from_secs(30),
        "the canary to run 3 ticks",
        || async { ran(&s, "canary").await.len() >= 3 },
    )
    .await;
    let next = hourly.next_at.unwrap();
    if server_now(&s).await < next {
        assert!(
            ran(&s, "hourly").await.is_empty(),
            "the hourly schedule fired early"
        );
        let info = c.schedules(&s.queue).await.unwrap();
        let info = info.iter().find(|i| i.name == "hourly").unwrap();
        assert_eq!(info.next_at, Some(next));
        assert_eq!(info.last_job, None);
    }
}

/// Removing or pausing a schedule stops it at once: while a canary
/// schedule goes on ticking, neither fires a tick after the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_or_paused_schedule_stops_at_once() {
    let _heavy = heavy().await;
    let s = scenario::setup("sched-remove").await;
    let c = client(&s);
    for name in ["removed", "paused", "canary"] {
        c.schedule_with(name, every(1), &echo(), options(&s))
            .await
            .unwrap();
    }
    let _worker = s.worker(&[]);
    wait_until(Duration::from_secs(30), "both to run twice", || async {
        ran(&s, "removed").await.len() >= 2 && ran(&s, "paused").await.len() >= 2
    })
    .await;
    assert!(c.remove_schedule(&s.queue, "removed").await.unwrap());
    assert!(c.pause_schedule(&s.queue, "paused").await.unwrap());
    let stopped = server_now(&s).await;
    let canary = ran(&s, "canary").await.len();
    wait_until(
        Duration::from_secs(30),
        "the canary to run 3 more ticks",
        || async { ran(&s, "canary").await.len() >= canary + 3 },
    )
    .await;
    for name in ["removed", "paused"] {
        let late: Vec<u64> = ran(&s, name)
            .await
            .into_keys()
            .filter(|t| *t > stopped)
            .collect();
        assert!(late.is_empty(), "{name} fired after it stopped: {late:?}");
    }
    let list = c.schedules(&s.queue).await.unwrap();
    assert!(list.iter().all(|i| i.name != "removed"), "{list:?}");
    let paused = list.iter().find(|i| i.name == "paused").unwrap();
    assert!(paused.paused && paused.next_at.is_none(), "{paused:?}");
    assert!(!c.remove_schedule(&s.queue, "removed").await.unwrap());

    // Resumed, it goes on from the next tick, and a trigger runs it now.
    assert!(c.resume_schedule(&s.queue, "paused").await.unwrap());
    let resumed = server_now(&s).await;
    let id = c
        .trigger_schedule(&s.queue, "paused")
        .await
        .unwrap()
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the resumed schedule to fire",
        || async { ran(&s, "paused").await.keys().any(|t| *t > resumed) },
    )
    .await;
    let status = c
        .wait(&s.queue, &id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(status.state, ferry_queue::JobState::Succeeded, "{status:?}");
    assert_eq!(c.trigger_schedule(&s.queue, "removed").await.unwrap(), None);
}

/// Upserting a schedule again with the same recurrence keeps its next
/// tick (a deploy that upserts at start neither moves nor repeats it); a
/// new recurrence takes effect at once. Bad input is refused before
/// anything is written.
#[tokio::test]
async fn upserts_keep_the_tick_and_bad_input_is_refused() {
    let s = scenario::setup("sched-upsert").await;
    let c = client(&s);
    let first = c
        .schedule_with("report", every(3600), &echo(), options(&s))
        .await
        .unwrap();
    assert!(first.created);
    let again = c
        .schedule_with(
            "report",
            every(3600),
            &echo(),
            options(&s).missed(Missed::RunOnce),
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.next_at, first.next_at);
    let changed = c
        .schedule_with("report", every(60), &echo(), options(&s))
        .await
        .unwrap();
    assert_ne!(changed.next_at, first.next_at);
    assert_eq!(changed.next_at.unwrap() % 60_000, 0);

    let cron = Recurrence::cron_in("0 9 * * MON-FRI", "America/New_York").unwrap();
    c.schedule_with("weekdays", cron, &echo(), options(&s))
        .await
        .unwrap();
    let info = c.schedules(&s.queue).await.unwrap();
    let weekdays = info.iter().find(|i| i.name == "weekdays").unwrap();
    assert_eq!(weekdays.spec, "cron 0 9 * * MON-FRI America/New_York");

    let e = c
        .schedule_with("bad name!", every(60), &echo(), options(&s))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("schedule"), "{e}");
    let e = Recurrence::cron("0 0 32 * *").unwrap_err().to_string();
    assert!(e.contains("field 3 (day of month)"), "{e}");
    assert!(Recurrence::cron_in("0 0 * * *", "Nowhere/City").is_err());
    assert!(Recurrence::every(Duration::ZERO).is_err());
    assert_eq!(c.schedules(&s.queue).await.unwrap().len(), 2);
}
