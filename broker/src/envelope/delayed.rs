//! The delayed-set member of a job: its envelope, priority and trace
//! context as one JSON object of strings (in the `scheduled` hash, under
//! its id).

use serde::{Deserialize, Serialize};

use super::{Envelope, TraceContext};
use crate::priority::Priority;

impl Envelope {
    /// The delayed-set member for this envelope: a JSON object of strings.
    pub fn to_delayed_member(&self, priority: Priority) -> String {
        self.to_delayed_member_traced(priority, None)
    }

    /// As [`Envelope::to_delayed_member`], carrying the job's trace context
    /// (`traceparent`, `tracestate`) when it has one.
    pub fn to_delayed_member_traced(
        &self,
        priority: Priority,
        trace: Option<&TraceContext>,
    ) -> String {
        let member = DelayedMember {
            id: &self.id,
            job_type: &self.job_type,
            payload: &self.payload,
            attempt: self.attempt.to_string(),
            max_retries: self.max_retries.to_string(),
            enqueued_at: self.enqueued_at.to_string(),
            priority: priority.as_str(),
            last_error: self.last_error.as_deref(),
            retention_ms: self.retention_ms.map(|ms| ms.to_string()),
            concurrency_key: self.concurrency_key.as_deref(),
            batch: self.batch.as_deref(),
            flow: self.flow.as_deref(),
            traceparent: trace.map(TraceContext::traceparent),
            tracestate: trace.and_then(TraceContext::tracestate),
        };
        // Serializing a struct of strings cannot fail; fall back to an empty
        // object rather than panic, which promote.lua turns into a dead letter.
        serde_json::to_string(&member).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[derive(Serialize, Deserialize)]
struct DelayedMember<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    job_type: &'a str,
    payload: &'a str,
    attempt: String,
    max_retries: String,
    enqueued_at: String,
    priority: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_ms: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracestate: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::super::tests::{sample, PARENT};
    use super::*;

    #[test]
    fn delayed_member_is_json_of_strings() {
        let env = sample();
        let m: serde_json::Value =
            serde_json::from_str(&env.to_delayed_member(Priority::High)).unwrap();
        assert_eq!(m["priority"], "high");
        assert_eq!(m["attempt"], "1");
        assert_eq!(m["payload"], env.payload);
        assert!(m.get("last_error").is_none());
        assert!(m.get("traceparent").is_none() && m.get("tracestate").is_none());
    }

    #[test]
    fn a_delayed_member_carries_the_trace_context() {
        let env = sample();
        let trace = TraceContext::new(PARENT, Some("k=v".into())).unwrap();
        let m: serde_json::Value =
            serde_json::from_str(&env.to_delayed_member_traced(Priority::Low, Some(&trace)))
                .unwrap();
        assert_eq!(m["traceparent"], PARENT);
        assert_eq!(m["tracestate"], "k=v");
        let bare = TraceContext::new(PARENT, None).unwrap();
        let m: serde_json::Value =
            serde_json::from_str(&env.to_delayed_member_traced(Priority::Low, Some(&bare)))
                .unwrap();
        assert_eq!(m["traceparent"], PARENT);
        assert!(m.get("tracestate").is_none());
    }
}
