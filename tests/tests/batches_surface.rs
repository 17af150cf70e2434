//! The operator's surface for batches and flows: `POST
//! /v1/queues/{queue}/batches` (201 with the ids, 409 `batch_exists` and
//! `duplicate_job`, 400 naming the field, 429 for a full queue), jobs
//! added to an open batch (201, 404 `batch_not_found`, 409
//! `batch_closed`), the batch's status, the list and the jobs page with
//! states, `GET /v1/queues/{queue}/flows/{root}` (the tree, 404
//! `flow_not_found`); `ferry batches`, `ferry batch show|create|add` and
//! `ferry flow show` (text, `--json`, exit codes); the dashboard's
//! batches.js and the job page's links to a job's batch and flow. Real
//! Redis, a real `ferry serve` on a real socket, real `ferry` processes;
//! jobs are finished by hand through the broker.

use std::collections::BTreeMap;

use ferry_tests::cli::{ferry, ferry_with_stdin, Ran};
use ferry_tests::serve::{answer, Env};
use ferry_tests::{queue, RedisServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const BATCHES: &str = "/v1/queues/builds/batches";
const JOBS: &str = "/v1/queues/builds/jobs";

/// Claims the next `done.len()` jobs of `q` under `prefix` (in the order
/// they were enqueued), checks that they are `done`, and acknowledges them.
async fn succeed(redis: &RedisServer, prefix: &str, q: &str, done: &[&str]) {
    let mut conn = redis.conn().await;
    let consumer = queue(prefix, q).consumer("w");
    let claimed = consumer.claim(&mut conn, done.len()).await.unwrap();
    let mut ids: Vec<String> = claimed.iter().map(|d| d.job_id()).collect();
    ids.sort();
    let mut want: Vec<String> = done.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(ids, want, "claimed");
    let entries: Vec<_> = claimed.iter().map(|d| d.entry.clone()).collect();
    consumer.ack(&mut conn, &entries).await.unwrap();
}

/// Asserts status `status` with error code `code`; returns the message.
fn error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_owned()
}

/// A job of type `echo` with id `id`.
fn job(id: &str) -> Value {
    json!({"type": "echo", "payload": {"job": id}, "id": id})
}

/// The batch `id` of jobs `ids`, with both callbacks (`<id>-ok`,
/// `<id>-done`).
fn batch(id: &str, ids: &[&str]) -> Value {
    json!({
        "id": id,
        "description": "nightly build",
        "jobs": ids.iter().map(|j| job(j)).collect::<Vec<_>>(),
        "on_success": {"type": "notify", "payload": {"ok": true}, "id": format!("{id}-ok")},
        "on_complete": {"type": "cleanup", "payload": {}, "id": format!("{id}-done")},
    })
}

/// Every job of a batch's jobs pages, `count` a page: id → (state, type).
async fn all_jobs(api: &Env, id: &str, count: usize) -> BTreeMap<String, (Value, Value)> {
    let mut out = BTreeMap::new();
    let mut cursor = 0;
    loop {
        let (st, v) = api
            .get(&format!(
                "{BATCHES}/{id}/jobs?cursor={cursor}&count={count}"
            ))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        for j in v["jobs"].as_array().unwrap() {
            out.insert(
                j["id"].as_str().unwrap().to_owned(),
                (j["state"].clone(), j["job_type"].clone()),
            );
        }
        cursor = v["next_cursor"].as_u64().unwrap();
        if cursor == 0 {
            return out;
        }
    }
}

