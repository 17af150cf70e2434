//! The SDK worker in-process against a real Redis: order, retries, dead
//! letters, panics, malformed entries, timeouts.

use std::time::{Duration, Instant};

use ferry_queue::{
    Backoff, Client, EnqueueOptions, Handler, Job, JobContext, JobError, Priority, Worker,
    WorkerBuilder,
};
use ferry_tests::{queue, unique, wait_until, RedisServer};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The queue the test jobs declare as theirs.
const QUEUE: &str = "jobs";

#[derive(Serialize, Deserialize, Debug)]
struct Step {
    label: String,
    /// Attempts that fail before one succeeds.
    fail: u32,
}
impl Job for Step {
    const TYPE: &'static str = "step";
    const QUEUE: &'static str = QUEUE;
}

#[derive(Debug)]
struct Event {
    label: String,
    attempt: u32,
    at: Instant,
}

struct StepHandler(mpsc::UnboundedSender<Event>);
impl Handler for StepHandler {
    type Job = Step;
    type Output = ();
    async fn handle(&self, job: Step, ctx: JobContext) -> Result<(), JobError> {
        let _ = self.0.send(Event {
            label: job.label.clone(),
            attempt: ctx.attempt,
            at: Instant::now(),
        });
        if ctx.attempt <= job.fail {
            return Err(JobError::retry(format!(
                "{} failed attempt {}",
                job.label, ctx.attempt
            )));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize, Debug)]
struct Boom {}
impl Job for Boom {
    const TYPE: &'static str = "boom";
    const QUEUE: &'static str = QUEUE;
}
struct BoomHandler;
impl Handler for BoomHandler {
    type Job = Boom;
    type Output = ();
    #[allow(clippy::panic)]
    async fn handle(&self, _: Boom, _: JobContext) -> Result<(), JobError> {
        panic!("boom handler panicked")
    }
}

#[derive(Serialize, Deserialize, Debug)]
struct Refuse {}
impl Job for Refuse {
    const TYPE: &'static str = "refuse";
    const QUEUE: &'static str = QUEUE;
}
struct RefuseHandler;
impl Handler for RefuseHandler {
    type Job = Refuse;
    type Output = ();
    async fn handle(&self, _: Refuse, _: JobContext) -> Result<(), JobError> {
        Err(JobError::permanent("refused: bad input"))
    }
}

#[derive(Serialize, Deserialize, Debug)]
struct Hang {}
impl Job for Hang {
    const TYPE: &'static str = "hang";
    const QUEUE: &'static str = QUEUE;
}
struct HangHandler;
impl Handler for HangHandler {
    type Job = Hang;
    type Output = ();
    async fn handle(&self, _: Hang, _: JobContext) -> Result<(), JobError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

struct Setup {
    redis: RedisServer,
    client: Client,
    prefix: String,
    queue: String,
    events: mpsc::UnboundedReceiver<Event>,
    tx: mpsc::UnboundedSender<Event>,
}

async fn setup() -> Setup {
    let redis = RedisServer::start().await;
    let prefix = unique("w");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    Setup {
        redis,
        client,
        prefix,
        queue: QUEUE.into(),
        events,
        tx,
    }
}

impl Setup {
    fn builder(&self) -> WorkerBuilder {
        Worker::builder(self.redis.url())
            .prefix(self.prefix.clone())
            .register(StepHandler(self.tx.clone()))
            .register(BoomHandler)
            .register(RefuseHandler)
            .register(HangHandler)
            .backoff(Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).unwrap())
            .grace_period(Duration::from_secs(5))
    }

    fn start(
        &self,
        builder: WorkerBuilder,
    ) -> (
        tokio::task::JoinHandle<ferry_queue::Result<()>>,
        CancellationToken,
        std::sync::Arc<ferry_queue::Activity>,
    ) {
        let worker = builder.build().unwrap();
        let token = worker.shutdown_token();
        let activity = worker.activity();
        let handle = tokio::spawn(worker.run_until(std::future::pending()));
        (handle, token, activity)
    }

    async fn next(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(20), self.events.recv())
            .await
            .expect("a handler ran within 20 s")
            .expect("channel open")
    }

