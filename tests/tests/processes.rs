//! Real `worker-example` processes against a real Redis: SIGKILL recovery,
//! lease renewal, graceful SIGTERM, load, and a fleet sharing one queue.

use std::time::Duration;

use ferry_tests::scenario::{completed_in_log, setup, EXIT};
use ferry_tests::{wait_until, WorkerProcess};

#[tokio::test]
async fn a_sigkilled_worker_s_job_is_completed_by_another_worker() {
    let run = setup("crash").await;
    let ids = run.produce(&["--kind", "sleep:2000"]).await;
    let mut doomed = run.worker(&["--concurrency", "1", "--lease-ms", "1000"]);
    wait_until(
        Duration::from_secs(30),
        "the first worker holds the job",
        || async { run.stats().await.total_pending() == 1 },
    )
    .await;
    doomed.kill().await;
    doomed.wait(EXIT).await;
    assert_eq!(
        run.stats().await.total_pending(),
        1,
        "the killed worker's entry stays pending"
    );

    // Concurrency 1: the rescuer's only slot is also wanted by its fetcher,
    // which must not starve recovery.
    let mut rescuer = run.worker(&[
        "--concurrency",
        "1",
        "--lease-ms",
        "500",
        "--exit-when-idle",
        "0.3",
    ]);
    assert!(rescuer.wait(EXIT).await.success());
    run.assert_exactly_once(&ids).await;
    run.assert_drained().await;
    assert_eq!(run.stats().await.counter("recovered"), 1);
}

#[tokio::test]
async fn a_job_running_three_leases_on_a_live_worker_runs_once() {
    let run = setup("long").await;
    let ids = run.produce(&["--kind", "sleep:1800"]).await;
    let args = [
        "--concurrency",
        "2",
        "--lease-ms",
        "600",
        "--exit-when-idle",
        "0.3",
    ];
    let mut first = run.worker(&args);
    wait_until(
        Duration::from_secs(30),
        "the first worker holds the job",
        || async { run.stats().await.total_pending() == 1 },
    )
    .await;
    // A second live worker recovers anything idle past 600 ms; the first renews.
    let mut second = run.worker(&args);
    assert!(first.wait(EXIT).await.success());
    assert!(second.wait(EXIT).await.success());
    run.assert_exactly_once(&ids).await;
    run.assert_drained().await;
    assert_eq!(
        run.stats().await.counter("recovered"),
        0,
        "the running job was never taken over"
    );
}

#[tokio::test]
async fn sigterm_mid_load_loses_no_job() {
    let run = setup("term").await;
    let ids = run.produce(&["--kind", "sleep:20", "--count", "300"]).await;
    let mut w = run.worker(&["--concurrency", "10", "--grace-ms", "10000"]);
    let audit = run.audit.clone();
    let mut conn = run.redis.conn().await;
    wait_until(Duration::from_secs(60), "30 jobs done", || {
        let (audit, mut conn) = (audit.clone(), conn.clone());
        async move {
            redis::cmd("HLEN")
                .arg(&audit)
                .query_async::<u64>(&mut conn)
                .await
                .unwrap()
                >= 30
        }
    })
    .await;
    w.terminate();
    assert!(w.wait(EXIT).await.success(), "graceful shutdown exits 0");
    let after = run.stats().await;
    assert_eq!(
        after.total_pending(),
        0,
        "running jobs finished and were acknowledged: {after:?}"
    );
    assert!(after.total_waiting() > 0, "the worker stopped mid-load");
    let done: u64 = redis::cmd("HLEN")
        .arg(&run.audit)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(done + after.total_waiting(), 300);

    let mut rest = run.worker(&["--concurrency", "10", "--exit-when-idle", "0.3"]);
    assert!(rest.wait(EXIT).await.success());
    run.assert_exactly_once(&ids).await;
    run.assert_drained().await;
}

#[tokio::test]
async fn a_thousand_jobs_at_concurrency_100_each_complete_exactly_once() {
    let run = setup("load").await;
    let ids = run
        .produce(&["--kind", "sleep:10", "--count", "1000"])
        .await;
    assert_eq!(ids.len(), 1000);
    let mut w = run.worker(&["--concurrency", "100", "--exit-when-idle", "0.3"]);
    assert!(w.wait(EXIT).await.success());
    run.assert_exactly_once(&ids).await;
    run.assert_drained().await;
    assert_eq!(run.stats().await.counter("completed"), 1000);
}

