//! The HTTP side of flow control: `rate_limit` in `PATCH`/`GET
//! /v1/queues/{queue}/settings` (a bad one a 400 naming what is wrong),
//! the limit's live state in the stats route and in `/metrics`, and the
//! enqueue route's `unique` object (200 with `duplicate`, 409
//! `unique_key_held` when asked, 400 for what cannot go with it).

use std::time::Duration;

use ferry_tests::queue;
use ferry_tests::serve::{parse_metrics, Env};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// `/metrics` of `api`'s server (200), parsed.
async fn metrics(api: &Env) -> prometheus_parse::Scrape {
    let r = api
        .http
        .get(api.server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    parse_metrics(&r.text().await.unwrap())
}

/// Asserts status `status` with error code `code`; returns the message.
fn error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_owned()
}

/// The gauge `name` of queue `q` in `scrape`.
fn gauge(scrape: &prometheus_parse::Scrape, name: &str, q: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get("queue") == Some(q))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            ref other => panic!("{name} is not a gauge: {other:?}"),
        })
}

#[tokio::test]
async fn settings_take_a_rate_limit_and_stats_and_metrics_show_its_state() {
    let api = Env::new("flow-http-limit", &[], &[]).await;
    let (redis, prefix) = (&api.redis, &api.prefix);
    let settings = "/v1/queues/reports/settings";
    let patch = |body: Value| api.send(Method::PATCH, settings, Some(body));

    let (st, v) = patch(json!({"rate_limit": "1000/1m:100", "max_depth": 50})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["rate_limit"], &v["max_depth"]),
        (&json!("1000/1m"), &json!(50))
    );
    // Bad ones: 400 naming the field and what is wrong; nothing written,
    // not even the other fields of the change.
    for (body, says) in [
        (json!({"rate_limit": "0/1s"}), "0 starts per period"),
        (
            json!({"rate_limit": "5/0s"}),
            "the period must be 1 ms or more",
        ),
        (
            json!({"rate_limit": "5/1s:9"}),
            "the burst must be 1 to 5, got 9",
        ),
        (
            json!({"rate_limit": "fast", "max_depth": 7}),
            "use <n>/<period>[:<burst>]",
        ),
        (json!({"rate_limit": 50}), "invalid type"),
    ] {
        let message = error(
            &patch(body.clone()).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
        assert!(
            message.contains("field `rate_limit`") && message.contains(says),
            "{body}: {message}"
        );
    }
    let (st, v) = api.send(Method::GET, settings, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (&v["rate_limit"], &v["max_depth"]),
        (&json!("1000/1m"), &json!(50))
    );
    // null removes it; a change without the field leaves it.
    let (_, v) = patch(json!({"rate_limit": "1/1h"})).await;
    assert_eq!(v["rate_limit"], "1/1h");
    let (_, v) = patch(json!({"retention_count": 5})).await;
    assert_eq!(v["rate_limit"], "1/1h", "{v}");

    // Two jobs, one claim: the only slot of the hour is taken.
    for n in 0..2 {
        let job = json!({"type": "report", "payload": {"n": n}});
        let (st, _) = api
            .send(Method::POST, "/v1/queues/reports/jobs", Some(job))
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let scrape = metrics(&api).await;
    assert_eq!(
        gauge(&scrape, "ferry_queue_rate_limited", "reports"),
        Some(0.0)
    );
    assert_eq!(
        gauge(
            &scrape,
            "ferry_queue_rate_limit_next_slot_seconds",
            "reports"
        ),
        Some(0.0)
    );
    let per_hour = gauge(&scrape, "ferry_queue_rate_limit_per_second", "reports").unwrap();
    assert!((per_hour * 3600.0 - 1.0).abs() < 1e-9, "{per_hour}");
    let mut conn = redis.conn().await;
    let worker = queue(prefix, "reports").consumer("w");
    assert_eq!(worker.claim(&mut conn, 2).await.unwrap().len(), 1);

    let (st, v) = api
        .send(Method::GET, "/v1/queues/reports/stats", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let rl = &v["rate_limit"];
    assert_eq!(
        (&rl["limit"], &rl["limited"], &rl["slots_free"]),
        (&json!("1/1h"), &json!(true), &json!(0)),
        "{v}"
    );
    let next_in = rl["next_slot_in_ms"].as_u64().unwrap();
    assert!((3_500_000..=3_600_000).contains(&next_in), "{v}");
    let scrape = metrics(&api).await;
    assert_eq!(
        gauge(&scrape, "ferry_queue_rate_limited", "reports"),
        Some(1.0)
    );
    let next = gauge(
        &scrape,
        "ferry_queue_rate_limit_next_slot_seconds",
        "reports",
    )
    .unwrap();
    assert!((3_500.0..=3_600.0).contains(&next), "{next}");

    // A hold on another queue, which has jobs but no limit.
    let (st, _) = api
        .send(
            Method::POST,
            "/v1/queues/webhooks/jobs",
            Some(json!({"type": "hook", "payload": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let scrape = metrics(&api).await;
    assert_eq!(
        gauge(&scrape, "ferry_queue_rate_limited", "webhooks"),
        Some(0.0)
    );
    assert_eq!(
        gauge(&scrape, "ferry_queue_rate_limit_per_second", "webhooks"),
        None
    );
    queue(prefix, "webhooks")
        .hold(&mut conn, Duration::from_secs(30))
        .await
        .unwrap();
    let (_, v) = api
        .send(Method::GET, "/v1/queues/webhooks/stats", None)
        .await;
    let rl = &v["rate_limit"];
    assert_eq!(
        (&rl["limit"], &rl["limited"]),
        (&Value::Null, &json!(true)),
        "{v}"
    );
    assert_eq!(rl["next_slot_at"], rl["held_until"], "{v}");
    let scrape = metrics(&api).await;
    assert_eq!(
        gauge(&scrape, "ferry_queue_rate_limited", "webhooks"),
        Some(1.0)
    );
    let next = gauge(
        &scrape,
        "ferry_queue_rate_limit_next_slot_seconds",
        "webhooks",
    )
    .unwrap();
    assert!((20.0..=30.0).contains(&next), "{next}");

    // Removed: the stats say so.
    let (_, v) = patch(json!({"rate_limit": null})).await;
    assert_eq!(v["rate_limit"], Value::Null);
    let (_, v) = api
        .send(Method::GET, "/v1/queues/reports/stats", None)
        .await;
    assert_eq!(v["rate_limit"], Value::Null, "{v}");
}

#[tokio::test]
async fn the_enqueue_route_takes_a_unique_object() {
    let api = Env::new("flow-http-unique", &[], &[]).await;
    let (redis, prefix) = (&api.redis, &api.prefix);
    let jobs = "/v1/queues/accounts/jobs";
    let post = |body: Value| api.send(Method::POST, jobs, Some(body));

    // By arguments: a new job is 201; the same arguments in another order
    // are 200 with the first job's id.
    let (st, first) =
        post(json!({"type": "sync", "payload": {"a": 1, "b": [1, 2]}, "unique": {}})).await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(
        first["unique_key"].as_str().unwrap().starts_with("sync:"),
        "{first}"
    );
    assert_eq!(first.get("duplicate"), None, "{first}");
    let (st, again) =
        post(json!({"type": "sync", "payload": {"b": [1, 2], "a": 1}, "unique": {}})).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(
        again,
        json!({"queue": "accounts", "id": id, "unique_key": first["unique_key"],
               "duplicate": {"of": id, "kind": "existing"}})
    );
    // The same key from the command line is the same job.
    let r = ferry_tests::cli::ferry(
        redis.url(),
        prefix,
        &[
            "enqueue",
            "accounts",
            "--type",
            "sync",
            "--payload",
            r#"{"a":1,"b":[1,2]}"#,
            "--unique",
        ],
    )
    .await;
    r.assert_code(0);
    assert_eq!(r.stdout, format!("deduplicated into job {id}\n"));
    // Asked to fail: 409 unique_key_held naming the holder.
    let message = error(
        &post(json!({"type": "sync", "payload": {"a": 1, "b": [1, 2]},
                     "unique": {"error_on_duplicate": true}}))
        .await,
        StatusCode::CONFLICT,
        "unique_key_held",
    );
    assert!(message.contains(&id), "{message}");
    // A plain enqueue still answers as before.
    let (st, plain) = post(json!({"type": "sync", "payload": {"a": 1, "b": [1, 2]}})).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(plain.as_object().unwrap().len(), 2, "{plain}");

    // An explicit key with a debounce: the duplicate replaces the payload.
    let body = |v: u32| {
        json!({"type": "digest", "payload": {"v": v},
                               "unique": {"key": "digest:team", "debounce_ms": 3_600_000}})
    };
    let (st, d1) = post(body(1)).await;
    assert_eq!(st, StatusCode::CREATED, "{d1}");
    let (st, d2) = post(body(2)).await;
    assert_eq!(st, StatusCode::OK, "{d2}");
    assert_eq!(
        d2["duplicate"],
        json!({"of": d1["id"], "kind": "debounced"})
    );
    let (_, job) = api
        .send(
            Method::GET,
            &format!("{jobs}/{}", d1["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (&job["state"], &job["payload"]),
        (&json!("scheduled"), &json!({"v": 2})),
        "{job}"
    );

    // Until started, and a throttle.
    for unique in [
        json!({"key": "u", "until": "started"}),
        json!({"key": "t", "throttle_ms": 60_000}),
    ] {
        let job = json!({"type": "t", "payload": {}, "unique": unique});
        let (a, b) = (post(job.clone()).await, post(job).await);
        assert_eq!(
            (a.0, b.0),
            (StatusCode::CREATED, StatusCode::OK),
            "{unique}"
        );
        assert_eq!(b.1["duplicate"]["of"], a.1["id"], "{unique}");
    }

    // What cannot go with it: 400, nothing written.
    let before = api.send(Method::GET, "/v1/queues/accounts", None).await.1;
    for (body, says) in [
        (
            json!({"type": "t", "payload": {}, "unique": {"until": "started", "throttle_ms": 5}}),
            "at most one of",
        ),
        (
            json!({"type": "t", "payload": {}, "unique": {"debounce_ms": 0}}),
            "unique.debounce_ms",
        ),
        (
            json!({"type": "t", "payload": {}, "id": "mine", "unique": {}}),
            "leave out the id",
        ),
        (
            json!({"type": "t", "payload": {}, "delay_ms": 5, "unique": {"debounce_ms": 5}}),
            "leave out the delay",
        ),
        (
            json!({"type": "t", "payload": {}, "unique": {"key": ""}}),
            "the key is 0 bytes",
        ),
        (
            json!({"type": "t", "payload": {}, "unique": {"until": "later"}}),
            "field `unique.until`",
        ),
        (
            json!({"type": "t", "payload": {}, "unique": {"keys": "x"}}),
            "field `unique",
        ),
    ] {
        let message = error(
            &post(body.clone()).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
        assert!(message.contains(says), "{body}: {message}");
    }
    let message = error(
        &api.send(
            Method::POST,
            "/v1/queues/accounts/jobs/batch",
            Some(json!({"jobs": [{"type": "t", "payload": {}}, {"type": "t", "payload": {}, "unique": {}}]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(
        message.contains("jobs[1].unique") && message.contains("one at a time"),
        "{message}"
    );
    let after = api.send(Method::GET, "/v1/queues/accounts", None).await.1;
    assert_eq!(after, before);
}