    fn step(label: &str, fail: u32) -> Step {
        Step {
            label: label.into(),
            fail,
        }
    }
}

#[tokio::test]
async fn worker_runs_jobs_in_strict_priority_then_fifo_order() {
    let mut s = setup().await;
    let order = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];
    for i in 0..5 {
        for p in order {
            let job = Setup::step(&format!("{p}-{i}"), 0);
            s.client
                .enqueue_with(&job, EnqueueOptions::new().priority(p))
                .await
                .unwrap();
        }
    }
    let (handle, token, _) = s.start(s.builder().concurrency(1));
    let mut seen = Vec::new();
    for _ in 0..20 {
        seen.push(s.next().await.label);
    }
    let expected: Vec<String> = Priority::ALL
        .iter()
        .flat_map(|p| (0..5).map(move |i| format!("{p}-{i}")))
        .collect();
    assert_eq!(seen, expected);
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn one_worker_serves_several_queues() {
    let mut s = setup().await;
    s.client
        .enqueue_with(
            &Setup::step("from-alpha", 0),
            EnqueueOptions::new().queue("alpha"),
        )
        .await
        .unwrap();
    s.client
        .enqueue_with(
            &Setup::step("from-beta", 0),
            EnqueueOptions::new().queue("beta"),
        )
        .await
        .unwrap();
    let (handle, token, _) = s.start(s.builder().queue("alpha").queue("beta"));
    let mut got = vec![s.next().await.label, s.next().await.label];
    got.sort();
    assert_eq!(got, ["from-alpha", "from-beta"]);
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn fail_twice_then_succeed_on_attempt_three_with_growing_delays() {
    let mut s = setup().await;
    s.client
        .enqueue_with(
            &Setup::step("flaky", 2),
            EnqueueOptions::new().max_retries(3),
        )
        .await
        .unwrap();
    let (handle, token, activity) = s.start(s.builder());
    let attempts = [s.next().await, s.next().await, s.next().await];
    assert_eq!(
        attempts.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Backoff 100 ms doubling with jitter in [d/2, d]: the first wait is at
    // least 50 ms, the second at least 100 ms, the largest the first can be.
    let gap1 = attempts[1].at - attempts[0].at;
    let gap2 = attempts[2].at - attempts[1].at;
    assert!(gap1 >= Duration::from_millis(50), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(100), "{gap2:?}");
    wait_until(
        Duration::from_secs(10),
        "the job is acknowledged",
        || async { activity.completed() == 1 && activity.running() == 0 },
    )
    .await;
    token.cancel();
    handle.await.unwrap().unwrap();
    let stats = s.client.stats(&s.queue).await.unwrap();
    assert_eq!(stats.counter("completed"), 1);
    assert_eq!(stats.counter("retried"), 2);
    assert_eq!(
        (stats.dead, stats.delayed, stats.total_pending()),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn always_failing_job_ends_in_the_dead_letter_stream_with_error_attempts_and_payload() {
    let mut s = setup().await;
    let id = s
        .client
        .enqueue_with(
            &Setup::step("hopeless", 99),
            EnqueueOptions::new()
                .max_retries(2)
                .priority(Priority::High),
        )
        .await
        .unwrap();
    let (handle, token, activity) = s.start(s.builder());
    for want in 1..=3 {
        assert_eq!(s.next().await.attempt, want);
    }
    wait_until(
        Duration::from_secs(10),
        "the job is dead-lettered",
        || async { activity.dead() == 1 },
    )
    .await;
    let dead = s.client.dead_letters(&s.queue, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(d.get("id"), Some(id.as_str()));
    assert_eq!(d.get("type"), Some("step"));
    assert_eq!(d.get("payload"), Some(r#"{"label":"hopeless","fail":99}"#));
    assert_eq!(d.get("attempt"), Some("3"));
    assert_eq!(d.get("priority"), Some("high"));
    assert!(
        d.get("error")
            .unwrap()
            .contains("hopeless failed attempt 3"),
        "{d:?}"
    );
    assert!(d.get("failed_at").unwrap().parse::<u64>().is_ok());
    let stats = s.client.stats(&s.queue).await.unwrap();
    assert_eq!(
        (stats.total_pending(), stats.total_waiting(), stats.delayed),
        (0, 0, 0)
    );
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_handler_panic_is_a_failed_attempt_and_the_worker_keeps_serving() {
    let mut s = setup().await;
    s.client
        .enqueue_with(&Boom {}, EnqueueOptions::new().max_retries(1))
        .await
        .unwrap();
    let (handle, token, activity) = s.start(s.builder().concurrency(1));
    wait_until(
        Duration::from_secs(10),
        "the panicking job is dead-lettered",
        || async { activity.dead() == 1 },
    )
    .await;
    assert_eq!(
        activity.retried(),
        1,
        "the first panic was retried like any failure"
    );
    let dead = s.client.dead_letters(&s.queue, 10).await.unwrap();
    assert!(
        dead[0]
            .get("error")
            .unwrap()
            .contains("handler panicked: boom handler panicked"),
        "{:?}",
        dead[0]
    );
    assert_eq!(dead[0].get("attempt"), Some("2"));
    // Still serving.
    s.client.enqueue(&Setup::step("after", 0)).await.unwrap();
    assert_eq!(s.next().await.label, "after");
    token.cancel();
    handle.await.unwrap().unwrap();
}

/// A job whose payload panics when decoded (a user `Deserialize` with a bug).
#[derive(Serialize, Debug)]
struct Touchy {}
impl<'de> Deserialize<'de> for Touchy {
    #[allow(clippy::panic)]
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("touchy does not decode")
    }
}
impl Job for Touchy {
    const TYPE: &'static str = "touchy";
    const QUEUE: &'static str = QUEUE;
}

#[tokio::test]
async fn a_panic_while_decoding_the_payload_is_a_failed_attempt_too() {
    let s = setup().await;
    s.client
        .enqueue_with(&Touchy {}, EnqueueOptions::new().max_retries(1))
        .await
        .unwrap();
    let builder = s
        .builder()
        .concurrency(1)
        .handle(|_: Touchy, _: JobContext| async { Ok(()) });
    let (handle, token, activity) = s.start(builder);
    wait_until(
        Duration::from_secs(10),
        "the job is dead-lettered",
        || async { activity.dead() == 1 },
    )
    .await;
    assert_eq!(activity.retried(), 1, "the first panic was retried");
    let dead = s.client.dead_letters(&s.queue, 10).await.unwrap();
    assert!(
        dead[0]
            .get("error")
            .unwrap()
            .contains("handler panicked: touchy does not decode"),
        "{:?}",
        dead[0]
    );
    assert_eq!(dead[0].get("attempt"), Some("2"));
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_permanent_error_dead_letters_at_once() {
    let s = setup().await;
    s.client
        .enqueue_with(&Refuse {}, EnqueueOptions::new().max_retries(5))
        .await
        .unwrap();
    let (handle, token, activity) = s.start(s.builder());
    wait_until(Duration::from_secs(10), "dead-lettered", || async {
        activity.dead() == 1
    })
    .await;
    assert_eq!(activity.retried(), 0);
    let dead = s.client.dead_letters(&s.queue, 10).await.unwrap();
    assert_eq!(dead[0].get("attempt"), Some("1"));
    assert!(dead[0].get("error").unwrap().contains("refused: bad input"));
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_attempt_past_the_job_timeout_fails() {
    let s = setup().await;
    s.client
        .enqueue_with(&Hang {}, EnqueueOptions::new().max_retries(0))
        .await
        .unwrap();
    let (handle, token, activity) = s.start(s.builder().job_timeout(Duration::from_millis(200)));
    wait_until(Duration::from_secs(10), "dead-lettered", || async {
        activity.dead() == 1
    })
    .await;
    let dead = s.client.dead_letters(&s.queue, 10).await.unwrap();
    assert!(
        dead[0]
            .get("error")
            .unwrap()
            .contains("timed out after 200ms"),
        "{:?}",
        dead[0]
    );
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_delayed_job_runs_no_earlier_than_its_delay() {
    let mut s = setup().await;
    let (handle, token, _) = s.start(s.builder());
    let enqueued = Instant::now();
    s.client
        .enqueue_with(
            &Setup::step("later", 0),
            EnqueueOptions::new().delay(Duration::from_millis(400)),
        )
        .await
        .unwrap();
    let e = s.next().await;
    assert_eq!(e.label, "later");
    assert!(
        e.at - enqueued >= Duration::from_millis(400),
        "{:?}",
        e.at - enqueued
    );
    token.cancel();
    handle.await.unwrap().unwrap();
}

/// Bad entries written with raw XADD, each with a fragment of the reason it must get.
type Fields = Vec<(&'static str, Vec<u8>)>;

fn malformed_catalogue() -> Vec<(Fields, &'static str)> {
    let id = uuid::Uuid::now_v7().to_string().into_bytes();
    let base = |extra: Fields| {
        let mut f: Fields = vec![
            ("id", id.clone()),
            ("type", b"step".to_vec()),
            ("payload", br#"{"label":"x","fail":0}"#.to_vec()),
            ("attempt", b"1".to_vec()),
            ("max_retries", b"3".to_vec()),
            ("enqueued_at", b"1700000000000".to_vec()),
        ];
        for (k, v) in extra {
            if let Some(slot) = f.iter_mut().find(|(name, _)| *name == k) {
                slot.1 = v;
            } else {
                f.push((k, v));
            }
        }
        f
    };
    let without = |name: &str| {
        base(vec![])
            .into_iter()
            .filter(|(k, _)| *k != name)
            .collect::<Vec<_>>()
    };
    vec![
        // No `id`: a fresh entry, named by its entry id; no type either.
        (vec![("unrelated", b"x".to_vec())], "missing field `type`"),
        (without("type"), "missing field `type`"),
        (without("payload"), "missing field `payload`"),
        (
            base(vec![("payload", b"{not json".to_vec())]),
            "payload is not a valid `step` job",
        ),
        (
            base(vec![("payload", br#"{"label":7}"#.to_vec())]),
            "payload is not a valid `step` job",
        ),
        (
            base(vec![("type", b"no-such-type".to_vec())]),
            "unknown job type `no-such-type`",
        ),
        (
            base(vec![("type", vec![0xff, 0xfe])]),
            "field `type` is not UTF-8",
        ),
        (
            base(vec![("attempt", b"-1".to_vec())]),
            "field `attempt` is not a whole number",
        ),
        (
            base(vec![("attempt", b"99999999999".to_vec())]),
            "field `attempt` is not a whole number",
        ),
        (
            base(vec![("attempt", b"0".to_vec())]),
            "attempts count from 1",
        ),
        (
            base(vec![("id", b"not a {job} id".to_vec())]),
            "field `id` is not a job id",
        ),
        (
            base(vec![("payload", vec![b'"'; 5000])]),
            "exceeds the limit",
        ),
    ]
}

#[tokio::test]
async fn malformed_entries_are_dead_lettered_with_a_reason_while_good_jobs_run() {
    let mut s = setup().await;
    let q = queue(&s.prefix, &s.queue);
    let mut conn = s.redis.conn().await;
    let catalogue = malformed_catalogue();
    let mut good = 0;
    for (fields, _) in &catalogue {
        s.client
            .enqueue(&Setup::step(&format!("good-{good}"), 0))
            .await
            .unwrap();
        good += 1;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(q.keys().stream(Priority::Normal)).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(v.as_slice());
        }
        let _: String = cmd.query_async(&mut conn).await.unwrap();
    }
    // A duplicated field name (XADD accepts it).
    let dup_id = uuid::Uuid::now_v7().to_string();
    let _: String = redis::cmd("XADD")
        .arg(q.keys().stream(Priority::Normal))
        .arg("*")
        .arg(&[
            "id",
            &dup_id,
            "type",
            "step",
            "type",
            "step",
            "payload",
            "{}",
            "attempt",
            "1",
            "max_retries",
            "0",
            "enqueued_at",
            "1",
        ])
        .query_async(&mut conn)
        .await
        .unwrap();
    let (handle, token, activity) = s.start(s.builder().max_payload_bytes(1024));
    let mut labels = Vec::new();
    for _ in 0..good {
        labels.push(s.next().await.label);
    }
    let expected_dead = catalogue.len() as u64 + 1;
    wait_until(
        Duration::from_secs(10),
        "every bad entry is dead-lettered",
        || async { activity.dead() == expected_dead },
    )
    .await;
    labels.sort();
    assert_eq!(labels.len(), good);
    let dead = s.client.dead_letters(&s.queue, 100).await.unwrap();
    assert_eq!(dead.len() as u64, expected_dead);
    let errors: Vec<&str> = dead.iter().map(|d| d.get("error").unwrap()).collect();
    for (_, reason) in &catalogue {
        assert!(
            errors.iter().any(|e| e.contains(reason)),
            "no dead letter says {reason:?}: {errors:#?}"
        );
    }
    assert!(
        errors.iter().any(|e| e.contains("appears more than once")),
        "{errors:#?}"
    );
    let stats = s.client.stats(&s.queue).await.unwrap();
    assert_eq!((stats.total_pending(), stats.total_waiting()), (0, 0));
    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unreachable_redis_is_a_typed_error_not_a_hang() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = ferry_queue::RedisConfig::new(format!("redis://127.0.0.1:{port}"));
    config.connect_timeout = Duration::from_millis(300);
    config.response_timeout = Duration::from_millis(300);
    let client = Client::connect(config).unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        client.enqueue(&Setup::step("x", 0)),
    )
    .await
    .expect("enqueue must not hang");
    let err = result.unwrap_err();
    assert!(matches!(err, ferry_queue::Error::Redis(_)), "{err}");
    assert!(err.is_connection_error(), "{err}");
}

/// A job type whose declared queue is not a valid queue name.
#[derive(Serialize, Deserialize, Debug)]
struct Misplaced {}
impl Job for Misplaced {
    const TYPE: &'static str = "misplaced";
    const QUEUE: &'static str = "bad name";
}

#[tokio::test]
async fn bad_worker_settings_are_rejected_by_build() {
    let s = setup().await;
    let cases = [
        (s.builder().concurrency(0), "concurrency"),
        (s.builder().lease(Duration::ZERO), "lease"),
        (s.builder().max_deliveries(0), "max_deliveries"),
        (s.builder().queue("bad name"), "queue name"),
        (
            Worker::builder(s.redis.url()).handle(|_: Misplaced, _: JobContext| async { Ok(()) }),
            "queue name",
        ),
        (Worker::builder(s.redis.url()).queue("q"), "handlers"),
        (s.builder().register(RefuseHandler), "handlers"),
        (s.builder().prefix("bad{prefix}"), "prefix"),
        (
            Worker::builder("redis//no-scheme").register(RefuseHandler),
            "redis_url",
        ),
    ];
    for (builder, what) in cases {
        let err = builder.build().unwrap_err();
        assert!(matches!(err, ferry_queue::Error::Config(_)), "{err}");
        let named = match &err {
            ferry_queue::Error::Config(ferry_queue::ConfigError::InvalidSetting {
                name, ..
            }) => *name == what,
            ferry_queue::Error::Config(ferry_queue::ConfigError::InvalidQueueName(_)) => {
                what == "queue name"
            }
            ferry_queue::Error::Config(ferry_queue::ConfigError::InvalidPrefix(_)) => {
                what == "prefix"
            }
            _ => false,
        };
        assert!(named, "the error names {what}: {err}");
    }
    // A URL that does not parse is a config error at connect, for producers too.
    let err = Client::connect("redis//no-scheme").unwrap_err();
    assert!(
        matches!(
            err,
            ferry_queue::Error::Config(ferry_queue::ConfigError::InvalidSetting {
                name: "redis_url",
                ..
            })
        ),
        "{err}"
    );
    let err = s
        .client
        .enqueue_with(
            &Setup::step("x", 0),
            EnqueueOptions::new().queue("bad name"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ferry_queue::Error::Config(ferry_queue::ConfigError::InvalidQueueName(_))
        ),
        "{err}"
    );
}
