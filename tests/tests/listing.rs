//! A queue's jobs by state, a page at a time (`Queue::jobs`), and each
//! stream's consumer-group state (`Queue::streams`), against a real Redis:
//! the pages the dashboard and `GET /v1/queues/{queue}/jobs` show.

use std::time::Duration;

use ferry_broker::{
    ConfigError, DeadLetterKind, EntryId, Error, JobState, ListState, NewJob, Priority, Queue,
    Schedule,
};
use ferry_tests::{queue, unique, RedisServer};
use redis::aio::MultiplexedConnection;

fn job(kind: &str, priority: Priority, schedule: Schedule) -> NewJob {
    NewJob {
        job_type: kind.to_owned().into(),
        payload: format!(r#"{{"kind":"{kind}"}}"#),
        priority,
        max_retries: 0,
        schedule,
        id: None,
        retention_ms: None,
        concurrency_key: None,
    }
}

async fn setup() -> (RedisServer, MultiplexedConnection, Queue) {
    let redis = RedisServer::start().await;
    let mut conn = redis.conn().await;
    let q = queue(&unique("list"), "q");
    q.ensure_groups(&mut conn).await.unwrap();
    (redis, conn, q)
}

/// Every page of `state`, `limit` at a time: the job types in order, and
/// the number of pages.
async fn all_pages(
    q: &Queue,
    conn: &mut MultiplexedConnection,
    state: ListState,
    limit: usize,
) -> (Vec<ferry_broker::JobStatus>, usize) {
    let mut jobs = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = q.jobs(conn, state, cursor.as_deref(), limit).await.unwrap();
        pages += 1;
        assert!(page.jobs.len() <= limit);
        assert_eq!(page.state, state);
        jobs.extend(page.jobs);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    (jobs, pages)
}

fn types(jobs: &[ferry_broker::JobStatus]) -> Vec<String> {
    jobs.iter()
        .map(|j| j.job_type.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn each_state_pages_in_claim_order_across_priorities_to_the_last_page() {
    let (_r, mut conn, q) = setup().await;
    // Enqueued out of priority order; claim order is critical, normal, low.
    let plan = [
        ("low-1", Priority::Low),
        ("critical-1", Priority::Critical),
        ("normal-1", Priority::Normal),
        ("critical-2", Priority::Critical),
        ("low-2", Priority::Low),
        ("critical-3", Priority::Critical),
        ("normal-2", Priority::Normal),
        ("critical-4", Priority::Critical),
        ("low-3", Priority::Low),
        ("critical-5", Priority::Critical),
        ("normal-3", Priority::Normal),
        ("low-4", Priority::Low),
    ];
    for (name, p) in plan {
        q.enqueue(&mut conn, &[job(name, p, Schedule::Now)])
            .await
            .unwrap();
    }
    for (name, secs) in [("later-2", 7200), ("later-1", 3600)] {
        let schedule = Schedule::After(Duration::from_secs(secs));
        q.enqueue(&mut conn, &[job(name, Priority::High, schedule)])
            .await
            .unwrap();
    }
    // A worker takes the first three: critical-1..3 run.
    let c = q.consumer("worker-a");
    let claimed = c.claim(&mut conn, 3).await.unwrap();
    assert_eq!(claimed.len(), 3);

    let (queued, pages) = all_pages(&q, &mut conn, ListState::Queued, 4).await;
    assert_eq!(
        types(&queued),
        [
            "critical-4",
            "critical-5",
            "normal-1",
            "normal-2",
            "normal-3",
            "low-1",
            "low-2",
            "low-3",
            "low-4"
        ]
    );
    assert_eq!(pages, 3, "pages of 4, 4 and 1");
    assert!(queued
        .iter()
        .all(|j| j.state == JobState::Queued && j.attempt == Some(1)));
    assert!(
        queued.iter().all(|j| j.payload.is_none()),
        "lists leave payloads out"
    );
    // The listed id is the job's: its status says the same.
    let st = q.status(&mut conn, &queued[2].id).await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.job_type.as_deref()),
        (JobState::Queued, Some("normal-1"))
    );
    assert_eq!(st.payload, Some(serde_json::json!({"kind": "normal-1"})));
    // A page exactly as long as what is left says there is no more.
    let (_, pages) = all_pages(&q, &mut conn, ListState::Queued, 9).await;
    assert_eq!(pages, 1);

    let (running, pages) = all_pages(&q, &mut conn, ListState::Running, 2).await;
    assert_eq!(types(&running), ["critical-1", "critical-2", "critical-3"]);
    assert_eq!(pages, 2);
    for j in &running {
        assert_eq!(j.state, JobState::Running);
        assert_eq!(j.worker.as_deref(), Some("worker-a"));
        assert_eq!(j.deliveries, Some(1));
        assert_eq!(j.priority, Some(Priority::Critical));
    }

    let (scheduled, _) = all_pages(&q, &mut conn, ListState::Scheduled, 1).await;
    assert_eq!(types(&scheduled), ["later-1", "later-2"], "soonest first");
    assert!(scheduled
        .iter()
        .all(|j| j.state == JobState::Scheduled && j.run_at.is_some()));

    // One running job dies, one finishes; the third still runs.
    let entry = |d: &ferry_broker::Delivery| EntryId {
        priority: d.priority(),
        id: d.entry.id.clone(),
    };
    c.dead_letter(
        &mut conn,
        &claimed[0],
        "boom: the disk is full",
        DeadLetterKind::Failed,
    )
    .await
    .unwrap();
    assert_eq!(c.ack(&mut conn, &[entry(&claimed[1])]).await.unwrap(), 1);
    let (dead, _) = all_pages(&q, &mut conn, ListState::Dead, 10).await;
    assert_eq!(types(&dead), ["critical-1"]);
    assert_eq!(dead[0].state, JobState::Dead);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("boom: the disk is full")
    );
    assert_eq!(dead[0].id, running[0].id, "a dead letter keeps its job id");
    let (finished, _) = all_pages(&q, &mut conn, ListState::Finished, 10).await;
    assert_eq!(finished.len(), 1);
    assert_eq!(
        (finished[0].id.as_str(), finished[0].state),
        (running[1].id.as_str(), JobState::Succeeded)
    );
    let (running, _) = all_pages(&q, &mut conn, ListState::Running, 10).await;
    assert_eq!(types(&running), ["critical-3"]);
}

