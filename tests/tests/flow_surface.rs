//! The operator's surface for flow control: rate limits (`ferry settings
//! --rate-limit`, the live state in `ferry stats`) and unique jobs
//! (`ferry enqueue --unique|--unique-key ...`), with their exit codes.
//! Real Redis, real `ferry` processes; claims are made by hand through the
//! broker so that a limit's state is exact, not timed. The unique jobs'
//! command-line tests are in `flow_surface/unique.rs`; the HTTP routes and
//! `/metrics` in `flow_surface/http.rs`; the dashboard in
//! `flow_surface/dashboard.rs`.

use std::time::Duration;

use ferry_tests::cli::{ferry, Ran};
use ferry_tests::{queue, unique, RedisServer};
use serde_json::{json, Value};

/// The HTTP routes and `/metrics`.
#[path = "flow_surface/http.rs"]
mod http;

/// Unique jobs from the command line.
#[path = "flow_surface/unique.rs"]
mod unique_jobs;

/// The dashboard's queue page (a real browser, where there is one).
#[path = "flow_surface/dashboard.rs"]
mod dashboard;

/// Concurrency limits and weights.
#[path = "flow_surface/limits.rs"]
mod limits;

/// Rate limits of job types and keys.
#[path = "flow_surface/rate_gates.rs"]
mod rate_gates;

/// The dashboard's Limits panel.
#[path = "flow_surface/dashboard_limits.rs"]
mod dashboard_limits;

/// Asserts a usage error (exit 64) whose one line contains every one of `parts`.
fn usage_error(ran: &Ran, parts: &[&str]) {
    ran.assert_code(64);
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    let line = ran.one_error_line();
    for p in parts {
        assert!(line.contains(p), "{p:?} not in {line:?}");
    }
}

/// The raw `rate_limit` field of a queue's settings hash, as workers read it.
async fn raw_limit(redis: &RedisServer, prefix: &str, q: &str) -> Option<String> {
    let mut conn = redis.conn().await;
    redis::cmd("HGET")
        .arg(queue(prefix, q).keys().settings())
        .arg("rate_limit")
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cli_sets_shows_and_removes_a_rate_limit_and_refuses_a_bad_one() {
    let redis = RedisServer::start().await;
    let prefix = unique("flow-limit");
    let url = redis.url();
    let settings = |extra: &'static [&'static str]| {
        let mut args = vec!["settings", "emails"];
        args.extend_from_slice(extra);
        let prefix = prefix.clone();
        async move { ferry(url, &prefix, &args).await }
    };

    let v = settings(&["--json"]).await.ok_json();
    assert_eq!(v["rate_limit"], Value::Null, "{v}");
    // The other fields are still there, as they were.
    for field in [
        "queue",
        "paused",
        "max_depth",
        "retention_ms",
        "retention_count",
        "events",
    ] {
        assert!(v.get(field).is_some(), "{field} in {v}");
    }

    // Set: the text form back, the broker's form in Redis.
    let v = settings(&["--rate-limit", "50/1s", "--json"])
        .await
        .ok_json();
    assert_eq!(v["rate_limit"], "50/1s", "{v}");
    assert_eq!(
        raw_limit(&redis, &prefix, "emails").await.as_deref(),
        Some("50 1000 5")
    );
    let r = settings(&[]).await;
    r.assert_code(0);
    assert!(r.stdout.contains("rate_limit: 50/1s\n"), "{}", r.stdout);
    // A burst that is not the default tenth is shown; one that is, is not.
    let v = settings(&["--rate-limit", "10/1s:10", "--json"])
        .await
        .ok_json();
    assert_eq!(v["rate_limit"], "10/1s:10");
    let v = settings(&["--rate-limit", "1000/1m:100", "--json"])
        .await
        .ok_json();
    assert_eq!(v["rate_limit"], "1000/1m");
    assert_eq!(
        raw_limit(&redis, &prefix, "emails").await.as_deref(),
        Some("1000 60000 100")
    );

    // Bad ones: a usage error naming what is wrong, and nothing written.
    for (bad, says) in [
        ("0/1s", "0 starts per period would run nothing"),
        ("-5/1s", "use <n>/<period>[:<burst>]"),
        ("5/0s", "the period must be 1 ms or more"),
        ("5/1y", "use <n>/<period>[:<burst>]"),
        ("5/1s:9", "the burst must be 1 to 5, got 9"),
    ] {
        let args = ["settings", "emails", "--rate-limit", bad];
        let r = ferry(url, &prefix, &args).await;
        usage_error(&r, &["--rate-limit", "rate_limit", says]);
    }
    assert_eq!(
        raw_limit(&redis, &prefix, "emails").await.as_deref(),
        Some("1000 60000 100")
    );

    // Removed.
    let v = settings(&["--rate-limit", "none", "--json"])
        .await
        .ok_json();
    assert_eq!(v["rate_limit"], Value::Null, "{v}");
    assert_eq!(raw_limit(&redis, &prefix, "emails").await, None);
    let r = settings(&[]).await;
    assert!(r.stdout.contains("rate_limit: none\n"), "{}", r.stdout);
}

