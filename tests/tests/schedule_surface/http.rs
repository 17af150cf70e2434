//! The HTTP routes of schedules (`/v1/queues/{queue}/schedules`): the
//! write token for changes, 404 for a schedule that is not there, 400 for
//! a bad body (nothing written).

use ferry_tests::serve::{http, Server};
use ferry_tests::{unique, RedisServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Api {
    server: Server,
    http: reqwest::Client,
}

impl Api {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.http.request(method, self.server.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text:?}: {e}"));
        (status, v)
    }
}

/// Asserts status `status` with error code `code`; returns the message.
fn error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_http_routes_take_the_write_token_and_check_every_field_first() {
    let redis = RedisServer::start().await;
    let prefix = unique("sched-http");
    let server = Server::start(
        redis.url(),
        &prefix,
        &[],
        &[
            ("FERRY_TOKEN", "w-secret"),
            ("FERRY_READ_TOKEN", "r-secret"),
        ],
    );
    let api = Api {
        server,
        http: http(),
    };
    let (w, r) = (Some("w-secret"), Some("r-secret"));
    let base = "/v1/queues/reports/schedules";
    let nightly = format!("{base}/nightly");
    let cron = json!({"cron": "0 2 * * *", "time_zone": "Europe/Paris", "type": "report",
                      "payload": {"day": 1}, "priority": "low", "max_retries": 1,
                      "missed": "catch-up:3"});

    // The list of a queue without schedules is empty (no 404).
    assert_eq!(
        api.send(Method::GET, base, r, None).await,
        (StatusCode::OK, json!([]))
    );

    // Writes need the write token.
    let put = |token, body: &Value| api.send(Method::PUT, &nightly, token, Some(body.clone()));
    error(
        &put(None, &cron).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    error(&put(r, &cron).await, StatusCode::FORBIDDEN, "forbidden");
    let (st, v) = put(w, &cron).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (&v["name"], &v["spec"], &v["time_zone"], &v["missed"]),
        (
            &json!("nightly"),
            &json!("cron 0 2 * * * Europe/Paris"),
            &json!("Europe/Paris"),
            &json!("catch-up:3")
        )
    );
    assert_eq!(
        (&v["payload"], &v["priority"], &v["max_retries"]),
        (&json!({"day": 1}), &json!("low"), &json!(1))
    );
    assert!(v["next_at"].as_u64().is_some(), "{v}");
    // A queue with only schedules is a queue (its page reads its stats).
    let (st, stats) = api
        .send(Method::GET, "/v1/queues/reports/stats", r, None)
        .await;
    assert_eq!(st, StatusCode::OK, "{stats}");
    let (st, again) = put(w, &cron).await;
    assert_eq!(st, StatusCode::OK, "replaced: {again}");
    assert_eq!(
        again["next_at"], v["next_at"],
        "the same recurrence keeps its tick"
    );

    let every = json!({"every_ms": 60000, "type": "echo"});
    let (st, v) = api
        .send(Method::PUT, &format!("{base}/minutely"), w, Some(every))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (&v["spec"], &v["every_ms"], &v["payload"], &v["missed"]),
        (
            &json!("every 60000"),
            &json!(60000),
            &json!({}),
            &json!("skip")
        )
    );
    assert_eq!(v["next_at"].as_u64().unwrap() % 60_000, 0, "{v}");

    // Reads take the read token.
    let (st, list) = api.send(Method::GET, base, r, None).await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["minutely", "nightly"]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["last_job_state"].is_null()));
    let (st, one) = api.send(Method::GET, &nightly, r, None).await;
    assert_eq!((st, &one["name"]), (StatusCode::OK, &json!("nightly")));
    error(
        &api.send(Method::GET, &format!("{base}/nope"), r, None)
            .await,
        StatusCode::NOT_FOUND,
        "schedule_not_found",
    );

    // Bad bodies and names: 400, and nothing written.
    let bad_path = format!("{base}/bad");
    for (body, says) in [
        (json!({"type": "t"}), "cron"),
        (
            json!({"cron": "* * * * *", "every_ms": 60000, "type": "t"}),
            "not both",
        ),
        (json!({"cron": "0 25 * * *", "type": "t"}), "field 2 (hour)"),
        (
            json!({"cron": "0 2 * * *", "time_zone": "Mars/Olympus", "type": "t"}),
            "unknown time zone",
        ),
        (
            json!({"every_ms": 60000, "time_zone": "UTC", "type": "t"}),
            "time zone",
        ),
        (
            json!({"every_ms": 999, "type": "t"}),
            "under the minimum of 1s",
        ),
        (
            json!({"every_ms": 60000, "type": "t", "missed": "sometimes"}),
            "missed",
        ),
        (
            json!({"every_ms": 60000, "type": "t", "max_retries": 10_001}),
            "max_retries",
        ),
        (json!({"every_ms": 60000, "type": ""}), "job type"),
        (
            json!({"every_ms": 60000, "type": "t", "priority": "urgent"}),
            "priority",
        ),
        (json!({"every_ms": 60000, "type": "t", "extra": 1}), "extra"),
        (json!({"every_ms": "soon", "type": "t"}), "every_ms"),
        (json!({"every_ms": 60000}), "type"),
    ] {
        let message = error(
            &api.send(Method::PUT, &bad_path, w, Some(body.clone()))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
        assert!(message.contains(says), "{body}: {message}");
    }
    error(
        &api.send(
            Method::PUT,
            &format!("{base}/a%20b"),
            w,
            Some(json!({"every_ms": 60000, "type": "t"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    error(
        &api.send(Method::GET, "/v1/queues/a%20b/schedules", r, None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_queue_name",
    );
    error(
        &api.send(Method::GET, &bad_path, r, None).await,
        StatusCode::NOT_FOUND,
        "schedule_not_found",
    );

    // Pause, resume, trigger: the write token; each answers with the result.
    let pause = format!("{nightly}/pause");
    error(
        &api.send(Method::POST, &pause, None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (st, v) = api.send(Method::POST, &pause, w, None).await;
    assert_eq!(
        (st, &v["paused"], &v["next_at"]),
        (StatusCode::OK, &json!(true), &Value::Null)
    );
    let (st, v) = api
        .send(Method::POST, &format!("{nightly}/resume"), w, None)
        .await;
    assert_eq!((st, &v["paused"]), (StatusCode::OK, &json!(false)));
    assert!(v["next_at"].as_u64().is_some());
    let trigger = format!("{nightly}/trigger");
    error(
        &api.send(Method::POST, &trigger, None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (st, v) = api.send(Method::POST, &trigger, w, None).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap();
    let (st, job) = api
        .send(
            Method::GET,
            &format!("/v1/queues/reports/jobs/{id}"),
            r,
            None,
        )
        .await;
    assert_eq!(
        (st, &job["type"], &job["priority"], &job["payload"]),
        (
            StatusCode::OK,
            &json!("report"),
            &json!("low"),
            &json!({"day": 1})
        )
    );

    // Delete: the write token; then everything on it is a 404.
    error(
        &api.send(Method::DELETE, &nightly, None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (st, v) = api.send(Method::DELETE, &nightly, w, None).await;
    assert_eq!(
        (st, v),
        (
            StatusCode::OK,
            json!({"queue": "reports", "name": "nightly", "removed": true})
        )
    );
    for (method, path) in [
        (Method::DELETE, nightly.clone()),
        (Method::GET, nightly.clone()),
        (Method::POST, format!("{nightly}/pause")),
        (Method::POST, format!("{nightly}/resume")),
        (Method::POST, format!("{nightly}/trigger")),
    ] {
        error(
            &api.send(method, &path, w, None).await,
            StatusCode::NOT_FOUND,
            "schedule_not_found",
        );
    }
    let (_, list) = api.send(Method::GET, base, r, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Tick {
    n: u32,
}
impl ferry_queue::Job for Tick {
    const TYPE: &'static str = "tick";
}

/// `ferry serve` fires schedules as a worker does (no worker runs here),
/// and not with --no-fire-schedules or --read-only.
#[tokio::test]
async fn ferry_serve_fires_the_schedules_unless_told_not_to() {
    use std::time::Duration;
    let redis = RedisServer::start().await;
    for (args, fires) in [
        (&[][..], true),
        (&["--no-fire-schedules"][..], false),
        (&["--read-only"][..], false),
    ] {
        let prefix = unique("sched-serve");
        let client = ferry_queue::Client::builder(redis.url())
            .prefix(prefix.as_str())
            .connect()
            .unwrap();
        client
            .schedule(
                "every-second",
                ferry_queue::Recurrence::every(Duration::from_secs(1)).unwrap(),
                &Tick { n: 1 },
            )
            .await
            .unwrap();
        let queue = ferry_tests::queue(&prefix, "default");
        let mut conn = redis.conn().await;
        let key = queue
            .keys()
            .stream(ferry_queue::Priority::Normal)
            .to_owned();
        let depth = |mut conn: redis::aio::MultiplexedConnection, key: String| async move {
            redis::cmd("XLEN")
                .arg(key)
                .query_async::<u64>(&mut conn)
                .await
                .unwrap()
        };
        let server = Server::start(redis.url(), &prefix, args, &[]);
        if fires {
            ferry_tests::wait_until(Duration::from_secs(20), "two ticks fired", || {
                let (conn, key) = (conn.clone(), key.clone());
                async move { depth(conn, key).await >= 2 }
            })
            .await;
        } else {
            // Nothing to wait for when nothing fires: the schedule is due
            // within a second; three pass.
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert_eq!(
                depth(conn.clone(), key.clone()).await,
                0,
                "{args:?} fired a tick"
            );
        }
        drop(server);
        let _ = &mut conn;
    }
}
