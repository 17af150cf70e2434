//! `ferry serve` (issue 11, item 2 and 3): the HTTP API over a real
//! socket, against a real Redis, with real worker processes where jobs
//! must run; its errors, auth, limits, Redis failures, `/metrics` read by a
//! Prometheus text-format parser, and the OpenAPI document checked in.

use std::time::{Duration, Instant};

use ferry_tests::serve::{answer, get_text, parse_metrics, Env, Server};
use ferry_tests::{RedisServer, WorkerProcess};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A worker process of `env`'s Redis and prefix on `queue`, 4 slots.
fn worker(env: &Env, queue: &str) -> WorkerProcess {
    WorkerProcess::spawn(
        env.redis.url(),
        &env.prefix,
        &["--queue", queue, "--concurrency", "4"],
    )
}

/// Asserts an error answer: its status, its code, and a message.
fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

#[tokio::test]
async fn a_producer_enqueues_over_http_and_follows_its_jobs_to_their_results() {
    let env = Env::new("http", &[], &[]).await;
    let q = "emails";
    let (status, made) = env
        .post(
            &format!("/v1/queues/{q}/jobs"),
            json!({"type": "echo", "payload": {"message": "hi"}, "priority": "high"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let (status, job) = env.get(&format!("/v1/queues/{q}/jobs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&job["state"], &job["priority"], &job["type"]),
        (&json!("queued"), &json!("high"), &json!("echo"))
    );

    // A batch, and a job of the caller's own id.
    let (status, batch) = env
        .post(
            &format!("/v1/queues/{q}/jobs/batch"),
            json!({"jobs": [
                {"type": "echo", "payload": {"message": "one"}},
                {"type": "echo", "payload": {"message": "two"}, "id": "order-7"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let ids: Vec<String> = serde_json::from_value(batch["ids"].clone()).unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1], "order-7");
    // The same id again is refused.
    let again = env
        .post(
            &format!("/v1/queues/{q}/jobs"),
            json!({"type": "echo", "payload": {"message": "x"}, "id": "order-7"}),
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT, "duplicate_job");

    // A wait that times out answers with the job as it is.
    let started = Instant::now();
    let (status, waiting) = env
        .get(&format!("/v1/queues/{q}/jobs/{id}/wait?timeout_ms=300"))
        .await;
    assert_eq!(
        (status, &waiting["state"]),
        (StatusCode::OK, &json!("queued"))
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A worker runs them; each wait answers with the result.
    let _worker = worker(&env, q);
    for job in [&id, &ids[0], &ids[1]] {
        let (status, done) = env
            .get(&format!("/v1/queues/{q}/jobs/{job}/wait?timeout_ms=30000"))
            .await;
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(done["state"], "succeeded", "{done}");
        assert!(done["result"]["message"].is_string(), "{done}");
    }
    let (_, stats) = env.get(&format!("/v1/queues/{q}/stats")).await;
    assert_eq!(stats["counters"]["completed"], 3, "{stats}");
    let (_, queues) = env.get("/v1/queues").await;
    assert_eq!(queues[0]["queue"], q, "{queues}");
    let (_, workers) = env.get(&format!("/v1/queues/{q}/workers")).await;
    assert_eq!(workers.as_array().unwrap().len(), 1, "{workers}");
}

#[tokio::test]
async fn cancel_reprioritise_pause_and_dead_letters_over_http() {
    let env = Env::new("http", &[], &[]).await;
    let q = "jobs";
    // A scheduled job: re-prioritised, then cancelled (twice is fine);
    // cancelling a finished job is a conflict.
    let (_, made) = env
        .post(
            &format!("/v1/queues/{q}/jobs"),
            json!({"type": "echo", "payload": {"message": "later"}, "delay_ms": 600000}),
        )
        .await;
    let later = made["id"].as_str().unwrap().to_owned();
    let (status, moved) = env
        .post(
            &format!("/v1/queues/{q}/jobs/{later}/reprioritise"),
            json!({"priority": "critical"}),
        )
        .await;
    assert_eq!(
        (status, &moved["priority"]),
        (StatusCode::OK, &json!("critical"))
    );
    let bad = env
        .post(
            &format!("/v1/queues/{q}/jobs/{later}/reprioritise"),
            json!({"priority": "urgent"}),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(bad.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("priority"));
    for _ in 0..2 {
        let (status, c) = env
            .post(&format!("/v1/queues/{q}/jobs/{later}/cancel"), json!({}))
            .await;
        assert_eq!((status, &c["state"]), (StatusCode::OK, &json!("cancelled")));
    }
    let (_, job) = env.get(&format!("/v1/queues/{q}/jobs/{later}")).await;
    assert_eq!(job["state"], "cancelled");

    // Pause: a job enqueued meanwhile stays queued; resume runs it.
    let (status, p) = env.post(&format!("/v1/queues/{q}/pause"), json!({})).await;
    assert_eq!((status, &p["paused"]), (StatusCode::OK, &json!(true)));
    let _worker = worker(&env, q);
    let (_, made) = env
        .post(
            &format!("/v1/queues/{q}/jobs"),
            json!({"type": "always-fail", "payload": {}, "max_retries": 0}),
        )
        .await;
    let doomed = made["id"].as_str().unwrap().to_owned();
    let (_, still) = env
        .get(&format!(
            "/v1/queues/{q}/jobs/{doomed}/wait?timeout_ms=1500"
        ))
        .await;
    assert_eq!(still["state"], "queued", "paused: {still}");
    let (_, summary) = env.get(&format!("/v1/queues/{q}")).await;
    assert_eq!(summary["paused"], true);
    env.post(&format!("/v1/queues/{q}/resume"), json!({})).await;
    let (_, dead) = env
        .get(&format!(
            "/v1/queues/{q}/jobs/{doomed}/wait?timeout_ms=30000"
        ))
        .await;
    assert_eq!(dead["state"], "dead", "{dead}");
    let finished = env
        .post(&format!("/v1/queues/{q}/jobs/{doomed}/cancel"), json!({}))
        .await;
    assert_error(&finished, StatusCode::CONFLICT, "invalid_state");

    // The dead letter: listed, grouped, shown by job id, replayed (it dies
    // again), then purged.
    let (status, page) = env.get(&format!("/v1/queues/{q}/dead?limit=10")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["letters"][0]["job_id"], doomed.as_str(), "{page}");
    let (_, groups) = env.get(&format!("/v1/queues/{q}/dead/groups")).await;
    assert_eq!(groups["total"], 1, "{groups}");
    let (status, letter) = env.get(&format!("/v1/queues/{q}/dead/{doomed}")).await;
    assert_eq!(
        (status, &letter["type"]),
        (StatusCode::OK, &json!("always-fail"))
    );
    let (status, replayed) = env
        .post(&format!("/v1/queues/{q}/dead/{doomed}/replay"), json!({}))
        .await;
    assert_eq!((status, &replayed["count"]), (StatusCode::OK, &json!(1)));
    let (_, again) = env
        .get(&format!(
            "/v1/queues/{q}/jobs/{doomed}/wait?timeout_ms=30000"
        ))
        .await;
    assert_eq!(again["state"], "dead", "{again}");
    let unfiltered = env
        .post(&format!("/v1/queues/{q}/dead/replay"), json!({}))
        .await;
    assert_error(&unfiltered, StatusCode::BAD_REQUEST, "invalid_request");
    let r = env
        .http
        .delete(env.server.url(&format!("/v1/queues/{q}/dead")))
        .send()
        .await
        .unwrap();
    let (status, purged) = answer(r).await;
    assert_eq!((status, &purged["purged"]), (StatusCode::OK, &json!(1)));
    let gone = env.get(&format!("/v1/queues/{q}/dead/{doomed}")).await;
    assert_error(&gone, StatusCode::NOT_FOUND, "dead_letter_not_found");
}

#[tokio::test]
async fn bad_input_gets_a_json_error_with_a_stable_code() {
    let env = Env::new(
        "http",
        &["--max-body-bytes", "4096", "--max-batch", "3"],
        &[],
    )
    .await;
    let jobs = "/v1/queues/q/jobs";
    // A field of the wrong type, and a missing one: named.
    let wrong = env
        .post(
            jobs,
            json!({"type": "echo", "payload": {}, "max_retries": "three"}),
        )
        .await;
    assert_error(&wrong, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(wrong.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_retries"));
    let missing = env.post(jobs, json!({"payload": {}})).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(missing.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("type"));
    let unknown_field = env
        .post(jobs, json!({"type": "echo", "payload": {}, "prio": "high"}))
        .await;
    assert_error(&unknown_field, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(unknown_field.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("prio"));
    // Not JSON at all.
    let r = env
        .http
        .post(env.server.url(jobs))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(&answer(r).await, StatusCode::BAD_REQUEST, "invalid_request");
    // A bad job type, a bad queue name, a delay past 10 years.
    let empty_type = env.post(jobs, json!({"type": "", "payload": {}})).await;
    assert_error(&empty_type, StatusCode::BAD_REQUEST, "invalid_request");
    let bad_queue = env
        .post(
            "/v1/queues/no%20spaces/jobs",
            json!({"type": "echo", "payload": {}}),
        )
        .await;
    assert_error(&bad_queue, StatusCode::BAD_REQUEST, "invalid_queue_name");
    let far = env
        .post(
            jobs,
            json!({"type": "echo", "payload": {}, "delay_ms": u64::MAX}),
        )
        .await;
    assert_error(&far, StatusCode::BAD_REQUEST, "invalid_request");
    // Too large: the body, and the batch.
    let big = "x".repeat(8192);
    let oversized = env
        .post(jobs, json!({"type": "echo", "payload": {"message": big}}))
        .await;
    assert_error(
        &oversized,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let one = json!({"type": "echo", "payload": {}});
    let batch = env
        .post(
            "/v1/queues/q/jobs/batch",
            json!({"jobs": [one.clone(), one.clone(), one.clone(), one]}),
        )
        .await;
    assert_error(&batch, StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large");
    // Unknown things: a queue, a job, a dead letter, a route, a method; a
    // bad query parameter.
    assert_error(
        &env.get("/v1/queues/nobody/stats").await,
        StatusCode::NOT_FOUND,
        "queue_not_found",
    );
    assert_error(
        &env.get("/v1/queues/q/jobs/normal-1-0").await,
        StatusCode::NOT_FOUND,
        "job_not_found",
    );
    assert_error(
        &env.get("/v2/nothing").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let r = env
        .http
        .put(env.server.url("/v1/queues"))
        .send()
        .await
        .unwrap();
    assert_error(
        &answer(r).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    env.post(jobs, json!({"type": "echo", "payload": {}})).await;
    assert_error(
        &env.get("/v1/queues/q/dead?limit=many").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &env.get("/v1/queues/q/dead/1-1").await,
        StatusCode::NOT_FOUND,
        "dead_letter_not_found",
    );
}

#[tokio::test]
async fn tokens_guard_the_api_and_a_public_address_needs_one() {
    let env = Env::new(
        "http",
        &[],
        &[
            ("FERRY_TOKEN", "w-secret"),
            ("FERRY_READ_TOKEN", "r-secret"),
        ],
    )
    .await;
    let url = env.server.url("/v1/queues/q/jobs");
    let job = json!({"type": "echo", "payload": {}});
    let send = |token: Option<&str>, get: bool| {
        let mut req = if get {
            env.http.get(env.server.url("/v1/queues"))
        } else {
            env.http.post(&url).json(&job)
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { answer(req.send().await.unwrap()).await }
    };
    let missing = send(None, true).await;
    assert_error(&missing, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(
        &send(Some("nope"), true).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(send(Some("r-secret"), true).await.0, StatusCode::OK);
    assert_error(
        &send(Some("r-secret"), false).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(send(Some("w-secret"), false).await.0, StatusCode::CREATED);
    assert_eq!(send(Some("w-secret"), true).await.0, StatusCode::OK);
    // Health and the document need none; metrics need the read token.
    assert_eq!(env.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(env.get("/openapi.json").await.0, StatusCode::OK);
    let r = env
        .http
        .get(env.server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = env
        .http
        .get(env.server.url("/metrics"))
        .bearer_auth("r-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A non-loopback address without a token: refused, with the fix.
    let out = std::process::Command::new(ferry_tests::ferry_bin())
        .args(["--redis", env.redis.url(), "serve", "--listen", "0.0.0.0:0"])
        .env_remove("FERRY_TOKEN")
        .env_remove("FERRY_READ_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("refusing to listen on 0.0.0.0"), "{stderr}");
    assert!(stderr.contains("FERRY_TOKEN"), "{stderr}");

    // --read-only refuses changes even with the write token.
    let ro = Server::start(env.redis.url(), &env.prefix, &["--read-only"], &[]);
    let r = env
        .http
        .post(ro.url("/v1/queues/q/pause"))
        .send()
        .await
        .unwrap();
    assert_error(&answer(r).await, StatusCode::FORBIDDEN, "forbidden");
    let r = env.http.get(ro.url("/v1/queues")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // /v1/access tells a page (the dashboard) what its token allows.
    let access = |server: &Server, token: Option<&str>| {
        let mut req = env.http.get(server.url("/v1/access"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { answer(req.send().await.unwrap()).await }
    };
    assert_error(
        &access(&env.server, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, read) = access(&env.server, Some("r-secret")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        read,
        json!({"write": false, "read_only": false, "token_required": true})
    );
    let (_, write) = access(&env.server, Some("w-secret")).await;
    assert_eq!(write["write"], true);
    let (_, ro_access) = access(&ro, None).await;
    assert_eq!(
        ro_access,
        json!({"write": false, "read_only": true, "token_required": false})
    );
    // The dashboard's files need no token (they hold no data); its reads do.
    for (path, kind) in [
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/limits.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let r = env.http.get(env.server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        assert!(
            header("content-security-policy").contains("script-src 'self'"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn jobs_page_by_state_and_streams_show_lag_and_oldest_ages() {
    let env = Env::new("http", &[], &[]).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, body) = env
            .post(
                "/v1/queues/q/jobs",
                json!({"type": "echo", "payload": {"message": format!("m{i}")}, "priority": "high"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = env
        .post(
            "/v1/queues/q/jobs",
            json!({"type": "echo", "payload": {}, "delay_ms": 3_600_000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Queued: two pages, in claim order, the second the last.
    let (status, first) = env.get("/v1/queues/q/jobs?state=queued&limit=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["state"], "queued");
    let listed: Vec<&str> = first["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[0].as_str(), ids[1].as_str()]);
    let next = first["next"].as_str().expect("a next page");
    let (_, second) = env
        .get(&format!(
            "/v1/queues/q/jobs?state=queued&limit=2&cursor={next}"
        ))
        .await;
    assert_eq!(second["jobs"][0]["id"], ids[2].as_str());
    assert_eq!(second["next"], Value::Null);
    let (_, scheduled) = env.get("/v1/queues/q/jobs?state=scheduled").await;
    assert_eq!(scheduled["jobs"][0]["state"], "scheduled");
    assert!(scheduled["jobs"][0]["run_at"].as_u64().is_some());
    // One job's detail has its payload.
    let (_, one) = env.get(&format!("/v1/queues/q/jobs/{}", ids[1])).await;
    assert_eq!(one["payload"], json!({"message": "m1"}));

    // The streams: the high one holds three, none delivered yet.
    let (status, streams) = env.get("/v1/queues/q/streams").await;
    assert_eq!(status, StatusCode::OK, "{streams}");
    let high = &streams[1];
    assert_eq!(high["priority"], "high");
    assert_eq!(
        (high["length"].as_u64(), high["pending"].as_u64()),
        (Some(3), Some(0))
    );
    assert!(high["oldest_waiting_age_ms"].as_u64().is_some(), "{high}");
    assert_eq!(high["oldest_pending_id"], Value::Null);

    // A worker runs them: nothing queued, three finished.
    let _worker = worker(&env, "q");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, finished) = env.get("/v1/queues/q/jobs?state=finished").await;
        if finished["jobs"].as_array().is_some_and(|j| j.len() == 3) {
            assert!(finished["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|j| j["state"] == "succeeded"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the jobs did not finish: {finished}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, queued) = env.get("/v1/queues/q/jobs?state=queued").await;
    assert_eq!(queued["jobs"], json!([]));

    // Bad input: a 400 naming what is wrong; an unknown queue, a 404.
    for bad in [
        "/v1/queues/q/jobs?state=everything",
        "/v1/queues/q/jobs",
        "/v1/queues/q/jobs?state=dead&cursor=1:1-1",
        "/v1/queues/q/jobs?state=queued&limit=0",
        "/v1/queues/q/jobs?state=queued&limit=5000",
    ] {
        assert_error(
            &env.get(bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
    }
    assert_error(
        &env.get("/v1/queues/nobody/jobs?state=queued").await,
        StatusCode::NOT_FOUND,
        "queue_not_found",
    );
    assert_error(
        &env.get("/v1/queues/nobody/streams").await,
        StatusCode::NOT_FOUND,
        "queue_not_found",
    );
}

#[tokio::test]
async fn redis_down_or_stuck_gives_a_503_with_retry_after_never_a_hang() {
    let redis = RedisServer::start_own(&[]).await;
    let mut env = Env::on(redis, "http", &["--request-timeout", "1"], &[]);
    assert_eq!(env.get("/healthz").await.0, StatusCode::OK);

    // Stuck (SIGSTOP): the server's own deadline answers.
    env.redis.pause();
    for path in ["/healthz", "/v1/queues", "/v1/queues/q/jobs/x"] {
        let started = Instant::now();
        let r = env.http.get(env.server.url(path)).send().await.unwrap();
        let retry_after = r.headers().get("retry-after").cloned();
        let got = answer(r).await;
        assert_error(&got, StatusCode::SERVICE_UNAVAILABLE, "redis_unavailable");
        assert_eq!(retry_after.unwrap(), "1");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    env.redis.resume();
    ferry_tests::wait_until(Duration::from_secs(20), "healthy again", || async {
        env.get("/healthz").await.0 == StatusCode::OK
    })
    .await;

    // Down (killed): refused connections answer at once.
    env.redis.kill();
    let posted = env
        .post("/v1/queues/q/jobs", json!({"type": "echo", "payload": {}}))
        .await;
    assert_error(
        &posted,
        StatusCode::SERVICE_UNAVAILABLE,
        "redis_unavailable",
    );
    let r = env
        .http
        .get(env.server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_with_counts_and_histograms_per_priority() {
    let env = Env::new("http", &[], &[]).await;
    let q = "metered";
    let mut ids = Vec::new();
    for (priority, n) in [("high", 2), ("low", 3)] {
        for _ in 0..n {
            let (_, made) = env
                .post(
                    &format!("/v1/queues/{q}/jobs"),
                    json!({"type": "echo", "payload": {"message": "m"}, "priority": priority}),
                )
                .await;
            ids.push(made["id"].as_str().unwrap().to_owned());
        }
    }
    // The worker serves its own metrics too (--metrics-listen).
    let worker = WorkerProcess::spawn(
        env.redis.url(),
        &env.prefix,
        &["--queue", q, "--metrics-listen", "127.0.0.1:0"],
    );
    for id in &ids {
        let (_, done) = env
            .get(&format!("/v1/queues/{q}/jobs/{id}/wait?timeout_ms=30000"))
            .await;
        assert_eq!(done["state"], "succeeded");
    }
    let log = worker.log_text();
    let worker_metrics = log
        .split("worker metrics at http://")
        .nth(1)
        .and_then(|rest| rest.split("/metrics").next())
        .map(|addr| format!("http://{addr}/metrics"))
        .unwrap_or_else(|| panic!("the worker did not say where its metrics are: {log}"));
    let text = get_text(&env.http, &worker_metrics).await;
    let own = parse_metrics(&text);
    let completed = own
        .samples
        .iter()
        .find(|s| s.metric == "ferry_worker_jobs_completed_total")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        matches!(completed.value, prometheus_parse::Value::Counter(v) if v == 5.0),
        "{text}"
    );
    assert!(
        completed
            .labels
            .get("worker")
            .is_some_and(|w| !w.is_empty()),
        "{text}"
    );
    assert!(own.docs.contains_key("ferry_worker_claimed_jobs"), "{text}");
    // Completed jobs reach the histograms with the worker's next timing
    // flush (about a second): wait for the count to show.
    let scrape = || async {
        let r = env
            .http
            .get(env.server.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        r.text().await.unwrap()
    };
    let value = |scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("no {name} {labels:?}"))
    };
    ferry_tests::wait_until(Duration::from_secs(20), "histograms counted", || async {
        let s = parse_metrics(&scrape().await);
        matches!(
            value(&s, "ferry_job_run_seconds", &[("queue", q), ("priority", "low")]),
            prometheus_parse::Value::Histogram(ref h) if h.iter().any(|b| b.less_than.is_infinite() && b.count == 3.0)
        )
    })
    .await;
    let text = scrape().await;
    let s = parse_metrics(&text);
    let counter =
        |name: &str, priority: &str| match value(&s, name, &[("queue", q), ("priority", priority)])
        {
            prometheus_parse::Value::Counter(v) => v,
            other => panic!("{name} is not a counter: {other:?}"),
        };
    assert_eq!(counter("ferry_jobs_completed_total", "high"), 2.0);
    assert_eq!(counter("ferry_jobs_completed_total", "low"), 3.0);
    assert_eq!(counter("ferry_jobs_completed_total", "normal"), 0.0);
    assert_eq!(counter("ferry_jobs_dead_total", "low"), 0.0);
    match value(
        &s,
        "ferry_job_wait_seconds",
        &[("queue", q), ("priority", "high")],
    ) {
        prometheus_parse::Value::Histogram(h) => {
            let inf = h.iter().find(|b| b.less_than.is_infinite()).unwrap();
            assert_eq!(inf.count, 2.0, "{text}");
            // Cumulative: never decreasing with the edge.
            assert!(h.windows(2).all(|w| w[0].count <= w[1].count), "{h:?}");
        }
        other => panic!("not a histogram: {other:?}"),
    }
    match value(
        &s,
        "ferry_queue_waiting_jobs",
        &[("queue", q), ("priority", "low")],
    ) {
        prometheus_parse::Value::Gauge(v) => assert_eq!(v, 0.0),
        other => panic!("{other:?}"),
    }
    match value(&s, "ferry_workers", &[("queue", q)]) {
        prometheus_parse::Value::Gauge(v) => assert_eq!(v, 1.0),
        other => panic!("{other:?}"),
    }
    // Each stream's group: nothing pending or waiting once all ran.
    for family in [
        "ferry_stream_oldest_pending_age_seconds",
        "ferry_stream_oldest_waiting_age_seconds",
    ] {
        match value(&s, family, &[("queue", q), ("priority", "high")]) {
            prometheus_parse::Value::Gauge(v) => assert_eq!(v, 0.0, "{family}"),
            other => panic!("{family}: {other:?}"),
        }
    }
    if text.contains("ferry_stream_lag{") {
        match value(&s, "ferry_stream_lag", &[("queue", q), ("priority", "low")]) {
            prometheus_parse::Value::Gauge(v) => assert_eq!(v, 0.0),
            other => panic!("{other:?}"),
        }
    }
    match value(&s, "ferry_up", &[]) {
        prometheus_parse::Value::Gauge(v) => assert_eq!(v, 1.0),
        other => panic!("{other:?}"),
    }
    // Every family has its HELP and TYPE, once.
    for family in [
        "ferry_jobs_completed_total",
        "ferry_job_wait_seconds",
        "ferry_redis_errors_total",
        "ferry_stream_oldest_pending_age_seconds",
    ] {
        assert_eq!(
            text.matches(&format!("# TYPE {family} ")).count(),
            1,
            "{family}"
        );
        assert!(s.docs.contains_key(family), "{family}");
    }
}

#[tokio::test]
async fn the_served_openapi_document_is_the_one_checked_in() {
    let env = Env::new("http", &[], &[]).await;
    let r = env
        .http
        .get(env.server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let served: Value = r.json().await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../cli/openapi.json");
    let checked_in: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(
        served == checked_in,
        "cli/openapi.json is stale: regenerate it with `cargo run -p ferry-queue-cli -- openapi > cli/openapi.json`"
    );
    // Every route the tests use is in it.
    for route in [
        "/v1/queues/{queue}/jobs",
        "/v1/queues/{queue}/jobs/batch",
        "/v1/queues/{queue}/jobs/{id}",
        "/v1/queues/{queue}/jobs/{id}/wait",
        "/v1/queues/{queue}/dead",
        "/metrics",
        "/healthz",
    ] {
        assert!(served["paths"].get(route).is_some(), "{route}");
    }
}
