//! The dashboard's queue page shows the rate limit: its state card
//! (`limit 50/1s, not limited`, or `rate limited, next slot in ...`) and
//! its settings row. Headless Chromium as in `dashboard.rs`: without it
//! the test says so and passes, unless `FERRY_BROWSER_TESTS=required`.

use std::time::Duration;

use ferry_tests::browser::Browser;
use ferry_tests::queue;
use ferry_tests::serve::Env;
use reqwest::StatusCode;
use serde_json::json;

/// The longest the page may take to show a change (it refreshes every 2 s).
const WAIT: Duration = Duration::from_secs(20);

fn testid(id: &str) -> String {
    format!(r#"[data-testid="{id}"]"#)
}

#[tokio::test]
async fn the_queue_page_shows_whether_the_rate_limit_holds_jobs_back() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let env = Env::new("flow-dash", &[], &[]).await;
    let (redis, prefix, server, client) = (&env.redis, &env.prefix, &env.server, &env.http);
    let send = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        client.request(method, server.url(path)).json(&body).send()
    };
    for n in 0..2 {
        let r = send(
            reqwest::Method::POST,
            "/v1/queues/reports/jobs",
            json!({"type": "report", "payload": {"n": n}}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = send(
        reqwest::Method::PATCH,
        "/v1/queues/reports/settings",
        json!({"rate_limit": "1/1h"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    browser.goto(&server.url("/#/queues/reports")).await;
    browser
        .wait_text(&testid("stats-rate-limit"), WAIT, |t| {
            t == "limit 1/1h, not limited"
        })
        .await;
    browser
        .wait_text(&testid("settings-rate-limit"), WAIT, |t| t == "1/1h")
        .await;

    // One claim takes the hour's only slot; the next refresh says so.
    let mut conn = redis.conn().await;
    let worker = queue(prefix, "reports").consumer("w");
    assert_eq!(worker.claim(&mut conn, 2).await.unwrap().len(), 1);
    browser
        .wait_text(&testid("stats-rate-limit"), WAIT, |t| {
            t.starts_with("rate limited, next slot in 59 min ")
                || t.starts_with("rate limited, next slot in 1 h ")
        })
        .await;
    browser.assert_clean().await;
    browser.screenshot("flow-rate-limited").await;
    browser.close().await;
}
