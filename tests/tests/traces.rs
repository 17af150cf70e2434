//! Traces across services (the SDK's `opentelemetry` feature, which this
//! crate's dev-dependencies turn on): a job enqueued inside a span carries
//! the span's W3C trace context (`traceparent`, `tracestate`), every move
//! of the job keeps it, and the worker's `job` span continues the trace, so
//! one trace runs from the producer to the handler. Spans go through a
//! tracing-opentelemetry layer to OpenTelemetry's in-memory exporter; each
//! test finds its own spans by its producer's trace id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use ferry_queue::{
    Backoff, Client, EnqueueOptions, Handler, Job, JobContext, JobError, JobState, Priority, Worker,
};
use ferry_tests::{unique, RedisServer};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, SpanData, SpanProcessor,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

const QUEUE: &str = "traced";
const WITHIN: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize, Debug, Default)]
struct Traced {
    label: String,
    /// Attempts that fail (retryably) before one succeeds.
    fail: u32,
    /// The first run fails for good (dead-lettered); later runs succeed.
    dead_once: bool,
}
impl Job for Traced {
    const TYPE: &'static str = "traced";
    const QUEUE: &'static str = QUEUE;
}

/// One run of the handler: its attempt, and the trace its own span is in.
#[derive(Debug)]
struct Run {
    attempt: u32,
    trace_id: TraceId,
}

struct TracedHandler {
    runs: mpsc::UnboundedSender<Run>,
    failed_for_good: AtomicBool,
}

impl Handler for TracedHandler {
    type Job = Traced;
    type Output = ();

    async fn handle(&self, job: Traced, ctx: JobContext) -> Result<(), JobError> {
        let span = tracing::info_span!("handle", label = %job.label, attempt = ctx.attempt);
        async {
            let trace_id = tracing::Span::current()
                .context()
                .span()
                .span_context()
                .trace_id();
            let _ = self.runs.send(Run {
                attempt: ctx.attempt,
                trace_id,
            });
            if ctx.attempt <= job.fail {
                return Err(JobError::retry(format!("attempt {} fails", ctx.attempt)));
            }
            if job.dead_once && !self.failed_for_good.swap(true, Ordering::SeqCst) {
                return Err(JobError::permanent("fails for good, once"));
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}

/// The process's spans: a tracing subscriber with an OpenTelemetry layer
/// whose spans end up in an in-memory exporter; `ended` counts finished
/// spans, so a test waits for the ones it expects instead of sleeping.
struct Telemetry {
    exporter: InMemorySpanExporter,
    ended: watch::Receiver<u64>,
    _provider: SdkTracerProvider,
}

/// Counts finished spans (after the exporter, registered before it, has them).
#[derive(Debug)]
struct CountEnded(watch::Sender<u64>);

impl SpanProcessor for CountEnded {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, _: SpanData) {
        self.0.send_modify(|n| *n += 1);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let (count, ended) = watch::channel(0);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(SimpleSpanProcessor::new(exporter.clone()))
            .with_span_processor(CountEnded(count))
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("ferry-tests"));
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(layer);
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        Telemetry {
            exporter,
            ended,
            _provider: provider,
        }
    })
}

/// The finished spans of `trace`, once `done` says they are all there.
async fn spans_of(trace: TraceId, done: impl Fn(&[SpanData]) -> bool) -> Vec<SpanData> {
    let t = telemetry();
    let in_trace = || -> Vec<SpanData> {
        let mut spans = t.exporter.get_finished_spans().unwrap();
        spans.retain(|s| s.span_context.trace_id() == trace);
        spans
    };
    let mut ended = t.ended.clone();
    tokio::time::timeout(WITHIN, ended.wait_for(|_| done(&in_trace())))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the trace's spans ended within {WITHIN:?}: {:#?}",
                in_trace()
            )
        })
        .unwrap();
    in_trace()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// A producer span (a root span, or a child of `remote`), and its context.
fn producer_span(remote: Option<SpanContext>) -> (tracing::Span, SpanContext) {
    telemetry();
    let span = tracing::info_span!("produce");
    if let Some(remote) = remote {
        span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote))
            .unwrap();
    }
    let sc = span.context().span().span_context().clone();
    assert!(sc.is_valid() && sc.is_sampled(), "{sc:?}");
    (span, sc)
}

fn traceparent_of(sc: &SpanContext) -> String {
    format!("00-{}-{}-01", sc.trace_id(), sc.span_id())
}

struct Setup {
    redis: RedisServer,
    prefix: String,
    client: Client,
    runs: mpsc::UnboundedReceiver<Run>,
    runs_tx: mpsc::UnboundedSender<Run>,
}

async fn setup() -> Setup {
    telemetry();
    let redis = RedisServer::start().await;
    let prefix = unique("traces");
    let client = Client::builder(redis.url())
        .prefix(&prefix)
        .connect()
        .unwrap();
    let (runs_tx, runs) = mpsc::unbounded_channel();
    Setup {
        redis,
        prefix,
        client,
        runs,
        runs_tx,
    }
}

