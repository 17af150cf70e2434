//! The operator's surface for flows: `POST /v1/queues/{queue}/flows` (201
//! with the tree of ids and `waiting_for`, 409 for a taken id, 422 for a
//! bad dependency, 400 naming what is wrong, a tree too deep included)
//! and `ferry enqueue-flow QUEUE FILE|-` (the tree of ids, `--json`, exit
//! codes). Real Redis, a real `ferry serve` on a real socket, real `ferry`
//! processes.

use ferry_tests::cli::{ferry, ferry_with_stdin, Ran};
use ferry_tests::serve::{answer, Env};
use reqwest::StatusCode;
use serde_json::{json, Value};

const FLOWS: &str = "/v1/queues/builds/flows";
const JOBS: &str = "/v1/queues/builds/jobs";

/// Asserts status `status` with error code `code`; returns the message.
fn error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_owned()
}

/// A job of type `echo` with id `id` (none for `""`) and `children`.
fn job(id: &str, children: Vec<Value>) -> Value {
    let mut j = json!({"type": "echo", "payload": {"job": id}});
    if !id.is_empty() {
        j["id"] = json!(id);
    }
    if !children.is_empty() {
        j["children"] = Value::Array(children);
    }
    j
}

/// The body of `POST path` sent as raw `text` (JSON that `serde_json::Value`
/// could not hold, or not JSON at all).
async fn post_text(api: &Env, path: &str, text: String) -> (StatusCode, Value) {
    let r = api
        .http
        .post(api.server.url(path))
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    answer(r).await
}

