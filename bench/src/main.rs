//! `ferry-bench`: Ferry against the raw limit of Redis Streams, on the same
//! machine in the same run. Starts its own redis-server (no persistence)
//! unless `REDIS_URL` is set, runs every scenario `--runs` times, prints a
//! table with median, min and max, checks the targets as ratios, and writes
//! the figures as JSON.
//!
//! ```sh
//! cargo run --release -p ferry-bench                 # the full run (minutes)
//! cargo run --release -p ferry-bench -- --quick      # a few hundred jobs (CI)
//! ```

#![allow(missing_docs, clippy::print_literal)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

/// mimalloc, as in worker-example: both the raw baseline and Ferry run with
/// it (docs/performance.md has the figures with glibc malloc too).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod ferry_runs;
mod measure;
mod raw;

use std::time::Instant;

use clap::Parser;
use ferry_queue::Client;
use measure::{info_field, percentile, Figure, Measured, OwnRedis};
use serde::Serialize;

#[derive(Parser)]
#[command(about = "Ferry against the raw limit of Redis Streams, in one run")]
struct Args {
    /// A tiny run (a few hundred jobs) so the benchmark cannot rot; figures are meaningless.
    #[arg(long)]
    quick: bool,
    /// Runs per figure (median, min, max).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to write the figures as JSON.
    #[arg(long, default_value = "target/bench-results.json")]
    out: String,
    /// Redis URL to use instead of a redis-server of the bench's own (it must be empty: the bench FLUSHALLs it).
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// The redis-server binary for a server of the bench's own (default:
    /// the one on PATH, else one ferry-dev-redis obtains and caches).
    #[arg(long)]
    redis_server: Option<String>,
    /// Worker concurrencies of the drain scenario, comma-separated.
    #[arg(long, default_value = "1,50,500", value_delimiter = ',')]
    drain_concurrency: Vec<usize>,
    /// Worker concurrency of the end-to-end scenario.
    #[arg(long, default_value_t = 500)]
    e2e_concurrency: usize,
    /// Only run the scenario groups named here, comma-separated (raw, enqueue, batch, drain, e2e, latency, depth, memory, fanin).
    #[arg(long)]
    only: Option<String>,
    /// Finished jobs' records: `on` (the queue's default retention, 24 h
    /// and 10,000) or `off` (retention 0: none kept).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    records: String,
    /// Lifecycle events: `off` (the default) or `on` (capped at 100,000).
    #[arg(long, default_value = "off", value_parser = ["on", "off"])]
    events: String,
    /// A flow-control mechanism on queue "q", set high enough never to
    /// bind, to measure what it costs: `off` (the default), `rate` (a rate
    /// limit of 1,000,000/s), `queue-limit` (a queue concurrency limit of
    /// 100,000), `type-limit` (a concurrency limit of 100,000 on the
    /// bench's job type: every job passes a gate), `type-rate` (a rate
    /// limit of 1,000,000/s on the bench's job type: every claimed job
    /// passes a rate gate).
    #[arg(long, default_value = "off", value_parser = ["off", "rate", "queue-limit", "type-limit", "type-rate"])]
    flow: String,
}

struct Sizes {
    raw: u64,
    enqueue_single: u64,
    enqueue_64: u64,
    batch: u64,
    drain: u64,
    e2e: u64,
    latency_secs: f64,
    latency_rates: [u64; 2],
    depth: [u64; 2],
    depth_measure: u64,
    memory: u64,
    fan_in: u64,
}

const FULL: Sizes = Sizes {
    raw: 200_000,
    enqueue_single: 20_000,
    enqueue_64: 100_000,
    batch: 200_000,
    drain: 100_000,
    e2e: 100_000,
    latency_secs: 10.0,
    latency_rates: [1_000, 10_000],
    depth: [1_000, 1_000_000],
    depth_measure: 50_000,
    memory: 100_000,
    fan_in: 10_000,
};

const QUICK: Sizes = Sizes {
    raw: 300,
    enqueue_single: 300,
    enqueue_64: 320,
    batch: 300,
    drain: 300,
    e2e: 300,
    latency_secs: 0.5,
    latency_rates: [200, 400],
    depth: [100, 2_000],
    depth_measure: 300,
    memory: 300,
    fan_in: 300,
};

#[derive(Serialize)]
struct Target {
    name: String,
    ratio: f64,
    bound: String,
    met: bool,
}

