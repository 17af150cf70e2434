//! The dashboard's queue page shows a Limits panel: the concurrency
//! limits (queue, every key, each gate's running and waiting jobs) and the
//! rate limits (queue, every key, each gate's limit, hold, next slot and
//! parked jobs). Headless Chromium as in `dashboard.rs`: without it the
//! test says so and passes, unless `FERRY_BROWSER_TESTS=required`. The
//! panel's script (`/ui/limits.js`, a module `app.js` imports) is checked
//! to be served either way.

use std::time::Duration;

use ferry_tests::browser::Browser;
use ferry_tests::queue;
use ferry_tests::serve::Env;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The longest the page may take to show a change (it refreshes every 2 s).
const WAIT: Duration = Duration::from_secs(20);

fn testid(id: &str) -> String {
    format!(r#"[data-testid="{id}"]"#)
}

/// A cell of the gates table's row of `gate`.
fn cell(gate: &str, id: &str) -> String {
    format!(r#"[data-testid="limits-gate-row"][data-gate="{gate}"] [data-testid="{id}"]"#)
}

#[tokio::test]
async fn the_queue_page_shows_the_concurrency_and_rate_limits() {
    let env = Env::new("flow-dash-limits", &[], &[]).await;
    let (redis, prefix, server, client) = (&env.redis, &env.prefix, &env.server, &env.http);

    // The panel's module is served as the page's script is, and imported.
    let r = client
        .get(server.url("/ui/limits.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/javascript"), "{kind}");
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("export function limitsView"));
    let app = env.text("/ui/app.js").await;
    assert!(app.contains("from './limits.js'"));

    let Some(browser) = Browser::start().await else {
        return;
    };
    let send = |method: Method, path: &str, body: serde_json::Value| {
        client.request(method, server.url(path)).json(&body).send()
    };
    for (method, path, body) in [
        (
            Method::PATCH,
            "/v1/queues/reports/settings",
            json!({"concurrency": 10, "key_rate_limit": "5/1s"}),
        ),
        (
            Method::PUT,
            "/v1/queues/reports/concurrency/type:mail",
            json!({"limit": 3}),
        ),
        (
            Method::PUT,
            "/v1/queues/reports/rate_limits/type:echo",
            json!({"rate_limit": "1/1h"}),
        ),
    ] {
        let r = send(method, path, body).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    for n in 0..2 {
        let r = send(
            Method::POST,
            "/v1/queues/reports/jobs",
            json!({"type": "echo", "payload": {"n": n}}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // One claim starts the hour's only echo; the other is parked.
    let mut conn = redis.conn().await;
    let worker = queue(prefix, "reports").consumer("w");
    assert_eq!(worker.claim(&mut conn, 10).await.unwrap().len(), 1);

    browser.goto(&server.url("/#/queues/reports")).await;
    browser
        .wait_text(&testid("limits-queue-concurrency"), WAIT, |t| t == "10")
        .await;
    browser
        .wait_text(&testid("limits-queue-rate"), WAIT, |t| t == "no limit")
        .await;
    browser
        .wait_text(&testid("limits-each-key-rate"), WAIT, |t| t == "5/1s")
        .await;
    browser
        .wait_text(&cell("type:mail", "gate-concurrency"), WAIT, |t| t == "3")
        .await;
    browser
        .wait_text(&cell("type:echo", "gate-rate-limit"), WAIT, |t| t == "1/1h")
        .await;
    browser
        .wait_text(&cell("type:echo", "gate-rate-waiting"), WAIT, |t| t == "1")
        .await;
    browser
        .wait_text(&cell("type:echo", "gate-next-slot"), WAIT, |t| {
            t.starts_with("in 59 min ") || t.starts_with("in 1 h ")
        })
        .await;
    browser
        .wait_text(&testid("settings-key-rate-limit"), WAIT, |t| t == "5/1s")
        .await;
    browser.assert_clean().await;
    browser.screenshot("flow-limits-panel").await;
    browser.close().await;
}