#[tokio::test]
async fn dead_letters_page_newest_first_over_a_thousand() {
    let (_r, mut conn, q) = setup().await;
    let jobs: Vec<NewJob> = (0..1_050)
        .map(|i| job(&format!("j{i}"), Priority::Normal, Schedule::Now))
        .collect();
    q.enqueue(&mut conn, &jobs).await.unwrap();
    let c = q.consumer("w");
    loop {
        let ds = c.claim(&mut conn, 200).await.unwrap();
        if ds.is_empty() {
            break;
        }
        for d in &ds {
            c.dead_letter(&mut conn, d, "no", DeadLetterKind::Failed)
                .await
                .unwrap();
        }
    }
    let (dead, pages) = all_pages(&q, &mut conn, ListState::Dead, 1_000).await;
    assert_eq!(pages, 2);
    assert_eq!(dead.len(), 1_050);
    assert_eq!(dead[0].job_type.as_deref(), Some("j1049"));
    assert_eq!(dead[1_049].job_type.as_deref(), Some("j0"));
}

#[tokio::test]
async fn bad_cursors_and_limits_are_refused_before_redis() {
    let (_r, mut conn, q) = setup().await;
    for (state, cursor) in [
        (ListState::Queued, "12"),
        (ListState::Running, "9:1-1"),
        (ListState::Scheduled, "1:1-1"),
        (ListState::Finished, "x"),
        (ListState::Dead, "1-"),
        (ListState::Dead, "' or 1"),
    ] {
        let e = q
            .jobs(&mut conn, state, Some(cursor), 10)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Config(ConfigError::InvalidSetting { name: "cursor", .. })
            ),
            "{state} {cursor}: {e}"
        );
    }
    for limit in [0, 1_001] {
        let e = q
            .jobs(&mut conn, ListState::Queued, None, limit)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Config(ConfigError::InvalidSetting { name: "limit", .. })
            ),
            "{e}"
        );
    }
    // An empty queue lists nothing, in every state.
    for state in [
        ListState::Queued,
        ListState::Running,
        ListState::Scheduled,
        ListState::Finished,
        ListState::Dead,
    ] {
        let page = q.jobs(&mut conn, state, None, 10).await.unwrap();
        assert!(page.jobs.is_empty() && page.next.is_none(), "{state}");
    }
}