#[derive(Serialize)]
struct Report {
    machine: String,
    redis_version: String,
    mode: &'static str,
    runs: usize,
    figures: Vec<Figure>,
    targets: Vec<Target>,
}

struct Bench {
    url: String,
    conn: redis::aio::MultiplexedConnection,
    figures: Vec<Figure>,
    runs: usize,
    only: Option<String>,
    round: u64,
    drain_concurrency: Vec<usize>,
    e2e_concurrency: usize,
    /// False with `--records off`: queue "q" keeps no records.
    records: bool,
    /// True with `--events on`.
    events: bool,
    /// `--flow`.
    flow: String,
}

/// Raw pipelined XADD, the enqueue baseline.
const RAW_XADD: &str = "raw: pipelined XADD";
/// Raw drain, the drain baseline.
const RAW_DRAIN: &str = "raw: drain (XREADGROUP 100 + XACK + XDEL)";
/// Raw lifecycle (producer and consumer at once), the end-to-end baseline.
const RAW_LIFE: &str = "raw: lifecycle (both at once)";
/// Ferry's batch enqueue.
const BATCH: &str = "enqueue: batch API, 1,000 per call";
/// The end-to-end figure (producer and worker at `--e2e-concurrency`).
const E2E: &str = "e2e: producer + worker";

impl Bench {
    fn wants(&self, name: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|part| name.contains(part.trim())))
    }

    /// A clean database and a fresh prefix for one run.
    async fn fresh(&mut self) -> (String, Client) {
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut self.conn)
            .await
            .expect("flushall");
        self.round += 1;
        let prefix = format!("bench{}", self.round);
        let client = Client::builder(self.url.as_str())
            .prefix(&prefix)
            .connect()
            .expect("client");
        if self.events {
            client.set_events("q", Some(100_000)).await.expect("events");
        }
        match self.flow.as_str() {
            "rate" => {
                let limit = ferry_queue::RateLimit::with_burst(
                    1_000_000,
                    std::time::Duration::from_secs(1),
                    1_000_000,
                )
                .expect("rate limit");
                client.set_rate_limit("q", Some(limit)).await.expect("rate");
            }
            "queue-limit" => client
                .set_concurrency("q", &ferry_queue::ConcurrencyScope::Queue, Some(100_000))
                .await
                .expect("queue limit"),
            "type-limit" => client
                .set_concurrency(
                    "q",
                    &ferry_queue::ConcurrencyScope::Type("bench".into()),
                    Some(100_000),
                )
                .await
                .expect("type limit"),
            "type-rate" => {
                let limit = ferry_queue::RateLimit::with_burst(
                    1_000_000,
                    std::time::Duration::from_secs(1),
                    1_000_000,
                )
                .expect("rate limit");
                client
                    .set_rate_limit_of(
                        "q",
                        &ferry_queue::ConcurrencyScope::Type("bench".into()),
                        Some(limit),
                    )
                    .await
                    .expect("type rate")
            }
            _ => {}
        }
        if !self.records {
            client
                .set_retention("q", std::time::Duration::ZERO, 0)
                .await
                .expect("retention");
        }
        (prefix, client)
    }

    fn push(&mut self, name: &str, unit: &'static str, runs: Vec<f64>) {
        let f = Figure::new(name, unit, runs);
        println!(
            "{:<44} {:>12.1} {:>12.1} {:>12.1}  {}",
            f.name, f.median, f.min, f.max, f.unit
        );
        self.figures.push(f);
    }

    fn push_measured(&mut self, name: &str, n: u64, runs: &[Measured]) {
        let rate: Vec<f64> = runs
            .iter()
            .map(|m| n as f64 / m.elapsed.as_secs_f64())
            .collect();
        self.push(name, "jobs/s", rate);
        let k = n as f64 / 1000.0;
        self.push(
            &format!("{name}: process CPU per 1k"),
            "ms",
            runs.iter().map(|m| m.process_cpu / k * 1000.0).collect(),
        );
        self.push(
            &format!("{name}: redis CPU per 1k"),
            "ms",
            runs.iter().map(|m| m.redis_cpu / k * 1000.0).collect(),
        );
    }

    fn median(&self, name: &str) -> f64 {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.median)
            .unwrap_or(f64::NAN)
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let sizes = if args.quick { QUICK } else { FULL };
    let own;
    let url = match &args.redis_url {
        Some(u) => u.clone(),
        None => {
            let binary = match &args.redis_server {
                Some(b) => Ok(b.clone()),
                None => ferry_dev_redis::redis_server().map(|p| p.display().to_string()),
            };
            own = binary
                .and_then(|b| OwnRedis::start(&b))
                .unwrap_or_else(|e| {
                    eprintln!("error: {e}");
                    std::process::exit(1)
                });
            own.url.clone()
        }
    };
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut conn = None;
    for _ in 0..200 {
        if let Ok(mut c) = client.get_multiplexed_async_connection().await {
            if redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok()
            {
                conn = Some(c);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let Some(mut conn) = conn else {
        eprintln!("error: redis at {url} does not answer");
        std::process::exit(1)
    };
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    let redis_version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| c.lines().find_map(|l| l
                .strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())))
            .unwrap_or_else(|| "unknown CPU".into())
    );
    println!(
        "ferry-bench: redis {redis_version} at {url}; {machine}; {} mode, {} runs per figure; end to end at concurrency {}\n",
        if args.quick { "quick" } else { "full" },
        args.runs,
        args.e2e_concurrency
    );
    println!(
        "{:<44} {:>12} {:>12} {:>12}",
        "figure", "median", "min", "max"
    );
    let started = Instant::now();
    let mut b = Bench {
        url: url.clone(),
        conn,
        figures: Vec::new(),
        runs: args.runs.max(1),
        only: args.only.clone(),
        round: 0,
        drain_concurrency: args.drain_concurrency.clone(),
        e2e_concurrency: args.e2e_concurrency,
        records: args.records == "on",
        events: args.events == "on",
        flow: args.flow.clone(),
    };
    run_all(&mut b, &sizes).await;
    let targets = targets(&b);
    println!(
        "\n{:<58} {:>10}  {:<12} {}",
        "target", "value", "bound", "met"
    );
    for t in &targets {
        println!(
            "{:<58} {:>10.2}  {:<12} {}",
            t.name,
            t.ratio,
            t.bound,
            if t.met { "yes" } else { "NO" }
        );
    }
    println!("\n(finished in {:.0} s)", started.elapsed().as_secs_f64());
    let report = Report {
        machine,
        redis_version,
        mode: if args.quick { "quick" } else { "full" },
        runs: b.runs,
        figures: b.figures,
        targets,
    };
    if let Some(dir) = std::path::Path::new(&args.out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match serde_json::to_string_pretty(&report).map(|j| std::fs::write(&args.out, j)) {
        Ok(Ok(())) => println!("figures written to {}", args.out),
        _ => eprintln!("could not write {}", args.out),
    }
}

