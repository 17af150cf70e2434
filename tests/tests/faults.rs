//! Fault runs with real processes and a real Redis: poison jobs, a frozen
//! worker, a Redis crash with AOF, a Redis outage, and worker chaos.
//!
//! Short forms run in CI. `FERRY_FAULTS_LONG=1 cargo test -p ferry-tests
//! --test faults -- --nocapture` runs the long forms (20,000 jobs of chaos,
//! a 10 s outage) and prints their figures.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_queue::{Client, EnqueueOptions, Job, RedisConfig};
use ferry_tests::scenario::{setup, with_redis, Scenario, EXIT};
use ferry_tests::{heavy, long_faults, wait_until, RedisServer, WorkerProcess};
use serde::{Deserialize, Serialize};

/// The example's `echo` job, enqueued from this process.
#[derive(Serialize, Deserialize)]
struct Echo {
    message: String,
}
impl Job for Echo {
    const TYPE: &'static str = "echo";
}

/// Enqueues echo jobs one at a time until stopped, remembering which
/// enqueues returned Ok and how long the failed ones took.
struct Producer {
    ok: Arc<Mutex<Vec<String>>>,
    errors: Arc<AtomicU64>,
    slowest_error: Arc<Mutex<Duration>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    fn start(s: &Scenario, timeout: Duration) -> Self {
        let mut config = RedisConfig::new(s.redis.url());
        config.response_timeout = timeout;
        config.connect_timeout = timeout;
        let client = Client::builder(config).prefix(&s.prefix).connect().unwrap();
        let (ok, errors, slowest_error, stop) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicU64::new(0)),
            Arc::new(Mutex::new(Duration::ZERO)),
            Arc::new(AtomicBool::new(false)),
        );
        let queue = s.queue.clone();
        let task = tokio::spawn({
            let (ok, errors, slowest_error, stop) = (
                ok.clone(),
                errors.clone(),
                slowest_error.clone(),
                stop.clone(),
            );
            async move {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let started = Instant::now();
                    match client
                        .enqueue_with(
                            &Echo {
                                message: format!("m{n}"),
                            },
                            EnqueueOptions::new().queue(&queue),
                        )
                        .await
                    {
                        Ok(id) => ok.lock().unwrap().push(id),
                        Err(e) => {
                            assert!(
                                e.is_connection_error(),
                                "outage errors are connection errors: {e}"
                            );
                            errors.fetch_add(1, Ordering::SeqCst);
                            let took = started.elapsed();
                            let mut slowest = slowest_error.lock().unwrap();
                            *slowest = (*slowest).max(took);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
        Self {
            ok,
            errors,
            slowest_error,
            stop,
            task,
        }
    }

    fn ok_count(&self) -> usize {
        self.ok.lock().unwrap().len()
    }

    async fn stop(self) -> (Vec<String>, u64, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        let ok = self.ok.lock().unwrap().clone();
        (
            ok,
            self.errors.load(Ordering::SeqCst),
            *self.slowest_error.lock().unwrap(),
        )
    }
}

async fn wait_all_done(s: &Scenario, ids: &[String], within: Duration) {
    wait_until(
        within,
        "every enqueued job has run and the queue is drained",
        || async {
            let audit = s.audit().await;
            ids.iter().all(|id| audit.contains_key(id)) && s.stats().await.is_idle()
        },
    )
    .await;
}

#[tokio::test]
async fn a_poison_job_is_dead_lettered_after_max_deliveries_while_the_fleet_serves_others() {
    let _heavy = heavy().await;
    let s = setup("poison").await;
    let poison = s.produce(&["--kind", "abort", "--max-retries", "0"]).await;
    let good = s.produce(&["--kind", "echo", "--count", "300"]).await;
    let args = [
        "--concurrency",
        "4",
        "--lease-ms",
        "500",
        "--max-deliveries",
        "3",
    ];
    let mut fleet: Vec<WorkerProcess> = (0..2).map(|_| s.worker(&args)).collect();
    let mut crashes = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for w in &mut fleet {
            if let Some(status) = w.exited() {
                assert!(!status.success(), "only the poison job ends a worker");
                crashes += 1;
                *w = s.worker(&args);
            }
        }
        let stats = s.stats().await;
        if stats.dead == 1 && stats.is_idle() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "poison job not dead-lettered: {stats:?}, crashes {crashes}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(crashes, 3, "one crash per delivery, 3 deliveries");
    s.assert_none_lost(&good).await;
    let mut conn = s.redis.conn().await;
    let dead = ferry_tests::queue(&s.prefix, &s.queue)
        .dead_letters(&mut conn, 10)
        .await
        .unwrap();
    assert_eq!(dead[0].get("id"), Some(poison[0].as_str()));
    assert!(
        dead[0].get("error").unwrap().contains("max_deliveries 3"),
        "{:?}",
        dead[0]
    );
    for w in &mut fleet {
        w.terminate();
        assert!(w.wait(EXIT).await.success());
    }
}

#[tokio::test]
async fn a_frozen_worker_loses_its_job_and_its_late_outcome_is_ignored() {
    let _heavy = heavy().await;
    let s = setup("frozen").await;
    let ids = s.produce(&["--kind", "sleep:3000"]).await;
    let mut frozen = s.worker(&["--concurrency", "1", "--lease-ms", "1000"]);
    wait_until(
        Duration::from_secs(30),
        "the first worker holds the job",
        || async { s.stats().await.total_pending() == 1 },
    )
    .await;
    frozen.pause(); // SIGSTOP: no renewals from now on
    let mut rescuer = s.worker(&[
        "--concurrency",
        "1",
        "--lease-ms",
        "1000",
        "--exit-when-idle",
        "0.5",
    ]);
    wait_until(
        Duration::from_secs(30),
        "the rescuer recovers the job",
        || async { s.stats().await.counter("recovered") == 1 },
    )
    .await;
    // SIGCONT while the rescuer runs the job: the frozen worker's sleep ends
    // first, and its outcome must not touch the rescuer's pending entry.
    frozen.resume();
    wait_until(
        Duration::from_secs(30),
        "the thawed worker finished its copy",
        || async { s.audit().await.get(&ids[0]).copied().unwrap_or(0) >= 1 },
    )
    .await;
    assert_eq!(
        s.stats().await.total_pending(),
        1,
        "the rescuer still owns the entry"
    );
    assert!(rescuer.wait(EXIT).await.success());
    let stats = s.stats().await;
    assert_eq!(
        stats.counter("completed"),
        1,
        "completed once, not twice: {stats:?}"
    );
    assert!(stats.is_idle() && stats.dead == 0, "{stats:?}");
    assert_eq!(
        s.audit().await.get(&ids[0]),
        Some(&2),
        "ran on both (at least once), recorded once"
    );
    assert!(
        !rescuer.log_text().contains("no longer ours"),
        "the rescuer's ack succeeded"
    );
    let frozen_log = frozen.log_text();
    assert!(
        frozen_log.contains("lease lost") || frozen_log.contains("no longer ours"),
        "the thawed worker noticed it lost the lease:\n{frozen_log}"
    );
    frozen.terminate();
    assert!(frozen.wait(EXIT).await.success());
}

#[tokio::test]
async fn a_redis_crash_with_aof_loses_no_acknowledged_enqueue() {
    let _heavy = heavy().await;
    let aof = ["--appendonly", "yes", "--appendfsync", "always"];
    let s = with_redis(RedisServer::start_own(&aof).await, "aof");
    let args = ["--concurrency", "10", "--lease-ms", "1000"];
    let mut fleet: Vec<WorkerProcess> = (0..2).map(|_| s.worker(&args)).collect();
    let producer = Producer::start(&s, Duration::from_secs(1));
    wait_until(
        Duration::from_secs(60),
        "100 jobs done before the crash",
        || async { s.audit().await.len() >= 100 },
    )
    .await;
    let mut redis = s.redis;
    redis.kill(); // SIGKILL
    let down = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await; // the outage itself
    redis.restart(&aof).await;
    let s = Scenario { redis, ..s };
    let before = producer.ok_count();
    wait_until(
        Duration::from_secs(60),
        "200 enqueues after the restart",
        || async { producer.ok_count() >= before + 200 },
    )
    .await;
    let (ok, errors, _) = producer.stop().await;
    wait_all_done(&s, &ok, Duration::from_secs(120)).await;
    let duplicates = s.assert_none_lost(&ok).await;
    for w in &mut fleet {
        assert!(
            w.exited().is_none(),
            "workers reconnect by themselves:\n{}",
            w.log_text()
        );
        w.terminate();
        assert!(w.wait(EXIT).await.success());
    }
    eprintln!(
        "redis crash with AOF: {} enqueues ok, {errors} failed during the outage, {duplicates} duplicate runs, drained {:.1} s after the crash",
        ok.len(),
        down.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn a_redis_outage_gives_producers_a_bounded_error_and_workers_resume() {
    let _heavy = heavy().await;
    let outage = if long_faults() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(3)
    };
    let s = with_redis(RedisServer::start_own(&[]).await, "outage");
    let args = ["--concurrency", "10", "--lease-ms", "2000"];
    let mut fleet: Vec<WorkerProcess> = (0..2).map(|_| s.worker(&args)).collect();
    let timeout = Duration::from_millis(500);
    let producer = Producer::start(&s, timeout);
    wait_until(
        Duration::from_secs(60),
        "100 jobs done before the outage",
        || async { s.audit().await.len() >= 100 },
    )
    .await;
    s.redis.pause(); // SIGSTOP: connections stay open, nothing answers
    tokio::time::sleep(outage).await; // the outage itself
    s.redis.resume();
    let before = producer.ok_count();
    wait_until(
        Duration::from_secs(60),
        "200 enqueues after the outage",
        || async { producer.ok_count() >= before + 200 },
    )
    .await;
    let (ok, errors, slowest) = producer.stop().await;
    assert!(errors > 0, "the outage was seen by the producer");
    // Each failed call returns within its timeouts plus the client's reconnect attempts.
    assert!(
        slowest < Duration::from_secs(5),
        "an enqueue hung for {slowest:?}"
    );
    wait_all_done(&s, &ok, Duration::from_secs(120)).await;
    let duplicates = s.assert_none_lost(&ok).await;
    for w in &mut fleet {
        assert!(
            w.exited().is_none(),
            "no worker exits during an outage:\n{}",
            w.log_text()
        );
        let log = w.log_text();
        let warnings = log
            .matches("retrying with backoff until redis answers")
            .count();
        assert!(
            warnings <= 8,
            "each loop logs an outage once, got {warnings}:\n{log}"
        );
        w.terminate();
        assert!(w.wait(EXIT).await.success());
    }
    eprintln!(
        "redis outage of {outage:?}: {} enqueues ok, {errors} failed (slowest failure {slowest:?}), {duplicates} duplicate runs",
        ok.len()
    );
}

#[tokio::test]
async fn worker_chaos_loses_nothing() {
    let _heavy = heavy().await;
    let (jobs, kills) = if long_faults() {
        (20_000, 20)
    } else {
        (8_000, 5)
    };
    let concurrency = 4;
    let s = setup("chaos").await;
    // A quarter echo, a quarter fail:1 (one retry each), half sleep:1..50 ms.
    let quarter = (jobs / 4).to_string();
    let mut ids = s.produce(&["--kind", "echo", "--count", &quarter]).await;
    ids.extend(s.produce(&["--kind", "fail:1", "--count", &quarter]).await);
    for ms in [1, 5, 10, 20, 35, 50] {
        let n = (jobs / 2 / 6).to_string();
        ids.extend(
            s.produce(&["--kind", &format!("sleep:{ms}"), "--count", &n])
                .await,
        );
    }
    let conc = concurrency.to_string();
    let args = [
        "--concurrency",
        &conc,
        "--lease-ms",
        "1000",
        "--max-deliveries",
        "10",
        "--backoff-base-ms",
        "50",
        "--backoff-max-ms",
        "500",
    ];
    let mut fleet: Vec<WorkerProcess> = (0..4).map(|_| s.worker(&args)).collect();
    let started = Instant::now();
    let mut kills_done = 0;
    let mut last_kill = Instant::now();
    for _ in 0..kills {
        // Chaos timing: a kill every 1 to 2 s, while there is work to lose.
        tokio::time::sleep(Duration::from_millis(1000 + fastrand_ms(1000))).await;
        if s.stats().await.is_idle() {
            break;
        }
        kills_done += 1;
        let victim = fastrand_ms(fleet.len() as u64) as usize;
        fleet[victim].kill().await;
        last_kill = Instant::now();
        fleet[victim].wait(EXIT).await;
        fleet[victim] = s.worker(&args);
    }
    wait_all_done(&s, &ids, Duration::from_secs(600)).await;
    let drain = last_kill.elapsed();
    let duplicates = s.assert_none_lost(&ids).await;
    let stats = s.stats().await;
    assert_eq!(stats.dead, 0, "{stats:?}");
    assert!(
        kills_done >= 3,
        "only {kills_done} kills landed while there was work"
    );
    assert!(
        duplicates <= (kills_done * concurrency) as i64,
        "{duplicates} duplicates, more than the {kills_done} x {concurrency} jobs the killed workers could hold"
    );
    for w in &mut fleet {
        w.terminate();
        assert!(w.wait(EXIT).await.success());
    }
    eprintln!(
        "worker chaos: {} jobs, 4 workers x concurrency {concurrency}, {kills_done} kills, {} entries recovered from killed workers, \
         {duplicates} duplicate runs, drained {:.1} s after the last kill ({:.1} s in all)",
        ids.len(),
        stats.counter("recovered"),
        drain.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// A random whole number below `n`.
fn fastrand_ms(n: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(n.max(1))) as u64
}
