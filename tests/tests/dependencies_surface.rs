//! The operator's surface for jobs that wait for other jobs: `ferry
//! enqueue --after ID ... [--on-dependency-failure P]` and `ferry job show`
//! listing what a job waits for; the enqueue route's `depends_on` and
//! `on_dependency_failure` (201 with `waiting_for`, 422 `bad_dependency`,
//! 400 in a batch), the job's status with `depends_on`, and the dashboard's
//! "Waits for". Real Redis, real `ferry` processes; dependencies are
//! finished by hand through the broker.

use ferry_tests::cli::{ferry, Ran};
use ferry_tests::serve::Env;
use ferry_tests::{queue, unique, RedisServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Claims the next `done.len()` jobs of `q` under `prefix` (in the order
/// they were enqueued), checks that they are `done`, and acknowledges them.
async fn succeed(redis: &RedisServer, prefix: &str, q: &str, done: &[&str]) {
    let mut conn = redis.conn().await;
    let consumer = queue(prefix, q).consumer("w");
    let claimed = consumer.claim(&mut conn, done.len()).await.unwrap();
    let ids: Vec<String> = claimed.iter().map(|d| d.job_id()).collect();
    assert_eq!(ids, done, "claimed");
    let entries: Vec<_> = claimed.iter().map(|d| d.entry.clone()).collect();
    consumer.ack(&mut conn, &entries).await.unwrap();
}

/// Asserts a usage error (exit 64, nothing on stdout) whose one line
/// contains `part`.
fn usage_error(ran: &Ran, part: &str) {
    ran.assert_code(64);
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    assert!(
        ran.stderr.contains(part),
        "{part:?} not in {:?}",
        ran.stderr
    );
}

#[tokio::test]
async fn the_cli_enqueues_after_dependencies_and_job_show_lists_them() {
    let redis = RedisServer::start().await;
    let prefix = unique("deps-cli");
    let url = redis.url();
    let run = |args: Vec<&'static str>| {
        let prefix = prefix.clone();
        async move { ferry(url, &prefix, &args).await }
    };
    let enqueue = |id: &'static str, extra: &'static [&'static str]| {
        let mut args = vec![
            "enqueue",
            "builds",
            "--type",
            "echo",
            "--payload",
            "{}",
            "--id",
            id,
        ];
        args.extend_from_slice(extra);
        run(args)
    };
    for id in ["a", "b"] {
        let r = enqueue(id, &[]).await;
        r.assert_code(0);
        assert_eq!(r.stdout, format!("{id}\n"));
    }

    // The id alone on stdout; the wait on stderr.
    let r = enqueue("c", &["--after", "a", "--after", "b"]).await;
    r.assert_code(0);
    assert_eq!(r.stdout, "c\n");
    assert_eq!(r.stderr, "waiting for 2 dependencies\n");
    // A comma list, a policy, and --json.
    let v = enqueue(
        "d",
        &[
            "--after",
            "b,a",
            "--on-dependency-failure",
            "release",
            "--json",
        ],
    )
    .await
    .ok_json();
    assert_eq!(v, json!({"queue": "builds", "id": "d", "waiting_for": 2}));

    // `job show`: waiting, what for, and the dependencies left.
    let r = run(vec!["job", "show", "builds", "c"]).await;
    r.assert_code(0);
    for line in [
        "state:       waiting\n",
        "waiting for: dependencies: a, b (2 left)\n",
        "depends on:  a, b\n",
    ] {
        assert!(r.stdout.contains(line), "{line:?} not in\n{}", r.stdout);
    }
    let v = run(vec!["job", "show", "builds", "c", "--json"])
        .await
        .ok_json();
    assert_eq!(v["state"], "waiting", "{v}");
    assert_eq!(v["depends_on"], json!(["a", "b"]), "{v}");

    // One succeeds: one left.
    succeed(&redis, &prefix, "builds", &["a"]).await;
    let v = run(vec!["job", "show", "builds", "c", "--json"])
        .await
        .ok_json();
    assert_eq!(
        (&v["state"], &v["depends_on"]),
        (&json!("waiting"), &json!(["b"])),
        "{v}"
    );
    let r = run(vec!["job", "show", "builds", "c"]).await;
    assert!(r.stdout.contains("depends on:  b\n"), "{}", r.stdout);
    // A job that waits for nothing shows no such lines.
    let r = run(vec!["job", "show", "builds", "b"]).await;
    r.assert_code(0);
    assert!(!r.stdout.contains("depends on"), "{}", r.stdout);
    // All succeeded: enqueued after them, it is queued at once (no wait said).
    succeed(&redis, &prefix, "builds", &["b"]).await;
    let r = enqueue("e", &["--after", "a,b"]).await;
    r.assert_code(0);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("e\n", ""));
    let v = run(vec!["job", "show", "builds", "c", "--json"])
        .await
        .ok_json();
    assert_eq!(v["state"], "queued", "{v}");
    assert!(v.get("depends_on").is_none(), "{v}");
}

