//! Rate limits of job types and concurrency keys on the operator's
//! surface: `ferry limit --type|--key --rate`, `ferry settings
//! --key-rate-limit`, `ferry limits` (text and `--json`), the parked jobs
//! in `ferry stats`, `job show` and `/metrics`, and the routes
//! `GET /v1/queues/{queue}/rate_limits` and `PUT .../rate_limits/{scope}`.
//! Jobs are parked by hand: a limit of one start an hour (`1/1h:1`) and a
//! claim through the broker, so the state is exact, not timed.

use ferry_tests::cli::ferry;
use ferry_tests::serve::{answer, get_text, http, parse_metrics, Env, Server};
use ferry_tests::{queue, unique, RedisServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::usage_error;

/// The gate `name` of a `rate_limits` object, if listed.
fn gate<'a>(rates: &'a Value, name: &str) -> Option<&'a Value> {
    rates["gates"]
        .as_array()
        .unwrap_or_else(|| panic!("no gates in {rates}"))
        .iter()
        .find(|g| g["gate"] == name)
}

#[tokio::test]
async fn the_cli_sets_lists_and_removes_type_and_key_rate_limits() {
    let redis = RedisServer::start().await;
    let prefix = unique("flow-rate-gates");
    let url = redis.url();
    let run = |args: Vec<&'static str>| {
        let prefix = prefix.clone();
        async move { ferry(url, &prefix, &args).await }
    };

    // Nothing set: the concurrency fields as before, and the rate limits.
    let v = run(vec!["limits", "q", "--json"]).await.ok_json();
    for field in ["queue", "each_key", "limits", "gates"] {
        assert!(v.get(field).is_some(), "{field} in {v}");
    }
    assert_eq!(
        v["rate_limits"],
        json!({"queue": null, "each_key": null, "gates": []}),
        "{v}"
    );

    // A type's and a key's rate limits; the answer is `ferry limits`'.
    let v = run(vec![
        "limit", "q", "--type", "echo", "--rate", "50/1s", "--json",
    ])
    .await
    .ok_json();
    let echo = gate(&v["rate_limits"], "type:echo").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        echo["state"]["limit"],
        json!({"n": 50, "period_ms": 1000, "burst": 5}),
        "{v}"
    );
    assert_eq!(echo["waiting"], 0);
    let v = run(vec![
        "limit", "q", "--key", "acme", "--rate", "10/1s:10", "--json",
    ])
    .await
    .ok_json();
    let acme = gate(&v["rate_limits"], "key:acme").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        acme["state"]["limit"],
        json!({"n": 10, "period_ms": 1000, "burst": 10})
    );
    // Every key's, through the settings.
    let v = run(vec!["settings", "q", "--key-rate-limit", "5/1s", "--json"])
        .await
        .ok_json();
    assert_eq!(v["key_rate_limit"], "5/1s", "{v}");
    assert_eq!(v["rate_limit"], Value::Null, "{v}");
    let r = run(vec!["settings", "q"]).await;
    assert!(r.stdout.contains("key_rate_limit: 5/1s\n"), "{}", r.stdout);

    let v = run(vec!["limits", "q", "--json"]).await.ok_json();
    assert_eq!(
        v["rate_limits"]["each_key"],
        json!({"n": 5, "period_ms": 1000, "burst": 1})
    );
    assert!(gate(&v["rate_limits"], "type:echo").is_some(), "{v}");
    assert!(gate(&v["rate_limits"], "key:acme").is_some(), "{v}");
    let r = run(vec!["limits", "q"]).await;
    r.assert_code(0);
    for line in [
        "queue rate limit: none\n",
        "each key rate limit: 5/1s\n",
        "GATE ",
    ] {
        assert!(r.stdout.contains(line), "{line:?} in {}", r.stdout);
    }
    let row = |gate: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(gate))
            .unwrap_or_else(|| panic!("{gate} in {}", r.stdout))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("type:echo")[..2], ["type:echo", "50/1s"]);
    assert_eq!(row("key:acme")[..2], ["key:acme", "10/1s:10"]);

    // Bad ones: a usage error naming the option, and nothing written.
    for (args, parts) in [
        (
            vec!["limit", "q", "--type", "echo", "--rate", "0/1s"],
            vec![
                "--rate",
                "rate_limit",
                "0 starts per period would run nothing",
            ],
        ),
        (
            vec!["limit", "q", "--type", "echo", "--rate", "50/1y"],
            vec!["--rate", "rate_limit", "use <n>/<period>[:<burst>]"],
        ),
        (
            vec!["limit", "q", "--key", "a\nb", "--rate", "1/1s"],
            vec!["--key", "concurrency key"],
        ),
        (
            vec!["settings", "q", "--key-rate-limit", "0/1s"],
            vec!["--key-rate-limit", "0 starts per period"],
        ),
    ] {
        let r = run(args.clone()).await;
        usage_error(&r, &parts);
    }
    // A limit or --rate is needed.
    run(vec!["limit", "q", "--type", "echo"])
        .await
        .assert_code(64);
    let v = run(vec!["limits", "q", "--json"]).await.ok_json();
    let echo = gate(&v["rate_limits"], "type:echo").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(echo["state"]["limit"]["n"], 50, "{v}");

    // The concurrency form is as it was: its own answer, no rate limits.
    let v = run(vec!["limit", "q", "--type", "echo", "3", "--json"])
        .await
        .ok_json();
    assert_eq!(v["limits"], json!([["type:echo", 3]]), "{v}");
    assert!(v.get("rate_limits").is_none(), "{v}");

    // Removed.
    let v = run(vec![
        "limit", "q", "--type", "echo", "--rate", "none", "--json",
    ])
    .await
    .ok_json();
    assert!(gate(&v["rate_limits"], "type:echo").is_none(), "{v}");
    assert_eq!(v["limits"], json!([["type:echo", 3]]), "{v}");
    let v = run(vec![
        "limit", "q", "--key", "acme", "--rate", "off", "--json",
    ])
    .await
    .ok_json();
    assert!(gate(&v["rate_limits"], "key:acme").is_none(), "{v}");
    let v = run(vec!["settings", "q", "--key-rate-limit", "none", "--json"])
        .await
        .ok_json();
    assert_eq!(v["key_rate_limit"], Value::Null, "{v}");
    let v = run(vec!["limits", "q", "--json"]).await.ok_json();
    assert_eq!(
        v["rate_limits"],
        json!({"queue": null, "each_key": null, "gates": []}),
        "{v}"
    );
}