#[tokio::test]
async fn four_workers_share_2000_jobs_with_no_job_run_twice() {
    let run = setup("fleet").await;
    let mut ids = run.produce(&["--kind", "sleep:2", "--count", "1000"]).await;
    ids.extend(
        run.produce(&["--kind", "echo", "--count", "1000", "--priority", "high"])
            .await,
    );
    let mut fleet: Vec<WorkerProcess> = (0..4)
        .map(|_| run.worker(&["--concurrency", "10", "--exit-when-idle", "0.5"]))
        .collect();
    for w in &mut fleet {
        assert!(w.wait(EXIT).await.success());
    }
    run.assert_exactly_once(&ids).await;
    run.assert_drained().await;
    let per_worker: Vec<u64> = fleet.iter().map(completed_in_log).collect();
    assert_eq!(per_worker.iter().sum::<u64>(), 2000, "{per_worker:?}");
    assert!(
        per_worker.iter().filter(|n| **n > 0).count() >= 2,
        "the fleet shared the work: {per_worker:?}"
    );
}

/// Issue 9, item 14: a second SIGTERM during the shutdown forces it. The
/// running job is dropped at once and its entry stays pending for recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_forces_the_shutdown() {
    let s = setup("force").await;
    let mut worker = s.worker(&["--grace-ms", "60000", "--concurrency", "1"]);
    s.produce(&["--kind", "sleep:60000"]).await;
    wait_until(Duration::from_secs(60), "the long job runs", || async {
        s.stats().await.total_pending() == 1
    })
    .await;
    worker.terminate();
    wait_until(
        Duration::from_secs(30),
        "the worker starts its shutdown",
        || {
            let log = worker.log_text();
            async move { log.contains("shutting down") }
        },
    )
    .await;
    let second = std::time::Instant::now();
    worker.terminate();
    let status = worker.wait(Duration::from_secs(30)).await;
    let took = second.elapsed();
    println!("second signal: exited {took:?} after it (grace period 60 s)");
    assert!(status.success(), "{status:?}\n{}", worker.log_text());
    assert!(
        took < Duration::from_secs(15),
        "forced, not the 60 s grace: {took:?}"
    );
    assert_eq!(
        s.stats().await.total_pending(),
        1,
        "the dropped job stays pending for recovery"
    );
}

/// A worker process whose Tokio runtime has one thread: one blocking job
/// blocks all of it, whatever the scheduler does (with more threads, which
/// job runs where is the scheduler's choice).
fn one_thread_worker(s: &ferry_tests::scenario::Scenario, extra: &[&str]) -> WorkerProcess {
    let mut args = vec!["--queue", &s.queue, "--audit", &s.audit];
    args.extend_from_slice(extra);
    WorkerProcess::spawn_with_env(
        s.redis.url(),
        &s.prefix,
        &args,
        &[("TOKIO_WORKER_THREADS".into(), "1".into())],
    )
}

/// Issue 9, item 7: a handler blocks every runtime thread of a worker for
/// three leases. Its lease is still renewed (the heartbeat runs on a thread
/// of its own), so a second worker does not take the job over, and it runs
/// once. (Before: it ran twice, as the issue saw with 2 threads and 2 jobs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_handlers_do_not_starve_lease_renewal() {
    let s = setup("blocking").await;
    let mut blocked = one_thread_worker(&s, &["--lease-ms", "2000", "--concurrency", "1"]);
    let ids = s.produce(&["--kind", "block:6000"]).await;
    wait_until(
        Duration::from_secs(30),
        "the job blocks the first worker",
        || {
            let log = blocked.log_text();
            async move { log.contains("blocking its thread") }
        },
    )
    .await;
    let mut other = s.worker(&["--lease-ms", "2000"]);
    wait_until(Duration::from_secs(60), "the job finishes", || async {
        let st = s.stats().await;
        st.total_pending() + st.total_waiting() == 0 && s.audit().await.len() == 1
    })
    .await;
    s.assert_exactly_once(&ids).await;
    assert!(
        !other.log_text().contains("recovered entries"),
        "the second worker took nothing over:\n{}",
        other.log_text()
    );
    assert!(
        blocked.log_text().contains("blocked its thread"),
        "the blocking is reported:\n{}",
        blocked.log_text()
    );
    blocked.kill().await;
    other.kill().await;
}

/// Issue 9, item 7: on SIGTERM, with every runtime thread blocked by a
/// handler for 20 s, the 2 s grace period holds: the process exits (code
/// 3, saying why) a few seconds after it, and the blocked job stays pending
/// for recovery. (Before: it exited when the handler returned.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_holds_against_blocking_handlers() {
    let s = setup("blocked-stop").await;
    let mut worker = one_thread_worker(&s, &["--grace-ms", "2000", "--concurrency", "1"]);
    s.produce(&["--kind", "block:20000"]).await;
    wait_until(Duration::from_secs(30), "the job blocks the worker", || {
        let log = worker.log_text();
        async move { log.contains("blocking its thread") }
    })
    .await;
    let signalled = std::time::Instant::now();
    worker.terminate();
    let status = worker.wait(Duration::from_secs(30)).await;
    let took = signalled.elapsed();
    println!("exited {took:?} after SIGTERM (grace 2 s, a handler blocked for 20 s)");
    assert_eq!(status.code(), Some(3), "{status:?}\n{}", worker.log_text());
    assert!(
        took < Duration::from_secs(12),
        "the grace period (2 s) held, not the 20 s of blocking: {took:?}"
    );
    assert!(
        worker.log_text().contains("spawn_blocking"),
        "{}",
        worker.log_text()
    );
    let stats = s.stats().await;
    assert_eq!(
        stats.total_pending(),
        1,
        "the blocked job stays pending for recovery: {stats:?}\n{}",
        worker.log_text()
    );
}

