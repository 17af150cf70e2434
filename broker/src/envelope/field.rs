//! Field names of a stream entry.

/// Job id.
pub const ID: &str = "id";
/// Job type.
pub const TYPE: &str = "type";
/// Payload JSON text.
pub const PAYLOAD: &str = "payload";
/// Attempt number, from 1.
pub const ATTEMPT: &str = "attempt";
/// Retries allowed.
pub const MAX_RETRIES: &str = "max_retries";
/// Enqueue time, ms.
pub const ENQUEUED_AT: &str = "enqueued_at";
/// The previous attempt's error, on retries.
pub const LAST_ERROR: &str = "last_error";
/// The job's own record retention in ms, when its producer set one.
pub const RETENTION_MS: &str = "retention_ms";
/// The job's concurrency key, when its producer gave one: the jobs of one
/// key share that key's concurrency limit (see
/// [`concurrency`](crate::concurrency)).
pub const CONCURRENCY_KEY: &str = "concurrency_key";
/// The id of the batch the job belongs to, when it was enqueued in one
/// (see [`batches`](crate::batches)).
pub const BATCH: &str = "batch";
/// The id of the root of the flow the job belongs to, when it was enqueued
/// in one (see [`flows`](crate::flows)).
pub const FLOW: &str = "flow";
/// Dead-letter only: why the job was dead-lettered.
pub const ERROR: &str = "error";
/// Dead-letter only: when, ms.
pub const FAILED_AT: &str = "failed_at";
/// Dead-letter and delayed set: the priority stream the job belongs to.
pub const PRIORITY: &str = "priority";
/// Only on a promoted delayed-set member that was not an envelope.
pub const RAW: &str = "raw";
/// Dead-letter only: how many of the entry's unknown fields it left out
/// (it keeps at most 16 besides the envelope's own).
pub const OMITTED_FIELDS: &str = "omitted_fields";
/// The producer's W3C trace context, when it enqueued the job inside a
/// trace (carried, never read by the broker; see
/// [`TraceContext`](super::TraceContext)).
pub const TRACEPARENT: &str = "traceparent";
/// The producer's W3C trace state, only with [`TRACEPARENT`] and when
/// not empty.
pub const TRACESTATE: &str = "tracestate";

/// The fields of a stream entry, in documented order. Every move of a
/// job carries these; the last two ([`TRACEPARENT`], [`TRACESTATE`])
/// are carried as they are and never make an entry malformed.
pub const ENVELOPE: [&str; 13] = [
    ID,
    TYPE,
    PAYLOAD,
    ATTEMPT,
    MAX_RETRIES,
    ENQUEUED_AT,
    LAST_ERROR,
    RETENTION_MS,
    CONCURRENCY_KEY,
    BATCH,
    FLOW,
    TRACEPARENT,
    TRACESTATE,
];

/// How many of [`ENVELOPE`]'s fields are the [`Envelope`](super::Envelope)'s
/// own (decoded and checked); the rest are carried only.
pub(crate) const DECODED: usize = 11;
