//! Unique jobs from the command line: `ferry enqueue --unique` (the SDK's
//! key by arguments), `--unique-key`, `--unique-for`, `--debounce`,
//! `--error-on-duplicate` (exit 4), and the combinations refused.

use ferry_queue::{Client, EnqueueOptions, Job, Unique};
use ferry_tests::cli::ferry;
use ferry_tests::{queue, unique, RedisServer};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::usage_error;

#[derive(Serialize, Deserialize)]
struct SyncAccount {
    b: u32,
    a: u32,
}

impl Job for SyncAccount {
    const TYPE: &'static str = "sync";
    const QUEUE: &'static str = "accounts";
}

#[tokio::test]
async fn the_cli_enqueues_unique_jobs_and_folds_duplicates_into_the_holder() {
    let redis = RedisServer::start().await;
    let prefix = unique("flow-unique");
    let url = redis.url();
    let mut conn = redis.conn().await;
    let enqueue = |payload: &'static str, extra: &'static [&'static str]| {
        let mut args = vec![
            "enqueue",
            "accounts",
            "--type",
            "sync",
            "--payload",
            payload,
        ];
        args.extend_from_slice(extra);
        let prefix = prefix.clone();
        async move { ferry(url, &prefix, &args).await }
    };

    // By arguments: the SDK's key. A service enqueues first...
    let client = Client::builder(url)
        .prefix(prefix.as_str())
        .connect()
        .unwrap();
    let sdk = client
        .enqueue_unique(
            &SyncAccount { b: 2, a: 1 },
            Unique::by_args(),
            EnqueueOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(sdk.duplicate, None);
    let locks: Vec<String> = redis::cmd("HKEYS")
        .arg(queue(&prefix, "accounts").keys().unique())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(locks.len(), 1, "{locks:?}");
    // ...and the same arguments from the command line, in another order
    // and spacing, are its duplicate: the same key, the SDK's job.
    let v = enqueue(r#"{ "a": 1, "b": 2 }"#, &["--unique", "--json"])
        .await
        .ok_json();
    assert_eq!(
        v,
        json!({"queue": "accounts", "id": sdk.id, "unique_key": locks[0],
               "duplicate": {"of": sdk.id, "kind": "existing"}}),
        "{v}"
    );
    let r = enqueue(r#"{"b":2,"a":1}"#, &["--unique"]).await;
    r.assert_code(0);
    assert_eq!(r.stdout, format!("deduplicated into job {}\n", sdk.id));
    // Other arguments are another key: a new job, its id alone.
    let r = enqueue(r#"{"a":1,"b":3}"#, &["--unique"]).await;
    r.assert_code(0);
    let other = r.stdout.trim().to_owned();
    assert!(!other.is_empty() && other != sdk.id, "{r:?}");
    // Asked to fail on a duplicate: exit 4, one line naming the holder.
    let r = enqueue(r#"{"a":1,"b":2}"#, &["--unique", "--error-on-duplicate"]).await;
    r.assert_code(4);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let line = r.one_error_line();
    assert!(
        line.contains(&sdk.id) && line.contains("unique key") && line.contains("nothing enqueued"),
        "{line}"
    );
    let ids: Vec<String> = jobs(url, &prefix, "queued").await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&sdk.id) && ids.contains(&other), "{ids:?}");

    // An explicit key, held until the job starts: after a claim, the same
    // key makes a new job.
    let first = enqueue(
        "{}",
        &[
            "--unique-key",
            "nightly",
            "--unique-for",
            "until-started",
            "--json",
        ],
    )
    .await
    .ok_json();
    assert_eq!(first["unique_key"], "nightly", "{first}");
    let again = enqueue(
        "{}",
        &[
            "--unique-key",
            "nightly",
            "--unique-for",
            "until-started",
            "--json",
        ],
    )
    .await
    .ok_json();
    assert_eq!(
        again["duplicate"],
        json!({"of": first["id"], "kind": "existing"})
    );
    let worker = queue(&prefix, "accounts").consumer("w");
    let claimed = worker.claim(&mut conn, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let after = enqueue(
        "{}",
        &[
            "--unique-key",
            "nightly",
            "--unique-for",
            "until-started",
            "--json",
        ],
    )
    .await
    .ok_json();
    assert_eq!(after.get("duplicate"), None, "{after}");
    assert_ne!(after["id"], first["id"]);

    // Debounce: the duplicate takes the waiting job's place (its payload).
    let d1 = enqueue(
        r#"{"v":1}"#,
        &["--unique-key", "digest", "--debounce", "1h", "--json"],
    )
    .await
    .ok_json();
    let d2 = enqueue(
        r#"{"v":2}"#,
        &["--unique-key", "digest", "--debounce", "1h"],
    )
    .await;
    d2.assert_code(0);
    let id = d1["id"].as_str().unwrap();
    assert!(
        d2.stdout
            .starts_with(&format!("deduplicated into job {id} (debounced")),
        "{}",
        d2.stdout
    );
    let job = ferry(url, &prefix, &["job", "show", "accounts", id, "--json"])
        .await
        .ok_json();
    assert_eq!(
        (&job["state"], &job["payload"]),
        (&json!("scheduled"), &json!({"v": 2})),
        "{job}"
    );

    // A throttle: held for the window whatever the job does.
    let t1 = enqueue(
        "{}",
        &["--unique-key", "ping", "--unique-for", "10m", "--json"],
    )
    .await
    .ok_json();
    let t2 = enqueue(
        "{}",
        &["--unique-key", "ping", "--unique-for", "10m", "--json"],
    )
    .await
    .ok_json();
    assert_eq!(t2["duplicate"]["of"], t1["id"]);
}

/// The ids of `accounts`' jobs in `state`.
async fn jobs(url: &str, prefix: &str, state: &str) -> Vec<String> {
    let v = ferry(
        url,
        prefix,
        &["jobs", "accounts", "--state", state, "--json"],
    )
    .await
    .ok_json();
    v["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn bad_unique_combinations_are_usage_errors_and_write_nothing() {
    let redis = RedisServer::start().await;
    let prefix = unique("flow-unique-bad");
    let url = redis.url();
    let enqueue = |extra: &'static [&'static str]| {
        let mut args = vec!["enqueue", "accounts", "--type", "sync", "--payload", "{}"];
        args.extend_from_slice(extra);
        let prefix = prefix.clone();
        async move { ferry(url, &prefix, &args).await }
    };
    // clap's own: both keys, a lifetime or the error flag without a key,
    // two lifetimes, an id or a delay where they cannot go, bad windows.
    for extra in [
        &["--unique", "--unique-key", "k"][..],
        &["--unique-for", "5s"],
        &["--debounce", "5s"],
        &["--error-on-duplicate"],
        &["--unique", "--unique-for", "5s", "--debounce", "5s"],
        &["--unique", "--id", "mine"],
        &["--unique", "--debounce", "5s", "--delay-ms", "10"],
        &["--unique", "--unique-for", "0"],
        &["--unique", "--unique-for", "sometimes"],
        &["--unique", "--debounce", "0s"],
    ] {
        let r = enqueue(extra).await;
        r.assert_code(64);
        assert!(r.stdout.is_empty(), "{extra:?}: {}", r.stdout);
    }
    // The library's checks: one line each.
    usage_error(
        &enqueue(&["--unique-key", ""]).await,
        &["unique", "the key is 0 bytes"],
    );
    let long = "k".repeat(513);
    let args = [
        "enqueue",
        "accounts",
        "--type",
        "sync",
        "--payload",
        "{}",
        "--unique-key",
        &long,
    ];
    usage_error(&ferry(url, &prefix, &args).await, &["the key is 513 bytes"]);
    let r = ferry(url, &prefix, &["jobs", "accounts", "--json"]).await;
    assert_eq!(r.json()["jobs"], json!([]), "{}", r.stdout);
}