/// A chain of `levels` jobs as JSON text, each the only child of the one
/// before.
fn chain(levels: usize) -> String {
    let open = r#"{"type": "echo", "payload": {}, "children": ["#;
    let mut text = open.repeat(levels - 1);
    text.push_str(r#"{"type": "echo", "payload": {}}"#);
    text.push_str(&"]}".repeat(levels - 1));
    text
}

/// Asserts that no job `ids` exists in queue `builds`.
async fn none_exist(api: &Env, ids: &[&str]) {
    for id in ids {
        let (st, v) = api.get(&format!("{JOBS}/{id}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{id}: {v}");
    }
}

#[tokio::test]
async fn a_three_level_flow_is_201_with_its_tree_and_the_root_waits_for_its_children() {
    let api = Env::new("flows-http", &[], &[]).await;
    let (st, v) = api
        .post(JOBS, json!({"type": "echo", "payload": {}, "id": "old"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    let mut root = job(
        "r",
        vec![
            job("a", vec![job("a1", vec![]), job("", vec![])]),
            job("b", vec![]),
        ],
    );
    root["depends_on"] = json!(["old"]);
    root["on_child_failure"] = json!("release");
    root["priority"] = json!("high");
    let (st, v) = api.post(FLOWS, root).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["queue"], "builds", "{v}");
    let flow = &v["flow"];
    // The generated id of the second grandchild.
    let a2 = flow["children"][0]["children"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!a2.is_empty() && a2 != "a1", "{v}");
    assert_eq!(
        *flow,
        json!({"id": "r", "waiting_for": 3, "children": [
            {"id": "a", "waiting_for": 2, "children": [
                {"id": "a1", "waiting_for": 0, "children": []},
                {"id": a2, "waiting_for": 0, "children": []},
            ]},
            {"id": "b", "waiting_for": 0, "children": []},
        ]})
    );

    // The root waits for its children and its dependency; so does the middle.
    let (st, v) = api.get(&format!("{JOBS}/r")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "waiting", "{v}");
    assert_eq!(v["depends_on"], json!(["a", "b", "old"]), "{v}");
    assert_eq!(v["priority"], "high", "{v}");
    let (_, v) = api.get(&format!("{JOBS}/a")).await;
    assert_eq!(v["state"], "waiting", "{v}");
    let mut deps: Vec<String> = serde_json::from_value(v["depends_on"].clone()).unwrap();
    deps.sort();
    let mut want = vec!["a1".to_owned(), a2.clone()];
    want.sort();
    assert_eq!(deps, want, "{v}");
    // The leaves are queued.
    for leaf in ["a1", a2.as_str(), "b"] {
        let (_, v) = api.get(&format!("{JOBS}/{leaf}")).await;
        assert_eq!(v["state"], "queued", "{leaf}: {v}");
        assert!(v.get("depends_on").is_none(), "{leaf}: {v}");
    }
}

#[tokio::test]
async fn a_flow_with_a_taken_id_is_409_and_writes_none_of_its_jobs() {
    let api = Env::new("flows-http-dup", &[], &[]).await;
    let (st, v) = api
        .post(JOBS, json!({"type": "other", "payload": 7, "id": "taken"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    let flow = job(
        "r",
        vec![job("x", vec![job("taken", vec![])]), job("y", vec![])],
    );
    let m = error(
        &api.post(FLOWS, flow).await,
        StatusCode::CONFLICT,
        "duplicate_job",
    );
    assert!(m.contains("taken"), "{m}");
    none_exist(&api, &["r", "x", "y"]).await;
    // The job that had the id is as it was.
    let (_, v) = api.get(&format!("{JOBS}/taken")).await;
    assert_eq!(
        (&v["type"], &v["state"]),
        (&json!("other"), &json!("queued")),
        "{v}"
    );
    let (_, v) = api.get(&format!("{JOBS}?state=queued")).await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn a_flow_with_a_bad_dependency_is_422_and_writes_nothing() {
    let api = Env::new("flows-http-dep", &[], &[]).await;
    let mut flow = job("r", vec![job("x", vec![])]);
    flow["children"][0]["depends_on"] = json!(["nobody"]);
    let m = error(
        &api.post(FLOWS, flow).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_dependency",
    );
    assert!(m.starts_with("dependency nobody does not exist"), "{m}");
    none_exist(&api, &["r", "x"]).await;
}

#[tokio::test]
async fn malformed_flows_are_400_naming_the_problem_and_write_nothing() {
    let api = Env::new("flows-http-bad", &[], &[]).await;
    let mut no_type = job("r", vec![job("x", vec![])]);
    no_type["children"][0]
        .as_object_mut()
        .unwrap()
        .remove("type");
    let mut bad_priority = job("r", vec![job("x", vec![job("x1", vec![])])]);
    bad_priority["children"][0]["children"][0]["priority"] = json!("urgent");
    let mut not_an_array = job("r", vec![]);
    not_an_array["children"] = job("x", vec![]);
    let mut delayed = job("r", vec![job("x", vec![])]);
    delayed["children"][0]["delay_ms"] = json!(5);
    let mut bad_policy = job("r", vec![job("x", vec![])]);
    bad_policy["on_child_failure"] = json!("sometimes");
    for (body, says) in [
        (no_type, "field `children[0]`: missing field `type`"),
        (
            bad_priority,
            "field `children[0].children[0].priority`: unknown variant `urgent`",
        ),
        (
            not_an_array,
            "field `children`: invalid type: map, expected a sequence",
        ),
        (
            delayed,
            "field `children[0].delay_ms`: unknown field `delay_ms`",
        ),
        (
            bad_policy,
            "field `on_child_failure`: unknown variant `sometimes`",
        ),
        (
            json!({"payload": 1}),
            "the flow is not valid: missing field `type`",
        ),
    ] {
        let m = error(
            &api.post(FLOWS, body.clone()).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
        assert!(m.contains(says), "{body}: {says:?} not in {m:?}");
    }

    // 200 levels (JSON nested 400 deep): a 400 at the first job past the
    // limit, and the server goes on.
    let m = error(
        &post_text(&api, FLOWS, chain(200)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(
        m.contains("children`: the flow is deeper than 50 levels"),
        "{m}"
    );
    let m = error(
        &post_text(&api, FLOWS, chain(51)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(m.contains("deeper than 50 levels"), "{m}");
    let m = error(
        &post_text(&api, FLOWS, r#"{"type": "echo", "payload": "#.into()).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(m.starts_with("the body is not valid"), "{m}");
    none_exist(&api, &["r", "x", "x1"]).await;
    let (st, v) = api.get("/v1/queues/builds").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing was written: {v}");
    assert_eq!(api.get("/healthz").await.0, StatusCode::OK);

    // 50 levels is the limit, and goes in. (The answer nests 100 deep:
    // read here as text, to count its levels.)
    let r = api
        .http
        .post(api.server.url(FLOWS))
        .header("content-type", "application/json")
        .body(chain(50))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with(r#"{"queue":"builds","flow":{"id":""#),
        "{text}"
    );
    assert_eq!(text.matches(r#""waiting_for":1,"#).count(), 49, "{text}");
    assert_eq!(
        text.matches(r#""waiting_for":0,"children":[]"#).count(),
        1,
        "{text}"
    );
    let root = &text[r#"{"queue":"builds","flow":{"id":""#.len()..];
    let root = &root[..root.find('"').unwrap()];
    let (_, v) = api.get(&format!("{JOBS}/{root}")).await;
    assert_eq!(v["state"], "waiting", "{v}");
}

/// The flow the command-line tests enqueue, with ids ending in `tag`.
fn cli_flow(tag: &str) -> (String, String) {
    let flow = json!({"type": "echo", "payload": {}, "id": format!("r{tag}"), "children": [
        {"type": "echo", "payload": 1, "id": format!("a{tag}"), "children": [
            {"type": "echo", "payload": 2, "id": format!("a1{tag}")}
        ]},
        {"type": "echo", "payload": 3, "id": format!("b{tag}")},
    ]});
    let tree = format!(
        "r{tag}  waiting for 2\n  a{tag}  waiting for 1\n    a1{tag}  waiting for 0\n  b{tag}  waiting for 0\n"
    );
    (flow.to_string(), tree)
}

#[tokio::test]
async fn ferry_enqueue_flow_prints_the_tree_from_a_file_and_from_stdin() {
    let api = Env::new("flows-cli", &[], &[]).await;
    let url = api.redis.url();
    let dir = tempfile::tempdir().unwrap();

    // From a file: the tree of ids, indented.
    let (text, tree) = cli_flow("-file");
    let path = dir.path().join("flow.json");
    std::fs::write(&path, text).unwrap();
    let file = path.to_str().unwrap();
    let r = ferry(url, &api.prefix, &["enqueue-flow", "builds", file]).await;
    r.assert_code(0);
    assert_eq!(r.stdout, tree);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let (_, v) = api.get(&format!("{JOBS}/r-file")).await;
    assert_eq!(v["state"], "waiting", "{v}");
    assert_eq!(v["depends_on"], json!(["a-file", "b-file"]), "{v}");

    // From stdin, as text and as JSON.
    let (text, tree) = cli_flow("-in");
    let r = ferry_with_stdin(
        url,
        &api.prefix,
        &["enqueue-flow", "builds", "-"],
        Some(&text),
    )
    .await;
    r.assert_code(0);
    assert_eq!(r.stdout, tree);
    let (text, _) = cli_flow("-json");
    let v = ferry_with_stdin(
        url,
        &api.prefix,
        &["enqueue-flow", "builds", "-", "--json"],
        Some(&text),
    )
    .await
    .ok_json();
    assert_eq!(
        v,
        json!({"queue": "builds", "flow": {"id": "r-json", "waiting_for": 2, "children": [
            {"id": "a-json", "waiting_for": 1, "children": [
                {"id": "a1-json", "waiting_for": 0, "children": []}
            ]},
            {"id": "b-json", "waiting_for": 0, "children": []},
        ]}})
    );
    let r = ferry(url, &api.prefix, &["job", "show", "builds", "a-json"]).await;
    r.assert_code(0);
    assert!(r.stdout.contains("depends on:  a1-json\n"), "{}", r.stdout);
}

/// Asserts exit `code`, nothing on stdout, and one error line containing `part`.
fn failed(ran: &Ran, code: i32, part: &str) {
    ran.assert_code(code);
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    let line = ran.one_error_line();
    assert!(line.contains(part), "{part:?} not in {line:?}");
}

#[tokio::test]
async fn ferry_enqueue_flow_exits_as_ferry_enqueue_does() {
    let api = Env::new("flows-cli-bad", &[], &[]).await;
    let url = api.redis.url();
    let run = |args: &'static [&'static str], stdin: Option<String>| {
        let prefix = api.prefix.clone();
        async move { ferry_with_stdin(url, &prefix, args, stdin.as_deref()).await }
    };
    // Usage errors: 64.
    let r = run(&["enqueue-flow", "builds"], None).await;
    r.assert_code(64);
    assert!(r.stderr.contains("<FILE>"), "{}", r.stderr);
    run(&["enqueue-flow", "builds", "-", "--depth", "3"], None)
        .await
        .assert_code(64);
    run(&["enqueue-flow", "no queue", "-"], None)
        .await
        .assert_code(64);

    // What `ferry enqueue` answers 1 to: a file that cannot be read, a
    // flow that is not valid, a taken id, a bad dependency.
    failed(
        &run(&["enqueue-flow", "builds", "/no/such/flow.json"], None).await,
        1,
        "cannot read the flow /no/such/flow.json",
    );
    let bad = r#"{"type": "echo", "payload": {}, "children": [{"type": "echo", "payload": {}, "priority": "urgent"}]}"#;
    failed(
        &run(&["enqueue-flow", "builds", "-"], Some(bad.into())).await,
        1,
        "ferry: field `children[0].priority`: unknown variant `urgent`",
    );
    let r = run(
        &[
            "enqueue",
            "builds",
            "--type",
            "echo",
            "--payload",
            "{}",
            "--id",
            "taken",
        ],
        None,
    )
    .await;
    r.assert_code(0);
    let (text, _) = cli_flow("");
    let taken = text.replace("\"b\"", "\"taken\"");
    assert_ne!(taken, text);
    failed(
        &run(&["enqueue-flow", "builds", "-"], Some(taken)).await,
        1,
        "already has a job with id \"taken\"",
    );
    let dep = text.replace("\"id\":\"b\"", "\"id\":\"b\",\"depends_on\":[\"nobody\"]");
    assert_ne!(dep, text);
    failed(
        &run(&["enqueue-flow", "builds", "-"], Some(dep)).await,
        1,
        "ferry: dependency nobody does not exist",
    );
    none_exist(&api, &["r", "a", "a1", "b"]).await;
}