#[tokio::test]
async fn the_cli_refuses_a_bad_dependency_readably_and_bad_flags_as_usage() {
    let redis = RedisServer::start().await;
    let prefix = unique("deps-cli-bad");
    let url = redis.url();
    let run = |extra: &'static [&'static str]| {
        let mut args = vec!["enqueue", "builds", "--type", "echo", "--payload", "{}"];
        args.extend_from_slice(extra);
        let prefix = prefix.clone();
        async move { ferry(url, &prefix, &args).await }
    };
    run(&["--id", "a"]).await.assert_code(0);

    // Unknown: exit 1, one readable line, nothing written.
    let r = run(&["--id", "x", "--after", "a", "--after", "nobody"]).await;
    r.assert_code(1);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(
        r.one_error_line(),
        "ferry: dependency nobody does not exist (never enqueued, or finished with \
         its record no longer kept); nothing enqueued to queue builds"
    );
    ferry(url, &prefix, &["job", "show", "builds", "x"])
        .await
        .assert_code(3);
    // Itself.
    let r = run(&["--id", "y", "--after", "y"]).await;
    r.assert_code(1);
    assert_eq!(
        r.one_error_line(),
        "ferry: dependency y is the job itself; nothing enqueued to queue builds"
    );

    // What cannot go with --after, and a bad policy: usage errors.
    for (extra, says) in [
        (&["--after", "a", "--delay-ms", "100"][..], "--delay-ms"),
        (&["--after", "a", "--unique"][..], "--unique"),
        (&["--after", "a", "--unique-key", "k"][..], "--unique-key"),
        (&["--on-dependency-failure", "wait"][..], "--after"),
        (
            &["--after", "a", "--on-dependency-failure", "sometimes"][..],
            "use fail, release or wait",
        ),
        (&["--after", ""][..], "an empty job id"),
    ] {
        let mut args = vec!["enqueue", "builds", "--type", "echo", "--payload", "{}"];
        args.extend_from_slice(extra);
        usage_error(&ferry(url, &prefix, &args).await, says);
    }
    let v = ferry(url, &prefix, &["jobs", "builds", "--json"])
        .await
        .ok_json();
    let ids: Vec<&str> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a"], "nothing else written: {v}");
}

