//! The `ferry` command as a real process against a Redis of each test's
//! own: what it prints (`--json`, parsed) and its exit codes.

use std::collections::BTreeSet;
use std::time::Duration;

use ferry_queue::{Client, JobState};
use ferry_tests::cli::{command, net_output_bytes, seed_dead, DeadSeed, Ran};
use ferry_tests::{ferry, ferry_with_stdin, unique, wait_until, RedisServer, WorkerProcess};
use serde_json::{json, Value};

/// Long enough for a worker on a busy 2-core machine.
const WITHIN: Duration = Duration::from_secs(30);

/// A Redis and a key prefix for one test.
struct Env {
    redis: RedisServer,
    prefix: String,
}

impl Env {
    async fn new(stem: &str) -> Self {
        Self {
            redis: RedisServer::start().await,
            prefix: unique(stem),
        }
    }

    async fn ferry(&self, args: &[&str]) -> Ran {
        ferry(self.redis.url(), &self.prefix, args).await
    }

    async fn ferry_stdin(&self, args: &[&str], stdin: &str) -> Ran {
        ferry_with_stdin(self.redis.url(), &self.prefix, args, Some(stdin)).await
    }

    /// `ferry enqueue <args> --json`; the new job's id.
    async fn enqueue(&self, args: &[&str]) -> String {
        let mut all = vec!["enqueue", "--json"];
        all.extend_from_slice(args);
        let out = self.ferry(&all).await.ok_json();
        out["id"].as_str().expect("an id").to_owned()
    }

    async fn show(&self, queue: &str, id: &str) -> Value {
        self.ferry(&["job", "show", queue, id, "--json"])
            .await
            .ok_json()
    }

    async fn stats(&self, queue: &str) -> Value {
        self.ferry(&["stats", queue, "--json"]).await.ok_json()
    }

    /// An SDK client of this test's Redis and prefix (for `wait`).
    fn client(&self) -> Client {
        Client::builder(self.redis.url())
            .prefix(&self.prefix)
            .connect()
            .unwrap()
    }

    /// Writes `letters` straight into `queue`'s dead-letter stream (see
    /// [`seed_dead`]); their entry ids.
    async fn seed_dead(&self, queue: &str, letters: &[DeadSeed]) -> Vec<String> {
        let mut conn = self.redis.conn().await;
        seed_dead(&mut conn, &self.prefix, queue, letters).await
    }

