//! The operator's surface for a queue's settings and events (issue 20
//! part 7): `ferry settings` and `ferry events [--follow]`, and the HTTP
//! routes for the same (`/v1/queues/{queue}/settings`, `/results`,
//! `/events`, `/events/stream` as server-sent events), and the HTTP batch
//! enqueue's idempotency key. Real Redis, a real `ferry serve`, real
//! `ferry` processes.

use std::time::Duration;

use ferry_tests::cli::{command, ferry};
use ferry_tests::serve::{http, Server};
use ferry_tests::{unique, RedisServer, WorkerProcess};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

struct Env {
    redis: RedisServer,
    prefix: String,
    server: Server,
    http: reqwest::Client,
}

impl Env {
    async fn new() -> Self {
        let redis = RedisServer::start().await;
        let prefix = unique("ops");
        let server = Server::start(redis.url(), &prefix, &[], &[]);
        Self {
            redis,
            prefix,
            server,
            http: http(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.http.request(method, self.server.url(path));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text:?}: {e}"));
        (status, v)
    }

    async fn enqueue(&self, queue: &str, message: &str) -> String {
        let (st, v) = self
            .send(
                reqwest::Method::POST,
                &format!("/v1/queues/{queue}/jobs"),
                Some(json!({"type": "echo", "payload": {"message": message}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn settings_are_shown_and_changed_from_the_cli_and_over_http() {
    let env = Env::new().await;
    let (get, patch) = (reqwest::Method::GET, reqwest::Method::PATCH);
    let path = "/v1/queues/mail/settings";
    let (st, v) = env.send(get.clone(), path, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "a queue nobody used: {v}");

    env.enqueue("mail", "one").await;
    let (st, v) = env.send(get.clone(), path, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v,
        json!({"queue": "mail", "paused": false, "max_depth": null,
               "retention_ms": 86_400_000, "retention_count": 10_000, "events": null,
               "rate_limit": null, "concurrency": null, "key_concurrency": null,
               "weights": null})
    );

    // A change: only the fields given; the settings after in the answer.
    let (st, v) = env
        .send(
            patch.clone(),
            path,
            Some(json!({"max_depth": 2, "retention_ms": 60_000, "events": 1000})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (
            &v["max_depth"],
            &v["retention_ms"],
            &v["retention_count"],
            &v["events"]
        ),
        (&json!(2), &json!(60_000), &json!(10_000), &json!(1000))
    );
    // ... which the fleet acts on: the third job does not fit.
    env.enqueue("mail", "two").await;
    let (st, v) = env
        .send(
            reqwest::Method::POST,
            "/v1/queues/mail/jobs",
            Some(json!({"type": "echo", "payload": {"message": "three"}})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("queue_full"))
    );

    // A bad field writes nothing, not even the good ones beside it.
    for bad in [
        json!({"events": null, "max_depth": 0}),
        json!({"events": 0}),
        json!({"retention_ms": -1}),
        json!({"max_depth": "ten"}),
        json!({"paused": true}),
    ] {
        let (st, v) = env.send(patch.clone(), path, Some(bad.clone())).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{bad}: {v}"
        );
    }
    let (_, v) = env.send(get.clone(), path, None).await;
    assert_eq!(
        (&v["max_depth"], &v["events"]),
        (&json!(2), &json!(1000)),
        "unchanged"
    );

    // null turns a limit off.
    let (st, v) = env
        .send(patch.clone(), path, Some(json!({"max_depth": null})))
        .await;
    assert_eq!((st, &v["max_depth"]), (StatusCode::OK, &Value::Null));
    env.enqueue("mail", "three").await;

    // The CLI shows the same, changes what it is given, and names the
    // fields as redis-cli shows them.
    let (url, prefix) = (env.redis.url(), env.prefix.as_str());
    let shown = ferry(url, prefix, &["settings", "mail", "--json"])
        .await
        .ok_json();
    let (_, over_http) = env.send(get.clone(), path, None).await;
    assert_eq!(shown, over_http);
    let changed = ferry(
        url,
        prefix,
        &[
            "settings",
            "mail",
            "--events",
            "off",
            "--retention-count",
            "5",
            "--max-depth",
            "100",
            "--json",
        ],
    )
    .await
    .ok_json();
    assert_eq!(
        (
            &changed["events"],
            &changed["retention_count"],
            &changed["retention_ms"],
            &changed["max_depth"]
        ),
        (&Value::Null, &json!(5), &json!(60_000), &json!(100))
    );
    let mut conn = env.redis.conn().await;
    let hash: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{prefix}:{{mail}}:settings"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(hash.get("retention_count").map(String::as_str), Some("5"));
    assert_eq!(hash.get("max_depth").map(String::as_str), Some("100"));
    assert!(!hash.contains_key("events"));
    let text = ferry(url, prefix, &["settings", "mail"]).await;
    text.assert_code(0);
    assert!(
        text.stdout.contains("max_depth: 100\n") && text.stdout.contains("events: off\n"),
        "{}",
        text.stdout
    );
    let bad = ferry(url, prefix, &["settings", "mail", "--max-depth", "0"]).await;
    bad.assert_code(1);
    assert!(bad.one_error_line().contains("max_depth 0"));

    // Clearing the records: --yes on the CLI; DELETE over HTTP.
    let unconfirmed = ferry(url, prefix, &["settings", "mail", "--clear-results"]).await;
    unconfirmed.assert_code(64);
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}:{{mail}}:results"))
        .arg("a")
        .arg("{}")
        .arg("b")
        .arg("{}")
        .query_async(&mut conn)
        .await
        .unwrap();
    let cleared = ferry(
        url,
        prefix,
        &["settings", "mail", "--clear-results", "--yes", "--json"],
    )
    .await
    .ok_json();
    assert_eq!(cleared["cleared"], 2);
    let (st, v) = env
        .send(reqwest::Method::DELETE, "/v1/queues/mail/results", None)
        .await;
    assert_eq!(
        (st, v),
        (StatusCode::OK, json!({"queue": "mail", "cleared": 0}))
    );
}

#[tokio::test]
async fn a_batch_sent_twice_with_one_idempotency_key_is_written_once() {
    let env = Env::new().await;
    let batch = json!({
        "idempotency_key": "import-2026-12-07",
        "jobs": [
            {"type": "echo", "payload": {"message": "a"}},
            {"type": "echo", "payload": {"message": "b"}},
        ],
    });
    let post = reqwest::Method::POST;
    let (st, first) = env
        .send(
            post.clone(),
            "/v1/queues/mail/jobs/batch",
            Some(batch.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    let (st, again) = env
        .send(post.clone(), "/v1/queues/mail/jobs/batch", Some(batch))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{again}");
    assert_eq!(first["ids"], again["ids"], "the same ids");
    let mut conn = env.redis.conn().await;
    let len: u64 = redis::cmd("XLEN")
        .arg(format!("{}:{{mail}}:normal", env.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 2, "written once");
    let (st, v) = env
        .send(
            post,
            "/v1/queues/mail/jobs/batch",
            Some(json!({"idempotency_key": "a b", "jobs": []})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{v}"
    );
}

/// Reads server-sent events from `r` until `done` says the events seen
/// (as `(id, event, data)`) are enough; at most 30 s.
async fn read_sse(
    r: &mut reqwest::Response,
    mut done: impl FnMut(&[(String, String, Value)]) -> bool,
) -> Vec<(String, String, Value)> {
    let mut buf = String::new();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&seen) {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .unwrap_or_else(|_| panic!("events seen: {seen:?}"))
            .unwrap()
            .expect("the stream is open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let message: String = buf.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
            for line in message.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.to_owned();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !data.is_empty() {
                seen.push((id, event, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    seen
}

#[tokio::test]
async fn events_are_read_and_followed_from_the_cli_and_as_server_sent_events() {
    let env = Env::new().await;
    let (url, prefix) = (env.redis.url().to_owned(), env.prefix.clone());
    ferry(&url, &prefix, &["settings", "mail", "--events", "10000"])
        .await
        .assert_code(0);
    let first = env.enqueue("mail", "one").await;

    // What is kept, oldest first: one JSON object per line.
    let kept = ferry(&url, &prefix, &["events", "mail", "--json"]).await;
    kept.assert_code(0);
    let lines: Vec<Value> = kept
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", kept.stdout);
    assert_eq!(
        (lines[0]["event"].as_str(), lines[0]["job_id"].as_str()),
        (Some("enqueued"), Some(first.as_str()))
    );
    let (st, page) = env
        .send(
            reqwest::Method::GET,
            "/v1/queues/mail/events?after=0&limit=10",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(page["events"][0], lines[0]);
    assert_eq!(page["next"], lines[0]["entry_id"]);
    let (st, v) = env
        .send(reqwest::Method::GET, "/v1/queues/mail/events?after=$", None)
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    // --follow prints what comes next, until stopped.
    let mut follow = command(&url, &prefix, &["events", "mail", "--follow", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(follow.stdout.take().unwrap()).lines();
    let line = out.next_line().await.unwrap().unwrap();
    assert!(line.contains(&first), "the kept event first: {line}");

    let second = env.enqueue("mail", "two").await;
    let line = tokio::time::timeout(Duration::from_secs(30), out.next_line())
        .await
        .expect("--follow prints the new event")
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["job_id"].as_str()),
        (Some("enqueued"), Some(second.as_str()))
    );
    follow.kill().await.unwrap();

    // A worker runs both: over SSE (from the start of the stream) each
    // job's events come in causal order.
    let mut worker = WorkerProcess::spawn(&url, &prefix, &["--queue", "mail"]);
    let mut sse = env
        .http
        .get(env.server.url("/v1/queues/mail/events/stream?after=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    assert!(sse.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let seen = read_sse(&mut sse, |seen| {
        seen.iter().filter(|(_, e, _)| e == "succeeded").count() == 2
    })
    .await;
    for id in [&first, &second] {
        let order: Vec<&str> = seen
            .iter()
            .filter(|(_, _, d)| d["job_id"] == **id)
            .map(|(_, e, _)| e.as_str())
            .collect();
        assert_eq!(
            order,
            ["enqueued", "started", "succeeded"],
            "{id}: {seen:?}"
        );
    }
    for (id, event, data) in &seen {
        assert_eq!(
            (id, event),
            (
                &data["entry_id"].as_str().unwrap().to_owned(),
                &data["event"].as_str().unwrap().to_owned()
            )
        );
    }

    // Reconnecting with Last-Event-ID starts after that event.
    let mut again = env
        .http
        .get(env.server.url("/v1/queues/mail/events/stream"))
        .header("Last-Event-ID", &seen[0].0)
        .send()
        .await
        .unwrap();
    let resumed = read_sse(&mut again, |s| !s.is_empty()).await;
    assert_eq!(resumed[0], seen[1]);
    worker.terminate();
    worker.wait(Duration::from_secs(60)).await;
}