/// Asserts status `status` with error code `code`; returns the message.
fn error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_enqueue_route_takes_depends_on_and_the_status_shows_it() {
    let api = Env::new("deps-http", &[], &[]).await;
    let jobs = "/v1/queues/builds/jobs";
    let job = |extra: Value| {
        let mut body = json!({"type": "echo", "payload": {"n": 1}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        api.post(jobs, body)
    };
    let (st, v) = job(json!({"id": "a"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // As before: no `waiting_for` without `depends_on`.
    assert_eq!(v, json!({"queue": "builds", "id": "a"}));
    let (st, v) = job(json!({"id": "b"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    let (st, v) =
        job(json!({"id": "c", "depends_on": ["a", "b"], "on_dependency_failure": "wait"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!({"queue": "builds", "id": "c", "waiting_for": 2}));
    let (st, v) = api.get(&format!("{jobs}/c")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "waiting", "{v}");
    assert_eq!(v["depends_on"], json!(["a", "b"]), "{v}");
    assert_eq!(v["waiting_for"], "dependencies: a, b (2 left)", "{v}");
    // A job with no dependencies has no `depends_on`.
    let (_, v) = api.get(&format!("{jobs}/a")).await;
    assert!(v.get("depends_on").is_none(), "{v}");

    succeed(&api.redis, &api.prefix, "builds", &["a"]).await;
    let (_, v) = api.get(&format!("{jobs}/c")).await;
    assert_eq!(
        (&v["state"], &v["depends_on"]),
        (&json!("waiting"), &json!(["b"])),
        "{v}"
    );
    // The default policy, and a new id of Ferry's own.
    let (st, v) = job(json!({"depends_on": ["a", "b"], "on_dependency_failure": null})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["waiting_for"], 1, "{v}");
    assert!(!v["id"].as_str().unwrap().is_empty(), "{v}");

    // The dashboard's job page has the "Waits for" section.
    let script = api.text("/ui/app.js").await;
    assert!(script.contains("'Waits for'"), "no Waits for in app.js");
    assert!(
        script.contains("job-depends-on"),
        "no job-depends-on in app.js"
    );
}

#[tokio::test]
async fn bad_dependencies_are_422_and_what_cannot_go_with_them_400() {
    let api = Env::new("deps-http-bad", &[], &[]).await;
    let jobs = "/v1/queues/builds/jobs";
    let job = |extra: Value| {
        let mut body = json!({"type": "echo", "payload": {}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        api.post(jobs, body)
    };
    assert_eq!(job(json!({"id": "a"})).await.0, StatusCode::CREATED);

    // Unknown, and itself: 422 bad_dependency, nothing written.
    let m = error(
        &job(json!({"id": "ghost", "depends_on": ["a", "nobody"]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_dependency",
    );
    assert_eq!(
        m,
        "dependency nobody does not exist (never enqueued, or finished with its record \
         no longer kept); nothing enqueued to queue builds"
    );
    let m = error(
        &job(json!({"id": "me", "depends_on": ["me"]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_dependency",
    );
    assert!(m.contains("dependency me is the job itself"), "{m}");
    // A dependency that failed, with the policy to fail with it.
    let (st, v) = api.post(&format!("{jobs}/a/cancel"), json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let m = error(
        &job(json!({"id": "late", "depends_on": ["a"]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_dependency",
    );
    assert!(m.starts_with("dependency a "), "{m}");
    for id in ["ghost", "me", "late"] {
        let (st, v) = api.get(&format!("{jobs}/{id}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{id}: {v}");
    }
    // With policy release, a cancelled dependency counts as done.
    let (st, v) =
        job(json!({"id": "free", "depends_on": ["a"], "on_dependency_failure": "release"})).await;
    assert_eq!(
        (st, &v["waiting_for"]),
        (StatusCode::CREATED, &json!(0)),
        "{v}"
    );

    // 400s: no dependencies, a policy alone, a delay, unique, a bad policy.
    for (extra, says) in [
        (json!({"depends_on": []}), "depends_on"),
        (
            json!({"on_dependency_failure": "wait"}),
            "field `on_dependency_failure`: only with `depends_on`",
        ),
        (
            json!({"depends_on": ["free"], "delay_ms": 1000}),
            "field `delay_ms`",
        ),
        (
            json!({"depends_on": ["free"], "unique": {"key": "k"}}),
            "field `unique`",
        ),
        (
            json!({"depends_on": ["free"], "on_dependency_failure": "sometimes"}),
            "on_dependency_failure",
        ),
        (json!({"depends_on": "free"}), "depends_on"),
    ] {
        let m = error(
            &job(extra.clone()).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
        assert!(m.contains(says), "{extra}: {says:?} not in {m:?}");
    }

    // A batch with depends_on on any job: 400, nothing of it written.
    let (st, v) = api
        .post(
            &format!("{jobs}/batch"),
            json!({"jobs": [
                {"type": "echo", "payload": {}, "id": "b1"},
                {"type": "echo", "payload": {}, "id": "b2", "depends_on": ["free"]},
            ]}),
        )
        .await;
    let m = error(&(st, v), StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(
        m,
        "field `jobs[1].depends_on`: a job with dependencies is enqueued alone \
         (POST /v1/queues/{queue}/jobs)"
    );
    let m = error(
        &api.post(
            &format!("{jobs}/batch"),
            json!({"jobs": [{"type": "echo", "payload": {}, "on_dependency_failure": "fail"}]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(m.contains("jobs[0].on_dependency_failure"), "{m}");
    for id in ["b1", "b2"] {
        assert_eq!(
            api.get(&format!("{jobs}/{id}")).await.0,
            StatusCode::NOT_FOUND
        );
    }
}
