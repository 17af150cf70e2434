//! Concurrency limits on the operator's surface: `ferry settings
//! --concurrency/--key-concurrency/--weights`, `ferry limit(s)`, the
//! settings and concurrency routes, and `enqueue --concurrency-key`.

use ferry_tests::cli::ferry;
use ferry_tests::serve::{answer, Env};
use ferry_tests::{unique, RedisServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn the_cli_sets_limits_and_a_keyed_job_waits() {
    let redis = RedisServer::start().await;
    let prefix = unique("flow-conc");
    let url = redis.url();
    let s = ferry(
        url,
        &prefix,
        &[
            "settings",
            "q",
            "--concurrency",
            "10",
            "--key-concurrency",
            "1",
            "--weights",
            "8,4,2,1",
            "--json",
        ],
    )
    .await
    .ok_json();
    assert_eq!(
        (s["concurrency"].clone(), s["key_concurrency"].clone()),
        (json!(10), json!(1))
    );
    assert_eq!(s["weights"], json!([8, 4, 2, 1]));
    let bad = ferry(url, &prefix, &["settings", "q", "--concurrency", "0"]).await;
    bad.assert_code(64);
    assert!(bad.stderr.contains("0"), "{}", bad.stderr);
    let bad = ferry(url, &prefix, &["settings", "q", "--weights", "0,0,0,0"]).await;
    bad.assert_code(64);
    assert!(bad.stderr.contains("weights"), "{}", bad.stderr);
    let l = ferry(
        url,
        &prefix,
        &["limit", "q", "--type", "mail", "3", "--json"],
    )
    .await
    .ok_json();
    assert_eq!(l["limits"], json!([["type:mail", 3]]));
    let mut ids = Vec::new();
    for _ in 0..2 {
        let e = ferry(
            url,
            &prefix,
            &[
                "enqueue",
                "q",
                "--type",
                "mail",
                "--payload",
                "{}",
                "--concurrency-key",
                "t1",
                "--json",
            ],
        )
        .await
        .ok_json();
        ids.push(e["id"].as_str().unwrap().to_owned());
    }
    let st = ferry(url, &prefix, &["job", "show", "q", &ids[1], "--json"])
        .await
        .ok_json();
    assert_eq!(st["state"], "waiting", "{st}");
    assert!(st["waiting_for"].to_string().contains("t1"), "{st}");
    let stats = ferry(url, &prefix, &["stats", "q"]).await;
    assert!(
        stats.stdout.contains("concurrency: queue 10"),
        "{}",
        stats.stdout
    );
    let c = ferry(url, &prefix, &["limits", "q", "--json"])
        .await
        .ok_json();
    assert_eq!(c["gates"][0]["waiting"], 1, "{c}");
}

#[tokio::test]
async fn the_api_sets_and_shows_limits() {
    let env = Env::new("flow-conc-http", &[], &[]).await;
    let send = |m: reqwest::Method, p: &str, b: Value| {
        let r = env.http.request(m, env.server.url(p)).json(&b);
        async move { answer(r.send().await.unwrap()).await }
    };
    let (st, v) = send(
        reqwest::Method::PATCH,
        "/v1/queues/q/settings",
        json!({"concurrency": 5, "key_concurrency": 2, "weights": [1, 1, 1, 1]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["concurrency"].clone(),
            v["key_concurrency"].clone(),
            v["weights"].clone()
        ),
        (json!(5), json!(2), json!([1, 1, 1, 1]))
    );
    let (st, _) = send(
        reqwest::Method::PATCH,
        "/v1/queues/q/settings",
        json!({"concurrency": 0}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = send(
        reqwest::Method::PATCH,
        "/v1/queues/q/settings",
        json!({"weights": [0, 0, 0, 0]}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = send(
        reqwest::Method::PUT,
        "/v1/queues/q/concurrency/key:t1",
        json!({"limit": 4}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["limits"], json!([["key:t1", 4]]));
    let (st, _) = send(
        reqwest::Method::PUT,
        "/v1/queues/q/concurrency/bad",
        json!({"limit": 4}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = send(
        reqwest::Method::POST,
        "/v1/queues/q/jobs",
        json!({"type": "mail", "payload": {}, "concurrency_key": "t1"}),
    )
    .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = env.get("/v1/queues/q/concurrency").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["queue"], 5);
}