#[tokio::test]
async fn stats_show_a_saturated_limit_and_a_hold_with_the_next_slot() {
    let redis = RedisServer::start().await;
    let prefix = unique("flow-stats");
    let url = redis.url();
    let mut conn = redis.conn().await;

    // One start an hour, and two jobs: one claim takes the only slot.
    ferry(
        url,
        &prefix,
        &["settings", "reports", "--rate-limit", "1/1h"],
    )
    .await
    .assert_code(0);
    for n in 0..2 {
        let payload = format!("{{\"n\": {n}}}");
        let args = [
            "enqueue",
            "reports",
            "--type",
            "report",
            "--payload",
            &payload,
        ];
        ferry(url, &prefix, &args).await.assert_code(0);
    }
    let stats = |q: &'static str| {
        let prefix = prefix.clone();
        async move { ferry(url, &prefix, &["stats", q, "--json"]).await.ok_json() }
    };
    let v = stats("reports").await;
    assert_eq!(
        v["rate_limit"],
        json!({"limit": "1/1h", "limited": false, "slots_free": 1, "held_until": null,
               "next_slot_at": null, "next_slot_in_ms": null}),
        "{v}"
    );
    let r = ferry(url, &prefix, &["stats", "reports"]).await;
    assert!(
        r.stdout
            .contains("rate limit: 1/1h, not limited (1 free now)\n"),
        "{}",
        r.stdout
    );

    let worker = queue(&prefix, "reports").consumer("w");
    assert_eq!(worker.claim(&mut conn, 2).await.unwrap().len(), 1);
    let v = stats("reports").await;
    let rl = &v["rate_limit"];
    assert_eq!(
        (&rl["limited"], &rl["slots_free"], &rl["held_until"]),
        (&json!(true), &json!(0), &Value::Null),
        "{v}"
    );
    let next_in = rl["next_slot_in_ms"].as_u64().unwrap();
    assert!((3_500_000..=3_600_000).contains(&next_in), "{next_in}: {v}");
    let next_at = rl["next_slot_at"].as_u64().unwrap();
    // The claim scripts agree: the next claim takes nothing and names the
    // same slot (its wait is shorter by the time since the stats).
    match worker.claim(&mut conn, 1).await {
        Err(ferry_broker::Error::RateLimited { wait, .. }) => {
            let wait = wait.as_millis() as u64;
            assert!(
                wait <= next_in && next_in - wait < 5_000,
                "claim waits {wait} ms, stats said {next_in}"
            );
        }
        other => panic!("the second claim of 1/1h: {other:?}"),
    }
    let r = ferry(url, &prefix, &["stats", "reports"]).await;
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("rate limit: "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(
        line.starts_with("rate limit: 1/1h, rate limited: next slot in 59m ")
            || line.starts_with("rate limit: 1/1h, rate limited: next slot in 1h 0m"),
        "{line}"
    );
    assert!(line.ends_with(&format!("({})", utc(next_at))), "{line}");

    // A hold (a handler's rate_limited) on a queue with no limit.
    let held = queue(&prefix, "webhooks");
    held.hold(&mut conn, Duration::from_secs(90)).await.unwrap();
    let v = stats("webhooks").await;
    let rl = &v["rate_limit"];
    assert_eq!(
        (&rl["limit"], &rl["limited"], &rl["slots_free"]),
        (&Value::Null, &json!(true), &Value::Null),
        "{v}"
    );
    let until = rl["held_until"].as_u64().unwrap();
    assert_eq!(rl["next_slot_at"].as_u64(), Some(until), "{v}");
    let next_in = rl["next_slot_in_ms"].as_u64().unwrap();
    assert!((80_000..=90_000).contains(&next_in), "{next_in}: {v}");
    let r = ferry(url, &prefix, &["stats", "webhooks"]).await;
    assert!(
        r.stdout.contains(&format!(
            "rate limit: none, rate limited: held until {}, next slot in ",
            utc(until)
        )),
        "{}",
        r.stdout
    );

    // No limit and no hold: null, and no line.
    let v = stats("other").await;
    assert_eq!(v["rate_limit"], Value::Null, "{v}");
    let r = ferry(url, &prefix, &["stats", "other"]).await;
    assert!(!r.stdout.contains("rate limit"), "{}", r.stdout);
}

/// `ms` since the epoch as `ferry` prints a time: `YYYY-MM-DDTHH:MM:SS.mmmZ`
/// (UTC), computed here apart from the CLI's own code.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}