#[tokio::test]
async fn streams_show_the_groups_lag_and_the_age_of_the_oldest_pending_entry() {
    let (_r, mut conn, q) = setup().await;
    let jobs: Vec<NewJob> = (0..5)
        .map(|i| job(&format!("j{i}"), Priority::High, Schedule::Now))
        .collect();
    q.enqueue(&mut conn, &jobs).await.unwrap();
    let c = q.consumer("w");
    let claimed = c.claim(&mut conn, 2).await.unwrap();
    // Age the pending entries: the server clock moves on, the ids stay.
    let before: u64 = redis::cmd("TIME")
        .query_async::<(u64, u64)>(&mut conn)
        .await
        .map(|(s, us)| s * 1000 + us / 1000)
        .unwrap();
    wait_for_server_ms(&mut conn, before + 30).await;

    let streams = q.streams(&mut conn).await.unwrap();
    assert_eq!(
        streams.iter().map(|s| s.priority).collect::<Vec<_>>(),
        Priority::ALL
    );
    let high = &streams[1];
    assert_eq!(high.key, q.keys().stream(Priority::High));
    assert!(high.group);
    assert_eq!((high.length, high.pending, high.consumers), (5, 2, 1));
    assert_eq!(
        high.oldest_pending_id.as_deref(),
        Some(claimed[0].entry.id.as_str())
    );
    assert_eq!(
        high.last_delivered_id.as_deref(),
        Some(claimed[1].entry.id.as_str())
    );
    assert!(high.oldest_pending_age_ms.unwrap() >= 30, "{high:?}");
    assert!(high.oldest_pending_idle_ms.unwrap() >= 30, "{high:?}");
    assert!(high.oldest_waiting_age_ms.unwrap() >= 30, "{high:?}");
    assert!(high.oldest_waiting_id.is_some());
    let version = redis_major_version(&mut conn).await;
    if version >= 7 {
        assert_eq!(high.lag, Some(3), "Redis {version} counts the lag");
        assert_eq!(high.entries_read, Some(2));
    } else {
        assert_eq!(high.lag, None, "Redis {version} has no lag");
    }
    for other in [&streams[0], &streams[2], &streams[3]] {
        assert_eq!((other.length, other.pending), (0, 0), "{other:?}");
        assert!(other.oldest_pending_id.is_none() && other.oldest_waiting_age_ms.is_none());
    }
}

/// Waits until the Redis server's clock reads `ms` or later.
async fn wait_for_server_ms(conn: &mut MultiplexedConnection, ms: u64) {
    loop {
        let (s, us): (u64, u64) = redis::cmd("TIME").query_async(conn).await.unwrap();
        if s * 1000 + us / 1000 >= ms {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The server's major version (INFO server).
async fn redis_major_version(conn: &mut MultiplexedConnection) -> u32 {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .and_then(|v| v.split('.').next()?.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn expired_records_end_the_finished_list_and_old_delayed_members_keep_their_ids() {
    let (_r, mut conn, q) = setup().await;
    // Two jobs whose records expire at once, one kept an hour.
    let mut jobs: Vec<NewJob> = (0..2)
        .map(|i| NewJob {
            retention_ms: Some(1),
            ..job(&format!("short{i}"), Priority::Normal, Schedule::Now)
        })
        .collect();
    jobs.push(NewJob {
        retention_ms: Some(3_600_000),
        ..job("kept", Priority::Normal, Schedule::Now)
    });
    q.enqueue(&mut conn, &jobs).await.unwrap();
    let c = q.consumer("w");
    let ds = c.claim(&mut conn, 3).await.unwrap();
    let finished: Vec<ferry_broker::Finished> = ds
        .iter()
        .map(|d| {
            let env = d.envelope(1 << 20).unwrap();
            ferry_broker::Finished {
                entry: EntryId {
                    priority: d.priority(),
                    id: d.entry.id.clone(),
                },
                job_id: env.id.clone(),
                record: String::new(),
                retention_ms: env.retention_ms,
            }
        })
        .collect();
    assert_eq!(c.ack_finished(&mut conn, &finished).await.unwrap(), 3);
    let before: (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    wait_for_server_ms(&mut conn, before.0 * 1000 + before.1 / 1000 + 5).await;
    // A page of one: the kept record, and no further page (the rest expired).
    let page = q
        .jobs(&mut conn, ListState::Finished, None, 1)
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.jobs[0].id, finished[2].job_id, "the kept one");
    assert_eq!(page.next, None, "expired records make no empty pages");

    // A delayed-set member written before 0.6: the envelope JSON itself.
    let legacy = r#"{"id":"old-job-1","type":"legacy","payload":"{}","attempt":"2","max_retries":"3","enqueued_at":"1","priority":"low"}"#;
    let _: () = redis::cmd("ZADD")
        .arg(q.keys().delayed())
        .arg(9_999_999_999_999u64)
        .arg(legacy)
        .query_async(&mut conn)
        .await
        .unwrap();
    let page = q
        .jobs(&mut conn, ListState::Scheduled, None, 10)
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 1);
    let j = &page.jobs[0];
    assert_eq!(
        (j.id.as_str(), j.state, j.job_type.as_deref()),
        ("old-job-1", JobState::Retrying, Some("legacy"))
    );
    assert_eq!(j.priority, Some(Priority::Low));
}