    /// Every entry of `queue`'s dead-letter stream: (entry id, job id, error).
    async fn dead_stream(&self, queue: &str) -> Vec<(String, String, String)> {
        let mut conn = self.redis.conn().await;
        let q = ferry_tests::queue(&self.prefix, queue);
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(q.keys().dead())
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        entries
            .into_iter()
            .map(|(entry, fields)| {
                let get = |k: &str| {
                    fields
                        .iter()
                        .find(|(f, _)| f == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                (entry, get("id"), get("error"))
            })
            .collect()
    }

    fn worker(&self, queue: &str) -> WorkerProcess {
        WorkerProcess::spawn(
            self.redis.url(),
            &self.prefix,
            &["--queue", queue, "--concurrency", "4", "--lease-ms", "5000"],
        )
    }
}

#[tokio::test]
async fn enqueue_from_an_argument_a_file_and_stdin_then_show_says_queued() {
    let env = Env::new("cli-enqueue").await;
    let q = "emails";

    let from_arg = env
        .enqueue(&[q, "--type", "echo", "--payload", r#"{"message":"arg"}"#])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.json");
    std::fs::write(&file, "{\n  \"message\": \"file\"\n}\n").unwrap();
    let from_file = env
        .enqueue(&[
            q,
            "--type",
            "echo",
            "--file",
            file.to_str().unwrap(),
            "--priority",
            "high",
        ])
        .await;
    // Without --json it prints the id alone.
    let plain = env
        .ferry_stdin(
            &["enqueue", q, "--type", "echo", "--max-retries", "7"],
            r#"{"message":"stdin"}"#,
        )
        .await;
    plain.assert_code(0);
    let from_stdin = plain.stdout.trim_end().to_owned();
    assert_eq!(plain.stdout, format!("{from_stdin}\n"));

    for (id, priority, retries, message) in [
        (&from_arg, "normal", 3, "arg"),
        (&from_file, "high", 3, "file"),
        (&from_stdin, "normal", 7, "stdin"),
    ] {
        let s = env.show(q, id).await;
        assert_eq!(s["id"], json!(id));
        assert_eq!(s["state"], "queued", "{s}");
        assert_eq!(s["type"], "echo");
        assert_eq!(s["priority"], priority);
        assert_eq!(s["attempt"], 1);
        assert_eq!(s["max_retries"], retries);
        // The payload went in as given (a worker decodes it: see the wait test).
        let entry = s["entry_id"].as_str().unwrap();
        let mut conn = env.redis.conn().await;
        let fields: Vec<(String, String)> = redis::cmd("XRANGE")
            .arg(format!("{}:{{{q}}}:{priority}", env.prefix))
            .arg(entry)
            .arg(entry)
            .query_async::<Vec<(String, Vec<(String, String)>)>>(&mut conn)
            .await
            .unwrap()
            .remove(0)
            .1;
        let payload = &fields.iter().find(|(k, _)| k == "payload").unwrap().1;
        let payload: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(payload, json!({ "message": message }));
    }

    // A given id and a delay: the job is scheduled under that id.
    let later = env
        .enqueue(&[
            q,
            "--type",
            "echo",
            "--payload",
            "{}",
            "--id",
            "order-1017",
            "--delay-ms",
            "600000",
        ])
        .await;
    assert_eq!(later, "order-1017");
    assert_eq!(env.show(q, "order-1017").await["state"], "scheduled");
    // The same id again is refused, in one line.
    let dup = env
        .ferry(&[
            "enqueue",
            q,
            "--type",
            "echo",
            "--payload",
            "{}",
            "--id",
            "order-1017",
        ])
        .await;
    dup.assert_code(1);
    assert!(
        dup.one_error_line().contains("order-1017"),
        "{}",
        dup.stderr
    );
}

#[tokio::test]
async fn queues_lists_every_queue_with_its_depth_per_priority() {
    let env = Env::new("cli-queues").await;
    for (q, p) in [
        ("emails", "critical"),
        ("emails", "normal"),
        ("emails", "normal"),
        ("reports", "low"),
    ] {
        env.enqueue(&[q, "--type", "echo", "--payload", "{}", "--priority", p])
            .await;
    }
    env.enqueue(&[
        "reports",
        "--type",
        "echo",
        "--payload",
        "{}",
        "--delay-ms",
        "600000",
    ])
    .await;
    // Another prefix's queue is not listed.
    ferry(
        env.redis.url(),
        &unique("other"),
        &["enqueue", "elsewhere", "--type", "echo", "--payload", "{}"],
    )
    .await
    .assert_code(0);

    let list = env.ferry(&["queues", "--json"]).await.ok_json();
    assert_eq!(
        list,
        json!([
            {
                "queue": "emails",
                "waiting": {"critical": 1, "high": 0, "normal": 2, "low": 0},
                "scheduled": 0, "running": 0, "dead": 0, "paused": false, "workers": 0
            },
            {
                "queue": "reports",
                "waiting": {"critical": 0, "high": 0, "normal": 0, "low": 1},
                "scheduled": 1, "running": 0, "dead": 0, "paused": false, "workers": 0
            }
        ])
    );
    let text = env.ferry(&["queues"]).await;
    text.assert_code(0);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", text.stdout);
    assert!(lines[0].starts_with("QUEUE") && lines[0].contains("WORKERS"));
    assert!(lines[1].starts_with("emails "), "{}", text.stdout);
    assert!(lines[2].starts_with("reports "), "{}", text.stdout);

    // An empty prefix lists nothing.
    let none = ferry(env.redis.url(), &unique("empty"), &["queues", "--json"])
        .await
        .ok_json();
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn stats_json_has_depths_counters_and_the_recent_figures() {
    let env = Env::new("cli-stats").await;
    let q = "emails";
    for p in ["high", "high", "low"] {
        env.enqueue(&[q, "--type", "echo", "--payload", "{}", "--priority", p])
            .await;
    }
    let s = env.stats(q).await;
    assert_eq!(s["queue"], q);
    assert_eq!(s["paused"], false);
    assert_eq!(
        s["waiting"],
        json!({"critical": 0, "high": 2, "normal": 0, "low": 1})
    );
    assert_eq!(
        s["running"],
        json!({"critical": 0, "high": 0, "normal": 0, "low": 0})
    );
    assert_eq!(s["scheduled"], 0);
    assert_eq!(s["dead"], 0);
    assert_eq!(s["counters"]["completed"], 0);
    assert_eq!(s["counters"]["dead"], 0);
    assert_eq!(s["throughput_per_sec"], 0.0);
    let recent = &s["recent"];
    assert_eq!(recent["minutes"].as_array().unwrap().len(), 15);
    for k in ["p50_ms", "p95_ms", "p99_ms"] {
        assert_eq!(recent["wait"][k], 0.0);
        assert_eq!(recent["run"][k], 0.0);
    }
    assert_eq!(recent["failure_rate"], 0.0);
    for p in ["critical", "high", "normal", "low"] {
        let at = &s["recent_by_priority"][p];
        assert_eq!(at["minutes"].as_array().unwrap().len(), 15, "{p}");
        assert_eq!(at["wait"]["count"], 0, "{p}");
    }

    // --watch --json: one JSON line per tick, until SIGINT (then exit 0).
    let mut watch = command(
        env.redis.url(),
        &env.prefix,
        &["stats", q, "--watch", "--interval", "0.2", "--json"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    for _ in 0..2 {
        let line = tokio::time::timeout(WITHIN, lines.next_line())
            .await
            .expect("a tick within the wait")
            .unwrap()
            .expect("a line");
        let tick: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(tick["waiting"]["high"], 2);
    }
    ferry_tests::process::signal(watch.id().unwrap(), "INT");
    let status = tokio::time::timeout(WITHIN, watch.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_job_run_by_a_worker_is_waited_for_and_its_result_shown() {
    let env = Env::new("cli-wait").await;
    let q = "echoes";
    let id = env
        .enqueue(&[q, "--type", "echo", "--payload", r#"{"message":"hello"}"#])
        .await;
    let _worker = env.worker(q);
    let done = env
        .ferry(&["job", "wait", q, &id, "--timeout", "30", "--json"])
        .await
        .ok_json();
    assert_eq!(done["id"], json!(id));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"], json!({"message": "hello"}));
    assert_eq!(done["type"], "echo");
    // show says the same afterwards; the text form names the state.
    assert_eq!(env.show(q, &id).await["state"], "succeeded");
    let text = env.ferry(&["job", "show", q, &id]).await;
    text.assert_code(0);
    assert!(text.stdout.contains("state:") && text.stdout.contains("succeeded"));
    assert!(
        text.stdout.contains(r#"{"message":"hello"}"#),
        "{}",
        text.stdout
    );
}

#[tokio::test]
async fn job_wait_past_its_timeout_exits_2_with_the_state() {
    let env = Env::new("cli-timeout").await;
    let q = "idle";
    let id = env.enqueue(&[q, "--type", "echo", "--payload", "{}"]).await;
    let out = env
        .ferry(&["job", "wait", q, &id, "--timeout", "0.3", "--json"])
        .await;
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    let line = out.one_error_line();
    assert_eq!(
        line,
        format!("ferry: job {id} did not finish within 0.3s: it is queued")
    );
}

#[tokio::test]
async fn cancel_removes_a_queued_job_and_a_second_cancel_is_fine() {
    let env = Env::new("cli-cancel").await;
    let q = "emails";
    let id = env.enqueue(&[q, "--type", "echo", "--payload", "{}"]).await;
    let out = env
        .ferry(&["job", "cancel", q, &id, "--json"])
        .await
        .ok_json();
    assert_eq!(
        out,
        json!({"id": id, "state": "cancelled", "cancel_requested": false, "worker": null})
    );
    assert_eq!(env.show(q, &id).await["state"], "cancelled");
    assert_eq!(env.stats(q).await["waiting"]["normal"], 0);
    env.ferry(&["job", "cancel", q, &id]).await.assert_code(0);
    // A job that is not there: exit 3.
    let missing = env.ferry(&["job", "cancel", q, "normal-1-0"]).await;
    missing.assert_code(3);
    missing.one_error_line();
}

#[tokio::test]
async fn jobs_pages_a_state_and_streams_shows_each_group() {
    let env = Env::new("cli-jobs").await;
    let q = "emails";
    let mut ids = Vec::new();
    for (i, priority) in ["low", "critical", "low"].iter().enumerate() {
        let payload = format!(r#"{{"n":{i}}}"#);
        ids.push(
            env.enqueue(&[
                q,
                "--type",
                "echo",
                "--priority",
                priority,
                "--payload",
                &payload,
            ])
            .await,
        );
    }
    // Claim order: the critical job, then the two low ones.
    let first = env
        .ferry(&["jobs", q, "--state", "queued", "--limit", "2", "--json"])
        .await
        .ok_json();
    let listed = |page: &Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&first), [ids[1].clone(), ids[0].clone()]);
    let next = first["next"].as_str().expect("a second page").to_owned();
    let second = env
        .ferry(&["jobs", q, "--limit", "2", "--cursor", &next, "--json"])
        .await
        .ok_json();
    assert_eq!(listed(&second), [ids[2].clone()]);
    assert_eq!(second["next"], Value::Null);
    // As text: a table, and where the next page starts.
    let text = env.ferry(&["jobs", q, "--limit", "1"]).await;
    text.assert_code(0);
    assert!(text.stdout.contains(&ids[1]), "{}", text.stdout);
    assert!(
        text.stdout.contains("next page: --cursor 1:"),
        "{}",
        text.stdout
    );
    // A cursor of another state's pages is refused in one line.
    let bad = env
        .ferry(&["jobs", q, "--state", "dead", "--cursor", &next])
        .await;
    bad.assert_code(1);
    assert!(bad.one_error_line().contains("cursor"), "{}", bad.stderr);

    let streams = env.ferry(&["streams", q, "--json"]).await.ok_json();
    let low = &streams[3];
    assert_eq!(low["priority"], "low");
    assert_eq!(low["length"], 2);
    assert_eq!(low["pending"], 0);
    assert!(low["oldest_waiting_age_ms"].as_u64().is_some(), "{low}");
    let text = env.ferry(&["streams", q]).await;
    text.assert_code(0);
    assert!(
        text.stdout.contains("OLDEST PENDING AGE"),
        "{}",
        text.stdout
    );
}

#[tokio::test]
async fn reprioritise_moves_a_waiting_job_keeping_its_id() {
    let env = Env::new("cli-reprioritise").await;
    let q = "emails";
    let id = env
        .enqueue(&[q, "--type", "echo", "--payload", "{}", "--priority", "low"])
        .await;
    let out = env
        .ferry(&["job", "reprioritise", q, &id, "critical", "--json"])
        .await
        .ok_json();
    assert_eq!(out, json!({"id": id, "priority": "critical"}));
    let s = env.show(q, &id).await;
    assert_eq!(s["state"], "queued");
    assert_eq!(s["priority"], "critical");
    let list = env.ferry(&["queues", "--json"]).await.ok_json();
    assert_eq!(
        list[0]["waiting"],
        json!({"critical": 1, "high": 0, "normal": 0, "low": 0})
    );
    // Not a priority: a usage error.
    let bad = env.ferry(&["job", "reprioritise", q, &id, "urgent"]).await;
    bad.assert_code(64);
    assert!(bad.stderr.contains("urgent"), "{}", bad.stderr);
}

/// Dead letters of two kinds in `q`, made by a real worker: 3 `always-fail`
/// and 2 `fail` (which fail their first 5 attempts), none retried. Returns
/// their job ids and types, in the order they died.
async fn seed_dead_letters(env: &Env, q: &str) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            env.enqueue(&[
                q,
                "--type",
                "always-fail",
                "--payload",
                "{}",
                "--max-retries",
                "0",
            ])
            .await,
        );
    }
    for _ in 0..2 {
        ids.push(
            env.enqueue(&[
                q,
                "--type",
                "fail",
                "--payload",
                r#"{"times":5}"#,
                "--max-retries",
                "0",
            ])
            .await,
        );
    }
    let mut worker = env.worker(q);
    // Each job's end is an event (the broker announces it and the SDK's
    // `wait` listens): no polling.
    let client = env.client();
    for id in &ids {
        let end = client.wait(q, id, WITHIN).await.unwrap();
        assert_eq!(end.state, JobState::Dead, "{end:?}");
    }
    // Stopped, so that what is replayed stays queued.
    worker.terminate();
    assert!(worker.wait(WITHIN).await.success());
    let all = env.ferry(&["dead", "list", q, "--json"]).await.ok_json();
    all["letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let id = l["job_id"].as_str().unwrap().to_owned();
            assert!(ids.contains(&id), "{l}");
            (id, l["type"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The ids of `dead`'s jobs of type `job_type`.
fn of_type(dead: &[(String, String)], job_type: &str) -> Vec<String> {
    dead.iter()
        .filter(|(_, t)| t == job_type)
        .map(|(id, _)| id.clone())
        .collect()
}

#[tokio::test]
async fn dead_letters_are_listed_filtered_grouped_paged_and_shown() {
    let env = Env::new("cli-dead-list").await;
    let q = "jobs";
    let dead = seed_dead_letters(&env, q).await;
    assert_eq!(dead.len(), 5);
    let ids: Vec<String> = dead.iter().map(|(id, _)| id.clone()).collect();

    let by_type = env
        .ferry(&["dead", "list", q, "--type", "always-fail", "--json"])
        .await
        .ok_json();
    let letters = by_type["letters"].as_array().unwrap();
    assert_eq!(letters.len(), 3);
    assert!(letters.iter().all(|l| l["type"] == "always-fail"));
    assert!(letters[0]["error"]
        .as_str()
        .unwrap()
        .contains("always-fail job failed on attempt 1"));
    assert_eq!(by_type["next"], Value::Null);

    let by_error = env
        .ferry(&["dead", "list", q, "--error", "PLANNED failure", "--json"])
        .await
        .ok_json();
    let letters = by_error["letters"].as_array().unwrap();
    assert_eq!(letters.len(), 2);
    assert!(letters.iter().all(|l| l["type"] == "fail"));
    assert_eq!(letters[0]["payload"], json!({"times": 5}));
    let both = env
        .ferry(&[
            "dead", "list", q, "--type", "fail", "--error", "always", "--json",
        ])
        .await
        .ok_json();
    assert_eq!(both["letters"], json!([]));

    // Pages of 2: 2 + 2 + 1, each printing the cursor of the next.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut args = vec!["dead", "list", q, "--limit", "2", "--json"];
        if let Some(a) = &after {
            args.extend(["--after", a.as_str()]);
        }
        let page = env.ferry(&args).await.ok_json();
        pages += 1;
        let letters = page["letters"].as_array().unwrap();
        assert!(letters.len() <= 2);
        seen.extend(
            letters
                .iter()
                .map(|l| l["job_id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 5, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);
    // The text form prints the cursor too.
    let text = env.ferry(&["dead", "list", q, "--limit", "2"]).await;
    text.assert_code(0);
    assert!(
        text.stdout.contains("next page: --after "),
        "{}",
        text.stdout
    );
    // A cursor that is not an entry id is refused.
    env.ferry(&["dead", "list", q, "--after", "nope"])
        .await
        .assert_code(1)
        .one_error_line();

    let groups = env
        .ferry(&["dead", "list", q, "--group-by-error", "--json"])
        .await
        .ok_json();
    assert_eq!(groups["total"], 5);
    let groups = groups["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["count"], 3);
    assert_eq!(groups[0]["types"], json!({"always-fail": 3}));
    assert_eq!(groups[1]["count"], 2);
    assert_eq!(groups[1]["types"], json!({"fail": 2}));
    assert!(groups[1]["error"]
        .as_str()
        .unwrap()
        .contains("planned failure 1 of 5"));

    // show: by entry id and by job id, the same dead letter.
    let first = &by_error["letters"][0];
    let entry = first["entry_id"].as_str().unwrap();
    let job = first["job_id"].as_str().unwrap();
    let by_entry = env
        .ferry(&["dead", "show", q, entry, "--json"])
        .await
        .ok_json();
    let by_job = env
        .ferry(&["dead", "show", q, job, "--json"])
        .await
        .ok_json();
    assert_eq!(by_entry, by_job);
    assert_eq!(&by_entry, first);
    assert_eq!(by_entry["max_retries"], 0);
    let missing = env.ferry(&["dead", "show", q, "no-such-job"]).await;
    missing.assert_code(3);
    assert_eq!(
        missing.one_error_line(),
        format!("ferry: dead letter not found: no-such-job in queue {q}")
    );
    // job show of a dead job says dead, with its error.
    let s = env.show(q, job).await;
    assert_eq!(s["state"], "dead");
    assert!(s["last_error"]
        .as_str()
        .unwrap()
        .contains("planned failure"));
}

#[tokio::test]
async fn dead_letters_are_replayed_one_by_filter_or_by_job_retry_and_purged() {
    let env = Env::new("cli-dead-replay").await;
    let q = "jobs";
    let dead = seed_dead_letters(&env, q).await;
    let (always, fail) = (of_type(&dead, "always-fail"), of_type(&dead, "fail"));
    assert_eq!((always.len(), fail.len()), (3, 2));

    // One, by job id: queued again under its id, as attempt 1.
    let one = env
        .ferry(&["dead", "replay", q, &always[0], "--json"])
        .await
        .ok_json();
    assert_eq!(one["count"], 1);
    assert_eq!(one["replayed"][0]["job_id"], json!(always[0]));
    let s = env.show(q, &always[0]).await;
    assert_eq!(s["state"], "queued");
    assert_eq!(s["attempt"], 1);
    assert_eq!(s["entry_id"], one["replayed"][0]["entry_id"]);
    // It is no longer a dead letter.
    env.ferry(&["dead", "show", q, &always[0]])
        .await
        .assert_code(3);

    // By filter (type and error text): the two `fail` ones.
    let filtered = env
        .ferry(&[
            "dead",
            "replay",
            q,
            "--type",
            "fail",
            "--error",
            "PLANNED failure",
            "--json",
        ])
        .await
        .ok_json();
    assert_eq!(filtered["count"], 2);
    let replayed: BTreeSet<String> = filtered["replayed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(replayed, fail.iter().cloned().collect());
    for id in &fail {
        assert_eq!(env.show(q, id).await["state"], "queued");
    }

    // job retry: a dead job goes back; a queued one is refused (exit 1).
    let retried = env
        .ferry(&["job", "retry", q, &always[1], "--json"])
        .await
        .ok_json();
    assert_eq!(retried["id"], json!(always[1]));
    assert_eq!(retried["state"], "queued");
    assert_eq!(env.show(q, &always[1]).await["state"], "queued");
    let refused = env.ferry(&["job", "retry", q, &always[1]]).await;
    refused.assert_code(1);
    assert!(refused
        .one_error_line()
        .contains("is queued: only a dead job can be retried"));
    env.ferry(&["job", "retry", q, "normal-1-0"])
        .await
        .assert_code(3);

    let stats = env.stats(q).await;
    assert_eq!(stats["dead"], 1);
    assert_eq!(stats["waiting"]["normal"], 4);

    // Purge: refused without --yes when it cannot ask; done with it.
    let unconfirmed = env.ferry(&["dead", "purge", q]).await;
    unconfirmed.assert_code(64);
    assert!(unconfirmed.one_error_line().contains("--yes"));
    assert_eq!(env.stats(q).await["dead"], 1);
    let purged = env
        .ferry(&["dead", "purge", q, "--yes", "--json"])
        .await
        .ok_json();
    assert_eq!(purged, json!({"queue": q, "purged": 1}));
    let empty = env.ferry(&["dead", "list", q, "--json"]).await.ok_json();
    assert_eq!(empty["letters"], json!([]));
    // --all on an empty stream replays nothing.
    let none = env
        .ferry(&["dead", "replay", q, "--all", "--json"])
        .await
        .ok_json();
    assert_eq!(none["count"], 0);
    // Replay needs an id, a filter or --all.
    env.ferry(&["dead", "replay", q]).await.assert_code(64);
}

#[tokio::test]
async fn pause_and_resume_show_in_queues_and_stats() {
    let env = Env::new("cli-pause").await;
    let q = "emails";
    env.enqueue(&[q, "--type", "echo", "--payload", "{}"]).await;
    let paused = env.ferry(&["pause", q, "--json"]).await.ok_json();
    assert_eq!(paused, json!({"queue": q, "paused": true}));
    assert_eq!(env.stats(q).await["paused"], true);
    assert_eq!(
        env.ferry(&["queues", "--json"]).await.ok_json()[0]["paused"],
        true
    );
    let text = env.ferry(&["stats", q]).await;
    assert!(
        text.stdout.starts_with(&format!("queue {q} (paused)")),
        "{}",
        text.stdout
    );

    let resumed = env.ferry(&["resume", q]).await;
    resumed.assert_code(0);
    assert_eq!(resumed.stdout, format!("queue {q} resumed\n"));
    assert_eq!(env.stats(q).await["paused"], false);
    assert_eq!(
        env.ferry(&["queues", "--json"]).await.ok_json()[0]["paused"],
        false
    );
}

#[tokio::test]
async fn workers_lists_the_live_workers() {
    let env = Env::new("cli-workers").await;
    let q = "busy";
    assert_eq!(env.ferry(&["workers", "--json"]).await.ok_json(), json!([]));
    let worker = env.worker(q);
    let pid = worker.pid();
    wait_until(WITHIN, "the worker registers", || async {
        env.ferry(&["workers", q, "--json"])
            .await
            .ok_json()
            .as_array()
            .is_some_and(|w| w.len() == 1)
    })
    .await;
    for args in [vec!["workers", q, "--json"], vec!["workers", "--json"]] {
        let list = env.ferry(&args).await.ok_json();
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["pid"], pid);
        assert_eq!(list[0]["queues"], json!([q]));
        assert_eq!(list[0]["concurrency"], 4);
    }
    let summary = env.ferry(&["queues", "--json"]).await.ok_json();
    assert_eq!(summary[0]["queue"], q);
    assert_eq!(summary[0]["workers"], 1);
    let text = env.ferry(&["workers"]).await;
    assert!(text.stdout.contains(&pid.to_string()), "{}", text.stdout);
}

#[tokio::test]
async fn an_unknown_job_exits_3_with_one_line() {
    let env = Env::new("cli-unknown").await;
    let out = env.ferry(&["job", "show", "emails", "normal-123-0"]).await;
    out.assert_code(3);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.one_error_line(),
        "ferry: job not found: normal-123-0 in queue emails"
    );
    let json = env
        .ferry(&["job", "wait", "emails", "nope", "--json"])
        .await;
    json.assert_code(3);
    assert_eq!(json.stdout, "");
    json.one_error_line();
}

#[tokio::test]
async fn an_unreachable_redis_fails_quickly_with_one_line() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    for args in [
        vec!["queues"],
        vec!["job", "show", "emails", "normal-1-0", "--json"],
        vec!["enqueue", "emails", "--type", "echo", "--payload", "{}"],
        vec!["dead", "list", "emails"],
    ] {
        let out = ferry(&url, "ferry", &args).await;
        out.assert_code(1);
        assert_eq!(out.stdout, "");
        let line = out.one_error_line();
        assert!(
            line.starts_with(&format!("ferry: cannot reach redis at 127.0.0.1:{port}")),
            "{line}"
        );
        assert!(
            out.took < Duration::from_secs(8),
            "{args:?} took {:?}",
            out.took
        );
    }
}

#[tokio::test]
async fn a_payload_that_is_not_json_is_refused_naming_the_problem() {
    let env = Env::new("cli-bad-json").await;
    let out = env
        .ferry(&[
            "enqueue",
            "emails",
            "--type",
            "echo",
            "--payload",
            r#"{"message":"#,
        ])
        .await;
    out.assert_code(1);
    assert!(
        out.one_error_line()
            .starts_with("ferry: the payload is not valid JSON: "),
        "{}",
        out.stderr
    );
    let stdin = env
        .ferry_stdin(&["enqueue", "emails", "--type", "echo"], "not json")
        .await;
    stdin.assert_code(1);
    assert!(stdin.one_error_line().contains("not valid JSON"));
    // Nothing was written.
    assert_eq!(env.ferry(&["queues", "--json"]).await.ok_json(), json!([]));
    // Usage errors: exit 64, clap's message naming the argument.
    let usage = env.ferry(&["enqueue", "emails", "--payload", "{}"]).await;
    usage.assert_code(64);
    assert!(usage.stderr.contains("--type"), "{}", usage.stderr);
    let bad_queue = env.ferry(&["stats", "no spaces"]).await;
    bad_queue.assert_code(64);
}

#[tokio::test]
async fn help_documents_the_exit_codes() {
    let env = Env::new("cli-help").await;
    let help = env.ferry(&["--help"]).await;
    help.assert_code(0);
    for text in ["Exit codes:", "64", "--json", "queues", "dead", "enqueue"] {
        assert!(help.stdout.contains(text), "{text}: {}", help.stdout);
    }
}

/// The entry ids in a `dead list --json` page.
fn entries_of(page: &Value) -> Vec<String> {
    page["letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["entry_id"].as_str().unwrap().to_owned())
        .collect()
}

/// `count` letters `job-0000`, ... of type `rare` every tenth (the 10th,
/// 20th, ...) and `common` otherwise, each with a payload of about
/// `payload_bytes`.
fn many_letters(count: usize, payload_bytes: usize) -> Vec<DeadSeed> {
    let pad = "x".repeat(payload_bytes);
    (0..count)
        .map(|i| {
            let t = if i % 10 == 9 { "rare" } else { "common" };
            DeadSeed::new(format!("job-{i:04}"), t, "boom").payload(format!(r#"{{"pad":"{pad}"}}"#))
        })
        .collect()
}

#[tokio::test]
async fn a_small_dead_list_page_reads_only_what_it_needs() {
    let env = Env::new("cli-dead-read").await;
    let q = "jobs";
    // 2,500 letters of about 1 kB each: a chunk of 1,000 would be 1 MB.
    const LETTER: u64 = 1_000;
    let ids = env.seed_dead(q, &many_letters(2_500, 1_000)).await;
    let mut conn = env.redis.conn().await;

    // No filter: one XRANGE of the 10 letters (and one more, to tell
    // whether anything follows).
    let before = net_output_bytes(&mut conn).await;
    let page = env
        .ferry(&["dead", "list", q, "--limit", "10", "--json"])
        .await
        .ok_json();
    let sent = net_output_bytes(&mut conn).await - before;
    assert_eq!(entries_of(&page), ids[..10]);
    assert_eq!(page["next"], json!(ids[9]));
    assert_eq!(page["scanned"], 10);
    assert!(
        sent < 40 * LETTER,
        "a page of 10 made Redis send {sent} bytes"
    );

    // A filter: the 5 rare ones are among the first 50 entries; the page
    // reads in growing chunks, not far past the 50th.
    let before = net_output_bytes(&mut conn).await;
    let page = env
        .ferry(&[
            "dead", "list", q, "--type", "rare", "--limit", "5", "--json",
        ])
        .await
        .ok_json();
    let sent = net_output_bytes(&mut conn).await - before;
    let rare: Vec<String> = (0..5).map(|k| ids[10 * k + 9].clone()).collect();
    assert_eq!(entries_of(&page), rare);
    assert_eq!(page["scanned"], 50);
    assert_eq!(page["next"], json!(ids[49]));
    assert!(
        sent < 120 * LETTER,
        "a filtered page of 5 (50 entries) made Redis send {sent} bytes"
    );

    // A page ending exactly at the stream's end has no next cursor.
    let last = env
        .ferry(&[
            "dead",
            "list",
            q,
            "--after",
            &ids[2_496],
            "--limit",
            "3",
            "--json",
        ])
        .await
        .ok_json();
    assert_eq!(entries_of(&last), ids[2_497..]);
    assert_eq!(last["next"], Value::Null);
}

#[tokio::test]
async fn dead_list_pages_past_the_first_thousand_letters() {
    let env = Env::new("cli-dead-pages").await;
    let q = "jobs";
    let ids = env.seed_dead(q, &many_letters(2_500, 10)).await;

    // Pages through the whole stream with `args`; the pages' entry ids.
    let pages_of = |args: Vec<&'static str>| {
        let env = &env;
        async move {
            let mut pages: Vec<Vec<String>> = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let mut all = vec!["dead", "list", q, "--json"];
                all.extend(args.iter().copied());
                if let Some(a) = &after {
                    all.extend(["--after", a.as_str()]);
                }
                let page = env.ferry(&all).await.ok_json();
                pages.push(entries_of(&page));
                match page["next"].as_str() {
                    Some(next) => after = Some(next.to_owned()),
                    None => break,
                }
                assert!(pages.len() < 100, "paging does not end");
            }
            pages
        }
    };

    let pages = pages_of(vec!["--limit", "1000"]).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1_000, 1_000, 500]);
    assert_eq!(pages.concat(), ids);

    // Pages that end exactly at the stream's end: the last has no cursor.
    let pages = pages_of(vec!["--limit", "500"]).await;
    assert_eq!(pages.len(), 5);
    assert_eq!(pages.concat(), ids);

    // A filter across chunks: 250 rare ones, 100 a page.
    let pages = pages_of(vec!["--type", "rare", "--limit", "100"]).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let rare: Vec<String> = ids.iter().skip(9).step_by(10).cloned().collect();
    assert_eq!(pages.concat(), rare);

    // One page bigger than a chunk.
    let all = env
        .ferry(&["dead", "list", q, "--limit", "100000", "--json"])
        .await
        .ok_json();
    assert_eq!(entries_of(&all), ids);
    assert_eq!(all["next"], Value::Null);

    let groups = env
        .ferry(&["dead", "list", q, "--group-by-error", "--json"])
        .await
        .ok_json();
    assert_eq!(groups["total"], 2_500);
    assert_eq!(groups["scanned"], 2_500);
    assert_eq!(
        groups["groups"][0]["types"],
        json!({"common": 2_250, "rare": 250})
    );
    assert_eq!(groups["groups"][0]["first_entry"], json!(ids[0]));
    assert_eq!(groups["groups"][0]["last_entry"], json!(ids[2_499]));
    let after = env
        .ferry(&[
            "dead",
            "list",
            q,
            "--group-by-error",
            "--after",
            &ids[1_999],
            "--json",
        ])
        .await
        .ok_json();
    assert_eq!(after["total"], 500);
}

#[tokio::test]
async fn dead_replay_all_stops_at_the_newest_letter_there_when_it_starts() {
    let env = Env::new("cli-dead-replay-all").await;
    let q = "jobs";
    const OLD: usize = 3_000;
    let old: Vec<DeadSeed> = (0..OLD)
        .map(|i| DeadSeed::new(format!("old-{i:04}"), "always-fail", "seeded"))
        .collect();
    env.seed_dead(q, &old).await;
    // Every replayed job dies again at once: new letters while it runs.
    let mut worker = env.worker(q);

    // More letters arrive all through the replay, from when it has begun
    // (it reads the newest entry id before it moves anything).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, url, prefix) = (stop.clone(), env.redis.url().to_owned(), env.prefix.clone());
        tokio::spawn(async move {
            let client = redis::Client::open(url).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let dead = ferry_tests::queue(&prefix, q).keys().dead().to_owned();
            // The replay's start shows only in Redis (another process):
            // polled, every millisecond.
            loop {
                let len: u64 = redis::cmd("XLEN")
                    .arg(&dead)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                if len < OLD as u64 || stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let mut late = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let letter = DeadSeed::new(format!("late-{late:05}"), "always-fail", "seeded");
                seed_dead(&mut conn, &prefix, q, &[letter]).await;
                late += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            late
        })
    };
    let out = env
        .ferry(&["dead", "replay", q, "--all", "--json"])
        .await
        .ok_json();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let late = writer.await.unwrap();
    worker.terminate();
    assert!(worker.wait(WITHIN).await.success());

    // Each old letter once, none of those that arrived meanwhile.
    assert_eq!(out["count"], OLD, "{}", out["omitted"]);
    let listed: Vec<&str> = out["replayed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 1_000, "the report lists the first 1,000");
    let first: Vec<String> = (0..1_000).map(|i| format!("old-{i:04}")).collect();
    assert_eq!(listed, first);
    assert_eq!(out["omitted"], OLD - 1_000);
    assert!(late > 0, "no letter arrived during the replay");
    let left = env.dead_stream(q).await;
    let seeded: Vec<&str> = left
        .iter()
        .filter(|(_, _, error)| error == "seeded")
        .map(|(_, job, _)| job.as_str())
        .collect();
    let expected: Vec<String> = (0..late).map(|i| format!("late-{i:05}")).collect();
    assert_eq!(seeded, expected, "the letters that arrived stay dead");
    // What is left besides: old jobs that died again, once each at most.
    let mut again = BTreeSet::new();
    for (_, job, error) in &left {
        if error != "seeded" {
            assert!(job.starts_with("old-"), "{job}: {error}");
            assert!(
                again.insert(job.clone()),
                "{job} died twice: replayed twice"
            );
        }
    }
}

#[tokio::test]
async fn group_by_error_keeps_counts_and_a_bounded_number_of_groups() {
    let env = Env::new("cli-dead-groups").await;
    let q = "jobs";
    let mut letters: Vec<DeadSeed> = (0..1_000)
        .map(|i| {
            let t = if i % 2 == 0 { "a" } else { "b" };
            DeadSeed::new(format!("common-{i}"), t, "SMTP timeout")
        })
        .collect();
    // One error, 150 job types: 100 counted by name, 50 as other types.
    letters.extend(
        (0..150).map(|i| DeadSeed::new(format!("typed-{i}"), &format!("t{i:03}"), "many types")),
    );
    // 1,200 distinct errors: 998 more groups fill the 1,000; 202 ungrouped.
    letters.extend((0..1_200).map(|i| {
        DeadSeed::new(
            format!("unique-{i}"),
            "u",
            &format!("unique failure #{i:04}"),
        )
    }));
    let ids = env.seed_dead(q, &letters).await;

    let out = env
        .ferry(&["dead", "list", q, "--group-by-error", "--json"])
        .await
        .ok_json();
    assert_eq!(out["total"], 2_350);
    assert_eq!(out["scanned"], 2_350);
    assert_eq!(out["ungrouped"], 202);
    let groups = out["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1_000);
    assert_eq!(groups[0]["error"], "SMTP timeout");
    assert_eq!(groups[0]["count"], 1_000);
    assert_eq!(groups[0]["types"], json!({"a": 500, "b": 500}));
    assert_eq!(groups[0]["other_types"], 0);
    assert_eq!(groups[0]["first_entry"], json!(ids[0]));
    assert_eq!(groups[0]["last_entry"], json!(ids[999]));
    assert_eq!(groups[1]["error"], "many types");
    assert_eq!(groups[1]["count"], 150);
    assert_eq!(groups[1]["types"].as_object().unwrap().len(), 100);
    assert_eq!(groups[1]["other_types"], 50);
    // The unique ones kept are the first met.
    assert_eq!(groups[2]["error"], "unique failure #0000");
    assert_eq!(groups[999]["error"], "unique failure #0997");
    let text = env.ferry(&["dead", "list", q, "--group-by-error"]).await;
    text.assert_code(0);
    assert!(
        text.stdout.contains("202 of them have other error texts"),
        "{}",
        text.stdout
    );

    // A filter, and a cursor.
    let filtered = env
        .ferry(&[
            "dead",
            "list",
            q,
            "--group-by-error",
            "--error",
            "smtp",
            "--json",
        ])
        .await
        .ok_json();
    assert_eq!(filtered["total"], 1_000);
    assert_eq!(filtered["ungrouped"], 0);
    assert_eq!(filtered["groups"].as_array().unwrap().len(), 1);
    let later = env
        .ferry(&[
            "dead",
            "list",
            q,
            "--group-by-error",
            "--after",
            &ids[1_149],
            "--json",
        ])
        .await
        .ok_json();
    assert_eq!(later["total"], 1_200);
    assert_eq!(later["ungrouped"], 200);
    env.ferry(&["dead", "list", q, "--group-by-error", "--after", "nope"])
        .await
        .assert_code(1)
        .one_error_line();
}

#[tokio::test]
async fn dead_ids_resolve_an_exact_entry_id_first_then_a_job_id() {
    let env = Env::new("cli-dead-ids").await;
    let q = "jobs";
    // Producers choose their job ids: some look like entry ids.
    env.seed_dead(
        q,
        &[
            DeadSeed::new("alpha", "t", "a").at("1-1"),
            DeadSeed::new("01-1", "t", "b").at("2-1"),
            DeadSeed::new("1-1", "t", "c").at("3-1"),
            DeadSeed::new("9-9", "t", "d").at("4-1"),
        ],
    )
    .await;
    let show = |id: &'static str| {
        let env = &env;
        async move {
            let v = env
                .ferry(&["dead", "show", q, id, "--json"])
                .await
                .ok_json();
            (
                v["entry_id"].as_str().unwrap().to_owned(),
                v["job_id"].as_str().unwrap().to_owned(),
            )
        }
    };
    // An exact entry id first, even when it is also another letter's job id.
    assert_eq!(show("1-1").await, ("1-1".into(), "alpha".into()));
    assert_eq!(show("3-1").await, ("3-1".into(), "1-1".into()));
    // Not exactly an entry id (Redis reads 01-1 as 1-1): a job id.
    assert_eq!(show("01-1").await, ("2-1".into(), "01-1".into()));
    // Looks like an entry id, but no letter is there: a job id.
    assert_eq!(show("9-9").await, ("4-1".into(), "9-9".into()));
    assert_eq!(show("alpha").await, ("1-1".into(), "alpha".into()));
    env.ferry(&["dead", "show", q, "5-1"]).await.assert_code(3);
    env.ferry(&["dead", "show", q, "001-01"])
        .await
        .assert_code(3);

    // replay resolves the same way.
    let replay = |id: &'static str| {
        let env = &env;
        async move {
            let v = env
                .ferry(&["dead", "replay", q, id, "--json"])
                .await
                .ok_json();
            assert_eq!(v["count"], 1, "{v}");
            (
                v["replayed"][0]["dead_entry"].as_str().unwrap().to_owned(),
                v["replayed"][0]["job_id"].as_str().unwrap().to_owned(),
            )
        }
    };
    assert_eq!(replay("01-1").await, ("2-1".into(), "01-1".into()));
    assert_eq!(replay("9-9").await, ("4-1".into(), "9-9".into()));
    assert_eq!(replay("1-1").await, ("1-1".into(), "alpha".into()));
    // Entry 1-1 is gone: now 1-1 names the job.
    assert_eq!(show("1-1").await, ("3-1".into(), "1-1".into()));
    assert_eq!(replay("1-1").await, ("3-1".into(), "1-1".into()));
    assert_eq!(
        env.ferry(&["dead", "list", q, "--json"]).await.ok_json()["letters"],
        json!([])
    );

    // The rule is in the help.
    for cmd in ["show", "replay"] {
        let help = env.ferry(&["dead", cmd, "--help"]).await;
        help.assert_code(0);
        assert!(
            help.stdout
                .contains("An exact entry id of a dead letter comes first, then the job id"),
            "{}",
            help.stdout
        );
    }
}

#[tokio::test]
async fn queues_skips_keys_that_are_not_utf8() {
    let env = Env::new("cli-queues-bytes").await;
    env.enqueue(&["reports", "--type", "echo", "--payload", "{}"])
        .await;
    let mut conn = env.redis.conn().await;
    let p = env.prefix.as_bytes();
    for key in [
        // A queue's key with bytes that are not UTF-8 after its name.
        [p, b":{emails}:\xff\xfe".as_slice()].concat(),
        // Not a queue's: its name is not UTF-8.
        [p, b":{\xff}:normal".as_slice()].concat(),
        [p, b":{bad\xc3}:x".as_slice()].concat(),
        b"\xff\xfe:elsewhere".to_vec(),
    ] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("x")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let list = env.ferry(&["queues", "--json"]).await.ok_json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["emails", "reports"]);
    env.ferry(&["queues"]).await.assert_code(0);
    // workers walks the queues the same way.
    assert_eq!(env.ferry(&["workers", "--json"]).await.ok_json(), json!([]));
}

#[tokio::test]
async fn the_error_filter_ignores_case_beyond_ascii() {
    let env = Env::new("cli-dead-unicode").await;
    let q = "jobs";
    let ids = env
        .seed_dead(
            q,
            &[
                DeadSeed::new("fr", "t", "Délai DÉPASSÉ après 30 s"),
                DeadSeed::new("ru", "t", "ОШИБКА сети"),
                DeadSeed::new("el", "t", "ΑΠΟΤΥΧΙΑ ΣΥΝΔΕΣΗΣ"),
                DeadSeed::new("en", "t", "plain failure"),
            ],
        )
        .await;
    for (needle, entry) in [
        ("délai dépassé", &ids[0]),
        ("ошибка СЕТИ", &ids[1]),
        ("συνδεσης", &ids[2]),
        ("PLAIN", &ids[3]),
    ] {
        let page = env
            .ferry(&["dead", "list", q, "--error", needle, "--json"])
            .await
            .ok_json();
        assert_eq!(entries_of(&page), std::slice::from_ref(entry), "{needle}");
    }
    let groups = env
        .ferry(&[
            "dead",
            "list",
            q,
            "--group-by-error",
            "--error",
            "Ошибка",
            "--json",
        ])
        .await
        .ok_json();
    assert_eq!(groups["total"], 1);
    let replayed = env
        .ferry(&["dead", "replay", q, "--error", "DÉLAI", "--json"])
        .await
        .ok_json();
    assert_eq!(replayed["count"], 1);
    assert_eq!(replayed["replayed"][0]["job_id"], "fr");
    assert_eq!(replayed["omitted"], 0);
}
