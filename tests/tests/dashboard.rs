//! The web dashboard of `ferry serve` (issue 11, part 5) in a real browser:
//! headless Chromium driven over WebDriver, against a real `ferry serve`, a
//! real Redis and real worker processes. It watches jobs being enqueued
//! and completed on the page, reads the streams' lag and oldest pending
//! age, pages through jobs, opens a job, pauses and resumes, replays a dead
//! letter and a group of them, purges with the in-page confirm step, and
//! checks a `--read-only` server and a server with tokens. Every page is
//! saved as a PNG under `target/dashboard-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (`apt-get install chromium
//! chromium-driver`): without them the test says so and passes, unless
//! `FERRY_BROWSER_TESTS=required`.

use std::time::{Duration, Instant};

use ferry_tests::browser::Browser;
use ferry_tests::serve::{http, Server};
use ferry_tests::{unique, RedisServer, WorkerProcess};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The longest any one thing may take to show on the page.
const WAIT: Duration = Duration::from_secs(20);

/// The API, as the test sees it (to act behind the page's back and to
/// check what the page says).
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Waits (long poll) until job `id` of `q` is in `state`.
    async fn wait_state(&self, q: &str, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let job = self
                .get(&format!("/v1/queues/{q}/jobs/{id}/wait?timeout_ms=2000"))
                .await;
            if job["state"] == state {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} not {state} within {WAIT:?}: {job}"
            );
        }
    }
}

