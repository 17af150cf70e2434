//! Lifecycle events in causal order (issue 20, item 4): per job,
//! `enqueued`, `started`, its handler's `progress` events, then the
//! outcome, whatever batching the worker does, and from the first claim
//! after events are turned on (the `started` event is written by the claim
//! itself, not by the worker in the background).

use std::collections::HashMap;
use std::time::Duration;

use ferry_queue::{Client, Job, JobContext, JobError, Progress, Worker};
use ferry_tests::{unique, RedisServer};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Serialize, Deserialize, Debug)]
struct Steps {
    n: u32,
}
impl Job for Steps {
    const TYPE: &'static str = "steps";
    const QUEUE: &'static str = "steps";
}

/// Runs `jobs` jobs through a worker that was started before the events
/// were turned on, and returns each job's events in stream order.
async fn events_of_a_run(
    jobs: u32,
    concurrency: usize,
) -> (Vec<String>, HashMap<String, Vec<String>>) {
    let redis = RedisServer::start().await;
    let prefix = unique("order");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let worker = Worker::builder(redis.url())
        .prefix(&prefix)
        .concurrency(concurrency)
        .handle(|job: Steps, ctx: JobContext| async move {
            // The first report is the first thing the handler does: it
            // raced the background `started` write before.
            ctx.progress(Progress::percent(10.0)).await?;
            ctx.progress(Progress::percent(90.0)).await?;
            Ok::<_, JobError>(job.n)
        })
        .build()
        .unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run_until(stop.cancelled_owned()).await }
    });
    // The worker is up (its registration is live) before events go on.
    ferry_tests::wait_until(Duration::from_secs(30), "the worker is live", || {
        let client = client.clone();
        async move { !client.workers("steps").await.unwrap().is_empty() }
    })
    .await;

    client.set_events("steps", Some(100_000)).await.unwrap();
    let mut events = client.subscribe("steps", None).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..jobs {
        ids.push(client.enqueue(&Steps { n }).await.unwrap());
    }
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut done = 0;
    tokio::time::timeout(Duration::from_secs(60), async {
        while done < jobs {
            let e = events.next().await.unwrap();
            if e.event == "succeeded" {
                done += 1;
            }
            seen.entry(e.job_id).or_default().push(e.event);
        }
    })
    .await
    .expect("every job's events came");
    stop.cancel();
    task.await.unwrap().unwrap();
    (ids, seen)
}

fn assert_causal(ids: &[String], seen: &HashMap<String, Vec<String>>) {
    let causal = ["enqueued", "started", "progress", "progress", "succeeded"];
    for id in ids {
        let events = seen.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(events, causal, "job {id}");
    }
}

/// One job at a time: the claim script's path.
#[tokio::test]
async fn a_handlers_progress_comes_after_its_started_event() {
    let (ids, seen) = events_of_a_run(20, 1).await;
    assert_causal(&ids, &seen);
}

/// Many at once: batches big enough for the bulk claim.
#[tokio::test]
async fn events_keep_their_order_under_bulk_claims() {
    let (ids, seen) = events_of_a_run(400, 64).await;
    assert_causal(&ids, &seen);
}
