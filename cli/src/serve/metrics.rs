//! `/metrics`: the queues in the Prometheus text format (version 0.0.4),
//! read from Redis at each scrape, so every `ferry serve` of a fleet
//! reports the same figures and none keeps state of its own beyond its
//! own counters.
//!
//! Per queue and priority: depth (waiting, running), completed, retried,
//! dead and malformed counts, and histograms of wait and run time. Per
//! queue: scheduled, dead letters, paused, recovered and cancelled counts,
//! live workers, their concurrency and running jobs, and the rate limit
//! (whether it holds jobs back now, the next slot, the rate), and the jobs
//! parked at each type's or key's rate gate. Per stream: the
//! consumer group's lag and the age of its oldest pending and oldest
//! waiting entries. Of the server: Redis
//! errors, responses by class, and whether the scrape reached Redis.

use std::sync::atomic::Ordering;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferry_broker::prometheus::Families;
use ferry_queue::{Priority, QueueStats};

use super::routes::St;
use super::AppState;

/// The histogram edges, seconds (Ferry's own buckets are finer; a bucket
/// of Ferry's that straddles an edge is counted in the next one up).
pub const EDGES_SECONDS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Adds one queue's figures.
fn queue(f: &mut Families, name: &str, s: &QueueStats) {
    for p in Priority::ALL {
        let i = p.index();
        let labels = [("queue", name), ("priority", p.as_str())];
        f.sample(
            "ferry_queue_waiting_jobs",
            "gauge",
            "Jobs waiting for a worker.",
            &labels,
            s.waiting[i] as f64,
        );
        f.sample(
            "ferry_queue_running_jobs",
            "gauge",
            "Jobs handed to a worker and not yet finished.",
            &labels,
            s.pending[i] as f64,
        );
        for (metric, counter, help) in [
            (
                "ferry_jobs_completed_total",
                "completed",
                "Jobs that succeeded.",
            ),
            (
                "ferry_jobs_retried_total",
                "retried",
                "Failed attempts scheduled for a retry.",
            ),
            (
                "ferry_jobs_dead_total",
                "dead",
                "Jobs that failed for good (dead-lettered).",
            ),
            (
                "ferry_jobs_malformed_total",
                "malformed",
                "Entries dead-lettered because they were not valid jobs.",
            ),
        ] {
            f.sample(
                metric,
                "counter",
                help,
                &labels,
                s.counter_at(counter, p) as f64,
            );
        }
        let failed = s.counter_at("retried", p) + s.counter_at("dead", p);
        f.sample(
            "ferry_jobs_failed_total",
            "counter",
            "Failed attempts: retried plus dead.",
            &labels,
            failed as f64,
        );
        let c = &s.cumulative[i];
        f.histogram(
            "ferry_job_wait_seconds",
            "Time from a job's entry (its enqueue, or its coming due) to its start, of completed jobs.",
            &labels,
            &EDGES_SECONDS,
            &c.wait,
        );
        f.histogram(
            "ferry_job_run_seconds",
            "Run time of completed jobs' handlers.",
            &labels,
            &EDGES_SECONDS,
            &c.run,
        );
    }
    let labels = [("queue", name)];
    f.sample(
        "ferry_queue_scheduled_jobs",
        "gauge",
        "Jobs in the delayed set: scheduled, or waiting out a retry's backoff.",
        &labels,
        s.delayed as f64,
    );
    f.sample(
        "ferry_queue_dead_letters",
        "gauge",
        "Entries in the dead-letter stream.",
        &labels,
        s.dead as f64,
    );
    f.sample(
        "ferry_queue_paused",
        "gauge",
        "1 while the queue is paused.",
        &labels,
        if s.paused { 1.0 } else { 0.0 },
    );
    f.sample(
        "ferry_jobs_recovered_total",
        "counter",
        "Entries taken over from workers that stopped renewing their lease.",
        &labels,
        s.counter("recovered") as f64,
    );
    f.sample(
        "ferry_jobs_cancelled_total",
        "counter",
        "Jobs cancelled.",
        &labels,
        s.counter("cancelled") as f64,
    );
}

/// Adds one queue's rate-limit figures (`None`: no limit and no hold).
fn rate_gauges(f: &mut Families, name: &str, rate: Option<&crate::RateLimitState>) {
    let labels = [("queue", name)];
    let limited = rate.is_some_and(|r| r.limited);
    f.sample(
        "ferry_queue_rate_limited",
        "gauge",
        "1 while no job of the queue may start: it is held (a handler's rate_limited) or its rate limit has no slot free.",
        &labels,
        if limited { 1.0 } else { 0.0 },
    );
    f.sample(
        "ferry_queue_rate_limit_next_slot_seconds",
        "gauge",
        "Seconds until the queue's next job may start under its rate limit or hold (0 when not limited), server clock.",
        &labels,
        rate.and_then(|r| r.next_slot_in_ms).unwrap_or(0) as f64 / 1000.0,
    );
    let per_second = rate
        .and_then(|r| r.limit.as_deref())
        .and_then(|l| ferry_broker::RateLimit::parse(l).ok())
        .map(|l| f64::from(l.n) * 1000.0 / l.period_ms as f64);
    if let Some(per_second) = per_second {
        f.sample(
            "ferry_queue_rate_limit_per_second",
            "gauge",
            "Job starts per second the queue's rate limit allows (n / period); absent without a limit.",
            &labels,
            per_second,
        );
    }
}

/// Most rate gates of one queue given a series: those with the most
/// parked jobs.
pub const MAX_RATE_GATE_SERIES: usize = 100;

