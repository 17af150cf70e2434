//! Traces across services (feature `opentelemetry`): the producer's W3C
//! trace context travels in the job, and the worker's `job` span continues
//! it, so one trace runs from the code that enqueued a job to its handler.
//!
//! At enqueue, when the current `tracing` span has a valid OpenTelemetry
//! span context (a `tracing_opentelemetry` layer is installed and the span
//! is enabled), every job enqueued carries it as the entry fields
//! `traceparent` (`00-<trace id>-<span id>-<flags>`) and, when not empty,
//! `tracestate`. The broker carries them through retries, delays,
//! reprioritisation, dead letters and replays
//! ([`TraceContext`](ferry_broker::envelope::TraceContext)). In the worker,
//! the `job` span of an entry with a valid `traceparent` gets it as its
//! OpenTelemetry parent before the handler runs; a malformed one is
//! ignored (logged at debug).
//!
//! Without the feature none of this is compiled: no field is written or
//! read.

use ferry_broker::envelope::{field, preview, TraceContext};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The trace context of the current `tracing` span, for the jobs enqueued
/// now; `None` when it has no valid OpenTelemetry span context (no span,
/// no OpenTelemetry layer, a disabled span).
pub(crate) fn current() -> Option<TraceContext> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let state = sc.trace_state().header();
    TraceContext::new(traceparent(sc), (!state.is_empty()).then_some(state))
}

/// The W3C `traceparent` of `sc` (version 00; of the flags, only `sampled`
/// is defined, and only it is sent, as the W3C propagator does).
fn traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags() & TraceFlags::SAMPLED
    )
}

/// Makes `span` (a job's span, not entered yet) continue the trace whose
/// context the entry's `fields` carry, if they carry a valid one. A
/// malformed `traceparent` is logged at debug and ignored; a span without
/// an OpenTelemetry layer, or disabled, is left as it is.
pub(crate) fn continue_in(span: &tracing::Span, fields: &[(Vec<u8>, Vec<u8>)]) {
    let Some((_, raw)) = fields
        .iter()
        .find(|(k, _)| k.as_slice() == field::TRACEPARENT.as_bytes())
    else {
        return;
    };
    let parent =
        TraceContext::from_fields(fields).and_then(|t| parse(t.traceparent(), t.tracestate()));
    match parent {
        Some(parent) => {
            // Err: no OpenTelemetry layer, or the span is disabled: nothing to continue.
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
        }
        None => tracing::debug!(
            parent: span,
            traceparent = %preview(raw),
            "ignoring the job's malformed traceparent; its span starts a trace of its own"
        ),
    }
}

/// The remote span context of a W3C `traceparent` (and `tracestate`, an
/// invalid one read as empty), `None` when it is not valid: a version
/// other than two lowercase hex digits or `ff`, a trace id that is not 32
/// lowercase hex digits or is all zeros, a span id that is not 16 or is all
/// zeros, flags that are not two hex digits, or, in version 00, anything
/// after the flags. A later version may append fields after the flags.
fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
    let lower_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut parts = traceparent.split('-');
    let version = parts.next()?;
    if !lower_hex(version, 2) || version == "ff" {
        return None;
    }
    let (trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?);
    if !lower_hex(trace_id, 32) || !lower_hex(span_id, 16) || !lower_hex(flags, 2) {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?) & TraceFlags::SAMPLED;
    let state = tracestate
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let sc = SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(span_id).ok()?,
        flags,
        true,
        state,
    );
    sc.is_valid().then_some(sc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_round_trips() {
        let sc = parse(PARENT, Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")).unwrap();
        assert_eq!(
            sc.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(sc.span_id(), SpanId::from_hex("00f067aa0ba902b7").unwrap());
        assert!(sc.is_sampled() && sc.is_remote());
        assert_eq!(sc.trace_state().get("rojo"), Some("00f067aa0ba902b7"));
        assert_eq!(traceparent(&sc), PARENT);
        let unsampled = parse(&PARENT.replace("-01", "-00"), None).unwrap();
        assert!(!unsampled.is_sampled());
        assert!(unsampled.trace_state().header().is_empty());
        // Unknown flags are not sent on.
        let sc = parse(&PARENT.replace("-01", "-ff"), None).unwrap();
        assert!(traceparent(&sc).ends_with("-01"));
    }

    #[test]
    fn later_versions_may_append_fields() {
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        assert!(parse(v1, None).is_some());
    }

    #[test]
    fn malformed_traceparents_are_none() {
        for bad in [
            "",
            "00",
            "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        ] {
            assert!(parse(bad, None).is_none(), "{bad:?}");
        }
        // A bad tracestate is dropped, the parent kept.
        let sc = parse(PARENT, Some("=,,no key")).unwrap();
        assert!(sc.trace_state().header().is_empty());
    }

    #[test]
    fn without_an_opentelemetry_layer_there_is_no_context() {
        let span = tracing::info_span!("producer");
        let _entered = span.enter();
        assert_eq!(current(), None);
        // And continuing one is a no-op, whatever the fields say.
        let fields = vec![(b"traceparent".to_vec(), PARENT.as_bytes().to_vec())];
        continue_in(&span, &fields);
        continue_in(&span, &[(b"traceparent".to_vec(), vec![0xff])]);
    }
}
