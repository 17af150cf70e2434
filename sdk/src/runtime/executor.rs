//! Runs one claimed entry: decode, find the handler, run it under the job
//! timeout with panics caught, then record the outcome (ack, retry or
//! dead-letter) atomically in Redis.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use ferry_broker::{Delivery, Envelope};
use futures::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::{Completion, Shared};
use crate::handler::JobContext;

enum Outcome {
    Done,
    Failed(String),
    Permanent(String),
}

/// Removes an entry from the in-flight set when its job ends, however it ends
/// (even by a panic outside the handler), so the heartbeat stops renewing it,
/// unless the job succeeded: then the acker removes it once the ack is
/// written, so its lease is renewed until then.
struct Finished<'a> {
    shared: &'a Shared,
    qi: usize,
    delivery: &'a Delivery,
    handed_to_acker: std::cell::Cell<bool>,
}

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        if !self.handed_to_acker.get() {
            self.shared.inflight.remove(self.qi, &self.delivery.entry);
            self.shared.activity.finished();
        }
    }
}

/// Runs `delivery` of queue `qi`, holding `permit` until the outcome is recorded.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    qi: usize,
    delivery: Delivery,
    permit: Option<OwnedSemaphorePermit>,
) {
    let finished = Finished {
        shared,
        qi,
        delivery: &delivery,
        handed_to_acker: std::cell::Cell::new(false),
    };
    let _permit = permit;
    let queue = &shared.queues[qi];
    if shared.inflight.is_lost(qi, &delivery.entry) {
        // It waited for a slot while another worker recovered it: not ours to run.
        tracing::warn!(queue = %queue.queue().name(), entry = %delivery.entry.id, "lease lost before the job started; left to its new owner");
        return;
    }
    match delivery.envelope(queue.queue().payload_limit()) {
        Ok(env) => {
            let span = tracing::info_span!(
                "job",
                queue = %queue.queue().name(),
                id = %env.id,
                r#type = %env.job_type,
                attempt = env.attempt,
                priority = %delivery.priority(),
            );
            if run_envelope(shared, qi, &delivery, env)
                .instrument(span)
                .await
            {
                finished.handed_to_acker.set(true);
            }
        }
        Err(malformed) => {
            let span = tracing::info_span!("job", queue = %queue.queue().name(), entry = %delivery.entry.id, priority = %delivery.priority());
            dead_letter(shared, qi, &delivery, &malformed.to_string(), true)
                .instrument(span)
                .await;
        }
    }
}

/// Runs one job; true when it succeeded and its ack was handed to the acker.
async fn run_envelope(shared: &Arc<Shared>, qi: usize, delivery: &Delivery, env: Envelope) -> bool {
    let queue = &shared.queues[qi];
    let Some(handler) = shared.handlers.get(env.job_type.as_str()).cloned() else {
        let mut known: Vec<&str> = shared.handlers.keys().copied().collect();
        known.sort_unstable();
        let reason = format!(
            "unknown job type `{}`: no handler registered on this worker (it handles: {})",
            env.job_type,
            known.join(", ")
        );
        dead_letter(shared, qi, delivery, &reason, false).await;
        return false;
    };
    let ctx = JobContext {
        job_id: env.id.clone(),
        attempt: env.attempt,
        max_retries: env.max_retries,
        queue: queue.queue().name().to_owned(),
        priority: delivery.priority(),
        enqueued_at: env.enqueued_at,
        last_error: env.last_error.clone(),
        shutdown: shared.stopping.clone(),
    };
    let timeout = shared.settings.job_timeout;
    let attempt = AssertUnwindSafe(tokio::time::timeout(
        timeout,
        handler.call(&env.payload, ctx),
    ))
    .catch_unwind();
    let result = tokio::select! {
        r = attempt => r,
        _ = shared.hard_stop.cancelled() => {
            tracing::warn!("shutdown grace period over; job left pending for another worker");
            return false;
        }
    };
    let outcome = match result {
        Ok(Ok(Ok(()))) => Outcome::Done,
        Ok(Ok(Err(e))) if e.is_permanent() => Outcome::Permanent(e.message().to_owned()),
        Ok(Ok(Err(e))) => Outcome::Failed(e.message().to_owned()),
        Ok(Err(_elapsed)) => Outcome::Failed(format!("timed out after {timeout:?}")),
        Err(panic) => Outcome::Failed(format!("handler panicked: {}", panic_message(&*panic))),
    };
    if shared.inflight.is_lost(qi, &delivery.entry) {
        tracing::warn!("lease was lost while the job ran; another worker owns it now, so this outcome is not recorded");
        return false;
    }
    match outcome {
        Outcome::Done => {
            tracing::debug!("job done");
            shared
                .activity
                .completed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // The acker removes it from the in-flight set once acknowledged.
            return shared
                .acks
                .send(Completion {
                    queue: qi,
                    entry: delivery.entry.clone(),
                })
                .is_ok();
        }
        Outcome::Failed(error) if !env.is_last_attempt() => {
            retry(shared, qi, delivery, env, error).await
        }
        Outcome::Failed(error) => {
            let reason = format!(
                "{error} (attempt {} of {}; no retries left)",
                env.attempt,
                env.max_retries + 1
            );
            dead_letter(shared, qi, delivery, &reason, false).await;
        }
        Outcome::Permanent(error) => {
            let reason = format!("{error} (permanent failure at attempt {})", env.attempt);
            dead_letter(shared, qi, delivery, &reason, false).await;
        }
    }
    false
}

async fn retry(shared: &Arc<Shared>, qi: usize, delivery: &Delivery, env: Envelope, error: String) {
    let queue = &shared.queues[qi];
    let delay = shared.settings.backoff.delay(env.attempt);
    let run_at = ferry_broker::now_ms().saturating_add(delay.as_millis() as u64);
    let next = Envelope {
        attempt: env.attempt + 1,
        last_error: Some(error.clone()),
        ..env
    };
    let moved = shared
        .persist("scheduling a retry", |mut conn| {
            let next = &next;
            async move { queue.retry(&mut conn, delivery, next, run_at).await }
        })
        .await;
    match moved {
        Some(true) => {
            shared
                .activity
                .retried
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "attempt failed; retry scheduled");
            shared.promote_wake[qi].notify_one();
        }
        Some(false) => {
            tracing::warn!(%error, "attempt failed, but the entry is no longer ours; its new owner retries it")
        }
        None => {}
    }
}

async fn dead_letter(
    shared: &Arc<Shared>,
    qi: usize,
    delivery: &Delivery,
    reason: &str,
    malformed: bool,
) {
    let queue = &shared.queues[qi];
    let kind = if malformed {
        ferry_broker::DeadLetterKind::Malformed
    } else {
        ferry_broker::DeadLetterKind::Failed
    };
    let res = shared
        .persist("dead-lettering", |mut conn| async move {
            queue.dead_letter(&mut conn, delivery, reason, kind).await
        })
        .await;
    if let Some(r) = res {
        if r.moved {
            shared
                .activity
                .dead
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(entry = %delivery.entry.id, reason, dead_letter = %queue.queue().keys().dead(), "moved to the dead-letter stream");
        }
        if r.dropped > 0 {
            tracing::error!(
                dropped = r.dropped,
                "dead-letter cap reached: oldest dead-letter entries dropped"
            );
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text panic payload".to_owned()
    }
}
