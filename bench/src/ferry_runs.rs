//! Ferry's side of each scenario: enqueue, drain, end to end, latency, depth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_queue::{Client, EnqueueOptions, Handler, Job, JobContext, JobError, Worker};
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::measure::{now_us, CpuMeter, Measured};
use crate::raw::paced;

/// The bench's job: a ~100-byte payload.
#[derive(Serialize, Deserialize, Clone)]
pub struct BenchJob {
    seq: u64,
    sent_us: u64,
    pad: String,
}

impl Job for BenchJob {
    const TYPE: &'static str = "bench";
}

impl BenchJob {
    pub fn new(seq: u64) -> Self {
        Self {
            seq,
            sent_us: now_us(),
            pad: "x".repeat(56),
        }
    }
}

/// Counts handler runs; records enqueue-to-start latency when asked.
#[derive(Default)]
pub struct Tally {
    done: AtomicU64,
    target: AtomicU64,
    reached: Notify,
    latencies: Mutex<Option<Vec<f64>>>,
}

impl Tally {
    fn reset(&self, target: u64, record: bool) {
        self.done.store(0, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
        *self.latencies.lock().expect("latencies") = record.then(Vec::new);
    }

    async fn wait(&self) {
        loop {
            let notified = self.reached.notified();
            if self.done.load(Ordering::SeqCst) >= self.target.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

struct NoopHandler(Arc<Tally>);

impl Handler for NoopHandler {
    type Job = BenchJob;
    type Output = ();
    async fn handle(&self, job: BenchJob, _ctx: JobContext) -> Result<(), JobError> {
        let started = now_us();
        if let Some(l) = self.0.latencies.lock().expect("latencies").as_mut() {
            l.push(started.saturating_sub(job.sent_us) as f64 / 1000.0);
        }
        let n = self.0.done.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.0.target.load(Ordering::SeqCst) {
            self.0.reached.notify_waiters();
        }
        Ok(())
    }
}

/// A running in-process worker.
pub struct RunningWorker {
    token: tokio_util::sync::CancellationToken,
    handle: tokio::task::JoinHandle<ferry_queue::Result<()>>,
}

impl RunningWorker {
    pub async fn stop(self) {
        self.token.cancel();
        let _ = self.handle.await;
    }
}

pub fn start_worker(
    url: &str,
    prefix: &str,
    queue: &str,
    concurrency: usize,
    tally: Arc<Tally>,
) -> RunningWorker {
    let worker = Worker::builder(url)
        .prefix(prefix)
        .queue(queue)
        .register(NoopHandler(tally))
        .concurrency(concurrency)
        .block_time(Duration::from_millis(200))
        .build()
        .expect("worker");
    let token = worker.shutdown_token();
    let handle = tokio::spawn(worker.run_until(std::future::pending()));
    RunningWorker { token, handle }
}

/// Waits until the queue's `completed` counter reaches `n` (acknowledged).
async fn wait_acked(conn: &mut MultiplexedConnection, client: &Client, queue: &str, n: u64) {
    let key = client.keys(queue).expect("queue").stats().to_owned();
    loop {
        let done: Option<u64> = redis::cmd("HGET")
            .arg(&key)
            .arg("completed")
            .query_async(conn)
            .await
            .expect("hget");
        if done.unwrap_or(0) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Enqueues `n` jobs with the batch API, 1,000 per call.
pub async fn fill(client: &Client, queue: &str, n: u64) {
    let mut seq = 0;
    while seq < n {
        let batch: Vec<BenchJob> = (seq..(seq + 1000).min(n)).map(BenchJob::new).collect();
        seq += batch.len() as u64;
        client
            .enqueue_batch(&batch, EnqueueOptions::new().queue(queue))
            .await
            .expect("enqueue");
    }
}

/// One job per call from `tasks` concurrent tasks: jobs per second.
pub async fn enqueue_single(client: &Client, queue: &str, n: u64, tasks: u64) -> f64 {
    enqueue_one_by_one(client, queue, n, tasks, false).await
}

/// As [`enqueue_single`], each job unique by its arguments
/// (`Client::enqueue_unique` with `Unique::by_args()`; no two alike, so
/// every one is written): what a uniqueness lock costs a producer.
pub async fn enqueue_unique_single(client: &Client, queue: &str, n: u64, tasks: u64) -> f64 {
    enqueue_one_by_one(client, queue, n, tasks, true).await
}

async fn enqueue_one_by_one(client: &Client, queue: &str, n: u64, tasks: u64, unique: bool) -> f64 {
    let started = Instant::now();
    let per = n / tasks;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (client, queue) = (client.clone(), queue.to_owned());
        handles.push(tokio::spawn(async move {
            for i in 0..per {
                let job = BenchJob::new(t * per + i);
                let options = EnqueueOptions::new().queue(&queue);
                if unique {
                    client
                        .enqueue_unique(&job, ferry_queue::Unique::by_args(), options)
                        .await
                        .expect("enqueue unique");
                } else {
                    client.enqueue_with(&job, options).await.expect("enqueue");
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    (per * tasks) as f64 / started.elapsed().as_secs_f64()
}

/// The batch API, 1,000 per call: time and CPU.
pub async fn enqueue_batch(
    client: &Client,
    conn: &mut MultiplexedConnection,
    queue: &str,
    n: u64,
) -> Measured {
    let meter = CpuMeter::start(conn).await;
    fill(client, queue, n).await;
    meter.stop(conn).await
}

/// Runs a worker at `concurrency` (and, with `produce`, a batch producer of
/// the `n` jobs started with it) until `n` jobs ran and were acknowledged,
/// measuring time and CPU.
#[allow(clippy::too_many_arguments)]
async fn measure_worker(
    url: &str,
    prefix: &str,
    client: &Client,
    conn: &mut MultiplexedConnection,
    queue: &str,
    n: u64,
    concurrency: usize,
    produce: bool,
) -> Measured {
    let tally = Arc::new(Tally::default());
    tally.reset(n, false);
    let meter = CpuMeter::start(conn).await;
    let worker = start_worker(url, prefix, queue, concurrency, tally.clone());
    let producer = produce.then(|| {
        let (c, q) = (client.clone(), queue.to_owned());
        tokio::spawn(async move { fill(&c, &q, n).await })
    });
    tally.wait().await;
    wait_acked(conn, client, queue, n).await;
    let m = meter.stop(conn).await;
    if let Some(p) = producer {
        p.await.expect("producer");
    }
    worker.stop().await;
    m
}

/// A fan-in: `n` children, and a parent enqueued after all of them
/// (`Client::enqueue_after`), run by one worker at `concurrency`. Returns
/// the time from the last child's success to the parent's start, ms, by
/// the server's clock (the queue's events: the `succeeded` and `started`
/// entries' ids).
pub async fn fan_in(
    url: &str,
    prefix: &str,
    client: &Client,
    conn: &mut MultiplexedConnection,
    queue: &str,
    n: u64,
    concurrency: usize,
) -> f64 {
    client
        .set_events(queue, Some(4 * n + 100))
        .await
        .expect("events");
    let mut children = Vec::with_capacity(n as usize);
    let mut seq = 0;
    while seq < n {
        let batch: Vec<BenchJob> = (seq..(seq + 1000).min(n)).map(BenchJob::new).collect();
        seq += batch.len() as u64;
        children.extend(
            client
                .enqueue_batch(&batch, EnqueueOptions::new().queue(queue))
                .await
                .expect("enqueue"),
        );
    }
    let parent = client
        .enqueue_after(
            &BenchJob::new(n),
            EnqueueOptions::new().queue(queue).depends_on(children),
        )
        .await
        .expect("enqueue the parent")
        .id;
    let tally = Arc::new(Tally::default());
    tally.reset(n + 1, false);
    let worker = start_worker(url, prefix, queue, concurrency, tally.clone());
    tally.wait().await;
    worker.stop().await;
    let events = ferry_queue::Keys::new(
        &ferry_queue::Prefix::new(prefix).expect("prefix"),
        ferry_broker::QueueName::new(queue).expect("queue name"),
    )
    .events()
    .to_owned();
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(&events)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .expect("events");
    let ms = |entry: &str| -> f64 {
        entry
            .split('-')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0)
    };
    let (mut last_child, mut parent_start) = (0.0_f64, 0.0_f64);
    for (entry, f) in &entries {
        let get = |name: &str| {
            f.chunks(2)
                .find(|kv| kv[0] == name)
                .map(|kv| kv[1].as_str())
        };
        match (get("event"), get("id")) {
            (Some("succeeded"), Some(id)) if id != parent => last_child = last_child.max(ms(entry)),
            (Some("started"), Some(id)) if id == parent => parent_start = ms(entry),
            _ => {}
        }
    }
    parent_start - last_child
}

/// Drains `n` queued jobs with one worker at `concurrency`.
pub async fn drain(
    url: &str,
    prefix: &str,
    client: &Client,
    conn: &mut MultiplexedConnection,
    queue: &str,
    n: u64,
    concurrency: usize,
) -> Measured {
    fill(client, queue, n).await;
    measure_worker(url, prefix, client, conn, queue, n, concurrency, false).await
}

/// A producer (batch API) and a worker at full speed until `n` are done.
pub async fn end_to_end(
    url: &str,
    prefix: &str,
    client: &Client,
    conn: &mut MultiplexedConnection,
    queue: &str,
    n: u64,
    concurrency: usize,
) -> Measured {
    measure_worker(url, prefix, client, conn, queue, n, concurrency, true).await
}

/// Enqueues one job at a time at `rate` per second for `secs` while a worker
/// runs: enqueue-to-handler-start latencies (ms), sorted.
pub async fn latency(
    url: &str,
    prefix: &str,
    client: &Client,
    queue: &str,
    rate: u64,
    secs: f64,
    concurrency: usize,
) -> Vec<f64> {
    let total = (rate as f64 * secs) as u64;
    let tally = Arc::new(Tally::default());
    tally.reset(total, true);
    let worker = start_worker(url, prefix, queue, concurrency, tally.clone());
    // Let the worker reach its blocking read before the clock starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    paced(rate, total, |seq| {
        let (client, queue) = (client.clone(), queue.to_owned());
        async move {
            client
                .enqueue_with(&BenchJob::new(seq), EnqueueOptions::new().queue(&queue))
                .await
                .expect("enqueue");
        }
    })
    .await;
    tally.wait().await;
    worker.stop().await;
    let mut v = tally
        .latencies
        .lock()
        .expect("latencies")
        .take()
        .unwrap_or_default();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Drain rate with about `depth` jobs queued: the queue is filled to `depth`,
/// a worker drains while a producer tops it up with batches of 1,000 whenever
/// it falls below `depth`; jobs per second over `measure` completions.
#[allow(clippy::too_many_arguments)]
pub async fn depth(
    url: &str,
    prefix: &str,
    client: &Client,
    conn: &mut MultiplexedConnection,
    queue: &str,
    depth: u64,
    measure: u64,
    concurrency: usize,
) -> f64 {
    fill(client, queue, depth).await;
    let tally = Arc::new(Tally::default());
    tally.reset(u64::MAX, false);
    let worker = start_worker(url, prefix, queue, concurrency, tally.clone());
    let q = ferry_broker::Queue::with_prefix(client.prefix(), queue).expect("queue");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let topper = {
        let (client, queue, stop, mut conn, q) = (
            client.clone(),
            queue.to_owned(),
            stop.clone(),
            conn.clone(),
            q.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let waiting = q
                    .stats(&mut conn)
                    .await
                    .map(|s| s.total_waiting())
                    .unwrap_or(depth);
                if waiting < depth {
                    fill(&client, &queue, 1000).await;
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    // Warm up, then measure `measure` completions.
    let warm = measure / 10;
    while tally.done.load(Ordering::SeqCst) < warm {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (start_count, started) = (tally.done.load(Ordering::SeqCst), Instant::now());
    while tally.done.load(Ordering::SeqCst) < start_count + measure {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate =
        (tally.done.load(Ordering::SeqCst) - start_count) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    topper.await.expect("topper");
    worker.stop().await;
    rate
}