/// Adds one queue's parked jobs per rate gate (`type:<T>`, `key:<K>`),
/// for the gates with any, the [`MAX_RATE_GATE_SERIES`] fullest.
fn rate_gate_gauges(f: &mut Families, name: &str, rates: &ferry_broker::RateLimits) {
    let mut waiting: Vec<_> = rates.gates.iter().filter(|g| g.waiting > 0).collect();
    waiting.sort_by(|a, b| b.waiting.cmp(&a.waiting).then_with(|| a.gate.cmp(&b.gate)));
    for g in waiting.into_iter().take(MAX_RATE_GATE_SERIES) {
        f.sample(
            "ferry_rate_gate_waiting_jobs",
            "gauge",
            "Jobs parked at a job type's or a concurrency key's rate limit or hold, waiting for a slot (the gates with any, at most 100 per queue).",
            &[("queue", name), ("gate", g.gate.as_str())],
            g.waiting as f64,
        );
    }
}

/// Adds one queue's consumer-group figures, per priority stream.
fn stream_gauges(f: &mut Families, name: &str, streams: &[ferry_broker::StreamInfo]) {
    for s in streams {
        let labels = [("queue", name), ("priority", s.priority.as_str())];
        if let Some(lag) = s.lag {
            f.sample(
                "ferry_stream_lag",
                "gauge",
                "The consumer group's lag as Redis counts it: entries not yet delivered (Redis 7.0+; absent where Redis cannot tell).",
                &labels,
                lag as f64,
            );
        }
        f.sample(
            "ferry_stream_oldest_pending_age_seconds",
            "gauge",
            "Age of the stream's oldest entry delivered and not acknowledged (0 when none), server clock.",
            &labels,
            s.oldest_pending_age_ms.unwrap_or(0) as f64 / 1000.0,
        );
        f.sample(
            "ferry_stream_oldest_waiting_age_seconds",
            "gauge",
            "How long the stream's next job to claim has waited (0 when none), server clock.",
            &labels,
            s.oldest_waiting_age_ms.unwrap_or(0) as f64 / 1000.0,
        );
    }
}

/// The whole page.
///
/// # Errors
/// The first failed Redis call.
pub async fn render(state: &AppState) -> Result<String, super::ApiError> {
    let mut f = Families::default();
    let scraped = async {
        // One SCAN, one workers read, and per queue one stats, one streams
        // and one rate-limits read (the queue's and its gates').
        let names = state.run(state.admin.queue_names()).await?;
        let workers = state.run(state.admin.workers(None)).await?;
        for name in &names {
            let stats = state
                .run(async {
                    state
                        .admin
                        .client()
                        .stats(name)
                        .await
                        .map_err(|e| crate::Error::from_sdk(e, state.admin.host()))
                })
                .await?;
            queue(&mut f, name, &stats);
            let streams = state.run(state.admin.streams(name)).await?;
            stream_gauges(&mut f, name, &streams);
            let rates = state.run(state.admin.rate_limits(name)).await?;
            let rate = rates.queue.map(crate::RateLimitState::from);
            rate_gauges(&mut f, name, rate.as_ref());
            rate_gate_gauges(&mut f, name, &rates);
            let serving: Vec<_> = workers
                .iter()
                .filter(|w| w.queues.iter().any(|n| n == name))
                .collect();
            let labels = [("queue", name.as_str())];
            f.sample(
                "ferry_workers",
                "gauge",
                "Live workers serving the queue.",
                &labels,
                serving.len() as f64,
            );
            f.sample(
                "ferry_worker_concurrency",
                "gauge",
                "Handlers the queue's live workers may run at once, summed.",
                &labels,
                serving.iter().map(|w| w.concurrency).sum::<usize>() as f64,
            );
            f.sample(
                "ferry_worker_running_jobs",
                "gauge",
                "Jobs the queue's live workers report running (all their queues), summed.",
                &labels,
                serving.iter().map(|w| w.running).sum::<usize>() as f64,
            );
        }
        // The server's own count: every eviction is possible data loss.
        let memory = state
            .run(async {
                state
                    .admin
                    .client()
                    .redis_memory()
                    .await
                    .map_err(|e| crate::Error::from_sdk(e, state.admin.host()))
            })
            .await?;
        if let Some(evicted) = memory.evicted_keys {
            f.sample(
                "ferry_redis_evicted_keys_total",
                "counter",
                "Keys the Redis server evicted under memory pressure (INFO stats evicted_keys): each is possible data loss.",
                &[],
                evicted as f64,
            );
        }
        f.sample(
            "ferry_redis_eviction_policy_unsafe",
            "gauge",
            "1 when Redis's maxmemory-policy may evict Ferry's keys (any but noeviction).",
            &[("policy", memory.policy.as_deref().unwrap_or("unknown"))],
            f64::from(u8::from(memory.evicts_ferry_keys())),
        );
        Ok::<_, super::ApiError>(())
    }
    .await;
    f.sample(
        "ferry_up",
        "gauge",
        "1 when this scrape read Redis.",
        &[],
        if scraped.is_ok() { 1.0 } else { 0.0 },
    );
    f.sample(
        "ferry_redis_errors_total",
        "counter",
        "Operations of this server that failed because Redis could not serve them.",
        &[],
        state.redis_errors.load(Ordering::Relaxed) as f64,
    );
    for (i, class) in ["2xx", "4xx", "5xx"].iter().enumerate() {
        f.sample(
            "ferry_http_responses_total",
            "counter",
            "Responses of this server, by class of status.",
            &[("class", class)],
            state.responses[i].load(Ordering::Relaxed) as f64,
        );
    }
    scraped.map(|()| f.render())
}

/// The metrics of every queue under the prefix, in the Prometheus text
/// format. Read from Redis at each scrape.
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"),
        (status = 503, description = "Redis unavailable", body = super::problem::ErrorBody),
    ), security((), ("bearer" = [])))]
pub async fn metrics(state: St) -> Response {
    match render(&state).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
