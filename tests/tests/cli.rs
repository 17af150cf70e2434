//! The `ferry` command as a real process against a Redis of each test's
//! own: what it prints (`--json`, parsed) and its exit codes.

use std::collections::BTreeSet;
use std::time::Duration;

use ferry_tests::cli::{command, Ran};
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
    wait_until(WITHIN, "five dead letters", || async {
        env.stats(q).await["dead"] == 5
    })
    .await;
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