/// Issue 9, item 7: an attempt that blocks its thread past `job_timeout`
/// cannot be interrupted; its error says so instead of claiming the
/// timeout stopped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_attempt_past_its_timeout_is_reported_truthfully() {
    let s = setup("blocked-timeout").await;
    let mut worker = s.worker(&["--job-timeout-ms", "500"]);
    s.produce(&["--kind", "block:1500", "--max-retries", "0"])
        .await;
    wait_until(
        Duration::from_secs(30),
        "the attempt is dead-lettered",
        || async { s.stats().await.dead == 1 },
    )
    .await;
    let mut conn = s.redis.conn().await;
    let dead = ferry_tests::queue(&s.prefix, &s.queue)
        .dead_letters(&mut conn, 1)
        .await
        .unwrap();
    let error = dead[0].get("error").unwrap_or_default();
    assert!(
        error.contains("timed out after 500ms, but not stopped by it")
            && error.contains("blocked its thread"),
        "{error}"
    );
    worker.kill().await;
}

/// How many entries a worker's log says it recovered.
fn recovered_in_log(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("recovered entries of a worker"))
        .filter_map(|l| {
            l.split("count=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Issue 9, item 10: 16 jobs of 6 s survive two crashes of their 16-slot
/// worker (SIGKILL). A third worker runs them in two groups of 8 (each
/// group alone on the worker, so a poison job among them would be narrowed
/// down to its group), not one at a time. Prints the recovery time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_two_crashes_the_jobs_run_in_groups_not_one_at_a_time() {
    let s = setup("bisect").await;
    let flags = ["--concurrency", "16", "--lease-ms", "2000"];
    let mut first = s.worker(&flags);
    let ids = s.produce(&["--kind", "sleep:6000", "--count", "16"]).await;
    wait_until(Duration::from_secs(30), "16 jobs running", || async {
        s.stats().await.total_pending() == 16
    })
    .await;
    first.kill().await;
    let mut second = s.worker(&flags);
    wait_until(
        Duration::from_secs(30),
        "the second worker recovers them",
        || {
            let log = second.log_text();
            async move { recovered_in_log(&log) == 16 }
        },
    )
    .await;
    second.kill().await;
    let started = std::time::Instant::now();
    let mut third = s.worker(&flags);
    wait_until(Duration::from_secs(120), "all 16 finish", || async {
        s.audit().await.len() == 16
    })
    .await;
    let took = started.elapsed();
    println!("after two crashes, 16 jobs of 6 s finished {took:?} after the third worker started (lease 2 s)");
    let log = third.log_text();
    assert!(
        log.matches("as one group").count() == 2 && log.contains("count=8"),
        "two groups of 8:\n{log}"
    );
    assert!(s.audit().await.keys().all(|k| ids.contains(k)));
    third.kill().await;
}

/// Issue 9, item 7, the other side of the deadline: a shutdown held up by a
/// Redis that stopped answering (the last ack cannot be written), with no
/// handler running, is not mistaken for blocked handlers. The worker ends
/// cleanly (exit 0) rather than with code 3, and the job is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_held_up_by_redis_is_not_blamed_on_handlers() {
    let s = setup("stalled-stop").await;
    let mut worker = WorkerProcess::spawn(
        s.redis.url(),
        &s.prefix,
        &["--queue", &s.queue, "--grace-ms", "2000"],
    );
    s.produce(&["--kind", "sleep:1500"]).await;
    wait_until(Duration::from_secs(30), "the job runs", || async {
        s.stats().await.total_pending() == 1
    })
    .await;
    s.redis.pause(); // SIGSTOP: the job's ack will not be answered
    worker.terminate();
    let status = worker.wait(Duration::from_secs(60)).await;
    s.redis.resume();
    assert!(status.success(), "{status:?}\n{}", worker.log_text());
    let stats = s.stats().await;
    assert_eq!(
        stats.total_pending() + stats.counter("completed"),
        1,
        "acknowledged, or still pending for recovery: {stats:?}"
    );
}
