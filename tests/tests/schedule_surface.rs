//! The operator's surface for cron and periodic schedules: `ferry
//! schedules` and `ferry schedule add|show|pause|resume|trigger|remove`,
//! and the HTTP routes for the same (`/v1/queues/{queue}/schedules`),
//! with their exit codes and error codes. Real Redis, a real `ferry
//! serve`, real `ferry` processes. (Firing across a fleet is
//! `schedules.rs`'s; here one firing pass is run by hand.) The HTTP
//! routes' tests are in `schedule_surface/http.rs`.

use std::time::{Duration, Instant};

use ferry_tests::cli::{ferry, Ran};
use ferry_tests::{queue, unique, RedisServer};
use serde_json::{json, Value};

/// The HTTP routes.
#[path = "schedule_surface/http.rs"]
mod http;

/// True for a time as `ferry` prints it: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The line of the table `ran` printed for schedule `name`.
fn row<'a>(ran: &'a Ran, name: &str) -> &'a str {
    ran.stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name}:\n{}", ran.stdout))
}

/// Asserts a usage error (exit 64) whose one line contains every one of `parts`.
fn usage_error(ran: &Ran, parts: &[&str]) {
    ran.assert_code(64);
    let line = ran.one_error_line();
    for p in parts {
        assert!(line.contains(p), "{p:?} not in {line:?}");
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn the_cli_adds_lists_pauses_resumes_triggers_and_removes_schedules() {
    let redis = RedisServer::start().await;
    let prefix = unique("sched-cli");
    let url = redis.url();
    let run = |args: &'static [&'static str]| ferry(url, &prefix, args);

    let r = run(&["schedules", "reports"]).await;
    r.assert_code(0);
    assert_eq!(r.stdout, "no schedules\n");

    // A cron expression in a time zone.
    let v = run(&[
        "schedule",
        "add",
        "reports",
        "nightly",
        "--cron",
        "0 2 * * *",
        "--tz",
        "Europe/Paris",
        "--type",
        "report",
        "--payload",
        r#"{"day": null}"#,
        "--priority",
        "high",
        "--max-retries",
        "5",
        "--json",
    ])
    .await
    .ok_json();
    assert_eq!(v["created"], true, "{v}");
    assert_eq!(v["spec"], "cron 0 2 * * * Europe/Paris");
    assert_eq!(
        (&v["cron"], &v["time_zone"], &v["every_ms"]),
        (&json!("0 2 * * *"), &json!("Europe/Paris"), &Value::Null)
    );
    assert_eq!(
        (&v["type"], &v["payload"], &v["priority"], &v["max_retries"]),
        (
            &json!("report"),
            &json!({"day": null}),
            &json!("high"),
            &json!(5)
        )
    );
    assert_eq!(
        (&v["missed"], &v["paused"]),
        (&json!("skip"), &json!(false))
    );
    let next = v["next_at"].as_u64().expect("a next tick");
    let now = now_ms();
    assert!(
        next > now - 5_000 && next <= now + 25 * 3_600_000,
        "{next} vs {now}"
    );

    // An interval, given with a unit; replacing it says so.
    for (every, created) in [("2s", true), ("2000", false)] {
        let args: Vec<&str> = vec![
            "schedule", "add", "reports", "tick", "--every", every, "--type", "echo", "--missed",
            "run-once", "--json",
        ];
        let v = ferry(url, &prefix, &args).await.ok_json();
        assert_eq!(v["created"], created, "{v}");
        assert_eq!(
            (&v["spec"], &v["every_ms"]),
            (&json!("every 2000"), &json!(2000))
        );
        assert_eq!(
            (&v["missed"], &v["payload"]),
            (&json!("run-once"), &json!({}))
        );
    }

    // The list: next fire time of each, no last job yet.
    let r = run(&["schedules", "reports"]).await;
    r.assert_code(0);
    let header = r.stdout.lines().next().unwrap();
    for col in [
        "NAME",
        "SPEC",
        "MISSED",
        "NEXT FIRE",
        "LAST JOB",
        "LAST STATE",
    ] {
        assert!(header.contains(col), "{header}");
    }
    for name in ["nightly", "tick"] {
        let line = row(&r, name);
        assert!(line.split_whitespace().any(is_time), "{line}");
    }
    assert!(row(&r, "tick").contains("every 2000"));
    assert!(row(&r, "tick").contains("run-once"));

    // One firing pass once the tick is due (as a worker runs it): the list
    // shows the tick's job and its state, read from the job's status.
    let q = queue(&prefix, "reports");
    let mut conn = redis.conn().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        if let Some(id) = q.fire_due(&mut conn).await.unwrap().fired.pop() {
            break id;
        }
        assert!(Instant::now() < deadline, "the 2 s tick did not fall due");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(job.starts_with("sched:tick:"), "{job}");
    let list = run(&["schedules", "reports", "--json"]).await.ok_json();
    let tick = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "tick")
        .unwrap();
    assert_eq!(
        (&tick["last_job"], &tick["last_job_state"]),
        (&json!(job), &json!("queued")),
        "{tick}"
    );
    let r = run(&["schedules", "reports"]).await;
    assert!(row(&r, "tick").contains(&job) && row(&r, "tick").contains("queued"));

    // Pause, show, resume.
    let v = run(&["schedule", "pause", "reports", "tick", "--json"])
        .await
        .ok_json();
    assert_eq!((&v["paused"], &v["next_at"]), (&json!(true), &Value::Null));
    let r = run(&["schedules", "reports"]).await;
    assert!(row(&r, "tick").contains("paused"), "{}", r.stdout);
    let r = run(&["schedule", "show", "reports", "tick"]).await;
    r.assert_code(0);
    assert!(r.stdout.contains("paused:") && r.stdout.contains("yes"));
    let v = run(&["schedule", "resume", "reports", "tick", "--json"])
        .await
        .ok_json();
    assert_eq!(v["paused"], false);
    assert!(v["next_at"].as_u64().is_some(), "{v}");

    // Trigger: the job's id alone, and the job is there.
    let r = run(&["schedule", "trigger", "reports", "nightly"]).await;
    r.assert_code(0);
    let id = r.stdout.trim().to_owned();
    assert!(!id.is_empty() && !id.contains(char::is_whitespace), "{r:?}");
    let job = ferry(url, &prefix, &["job", "show", "reports", &id, "--json"])
        .await
        .ok_json();
    assert_eq!(
        (&job["type"], &job["state"]),
        (&json!("report"), &json!("queued"))
    );
    // It is the schedule's last job now.
    let v = run(&["schedule", "show", "reports", "nightly", "--json"])
        .await
        .ok_json();
    assert_eq!(v["last_job"], json!(id), "{v}");

    // Remove; then each command on it is not found (exit 3).
    let r = run(&["schedule", "remove", "reports", "nightly"]).await;
    r.assert_code(0);
    assert!(r.stdout.contains("removed"), "{}", r.stdout);
    for cmd in ["remove", "show", "pause", "resume", "trigger"] {
        let r = ferry(url, &prefix, &["schedule", cmd, "reports", "nightly"]).await;
        r.assert_code(3);
        assert!(
            r.one_error_line()
                .contains("schedule not found: nightly in queue reports"),
            "{cmd}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty());
    }
}

#[tokio::test]
async fn bad_schedules_are_usage_errors_that_name_what_is_wrong() {
    let redis = RedisServer::start().await;
    let prefix = unique("sched-bad");
    let url = redis.url();
    let add = |extra: &'static [&'static str]| {
        let mut args = vec!["schedule", "add", "reports", "bad", "--type", "report"];
        args.extend_from_slice(extra);
        let prefix = prefix.clone();
        async move { ferry(url, &prefix, &args).await }
    };
    usage_error(
        &add(&["--cron", "0 25 * * *"]).await,
        &["cron", "field 2 (hour) \"25\""],
    );
    usage_error(
        &add(&["--cron", "*/5 * * * * * * * *"]).await,
        &["invalid setting cron"],
    );
    usage_error(
        &add(&["--cron", "0 2 * * *", "--tz", "Mars/Olympus"]).await,
        &["time_zone", "unknown time zone \"Mars/Olympus\""],
    );
    usage_error(
        &add(&["--every", "500ms"]).await,
        &["every", "under the minimum of 1s"],
    );
    usage_error(
        &add(&["--every", "5s", "--missed", "sometimes"]).await,
        &["missed"],
    );
    // clap's own: a bad duration, both or neither recurrence, --tz alone,
    // a bad name.
    for r in [
        add(&["--every", "5 minutes"]).await,
        add(&["--every", "5s", "--cron", "* * * * *"]).await,
        add(&[]).await,
        add(&["--every", "5s", "--tz", "UTC"]).await,
        ferry(
            url,
            &prefix,
            &[
                "schedule", "add", "reports", "a b", "--every", "5s", "--type", "t",
            ],
        )
        .await,
    ] {
        r.assert_code(64);
        assert!(r.stdout.is_empty());
    }
    // A payload that is not JSON, as for `ferry enqueue`: exit 1.
    let r = add(&["--every", "5s", "--payload", "{not json"]).await;
    r.assert_code(1);
    assert!(
        r.one_error_line().contains("not valid JSON"),
        "{}",
        r.stderr
    );
    // Nothing was written by any of them.
    let r = ferry(url, &prefix, &["schedules", "reports"]).await;
    assert_eq!(r.stdout, "no schedules\n");
}