async fn run_all(b: &mut Bench, s: &Sizes) {
    let runs = b.runs;
    // Each Ferry throughput figure is measured in turn with the raw figure it
    // is compared with, run by run, so a slow spell of this (shared, noisy)
    // machine hits both sides of a ratio alike.
    // 1+2. Raw pipelined XADD, and the batch API.
    let (raw_wanted, batch_wanted) = (b.wants("raw"), b.wants("batch"));
    if raw_wanted || batch_wanted {
        let (mut xadd, mut batch) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            b.fresh().await;
            xadd.push(raw::xadd(&mut b.conn, "raw:xadd", s.raw).await);
            if batch_wanted {
                let (_, c) = b.fresh().await;
                batch.push(ferry_runs::enqueue_batch(&c, &mut b.conn, "q", s.batch).await);
            }
        }
        b.push_measured(RAW_XADD, s.raw, &xadd);
        if batch_wanted {
            b.push_measured(BATCH, s.batch, &batch);
        }
    }
    // Raw drain, and Ferry's drain at each concurrency.
    let drain_wanted = b.wants("drain");
    if raw_wanted || drain_wanted {
        let concurrencies = if drain_wanted {
            b.drain_concurrency.clone()
        } else {
            Vec::new()
        };
        let mut raw_drain = Vec::new();
        let mut drains = vec![Vec::new(); concurrencies.len()];
        for _ in 0..runs {
            b.fresh().await;
            raw_drain.push(raw::drain(&b.url, &mut b.conn, "raw:drain", s.raw).await);
            for (i, concurrency) in concurrencies.iter().enumerate() {
                let (prefix, c) = b.fresh().await;
                let url = b.url.clone();
                drains[i].push(
                    ferry_runs::drain(&url, &prefix, &c, &mut b.conn, "q", s.drain, *concurrency)
                        .await,
                );
            }
        }
        b.push_measured(RAW_DRAIN, s.raw, &raw_drain);
        for (concurrency, m) in concurrencies.iter().zip(&drains) {
            b.push_measured(&format!("drain: concurrency {concurrency}"), s.drain, m);
        }
    }
    // Raw lifecycle, and Ferry end to end.
    let e2e_wanted = b.wants("e2e");
    if raw_wanted || e2e_wanted {
        let (mut life, mut e2e) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            b.fresh().await;
            life.push(raw::lifecycle(&b.url, &mut b.conn, "raw:life", s.raw).await);
            if e2e_wanted {
                let (prefix, c) = b.fresh().await;
                let url = b.url.clone();
                e2e.push(
                    ferry_runs::end_to_end(
                        &url,
                        &prefix,
                        &c,
                        &mut b.conn,
                        "q",
                        s.e2e,
                        b.e2e_concurrency,
                    )
                    .await,
                );
            }
        }
        b.push_measured(RAW_LIFE, s.raw, &life);
        if e2e_wanted {
            b.push_measured(E2E, s.e2e, &e2e);
        }
    }
    // Enqueue, one job per call.
    if b.wants("enqueue") {
        let (mut one, mut many, mut unique) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let (_, c) = b.fresh().await;
            one.push(ferry_runs::enqueue_single(&c, "q", s.enqueue_single, 1).await);
            let (_, c) = b.fresh().await;
            many.push(ferry_runs::enqueue_single(&c, "q", s.enqueue_64, 64).await);
            let (_, c) = b.fresh().await;
            unique.push(ferry_runs::enqueue_unique_single(&c, "q", s.enqueue_64, 64).await);
        }
        b.push("enqueue: one per call, 1 task", "jobs/s", one);
        b.push("enqueue: one per call, 64 tasks", "jobs/s", many);
        b.push(
            "enqueue: unique by args, one per call, 64 tasks",
            "jobs/s",
            unique,
        );
    }
    // 5. Latency.
    if b.wants("latency") {
        for rate in s.latency_rates {
            let (mut raw_l, mut ferry_l) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                b.fresh().await;
                raw_l
                    .push(raw::latency(&b.url, &mut b.conn, "raw:lat", rate, s.latency_secs).await);
                let (prefix, c) = b.fresh().await;
                let url = b.url.clone();
                ferry_l.push(
                    ferry_runs::latency(&url, &prefix, &c, "q", rate, s.latency_secs, 50).await,
                );
            }
            for (who, all) in [("raw", &raw_l), ("ferry", &ferry_l)] {
                for (p, label) in [(50.0, "p50"), (99.0, "p99"), (99.9, "p99.9")] {
                    let v = all.iter().map(|l| percentile(l, p)).collect();
                    b.push(&format!("latency {rate}/s: {who} {label}"), "ms", v);
                }
            }
        }
    }
    // 6. Depth.
    if b.wants("depth") {
        for depth in s.depth {
            let mut r = Vec::new();
            for _ in 0..runs {
                let (prefix, c) = b.fresh().await;
                let url = b.url.clone();
                r.push(
                    ferry_runs::depth(
                        &url,
                        &prefix,
                        &c,
                        &mut b.conn,
                        "q",
                        depth,
                        s.depth_measure,
                        50,
                    )
                    .await,
                );
            }
            b.push(&format!("depth: drain with {depth} queued"), "jobs/s", r);
        }
    }
    // 7. A fan-in: one parent waiting for every child.
    if b.wants("fanin") {
        let mut r = Vec::new();
        for _ in 0..runs {
            let (prefix, c) = b.fresh().await;
            let url = b.url.clone();
            r.push(ferry_runs::fan_in(&url, &prefix, &c, &mut b.conn, "q", s.fan_in, 50).await);
        }
        b.push(
            &format!(
                "fan-in: {} children, last child's end to the parent's start",
                s.fan_in
            ),
            "ms",
            r,
        );
    }
    // 8. Memory.
    if b.wants("memory") {
        let (mut bare, mut jobs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            b.fresh().await;
            let before = info_field(&mut b.conn, "memory", "used_memory").await;
            raw::fill(&mut b.conn, "raw:mem", s.memory).await;
            bare.push(
                (info_field(&mut b.conn, "memory", "used_memory").await - before) / s.memory as f64,
            );
            let (_, c) = b.fresh().await;
            let before = info_field(&mut b.conn, "memory", "used_memory").await;
            ferry_runs::fill(&c, "q", s.memory).await;
            jobs.push(
                (info_field(&mut b.conn, "memory", "used_memory").await - before) / s.memory as f64,
            );
        }
        b.push("memory: bare stream entry", "bytes", bare);
        b.push("memory: queued Ferry job", "bytes", jobs);
        // A finished job's record: run jobs through a worker with room for
        // every record, then count what stays once the queue is empty.
        let mut records = Vec::new();
        for _ in 0..runs {
            let (prefix, c) = b.fresh().await;
            c.set_retention("q", std::time::Duration::from_secs(3600), s.memory)
                .await
                .expect("retention");
            let before = info_field(&mut b.conn, "memory", "used_memory").await;
            ferry_runs::drain(&b.url.clone(), &prefix, &c, &mut b.conn, "q", s.memory, 50).await;
            records.push(
                (info_field(&mut b.conn, "memory", "used_memory").await - before) / s.memory as f64,
            );
        }
        b.push("memory: finished job's record", "bytes", records);
    }
}