impl Setup {
    fn start_worker(
        &self,
    ) -> (
        tokio::task::JoinHandle<ferry_queue::Result<()>>,
        CancellationToken,
    ) {
        let worker = Worker::builder(self.redis.url())
            .prefix(self.prefix.clone())
            .register(TracedHandler {
                runs: self.runs_tx.clone(),
                failed_for_good: AtomicBool::new(false),
            })
            .backoff(Backoff::new(Duration::from_millis(10), Duration::from_millis(100)).unwrap())
            .build()
            .unwrap();
        let token = worker.shutdown_token();
        (
            tokio::spawn(worker.run_until(std::future::pending())),
            token,
        )
    }

    async fn next_run(&mut self) -> Run {
        tokio::time::timeout(WITHIN, self.runs.recv())
            .await
            .expect("the handler ran")
            .expect("channel open")
    }

    async fn entries(&self, key: &str) -> Vec<(String, HashMap<String, String>)> {
        let mut conn = self.redis.conn().await;
        redis::cmd("XRANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    async fn scheduled(&self, id: &str) -> serde_json::Value {
        let mut conn = self.redis.conn().await;
        let keys = self.client.keys(QUEUE).unwrap();
        let json: String = redis::cmd("HGET")
            .arg(keys.scheduled())
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap();
        serde_json::from_str(&json).unwrap()
    }
}

fn job(label: &str) -> Traced {
    Traced {
        label: label.into(),
        ..Traced::default()
    }
}

#[tokio::test]
async fn one_trace_runs_from_the_producer_to_the_handler() {
    let mut s = setup().await;
    let (producer, parent) = producer_span(None);
    let id = s
        .client
        .enqueue(&job("one"))
        .instrument(producer.clone())
        .await
        .unwrap();
    drop(producer);
    let (handle, token) = s.start_worker();
    let run = s.next_run().await;
    assert_eq!(run.attempt, 1);
    assert_eq!(
        run.trace_id,
        parent.trace_id(),
        "the handler runs in the producer's trace"
    );
    let done = s.client.wait(QUEUE, &id, WITHIN).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);

    let spans = spans_of(parent.trace_id(), |spans| {
        ["produce", "job", "handle"]
            .iter()
            .all(|name| !named(spans, name).is_empty())
    })
    .await;
    let (job_span, handle_span) = (named(&spans, "job")[0], named(&spans, "handle")[0]);
    assert_eq!(job_span.span_context.trace_id(), parent.trace_id());
    assert_eq!(
        job_span.parent_span_id,
        parent.span_id(),
        "the job span's parent is the producer span"
    );
    assert!(job_span.parent_span_is_remote);
    assert_eq!(attribute(job_span, "id").as_deref(), Some(id.as_str()));
    assert_eq!(attribute(job_span, "queue").as_deref(), Some(QUEUE));
    assert_eq!(handle_span.span_context.trace_id(), parent.trace_id());
    assert_eq!(handle_span.parent_span_id, job_span.span_context.span_id());
    let produce = named(&spans, "produce")[0];
    assert_eq!(produce.span_context.span_id(), parent.span_id());
    assert_eq!(
        produce.parent_span_id,
        SpanId::INVALID,
        "the producer's span is the root"
    );

    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn jobs_carry_the_trace_context_only_when_enqueued_in_a_trace() {
    let s = setup().await;
    let keys = s.client.keys(QUEUE).unwrap();

    // Outside any span: no trace fields.
    let outside = s.client.enqueue(&job("outside")).await.unwrap();

    // Inside a span that continues a remote trace with a trace state: every
    // way of enqueueing carries both fields.
    let remote = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("ferry", "t1")]).unwrap(),
    );
    let (producer, parent) = producer_span(Some(remote.clone()));
    let traceparent = traceparent_of(&parent);
    let (single, batch, keyed, given, delayed) = async {
        let c = &s.client;
        (
            c.enqueue(&job("single")).await.unwrap(),
            c.enqueue_batch(&[job("b1"), job("b2")], EnqueueOptions::new())
                .await
                .unwrap(),
            c.enqueue_batch(
                &[job("k1")],
                EnqueueOptions::new().idempotency_key("trace-k"),
            )
            .await
            .unwrap(),
            c.enqueue_with(
                &job("given"),
                EnqueueOptions::new()
                    .job_id("given-1")
                    .retention(Duration::from_secs(60)),
            )
            .await
            .unwrap(),
            c.enqueue_with(
                &job("later"),
                EnqueueOptions::new().delay(Duration::from_secs(3600)),
            )
            .await
            .unwrap(),
        )
    }
    .instrument(producer)
    .await;

    let entries = s.entries(keys.stream(Priority::Normal)).await;
    assert_eq!(entries.len(), 6, "{entries:#?}");
    let by_id: HashMap<String, &HashMap<String, String>> = entries
        .iter()
        .map(|(entry, fields)| {
            let id = fields
                .get("id")
                .cloned()
                .unwrap_or_else(|| format!("normal-{entry}"));
            (id, fields)
        })
        .collect();
    let plain = by_id[&outside];
    assert!(
        !plain.contains_key("traceparent") && !plain.contains_key("tracestate"),
        "a job enqueued outside any span has no trace fields: {plain:?}"
    );
    let traced: Vec<&String> = [&single, &batch[0], &batch[1], &keyed[0], &given].into();
    for id in traced {
        let fields = by_id[id];
        assert_eq!(
            fields.get("traceparent"),
            Some(&traceparent),
            "{id}: {fields:?}"
        );
        assert_eq!(
            fields.get("tracestate").map(String::as_str),
            Some("ferry=t1"),
            "{id}"
        );
    }
    assert_eq!(
        by_id[&given].get("retention_ms").map(String::as_str),
        Some("60000")
    );
    assert_eq!(parent.trace_id(), remote.trace_id());

    // A delayed job's envelope carries them too, and a reprioritisation keeps them.
    let member = s.scheduled(&delayed).await;
    assert_eq!(member["traceparent"], traceparent.as_str());
    assert_eq!(member["tracestate"], "ferry=t1");
    s.client
        .reprioritise(QUEUE, &delayed, Priority::High)
        .await
        .unwrap();
    let member = s.scheduled(&delayed).await;
    assert_eq!(
        (member["priority"].as_str(), member["traceparent"].as_str()),
        (Some("high"), Some(traceparent.as_str()))
    );
}