#[tokio::test]
async fn parked_jobs_show_in_stats_job_status_and_metrics() {
    let redis = RedisServer::start().await;
    let prefix = unique("flow-rate-parked");
    let url = redis.url();
    let mut conn = redis.conn().await;
    let run = |args: Vec<&str>| {
        let prefix = prefix.clone();
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ferry(url, &prefix, &args).await
        }
    };
    run(vec!["limit", "q", "--type", "echo", "--rate", "1/1h:1"])
        .await
        .assert_code(0);
    let mut ids = Vec::new();
    for n in 0..3 {
        let payload = format!("{{\"n\": {n}}}");
        let v = run(vec![
            "enqueue",
            "q",
            "--type",
            "echo",
            "--payload",
            &payload,
            "--json",
        ])
        .await
        .ok_json();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    run(vec!["enqueue", "q", "--type", "other", "--payload", "{}"])
        .await
        .assert_code(0);

    // One echo takes the hour's only slot; the other type goes on; two
    // echoes are parked.
    let claimed = queue(&prefix, "q")
        .consumer("w")
        .claim(&mut conn, 10)
        .await
        .unwrap();
    let types: Vec<String> = claimed
        .iter()
        .map(|c| c.envelope(1 << 20).unwrap().job_type)
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "echo").count(),
        1,
        "{types:?}"
    );
    assert!(types.iter().any(|t| t == "other"), "{types:?}");

    let v = run(vec!["limits", "q", "--json"]).await.ok_json();
    let echo = gate(&v["rate_limits"], "type:echo").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(echo["waiting"], 2, "{v}");
    assert_eq!(echo["state"]["limited"], true, "{v}");
    let next_in = echo["state"]["next_slot_in_ms"].as_u64().unwrap();
    assert!((3_500_000..=3_600_000).contains(&next_in), "{v}");
    let r = run(vec!["limits", "q"]).await;
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("type:echo"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    // (A burst of 1 is 1/1h's own: it is not shown.)
    assert!(
        row.contains(" 1/1h ")
            && (row.contains(" in 59m ") || row.contains(" in 1h 0m "))
            && row.ends_with(" 2"),
        "{row}"
    );

    // Stats: the JSON and one line.
    let v = run(vec!["stats", "q", "--json"]).await.ok_json();
    let echo = gate(&v["rate_gates"], "type:echo").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(echo["waiting"], 2, "{v}");
    let r = run(vec!["stats", "q"]).await;
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("rate gates: "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(
        line.contains("1 gates waiting (busiest type:echo: 2 waiting, next slot in "),
        "{line}"
    );
    // A queue with no rate gates has no such line.
    let r = run(vec!["stats", "other"]).await;
    assert!(!r.stdout.contains("rate gates"), "{}", r.stdout);

    // A parked job says what it waits for.
    let mut parked = 0;
    for id in &ids {
        let st = run(vec!["job", "show", "q", id, "--json"]).await.ok_json();
        if st["waiting_for"]
            .as_str()
            .is_some_and(|w| w.starts_with("rate limited: type echo"))
        {
            assert_eq!(st["state"], "waiting", "{st}");
            parked += 1;
        }
    }
    assert_eq!(parked, 2);

    // /metrics: one series for the gate.
    let server = Server::start(url, &prefix, &[], &[]);
    let text = get_text(&http(), &server.url("/metrics")).await;
    let scrape = parse_metrics(&text);
    let series: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "ferry_rate_gate_waiting_jobs")
        .collect();
    assert_eq!(series.len(), 1, "{text}");
    assert_eq!(series[0].labels.get("queue"), Some("q"));
    assert_eq!(series[0].labels.get("gate"), Some("type:echo"));
    assert!(
        matches!(series[0].value, prometheus_parse::Value::Gauge(v) if v == 2.0),
        "{:?}",
        series[0].value
    );
}