#[tokio::test]
async fn a_batch_over_http_counts_its_jobs_and_enqueues_its_callbacks_when_all_succeed() {
    let api = Env::new("batches-http", &[], &[]).await;
    let (st, v) = api.post(BATCHES, batch("nightly", &["a", "b"])).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        v,
        json!({"queue": "builds", "id": "nightly", "jobs": ["a", "b"],
               "on_success": "nightly-ok", "on_complete": "nightly-done"})
    );

    // Open: its counts, and its callbacks' ids, waiting.
    let (st, v) = api.get(&format!("{BATCHES}/nightly")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (
            &v["state"],
            &v["total"],
            &v["pending"],
            &v["succeeded"],
            &v["failed"]
        ),
        (&json!("open"), &json!(2), &json!(2), &json!(0), &json!(0)),
        "{v}"
    );
    assert_eq!(v["description"], "nightly build", "{v}");
    assert_eq!(
        v["on_success"],
        json!({"id": "nightly-ok", "state": "waiting"})
    );
    assert_eq!(
        v["on_complete"],
        json!({"id": "nightly-done", "state": "waiting"})
    );
    assert!(v["created_at"].as_u64().unwrap() > 0, "{v}");
    assert!(v.get("completed_at").is_none(), "{v}");
    // Its jobs, with their states; each job's status names its batch.
    let jobs = all_jobs(&api, "nightly", 100).await;
    assert_eq!(
        jobs,
        BTreeMap::from([
            ("a".to_owned(), (json!("queued"), json!("echo"))),
            ("b".to_owned(), (json!("queued"), json!("echo"))),
        ])
    );
    let (_, v) = api.get(&format!("{JOBS}/a")).await;
    assert_eq!(v["batch"], "nightly", "{v}");
    // No callback job yet.
    let (st, _) = api.get(&format!("{JOBS}/nightly-ok")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // One finishes: still open, one pending.
    succeed(&api.redis, &api.prefix, "builds", &["a"]).await;
    let (_, v) = api.get(&format!("{BATCHES}/nightly")).await;
    assert_eq!(
        (&v["state"], &v["pending"], &v["succeeded"]),
        (&json!("open"), &json!(1), &json!(1)),
        "{v}"
    );
    let jobs = all_jobs(&api, "nightly", 100).await;
    assert_eq!(jobs["a"].0, "succeeded");
    assert_eq!(jobs["b"].0, "queued");

    // The last: succeeded, and both callbacks enqueued (queued jobs now).
    succeed(&api.redis, &api.prefix, "builds", &["b"]).await;
    let (_, v) = api.get(&format!("{BATCHES}/nightly")).await;
    assert_eq!(
        (&v["state"], &v["pending"], &v["succeeded"], &v["failed"]),
        (&json!("succeeded"), &json!(0), &json!(2), &json!(0)),
        "{v}"
    );
    assert_eq!(v["on_success"]["state"], "enqueued", "{v}");
    assert_eq!(v["on_complete"]["state"], "enqueued", "{v}");
    assert!(v["completed_at"].as_u64().is_some(), "{v}");
    assert!(v["succeeded_at"].as_u64().is_some(), "{v}");
    for (id, kind) in [("nightly-ok", "notify"), ("nightly-done", "cleanup")] {
        let (st, v) = api.get(&format!("{JOBS}/{id}")).await;
        assert_eq!(st, StatusCode::OK, "{id}: {v}");
        assert_eq!((&v["state"], &v["type"]), (&json!("queued"), &json!(kind)));
    }

    // Closed: no more jobs; an unknown batch is a 404.
    let m = error(
        &api.post(
            &format!("{BATCHES}/nightly/jobs"),
            json!({"jobs": [job("late")]}),
        )
        .await,
        StatusCode::CONFLICT,
        "batch_closed",
    );
    assert!(m.contains("nightly"), "{m}");
    let (st, _) = api.get(&format!("{JOBS}/late")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing was written");
    error(
        &api.post(
            &format!("{BATCHES}/nobody/jobs"),
            json!({"jobs": [job("x")]}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "batch_not_found",
    );
    error(
        &api.get(&format!("{BATCHES}/nobody")).await,
        StatusCode::NOT_FOUND,
        "batch_not_found",
    );
    error(
        &api.get(&format!("{BATCHES}/nobody/jobs")).await,
        StatusCode::NOT_FOUND,
        "batch_not_found",
    );
}

#[tokio::test]
async fn jobs_join_an_open_batch_and_the_list_and_jobs_pages_show_them() {
    let api = Env::new("batches-add", &[], &[]).await;
    let (st, v) = api.post(BATCHES, batch("first", &["f1"])).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // No id: a new one; no callbacks: none in the answer.
    let (st, v) = api
        .post(
            BATCHES,
            json!({"jobs": [job("s1"), job("s2"), {"type": "echo", "payload": 3}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let second = v["id"].as_str().unwrap().to_owned();
    assert!(!second.is_empty() && second != "first", "{v}");
    assert_eq!(v["jobs"].as_array().unwrap().len(), 3, "{v}");
    assert!(v.get("on_success").is_none(), "{v}");

    let (st, v) = api
        .post(
            &format!("{BATCHES}/{second}/jobs"),
            json!({"jobs": [job("s4"), job("s5")]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["ids"], json!(["s4", "s5"]), "{v}");
    assert_eq!(v["batch"], json!(second), "{v}");

    let (_, v) = api.get(&format!("{BATCHES}/{second}")).await;
    assert_eq!((&v["total"], &v["pending"]), (&json!(5), &json!(5)), "{v}");
    // Paged two at a time: all five, each once, with its state.
    let jobs = all_jobs(&api, &second, 2).await;
    assert_eq!(jobs.len(), 5, "{jobs:?}");
    for id in ["s1", "s2", "s4", "s5"] {
        assert_eq!(jobs[id], (json!("queued"), json!("echo")), "{id}");
    }

    // The list: newest first; limited.
    let (st, v) = api.get(BATCHES).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), "first"], "{v}");
    assert_eq!(v[1]["total"], 1, "{v}");
    let (_, v) = api.get(&format!("{BATCHES}?limit=1")).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    for bad in ["?limit=0", "?limit=1001", "?limit=x"] {
        error(
            &api.get(&format!("{BATCHES}{bad}")).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
    }
    error(
        &api.get(&format!("{BATCHES}/first/jobs?count=0")).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}

#[tokio::test]
async fn bad_batches_are_refused_with_their_codes_and_write_nothing() {
    let api = Env::new("batches-bad", &[], &[]).await;
    let (st, v) = api.post(BATCHES, batch("taken", &["t1"])).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    // The batch id in use; a job id in use.
    let m = error(
        &api.post(BATCHES, batch("taken", &["n1"])).await,
        StatusCode::CONFLICT,
        "batch_exists",
    );
    assert!(m.contains("taken"), "{m}");
    let m = error(
        &api.post(BATCHES, batch("other", &["n2", "t1"])).await,
        StatusCode::CONFLICT,
        "duplicate_job",
    );
    assert!(m.contains("t1"), "{m}");
    for id in ["n1", "n2", "other-ok"] {
        let (st, _) = api.get(&format!("{JOBS}/{id}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{id} not written");
    }
    error(
        &api.get(&format!("{BATCHES}/other")).await,
        StatusCode::NOT_FOUND,
        "batch_not_found",
    );

    // Malformed: 400 naming the field.
    let mut bad_priority = batch("b", &["x"]);
    bad_priority["jobs"][0]["priority"] = json!("urgent");
    let mut delayed = batch("b", &["x"]);
    delayed["on_complete"]["delay_ms"] = json!(5);
    for (body, says) in [
        (
            bad_priority,
            "field `jobs[0].priority`: unknown variant `urgent`",
        ),
        (delayed, "field `on_complete.delay_ms`: unknown field"),
        (json!({"id": "b"}), "missing field `jobs`"),
        (json!({"jobs": []}), "jobs"),
        (json!({"id": "bad id", "jobs": [job("x")]}), "bad id"),
    ] {
        let m = error(
            &api.post(BATCHES, body.clone()).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
        assert!(m.contains(says), "{body}: {says:?} not in {m:?}");
    }
    let m = error(
        &api.post(
            &format!("{BATCHES}/taken/jobs"),
            json!({"jobs": [{"type": "echo"}]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(
        m.contains("field `jobs[0]`: missing field `payload`"),
        "{m}"
    );

    // A full queue: 429 as the jobs route answers, with Retry-After.
    let r = ferry(
        api.redis.url(),
        &api.prefix,
        &["settings", "builds", "--max-depth", "1"],
    )
    .await;
    r.assert_code(0);
    let response = api
        .http
        .post(api.server.url(BATCHES))
        .json(&batch("full", &["f1", "f2"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "1");
    error(
        &answer(response).await,
        StatusCode::TOO_MANY_REQUESTS,
        "queue_full",
    );
}

#[tokio::test]
async fn batch_writes_need_the_write_token_and_reads_the_read_token() {
    let api = Env::new(
        "batches-auth",
        &[],
        &[
            ("FERRY_TOKEN", "w-secret"),
            ("FERRY_READ_TOKEN", "r-secret"),
        ],
    )
    .await;
    let post = |token: &'static str| {
        api.http
            .post(api.server.url(BATCHES))
            .bearer_auth(token)
            .json(&batch("guarded", &["g1"]))
            .send()
    };
    let get = |token: &'static str| {
        api.http
            .get(api.server.url(&format!("{BATCHES}/guarded")))
            .bearer_auth(token)
            .send()
    };
    error(
        &answer(post("r-secret").await.unwrap()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        answer(post("w-secret").await.unwrap()).await.0,
        StatusCode::CREATED
    );
    let (st, v) = answer(get("r-secret").await.unwrap()).await;
    assert_eq!((st, &v["id"]), (StatusCode::OK, &json!("guarded")), "{v}");
    let r = api
        .http
        .get(api.server.url("/v1/queues/builds/flows/guarded"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The flow `r` of `builds`: r ← (a ← a1, b).
fn flow() -> Value {
    json!({"type": "report", "payload": {}, "id": "r", "children": [
        {"type": "fetch", "payload": 1, "id": "a", "children": [
            {"type": "login", "payload": 2, "id": "a1"}
        ]},
        {"type": "fetch", "payload": 3, "id": "b"},
    ]})
}

#[tokio::test]
async fn the_flow_route_shows_the_tree_with_parents_and_states_and_404_for_no_such_root() {
    let api = Env::new("batches-flow", &[], &[]).await;
    let (st, v) = api.post("/v1/queues/builds/flows", flow()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    let (st, v) = api.get("/v1/queues/builds/flows/r").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["root"], "r", "{v}");
    let shape: Vec<(Value, Value, Value, Value, Value)> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["id"].clone(),
                j.get("parent").cloned().unwrap_or(Value::Null),
                j["depth"].clone(),
                j["state"].clone(),
                j["job_type"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (
                json!("r"),
                Value::Null,
                json!(0),
                json!("waiting"),
                json!("report")
            ),
            (
                json!("a"),
                json!("r"),
                json!(1),
                json!("waiting"),
                json!("fetch")
            ),
            (
                json!("a1"),
                json!("a"),
                json!(2),
                json!("queued"),
                json!("login")
            ),
            (
                json!("b"),
                json!("r"),
                json!(1),
                json!("queued"),
                json!("fetch")
            ),
        ]
    );
    assert_eq!(
        v["jobs"][0]["waiting_for"], "dependencies: a, b (2 left)",
        "{v}"
    );
    assert!(v["jobs"][2].get("waiting_for").is_none(), "{v}");
    // Any job's status names its flow's root.
    let (_, v) = api.get(&format!("{JOBS}/a1")).await;
    assert_eq!(v["flow"], "r", "{v}");

    // The leaf succeeds: the states follow.
    succeed(&api.redis, &api.prefix, "builds", &["a1", "b"]).await;
    let (_, v) = api.get("/v1/queues/builds/flows/r").await;
    let states: Vec<&str> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["waiting", "queued", "succeeded", "succeeded"],
        "{v}"
    );

    for root in ["nobody", "a1"] {
        let m = error(
            &api.get(&format!("/v1/queues/builds/flows/{root}")).await,
            StatusCode::NOT_FOUND,
            "flow_not_found",
        );
        assert!(m.contains(root), "{m}");
    }
}

/// Asserts exit `code`, nothing on stdout, and one error line containing `part`.
fn failed(ran: &Ran, code: i32, part: &str) {
    ran.assert_code(code);
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    let line = ran.one_error_line();
    assert!(line.contains(part), "{part:?} not in {line:?}");
}

#[tokio::test]
async fn ferry_batch_create_add_show_and_batches_print_text_and_json() {
    let api = Env::new("batches-cli", &[], &[]).await;
    let url = api.redis.url();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.json");
    std::fs::write(&path, batch("cli", &["c1", "c2"]).to_string()).unwrap();
    let file = path.to_str().unwrap();

    // Create from a file: the ids.
    let r = ferry(url, &api.prefix, &["batch", "create", "builds", file]).await;
    r.assert_code(0);
    assert_eq!(
        r.stdout,
        "batch:       cli\non success:  cli-ok\non complete: cli-done\njobs (2):\n  c1\n  c2\n"
    );
    // From stdin, as JSON.
    let v = ferry_with_stdin(
        url,
        &api.prefix,
        &["batch", "create", "builds", "-", "--json"],
        Some(&json!({"id": "cli2", "jobs": [job("d1")]}).to_string()),
    )
    .await
    .ok_json();
    assert_eq!(v, json!({"queue": "builds", "id": "cli2", "jobs": ["d1"]}));
    // Add: the new ids, one a line.
    let r = ferry_with_stdin(
        url,
        &api.prefix,
        &["batch", "add", "builds", "cli", "-"],
        Some(&json!({"jobs": [job("c3")]}).to_string()),
    )
    .await;
    r.assert_code(0);
    assert_eq!(r.stdout, "c3\n");

    // The list: a table, newest first; --json the route's answer.
    let r = ferry(url, &api.prefix, &["batches", "builds"]).await;
    r.assert_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "STATE",
            "TOTAL",
            "PENDING",
            "SUCCEEDED",
            "FAILED",
            "CREATED"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &row[..6],
        ["cli2", "open", "1", "1", "0", "0"],
        "{}",
        r.stdout
    );
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        &row[..6],
        ["cli", "open", "3", "3", "0", "0"],
        "{}",
        r.stdout
    );
    assert!(row[6].ends_with('Z'), "{}", r.stdout);
    let v = ferry(
        url,
        &api.prefix,
        &["batches", "builds", "--limit", "1", "--json"],
    )
    .await
    .ok_json();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["id"], "cli2", "{v}");

    // Show: counts, callbacks with their states, the jobs with theirs
    // (a finished job's record keeps no type).
    let rows = |stdout: &str| -> BTreeMap<String, Vec<String>> {
        stdout
            .lines()
            .skip_while(|l| !l.starts_with("ID "))
            .skip(1)
            .map(|l| {
                let cells: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
                (cells[0].clone(), cells[1..].to_vec())
            })
            .collect()
    };
    let r = ferry(url, &api.prefix, &["batch", "show", "builds", "cli"]).await;
    r.assert_code(0);
    for line in [
        "state:        open\n",
        "pending:      3\n",
        "on success:   cli-ok  waiting\n",
        "on complete:  cli-done  waiting\n",
    ] {
        assert!(r.stdout.contains(line), "{line:?} not in\n{}", r.stdout);
    }
    let queued = vec!["queued".to_owned(), "echo".to_owned()];
    assert_eq!(
        rows(&r.stdout),
        BTreeMap::from([
            ("c1".to_owned(), queued.clone()),
            ("c2".to_owned(), queued.clone()),
            ("c3".to_owned(), queued.clone()),
        ])
    );
    succeed(&api.redis, &api.prefix, "builds", &["c1", "c2", "d1", "c3"]).await;
    let r = ferry(url, &api.prefix, &["batch", "show", "builds", "cli"]).await;
    r.assert_code(0);
    for line in [
        "id:           cli\n",
        "state:        succeeded\n",
        "description:  nightly build\n",
        "total:        3\n",
        "pending:      0\n",
        "succeeded:    3\n",
        "failed:       0\n",
        "on success:   cli-ok  enqueued (job queued)\n",
        "on complete:  cli-done  enqueued (job queued)\n",
        "jobs (3):\n",
    ] {
        assert!(r.stdout.contains(line), "{line:?} not in\n{}", r.stdout);
    }
    assert!(r.stdout.contains("completed at: "), "{}", r.stdout);
    let states: Vec<String> = rows(&r.stdout)
        .into_values()
        .map(|c| c[0].clone())
        .collect();
    assert_eq!(
        states,
        ["succeeded", "succeeded", "succeeded"],
        "{}",
        r.stdout
    );
    let v = ferry(
        url,
        &api.prefix,
        &["batch", "show", "builds", "cli", "--json"],
    )
    .await
    .ok_json();
    assert_eq!(v["batch"]["state"], "succeeded", "{v}");
    assert_eq!(v["batch"]["on_success"]["state"], "enqueued", "{v}");
    assert_eq!(v["jobs"]["next_cursor"], 0, "{v}");
    assert_eq!(v["jobs"]["jobs"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["callbacks"][0]["id"], "cli-ok", "{v}");
    assert_eq!(v["callbacks"][0]["state"], "queued", "{v}");
}

#[tokio::test]
async fn ferry_flow_show_prints_the_tree_indented_with_states() {
    let api = Env::new("batches-flow-cli", &[], &[]).await;
    let url = api.redis.url();
    let (st, v) = api.post("/v1/queues/builds/flows", flow()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let r = ferry(url, &api.prefix, &["flow", "show", "builds", "r"]).await;
    r.assert_code(0);
    assert_eq!(
        r.stdout,
        "r  waiting  report  waiting for dependencies: a, b (2 left)\n\
         \x20 a  waiting  fetch  waiting for dependencies: a1 (1 left)\n\
         \x20   a1  queued  login\n\
         \x20 b  queued  fetch\n"
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    succeed(&api.redis, &api.prefix, "builds", &["a1"]).await;
    let v = ferry(url, &api.prefix, &["flow", "show", "builds", "r", "--json"])
        .await
        .ok_json();
    assert_eq!(v["root"], "r", "{v}");
    assert_eq!(v["jobs"][1]["state"], "queued", "{v}");
    assert_eq!(v["jobs"][2]["state"], "succeeded", "{v}");
    assert_eq!(v["jobs"][2]["parent"], "a", "{v}");
}

#[tokio::test]
async fn the_batch_and_flow_commands_exit_3_when_not_found_1_when_refused_and_64_for_usage() {
    let api = Env::new("batches-cli-bad", &[], &[]).await;
    let url = api.redis.url();
    let run = |args: &'static [&'static str], stdin: Option<String>| {
        let prefix = api.prefix.clone();
        async move { ferry_with_stdin(url, &prefix, args, stdin.as_deref()).await }
    };
    // Usage: 64.
    for args in [
        &["batches"][..],
        &["batches", "builds", "--limit", "0"],
        &["batches", "builds", "--limit", "1001"],
        &["batch", "show", "builds"],
        &["batch", "create", "builds"],
        &["flow", "show", "builds"],
        &["batches", "no queue"],
    ] {
        let r = run(args, None).await;
        r.assert_code(64);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    // Not found: 3, one line (as for jobs, dead letters and schedules).
    failed(
        &run(&["batch", "show", "builds", "nobody"], None).await,
        3,
        "no batch nobody",
    );
    failed(
        &run(&["flow", "show", "builds", "nobody"], None).await,
        3,
        "flow not found: no flow with root nobody",
    );
    // Refused, bad input: 1, one line.
    failed(
        &run(&["batch", "create", "builds", "/no/such/batch.json"], None).await,
        1,
        "cannot read the batch /no/such/batch.json",
    );
    let bad = json!({"jobs": [{"type": "echo", "payload": 1, "priority": "urgent"}]});
    failed(
        &run(&["batch", "create", "builds", "-"], Some(bad.to_string())).await,
        1,
        "ferry: field `jobs[0].priority`: unknown variant `urgent`",
    );
    let once = batch("once", &["o1"]).to_string();
    run(&["batch", "create", "builds", "-"], Some(once.clone()))
        .await
        .assert_code(0);
    failed(
        &run(&["batch", "create", "builds", "-"], Some(once)).await,
        1,
        "a batch with id once already exists",
    );
    let more = json!({"jobs": [job("o2")]}).to_string();
    failed(
        &run(
            &["batch", "add", "builds", "nobody", "-"],
            Some(more.clone()),
        )
        .await,
        3,
        "no batch nobody",
    );
    succeed(&api.redis, &api.prefix, "builds", &["o1"]).await;
    failed(
        &run(&["batch", "add", "builds", "once", "-"], Some(more)).await,
        1,
        "batch once is closed",
    );
    let (st, _) = api.get(&format!("{JOBS}/o2")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing was written");
}

#[tokio::test]
async fn the_dashboard_serves_batches_js_and_the_job_page_links_to_batch_and_flow() {
    let api = Env::new("batches-dash", &[], &[]).await;
    let r = api
        .http
        .get(api.server.url("/ui/batches.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/javascript"));
    assert!(header("content-security-policy").contains("script-src 'self'"));
    let module = r.text().await.unwrap();
    // The panel, the batch page and the flow page read their routes, and
    // link each job to its page.
    for part in [
        "export function batchesModule",
        "/batches?limit=",
        "/jobs?count=",
        "/flows/${enc(root)}",
        "'batch-row'",
        "'batch-link'",
        "'callback-link'",
        "'batch-job-link'",
        "'flow-tree'",
        "'flow-node'",
        "'flow-job-link'",
        "links.job(q, id)",
        "stateBadge(j.state)",
        "'job-batch-link'",
        "'job-flow-link'",
    ] {
        assert!(module.contains(part), "{part:?} not in batches.js");
    }
    // app.js imports it, routes to its pages, shows its panel on the
    // queue page and its links on the job page.
    let app = api.text("/ui/app.js").await;
    for part in [
        "import { batchesModule } from './batches.js';",
        "batches.route(queue, parts)",
        "...batches.pages",
        "section('Batches', batches.panel(q, batchList))",
        "batches.jobLinks(q, j)",
    ] {
        assert!(app.contains(part), "{part:?} not in app.js");
    }
    // The job page's links come from the status's `batch` and `flow`.
    assert!(module.contains("j.batch") && module.contains("j.flow"));
    let (st, v) = api.post(BATCHES, batch("dash", &["d1"])).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, v) = api.get(&format!("{JOBS}/d1")).await;
    assert_eq!(v["batch"], "dash", "{v}");
}