#[tokio::test]
async fn the_trace_survives_a_retry() {
    let mut s = setup().await;
    let (producer, parent) = producer_span(None);
    let flaky = Traced {
        label: "flaky".into(),
        fail: 1,
        ..Traced::default()
    };
    let id = s
        .client
        .enqueue_with(&flaky, EnqueueOptions::new().max_retries(2))
        .instrument(producer.clone())
        .await
        .unwrap();
    drop(producer);
    let (handle, token) = s.start_worker();
    for attempt in [1, 2] {
        let run = s.next_run().await;
        assert_eq!((run.attempt, run.trace_id), (attempt, parent.trace_id()));
    }
    let done = s.client.wait(QUEUE, &id, WITHIN).await.unwrap();
    assert_eq!((done.state, done.attempt), (JobState::Succeeded, Some(2)));

    let spans = spans_of(parent.trace_id(), |spans| {
        named(spans, "job").len() == 2 && named(spans, "handle").len() == 2
    })
    .await;
    let mut attempts: Vec<String> = named(&spans, "job")
        .into_iter()
        .map(|job| {
            assert_eq!(
                job.parent_span_id,
                parent.span_id(),
                "each attempt continues the producer's span"
            );
            attribute(job, "attempt").unwrap()
        })
        .collect();
    attempts.sort();
    assert_eq!(attempts, ["1", "2"]);
    let jobs: Vec<SpanId> = named(&spans, "job")
        .iter()
        .map(|j| j.span_context.span_id())
        .collect();
    for h in named(&spans, "handle") {
        assert!(
            jobs.contains(&h.parent_span_id),
            "a handler span is its job span's child"
        );
    }

    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_trace_survives_a_dead_letter_and_its_replay() {
    let mut s = setup().await;
    let keys = s.client.keys(QUEUE).unwrap();
    let (producer, parent) = producer_span(None);
    let doomed = Traced {
        label: "doomed".into(),
        dead_once: true,
        ..Traced::default()
    };
    let id = s
        .client
        .enqueue(&doomed)
        .instrument(producer.clone())
        .await
        .unwrap();
    drop(producer);
    let (handle, token) = s.start_worker();
    assert_eq!(s.next_run().await.trace_id, parent.trace_id());
    let dead = s.client.wait(QUEUE, &id, WITHIN).await.unwrap();
    assert_eq!(dead.state, JobState::Dead);

    let letters = s.entries(keys.dead()).await;
    assert_eq!(letters.len(), 1);
    let (entry, fields) = &letters[0];
    assert_eq!(fields.get("traceparent"), Some(&traceparent_of(&parent)));
    s.client.replay_dead(QUEUE, entry).await.unwrap();

    let run = s.next_run().await;
    assert_eq!((run.attempt, run.trace_id), (1, parent.trace_id()));
    let done = s.client.wait(QUEUE, &id, WITHIN).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    let spans = spans_of(parent.trace_id(), |spans| named(spans, "job").len() == 2).await;
    for job in named(&spans, "job") {
        assert_eq!(job.parent_span_id, parent.span_id());
    }

    token.cancel();
    handle.await.unwrap().unwrap();
}