fn targets(b: &Bench) -> Vec<Target> {
    let mut t = Vec::new();
    let mut add = |name: &str, ratio: f64, bound: &str, met: bool| {
        if ratio.is_finite() {
            t.push(Target {
                name: name.into(),
                ratio,
                bound: bound.into(),
                met,
            });
        }
    };
    let best_drain = [
        "drain: concurrency 1",
        "drain: concurrency 50",
        "drain: concurrency 500",
    ]
    .iter()
    .map(|n| b.median(n))
    .filter(|v| v.is_finite())
    .fold(f64::NAN, f64::max);
    let r = best_drain / b.median(RAW_DRAIN);
    add(
        "drain (best concurrency) / raw drain",
        r,
        ">= 0.60",
        r >= 0.6,
    );
    let r = b.median(E2E) / b.median(RAW_LIFE);
    add("end to end / raw lifecycle", r, ">= 0.50", r >= 0.5);
    let r = b.median(BATCH) / b.median(RAW_XADD);
    add("batch enqueue / raw pipelined XADD", r, ">= 0.70", r >= 0.7);
    for rate in [1_000, 10_000, 200, 400] {
        for p in ["p50", "p99"] {
            let f = b.median(&format!("latency {rate}/s: ferry {p}"));
            let r = f / b.median(&format!("latency {rate}/s: raw {p}"));
            add(
                &format!("latency {rate}/s {p}: ferry / raw"),
                r,
                "<= 2.0",
                r <= 2.0,
            );
        }
        let p99 = b.median(&format!("latency {rate}/s: ferry p99"));
        add(
            &format!("latency {rate}/s p99 (ms)"),
            p99,
            "<= 5 ms",
            p99 <= 5.0,
        );
    }
    let r = b.median("memory: queued Ferry job") / b.median("memory: bare stream entry");
    add("memory per job / bare entry", r, "<= 1.3", r <= 1.3);
    let depths: Vec<&Figure> = b
        .figures
        .iter()
        .filter(|f| f.name.starts_with("depth:"))
        .collect();
    if let [small, deep] = depths.as_slice() {
        let r = deep.median / small.median;
        add(
            &format!("{} / {}", deep.name, small.name),
            r,
            ">= 0.90",
            r >= 0.9,
        );
    }
    let cpu = |name: &str| {
        b.median(&format!("{name}: process CPU per 1k"))
            + b.median(&format!("{name}: redis CPU per 1k"))
    };
    let best = ["drain: concurrency 50", "drain: concurrency 500"]
        .iter()
        .map(|n| cpu(n))
        .filter(|v| v.is_finite())
        .fold(f64::NAN, f64::min);
    let r = best / cpu(RAW_DRAIN);
    add(
        "CPU per 1k, drain (redis + worker) / raw drain",
        r,
        "<= 2.5",
        r <= 2.5,
    );
    let r = cpu(E2E) / cpu(RAW_LIFE);
    add(
        "CPU per 1k, end to end / raw lifecycle",
        r,
        "<= 2.5",
        r <= 2.5,
    );
    t
}