#[tokio::test]
async fn the_api_gets_and_puts_rate_limits() {
    let env = Env::new(
        "flow-rate-http",
        &[],
        &[("FERRY_TOKEN", "w-token"), ("FERRY_READ_TOKEN", "r-token")],
    )
    .await;
    let send = |m: Method, p: &str, token: &str, b: Option<Value>| {
        let mut r = env.http.request(m, env.server.url(p)).bearer_auth(token);
        if let Some(b) = b {
            r = r.json(&b);
        }
        async move { answer(r.send().await.unwrap()).await }
    };
    let base = "/v1/queues/q/rate_limits";

    let (st, v) = send(Method::GET, base, "r-token", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"queue": null, "each_key": null, "gates": []}));

    let put = |scope: &str, body: Value, token: &'static str| {
        let path = format!("{base}/{scope}");
        let send = &send;
        async move { send(Method::PUT, &path, token, Some(body)).await }
    };
    // The read token may look, not change.
    let (st, v) = put("type:echo", json!({"rate_limit": "50/1s"}), "r-token").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");

    let (st, v) = put("type:echo", json!({"rate_limit": "50/1s"}), "w-token").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let echo = gate(&v, "type:echo").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        echo["state"]["limit"],
        json!({"n": 50, "period_ms": 1000, "burst": 5})
    );
    let (st, v) = put("key:acme", json!({"rate_limit": "1000/1m:100"}), "w-token").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(gate(&v, "key:acme").is_some(), "{v}");
    let (st, v) = put("key", json!({"rate_limit": "10/1s"}), "w-token").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["each_key"],
        json!({"n": 10, "period_ms": 1000, "burst": 1})
    );

    let (st, v) = send(Method::GET, base, "r-token", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["gates"].as_array().unwrap().len(), 2, "{v}");
    // The settings show every key's, and PATCH takes it (of a queue with
    // a job: the settings route answers 404 for one without).
    let (st, v) = send(
        Method::POST,
        "/v1/queues/q/jobs",
        "w-token",
        Some(json!({"type": "mail", "payload": {}})),
    )
    .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = send(Method::GET, "/v1/queues/q/settings", "r-token", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["key_rate_limit"], "10/1s", "{v}");
    let (st, v) = send(
        Method::PATCH,
        "/v1/queues/q/settings",
        "w-token",
        Some(json!({"key_rate_limit": "20/1s"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["key_rate_limit"], "20/1s", "{v}");

    // Bad ones: 400 with a readable message, nothing written.
    for (scope, body, says) in [
        ("bad", json!({"rate_limit": "1/1s"}), "scope"),
        ("queue", json!({"rate_limit": "1/1s"}), "scope"),
        ("type:", json!({"rate_limit": "1/1s"}), "job type"),
        (
            "type:echo",
            json!({"rate_limit": "0/1s"}),
            "0 starts per period",
        ),
        ("type:echo", json!({"rate_limit": "50/1y"}), "rate_limit"),
        ("type:echo", json!({"rate_limit": 50}), ""),
        ("type:echo", json!({"limit": "50/1s"}), ""),
    ] {
        let (st, v) = put(scope, body.clone(), "w-token").await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{scope} {body}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{scope} {body}: {v}");
    }
    let (st, v) = send(
        Method::PATCH,
        "/v1/queues/q/settings",
        "w-token",
        Some(json!({"key_rate_limit": "0/1s"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = send(Method::GET, base, "r-token", None).await;
    let echo = gate(&v, "type:echo").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(echo["state"]["limit"]["n"], 50, "{v}");

    // Null removes.
    for scope in ["type:echo", "key:acme", "key"] {
        let (st, v) = put(scope, json!({"rate_limit": null}), "w-token").await;
        assert_eq!(st, StatusCode::OK, "{scope}: {v}");
    }
    let (_, v) = send(Method::GET, base, "r-token", None).await;
    assert_eq!(v, json!({"queue": null, "each_key": null, "gates": []}));
}