/// The CSS selector of a cell `testid` in the row of queue `q`.
fn queue_cell(q: &str, testid: &str) -> String {
    format!(r#"tr[data-queue="{q}"] [data-testid="{testid}"]"#)
}

fn testid(id: &str) -> String {
    format!(r#"[data-testid="{id}"]"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_jobs_replays_dead_letters_and_honours_read_only_and_tokens() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Built (or found up to date) before the clock starts.
    ferry_tests::ferry_bin();
    ferry_tests::worker_bin();
    let started = Instant::now();
    eprintln!(
        "dashboard screenshots go to {}",
        browser.screenshot_dir().display()
    );
    let redis = RedisServer::start().await;
    let prefix = unique("dash");
    let server = Server::start(redis.url(), &prefix, &[], &[]);
    let api = Api {
        http: http(),
        base: server.base.clone(),
    };
    let q = "emails";
    let shot = |name: &'static str| {
        let browser = &browser;
        async move {
            let path = browser.screenshot(name).await;
            eprintln!(
                "[{:5.1} s] screenshot: {}",
                started.elapsed().as_secs_f64(),
                path.display()
            );
        }
    };

    // ---- The overview: empty, then the queue appears with its counts.
    browser.goto(&server.url("/")).await;
    browser.wait_visible(&testid("queues-empty"), WAIT).await;
    assert!(!browser.visible(&testid("read-only-badge")).await);
    assert!(!browser.visible(&testid("token-form")).await);

    let echo = api
        .post(
            &format!("/v1/queues/{q}/jobs"),
            json!({"type": "echo", "payload": {"message": "hello dashboard"}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let batch: Vec<Value> = (0..10)
        .map(|_| json!({"type": "sleep", "payload": {"ms": 200}, "priority": "high"}))
        .collect();
    api.post(
        &format!("/v1/queues/{q}/jobs/batch"),
        json!({ "jobs": batch }),
    )
    .await;
    browser
        .wait_text(&queue_cell(q, "queue-waiting-high"), WAIT, |t| t == "10")
        .await;
    assert_eq!(
        browser
            .text(&queue_cell(q, "queue-waiting-normal"))
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        browser
            .text(&queue_cell(q, "queue-workers"))
            .await
            .as_deref(),
        Some("0")
    );
    shot("1-overview-waiting").await;

    // ---- A worker runs them: the page's counts follow.
    let worker = WorkerProcess::spawn(redis.url(), &prefix, &["--queue", q, "--concurrency", "4"]);
    browser
        .wait_text(&queue_cell(q, "queue-completed"), WAIT, |t| t == "11")
        .await;
    browser
        .wait_text(&queue_cell(q, "queue-workers"), WAIT, |t| t == "1")
        .await;
    for p in ["critical", "high", "normal", "low"] {
        assert_eq!(
            browser
                .text(&queue_cell(q, &format!("queue-waiting-{p}")))
                .await
                .as_deref(),
            Some("0"),
            "{p}"
        );
    }
    // The per-minute chart adds up to the jobs done (once the worker's
    // timing flush, about a second, has reached the stats).
    browser
        .wait_for(WAIT, "the rates chart to count 11 completed", || async {
            let titles = browser
                .texts(r#"svg[data-testid="rates-chart"] .s-completed circle title"#)
                .await;
            let total: u64 = titles
                .iter()
                .filter_map(|t| t.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            total == 11
        })
        .await;
    browser
        .wait_for(WAIT, "a live rate", || async {
            browser
                .text(&testid("rate-now"))
                .await
                .is_some_and(|t| t.ends_with("/s"))
        })
        .await;
    shot("2-overview-done").await;

    // ---- The queue page: stats, streams (lag, pending, oldest pending
    // age), jobs by state with paging.
    let long = api
        .post(
            &format!("/v1/queues/{q}/jobs"),
            json!({"type": "sleep", "payload": {"ms": 20000}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    browser
        .click(&format!(
            r#"tr[data-queue="{q}"] a[data-testid="queue-link"]"#
        ))
        .await;
    browser
        .wait_text(&testid("queue-title"), WAIT, |t| t == q)
        .await;
    let normal = r#"tr[data-testid="stream-row"][data-priority="normal"]"#;
    browser
        .wait_text(
            &format!(r#"{normal} [data-testid="stream-pending"]"#),
            WAIT,
            |t| t == "1",
        )
        .await;
    browser
        .wait_text(
            &format!(r#"{normal} [data-testid="stream-oldest-age"]"#),
            WAIT,
            |t| t.ends_with(" s") || t.ends_with(" ms"),
        )
        .await;
    assert_eq!(browser.count(r#"tr[data-testid="stream-row"]"#).await, 4);
    // The queue's settings, as the API reads them.
    let settings = api.get(&format!("/v1/queues/{q}/settings")).await;
    assert_eq!(settings["max_depth"], Value::Null, "{settings}");
    assert_eq!(
        browser.text(&testid("settings-max-depth")).await.as_deref(),
        Some("no limit")
    );
    let events = browser
        .text(&testid("settings-events"))
        .await
        .unwrap_or_default();
    assert_eq!(
        events == "off",
        settings["events"].is_null(),
        "{events}: {settings}"
    );
    let kept = browser
        .text(&testid("settings-retention-count"))
        .await
        .unwrap_or_default()
        .replace([',', '\u{a0}', ' '], "");
    assert_eq!(kept, settings["retention_count"].to_string());
    // Page and API agree on every stream.
    let streams = api.get(&format!("/v1/queues/{q}/streams")).await;
    for s in streams.as_array().unwrap() {
        let p = s["priority"].as_str().unwrap();
        let row = format!(r#"tr[data-testid="stream-row"][data-priority="{p}"]"#);
        let lag = browser
            .text(&format!(r#"{row} [data-testid="stream-lag"]"#))
            .await
            .unwrap();
        let expected = match (&s["lag"], &s["group"]) {
            (Value::Number(n), _) => n.to_string(),
            (_, Value::Bool(false)) => "no group".to_owned(),
            _ => "n/a".to_owned(),
        };
        assert_eq!(lag, expected, "lag of {p}: {s}");
        let length = browser
            .text(&format!(r#"{row} [data-testid="stream-length"]"#))
            .await
            .unwrap();
        assert_eq!(length, s["length"].to_string(), "length of {p}: {s}");
    }
    assert_eq!(
        browser.text(&testid("stats-completed")).await.as_deref(),
        Some("11")
    );
    shot("3-queue").await;

    // Finished jobs: 11, ten to a page.
    browser.click(&testid("job-tab-finished")).await;
    browser
        .wait_for(WAIT, "a full first page of finished jobs", || async {
            browser.count(r#"tr[data-testid="job-row"]"#).await == 10
        })
        .await;
    browser.click(&testid("jobs-next")).await;
    browser
        .wait_text(&testid("jobs-page"), WAIT, |t| t == "Page 2")
        .await;
    browser
        .wait_for(WAIT, "the one job of page 2", || async {
            browser.count(r#"tr[data-testid="job-row"]"#).await == 1
        })
        .await;
    let mut seen = browser.texts(r#"tr[data-testid="job-row"] a"#).await;
    browser.click(&testid("jobs-prev")).await;
    browser
        .wait_text(&testid("jobs-page"), WAIT, |t| t == "Page 1")
        .await;
    browser
        .wait_for(WAIT, "page 1 again", || async {
            browser.count(r#"tr[data-testid="job-row"]"#).await == 10
        })
        .await;
    seen.extend(browser.texts(r#"tr[data-testid="job-row"] a"#).await);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert!(seen.contains(&echo), "{seen:?}");

    // A finished job: its result, attempts and timeline.
    browser
        .click(&format!(
            r#"tr[data-id="{echo}"] a[data-testid="job-link"]"#
        ))
        .await;
    browser
        .wait_text(&testid("job-state-text"), WAIT, |t| t == "succeeded")
        .await;
    let result = browser.text(&testid("job-result")).await.unwrap();
    assert!(result.contains("hello dashboard"), "{result}");
    assert_eq!(
        browser.text(&testid("job-attempts")).await.as_deref(),
        Some("1 of 4")
    );
    assert_eq!(
        browser
            .count(r#"[data-testid="job-timeline"] li.done"#)
            .await,
        3
    );
    shot("4-job-succeeded").await;

    // A running job, from the running tab: its payload; cancel it.
    browser
        .goto(&server.url(&format!("/#/queues/{q}?state=running")))
        .await;
    browser
        .click(&format!(
            r#"tr[data-id="{long}"] a[data-testid="job-link"]"#
        ))
        .await;
    browser
        .wait_text(&testid("job-state-text"), WAIT, |t| t == "running")
        .await;
    let payload = browser.text(&testid("job-payload")).await.unwrap();
    assert!(payload.contains(r#""ms": 20000"#), "{payload}");
    shot("5-job-running").await;
    browser.click(&testid("job-cancel")).await;
    browser
        .wait_text(&testid("flash"), WAIT, |t| t.contains(&long))
        .await;
    let settled = browser
        .wait_text(&testid("job-state-text"), WAIT, |t| t != "running")
        .await;
    let by_api = api.get(&format!("/v1/queues/{q}/jobs/{long}")).await;
    assert_eq!(by_api["state"], settled.as_str(), "{by_api}");

    // ---- A dead letter: pause from the page, replay it from the page
    // (it stays queued while paused), resume from the page.
    let doomed = api
        .post(
            &format!("/v1/queues/{q}/jobs"),
            json!({"type": "always-fail", "payload": {}, "max_retries": 0}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.wait_state(q, &doomed, "dead").await;
    browser.goto(&server.url(&format!("/#/queues/{q}"))).await;
    browser.click(&testid("pause-button")).await;
    browser.wait_visible(&testid("paused-badge"), WAIT).await;
    assert_eq!(api.get(&format!("/v1/queues/{q}")).await["paused"], true);

    browser.click(&testid("dead-link")).await;
    let row = format!(r#"tr[data-testid="dead-row"][data-job-id="{doomed}"]"#);
    browser.wait_element(&row, WAIT).await;
    // Its group (the cancelled job may have one of its own).
    let group = r#"tr[data-testid="dead-group"][data-error*="always-fail job failed"]"#;
    assert_eq!(
        browser
            .text(&format!(r#"{group} [data-testid="dead-group-count"]"#))
            .await
            .as_deref(),
        Some("1")
    );
    shot("6-dead-letters").await;
    browser
        .click(&format!(r#"{row} [data-testid="dead-replay"]"#))
        .await;
    browser
        .wait_text(&testid("flash"), WAIT, |t| {
            t.contains("Replayed 1 dead letter") && t.contains(&doomed)
        })
        .await;
    browser
        .wait_for(WAIT, "the replayed letter gone from the page", || async {
            browser.count(&row).await == 0
        })
        .await;
    let listing = api.get(&format!("/v1/queues/{q}/dead")).await;
    assert!(
        listing["letters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["job_id"] != doomed.as_str()),
        "{listing}"
    );
    // Back in its stream: queued, or read by the worker just as the queue
    // paused (then it waits for the resume). The job page says the same
    // as the API.
    browser
        .goto(&server.url(&format!("/#/queues/{q}/jobs/{doomed}")))
        .await;
    let shown = browser
        .wait_text(&testid("job-state-text"), WAIT, |t| {
            t == "queued" || t == "running"
        })
        .await;
    let job = api.get(&format!("/v1/queues/{q}/jobs/{doomed}")).await;
    assert_eq!(job["state"], shown.as_str(), "{job}");
    browser
        .goto(&server.url(&format!("/#/queues/{q}?state={shown}")))
        .await;
    let job_row = format!(r#"tr[data-testid="job-row"][data-id="{doomed}"]"#);
    browser.wait_element(&job_row, WAIT).await;
    browser.scroll_to(&job_row).await;
    shot("7-queue-paused").await;
    browser.click(&testid("resume-button")).await;
    browser.wait_visible(&testid("active-badge"), WAIT).await;
    assert_eq!(api.get(&format!("/v1/queues/{q}")).await["paused"], false);

    // Resumed, it dies again; replay its group from the page; it dies
    // again; purge, through the in-page confirm step.
    api.wait_state(q, &doomed, "dead").await;
    browser.click(&testid("dead-link")).await;
    browser.wait_element(&row, WAIT).await;
    browser
        .click(&format!(r#"{group} [data-testid="dead-group-replay"]"#))
        .await;
    browser
        .wait_text(&testid("flash"), WAIT, |t| {
            t.contains("Replayed 1 dead letter")
        })
        .await;
    api.wait_state(q, &doomed, "dead").await;
    browser.wait_element(&row, WAIT).await;
    let total = api.get(&format!("/v1/queues/{q}")).await["dead"]
        .as_u64()
        .unwrap();
    browser.click(&testid("dead-purge")).await;
    browser.wait_element(&testid("purge-confirm"), WAIT).await;
    shot("8-purge-confirm").await;
    browser.click(&testid("dead-purge-confirm")).await;
    let purged = format!("Purged {total} dead letter");
    browser
        .wait_text(&testid("flash"), WAIT, |t| t.contains(&purged))
        .await;
    browser.wait_visible(&testid("dead-empty"), WAIT).await;
    assert_eq!(
        api.get(&format!("/v1/queues/{q}/dead")).await["letters"],
        json!([])
    );

    // ---- Live workers.
    browser.click(&testid("nav-workers")).await;
    browser
        .wait_for(WAIT, "one worker row", || async {
            browser.count(r#"tr[data-testid="worker-row"]"#).await == 1
        })
        .await;
    assert_eq!(
        browser.text(&testid("worker-concurrency")).await.as_deref(),
        Some("4")
    );
    shot("9-workers").await;

    browser.assert_clean().await;

    // ---- A read-only server: the badge, and no action anywhere.
    let kept = api
        .post(
            &format!("/v1/queues/{q}/jobs"),
            json!({"type": "always-fail", "payload": {}, "max_retries": 0}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.wait_state(q, &kept, "dead").await;
    let ro = Server::start(redis.url(), &prefix, &["--read-only"], &[]);
    browser.goto(&ro.url("/")).await;
    browser
        .wait_element(&queue_cell(q, "queue-link"), WAIT)
        .await;
    browser.wait_visible(&testid("read-only-badge"), WAIT).await;
    assert_eq!(browser.count("button[data-action]").await, 0);
    shot("10-read-only-overview").await;
    browser.goto(&ro.url(&format!("/#/queues/{q}"))).await;
    browser
        .wait_text(&testid("queue-title"), WAIT, |t| t == q)
        .await;
    for absent in ["pause-button", "resume-button"] {
        assert_eq!(browser.count(&testid(absent)).await, 0, "{absent}");
    }
    browser.goto(&ro.url(&format!("/#/queues/{q}/dead"))).await;
    browser
        .wait_element(
            &format!(r#"tr[data-testid="dead-row"][data-job-id="{kept}"]"#),
            WAIT,
        )
        .await;
    for absent in ["dead-replay", "dead-group-replay", "dead-purge"] {
        assert_eq!(browser.count(&testid(absent)).await, 0, "{absent}");
    }
    shot("11-read-only-dead").await;
    browser
        .goto(&ro.url(&format!("/#/queues/{q}/jobs/{kept}")))
        .await;
    browser
        .wait_text(&testid("job-state-text"), WAIT, |t| t == "dead")
        .await;
    assert_eq!(browser.count(&testid("job-retry")).await, 0);
    browser.assert_clean().await;
    drop(ro);

    // ---- Tokens: the form; a wrong token; the read token (read-only);
    // forgotten; the write token (actions).
    let guarded = Server::start(
        redis.url(),
        &prefix,
        &[],
        &[
            ("FERRY_TOKEN", "w-secret"),
            ("FERRY_READ_TOKEN", "r-secret"),
        ],
    );
    browser.goto(&guarded.url("/")).await;
    browser.wait_visible(&testid("token-form"), WAIT).await;
    shot("12-token-form").await;
    browser.type_into(&testid("token-input"), "nope").await;
    browser.click(&testid("token-submit")).await;
    browser.wait_visible(&testid("token-error"), WAIT).await;
    let said = browser.text(&testid("token-error")).await.unwrap();
    assert!(said.contains("not one this server knows"), "{said}");
    browser.type_into(&testid("token-input"), "r-secret").await;
    browser.click(&testid("token-submit")).await;
    browser
        .wait_element(&queue_cell(q, "queue-link"), WAIT)
        .await;
    browser.wait_visible(&testid("read-only-badge"), WAIT).await;
    assert_eq!(browser.count("button[data-action]").await, 0);
    browser.click(&testid("forget-token")).await;
    browser.wait_visible(&testid("token-form"), WAIT).await;
    browser.type_into(&testid("token-input"), "w-secret").await;
    browser.click(&testid("token-submit")).await;
    browser
        .wait_element(&queue_cell(q, "queue-pause-button"), WAIT)
        .await;
    assert!(!browser.visible(&testid("read-only-badge")).await);
    shot("13-write-token").await;
    browser.assert_clean().await;

    drop(worker);
    browser.close().await;
    eprintln!(
        "dashboard test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
