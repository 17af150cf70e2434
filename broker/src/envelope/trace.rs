//! [`TraceContext`]: the producer's W3C trace context a job carries
//! (`traceparent`, `tracestate`), and the shape checks that decide whether
//! it carries one.

use super::field;

/// Longest `traceparent` a job carries (W3C version 00 takes 55 bytes;
/// later versions may append fields).
pub const MAX_TRACEPARENT_LEN: usize = 128;
/// Longest `tracestate` a job carries (W3C allows 32 list members; 512
/// bytes is what it asks every vendor to propagate).
pub const MAX_TRACESTATE_LEN: usize = 512;

/// A producer's W3C trace context, carried by its job as the entry fields
/// `traceparent` and `tracestate` ([`field::TRACEPARENT`],
/// [`field::TRACESTATE`]) through every move of the job: retries, delays,
/// promotion, reprioritisation, dead letters and replays. The broker only
/// carries it: it checks its shape (bounded, printable ASCII), never its
/// meaning, and never rejects an entry for it. The SDK's `opentelemetry`
/// feature writes it at enqueue and continues the trace in the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

impl TraceContext {
    /// A trace context to carry: `traceparent` of 1 to
    /// [`MAX_TRACEPARENT_LEN`] visible ASCII characters (the W3C form is
    /// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, which the
    /// worker checks), and `tracestate`, dropped when empty or when not
    /// printable ASCII of at most [`MAX_TRACESTATE_LEN`] bytes. `None` when
    /// `traceparent` is not of that shape.
    pub fn new(traceparent: impl Into<String>, tracestate: Option<String>) -> Option<Self> {
        let traceparent = traceparent.into();
        if !is_traceparent_shaped(traceparent.as_bytes()) {
            return None;
        }
        let tracestate = tracestate.filter(|s| is_tracestate_shaped(s.as_bytes()));
        Some(Self {
            traceparent,
            tracestate,
        })
    }

    /// The trace context of a stream entry's (or dead letter's) fields:
    /// the first `traceparent` and `tracestate`, `None` when it has no
    /// `traceparent` of the shape [`TraceContext::new`] takes. Never an
    /// error: a job with a bad trace context is a job without one.
    pub fn from_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<Self> {
        let value = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.as_slice() == name.as_bytes())
                .map(|(_, v)| v.as_slice())
        };
        let parent = value(field::TRACEPARENT)?;
        if !is_traceparent_shaped(parent) {
            return None;
        }
        let state = value(field::TRACESTATE)
            .filter(|s| is_tracestate_shaped(s))
            .map(|s| String::from_utf8_lossy(s).into_owned());
        Some(Self {
            traceparent: String::from_utf8_lossy(parent).into_owned(),
            tracestate: state,
        })
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, when there is one (never empty).
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }
}

fn is_traceparent_shaped(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= MAX_TRACEPARENT_LEN && v.iter().all(|b| b.is_ascii_graphic())
}

fn is_tracestate_shaped(v: &[u8]) -> bool {
    v.len() <= MAX_TRACESTATE_LEN
        && v.iter().any(|b| b.is_ascii_graphic())
        && v.iter()
            .all(|&b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{raw, sample, PARENT};
    use super::super::Envelope;
    use super::*;

    #[test]
    fn a_trace_context_is_carried_and_never_makes_an_entry_malformed() {
        let env = sample();
        let mut fields = raw(&env);
        fields.push((b"traceparent".to_vec(), PARENT.as_bytes().to_vec()));
        fields.push((b"tracestate".to_vec(), b"congo=t61rcWkgMzE".to_vec()));
        assert_eq!(Envelope::from_fields(&fields, 1024).unwrap(), env);
        let trace = TraceContext::from_fields(&fields).unwrap();
        assert_eq!(trace.traceparent(), PARENT);
        assert_eq!(trace.tracestate(), Some("congo=t61rcWkgMzE"));

        // Garbage, duplicated: still a valid job, without a trace context.
        let mut bad = raw(&env);
        bad.push((b"traceparent".to_vec(), vec![0xff, 0x00, b' ']));
        bad.push((b"traceparent".to_vec(), b"x".to_vec()));
        bad.push((b"tracestate".to_vec(), vec![0xfe]));
        assert_eq!(Envelope::from_fields(&bad, 1024).unwrap(), env);
        assert_eq!(TraceContext::from_fields(&bad), None);
        assert_eq!(TraceContext::from_fields(&raw(&env)), None);
        let long = "a".repeat(MAX_TRACEPARENT_LEN + 1);
        assert_eq!(TraceContext::new(long, None), None);
        let t = TraceContext::new(PARENT, Some("  ".into())).unwrap();
        assert_eq!(t.tracestate(), None, "an empty tracestate is none");
    }
}
