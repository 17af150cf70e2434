//! The envelope: how a job is laid out in a stream entry, and in the delayed set.
//!
//! A stream entry has these fields, all readable text in `redis-cli XRANGE`:
//!
//! | field | meaning |
//! |---|---|
//! | `id` | job id; absent on a fresh job, whose id is derived from its entry (below) |
//! | `type` | job type name, chooses the handler |
//! | `payload` | the job's arguments as JSON text |
//! | `attempt` | which attempt this entry is, from 1 |
//! | `max_retries` | retries allowed after the first attempt |
//! | `enqueued_at` | when the job was first enqueued, ms since the Unix epoch; absent on a fresh job (its entry id's time) |
//! | `last_error` | only on a retry: the error of the previous attempt |
//! | `retention_ms` | only when the producer set it: how long the job's finished record is kept, instead of the queue's retention |
//! | `traceparent` | only when the producer enqueued it inside a trace: its W3C trace context (`00-<trace id>-<span id>-<flags>`) |
//! | `tracestate` | only with `traceparent`, when the producer's trace state is not empty: its W3C `tracestate` |
//!
//! A fresh job (enqueued to run now, without an id of the producer's) is
//! stored without `id` and `enqueued_at`: its id is `<priority>-<entry id>`
//! (e.g. `normal-1732370000000-0`, see [`derived_id`]) and its enqueue time
//! the entry id's milliseconds. That keeps a queued job within a few bytes
//! of a bare stream entry. A job that moves (a retry, a delayed job coming
//! due, a replay) or was given its id at enqueue carries `id` and
//! `enqueued_at`, and the queue's index hash points its id at its entry.
//!
//! A delayed job's envelope is the same fields, plus `priority`, as one JSON
//! object of strings (in the `scheduled` hash, under its id). Decoding never panics: anything that is not
//! a valid envelope is a [`Malformed`] with a readable reason.
//!
//! `traceparent` and `tracestate` are carried, not read: Ferry keeps them
//! through every move of the job (retry, delay, promotion, reprioritisation,
//! dead letter, replay) and never rejects an entry for them ([`TraceContext`]).
//! A worker that does not know them ignores them, as it does any field it
//! does not know.

use serde::{Deserialize, Serialize};

use crate::priority::Priority;

/// Largest accepted `max_retries`.
pub const MAX_RETRIES_LIMIT: u32 = 10_000;
/// Longest accepted job type name.
pub const MAX_JOB_TYPE_LEN: usize = 128;

/// Field names of a stream entry.
pub mod field {
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
    pub const ENVELOPE: [&str; 10] = [
        ID,
        TYPE,
        PAYLOAD,
        ATTEMPT,
        MAX_RETRIES,
        ENQUEUED_AT,
        LAST_ERROR,
        RETENTION_MS,
        TRACEPARENT,
        TRACESTATE,
    ];

    /// How many of [`ENVELOPE`]'s fields are the [`Envelope`](super::Envelope)'s
    /// own (decoded and checked); the rest are carried only.
    pub(crate) const DECODED: usize = 8;
}

/// A job as stored in a stream entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Job id (UUID v7 text).
    pub id: String,
    /// Job type name.
    pub job_type: String,
    /// The job's arguments, JSON text.
    pub payload: String,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// First enqueue time, ms since the Unix epoch.
    pub enqueued_at: u64,
    /// The previous attempt's error, on a retry.
    pub last_error: Option<String>,
    /// How long the job's finished record is kept, in ms, when its
    /// producer chose (instead of the queue's retention; 0 keeps none).
    pub retention_ms: Option<u64>,
}

/// Why an entry is not a valid envelope. Its `Display` is the reason written
/// to the dead-letter entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed entry: {0}")]
pub struct Malformed(pub String);

impl Envelope {
    /// True when a failure of this attempt leaves no retry.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt > self.max_retries
    }

    /// The field/value pairs of the stream entry, in documented order.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = Vec::with_capacity(8);
        f.push((field::ID, self.id.clone()));
        f.push((field::TYPE, self.job_type.clone()));
        f.push((field::PAYLOAD, self.payload.clone()));
        f.push((field::ATTEMPT, self.attempt.to_string()));
        f.push((field::MAX_RETRIES, self.max_retries.to_string()));
        f.push((field::ENQUEUED_AT, self.enqueued_at.to_string()));
        if let Some(e) = &self.last_error {
            f.push((field::LAST_ERROR, e.clone()));
        }
        if let Some(ms) = self.retention_ms {
            f.push((field::RETENTION_MS, ms.to_string()));
        }
        f
    }

    /// Decodes fields that carry `id` and `enqueued_at` themselves (a moved
    /// job's entry; a dead letter), checking every field and the payload size.
    ///
    /// # Errors
    /// As [`Envelope::from_entry`]; a missing `id` or `enqueued_at` too.
    pub fn from_fields(
        fields: &[(Vec<u8>, Vec<u8>)],
        max_payload: usize,
    ) -> Result<Self, Malformed> {
        Self::decode(fields, max_payload, None)
    }

    /// Decodes the fields of stream entry `entry_id` in the `priority`
    /// stream, checking every field and the payload size. Without an `id`
    /// field the id is [`derived_id`]; without `enqueued_at`, the entry id's
    /// milliseconds.
    ///
    /// # Errors
    /// [`Malformed`] naming the first problem found: a missing, duplicated or
    /// non-UTF-8 field, a bad number, an id that is not a valid job id, a
    /// payload over `max_payload` bytes, or an attempt past `max_retries + 1`.
    pub fn from_entry(
        fields: &[(Vec<u8>, Vec<u8>)],
        max_payload: usize,
        priority: Priority,
        entry_id: &str,
    ) -> Result<Self, Malformed> {
        Self::decode(fields, max_payload, Some((priority, entry_id)))
    }

    fn decode(
        fields: &[(Vec<u8>, Vec<u8>)],
        max_payload: usize,
        origin: Option<(Priority, &str)>,
    ) -> Result<Self, Malformed> {
        if fields.is_empty() {
            return Err(Malformed("the entry has no fields".into()));
        }
        // The carried fields after `field::DECODED` (the trace context) are
        // not looked at here: whatever they hold, the job is valid.
        let mut slots: [Option<&[u8]>; field::DECODED] = [None; field::DECODED];
        const NAMES: &[&str] = field::ENVELOPE.split_at(field::DECODED).0;
        for (name, value) in fields {
            if let Some(i) = NAMES.iter().position(|n| n.as_bytes() == name.as_slice()) {
                if slots[i].is_some() {
                    return Err(Malformed(format!(
                        "field `{}` appears more than once",
                        NAMES[i]
                    )));
                }
                slots[i] = Some(value);
            } else if name.as_slice() == field::RAW.as_bytes() {
                return Err(Malformed(format!(
                    "a delayed-set member that was not an envelope: {}",
                    preview(value)
                )));
            }
        }
        let text = |i: usize| -> Result<&str, Malformed> {
            let v = slots[i].ok_or_else(|| Malformed(format!("missing field `{}`", NAMES[i])))?;
            std::str::from_utf8(v)
                .map_err(|_| Malformed(format!("field `{}` is not UTF-8", NAMES[i])))
        };
        let id = match (slots[0], origin) {
            (None, Some((priority, entry_id))) => derived_id(priority, entry_id),
            _ => {
                let id = text(0)?;
                if !is_job_id(id) {
                    return Err(Malformed(format!(
                        "field `id` is not a job id (1 to {MAX_JOB_ID_LEN} of A-Z a-z 0-9 . _ : -): {}",
                        preview(id.as_bytes())
                    )));
                }
                id.to_owned()
            }
        };
        let job_type = text(1)?;
        check_job_type(job_type).map_err(Malformed)?;
        let payload = text(2)?;
        if payload.len() > max_payload {
            return Err(Malformed(format!(
                "payload of {} bytes exceeds the limit of {max_payload} bytes",
                payload.len()
            )));
        }
        let attempt: u32 = number(text(3)?, field::ATTEMPT)?;
        let max_retries: u32 = number(text(4)?, field::MAX_RETRIES)?;
        let enqueued_at: u64 = match (slots[5], origin) {
            (None, Some((_, entry_id))) => entry_ms(entry_id),
            _ => number(text(5)?, field::ENQUEUED_AT)?,
        };
        if attempt == 0 {
            return Err(Malformed(
                "field `attempt` is 0; attempts count from 1".into(),
            ));
        }
        if max_retries > MAX_RETRIES_LIMIT {
            return Err(Malformed(format!(
                "field `max_retries` is {max_retries}, over the limit of {MAX_RETRIES_LIMIT}"
            )));
        }
        if attempt > max_retries.saturating_add(1) {
            return Err(Malformed(format!(
                "field `attempt` is {attempt}, past max_retries + 1 = {}",
                max_retries.saturating_add(1)
            )));
        }
        let last_error = match slots[6] {
            Some(_) => Some(text(6)?.to_owned()),
            None => None,
        };
        let retention_ms = match slots[7] {
            Some(_) => Some(number(text(7)?, field::RETENTION_MS)?),
            None => None,
        };
        Ok(Envelope {
            id,
            job_type: job_type.to_owned(),
            payload: payload.to_owned(),
            attempt,
            max_retries,
            enqueued_at,
            last_error,
            retention_ms,
        })
    }

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
    traceparent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracestate: Option<&'a str>,
}

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

/// Longest accepted job id.
pub const MAX_JOB_ID_LEN: usize = 128;

/// The id of a fresh job: the priority and stream entry id it was first
/// queued as, `<priority>-<entry id>` (`normal-1732370000000-0`).
pub fn derived_id(priority: Priority, entry_id: &str) -> String {
    format!("{}-{entry_id}", priority.as_str())
}

/// The priority and entry id a [`derived_id`] names, or `None` for any
/// other id.
pub fn parse_derived_id(id: &str) -> Option<(Priority, &str)> {
    let (name, entry) = id.split_once('-')?;
    let priority = Priority::ALL.into_iter().find(|p| p.as_str() == name)?;
    let (ms, seq) = entry.split_once('-')?;
    let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
    (digits(ms) && digits(seq)).then_some((priority, entry))
}

/// True for a well-formed job id: 1 to [`MAX_JOB_ID_LEN`] bytes of
/// `A-Z a-z 0-9 . _ : -` (UUIDs, derived ids and most producers' own ids).
pub fn is_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_JOB_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Checks an id a producer gives its job: a well-formed job id that does
/// not look like a derived one (those name stream entries).
///
/// # Errors
/// The reason, as text.
pub fn check_given_job_id(id: &str) -> Result<(), String> {
    if !is_job_id(id) {
        return Err(format!(
            "job id {} is not 1 to {MAX_JOB_ID_LEN} of A-Z a-z 0-9 . _ : -",
            preview(id.as_bytes())
        ));
    }
    if parse_derived_id(id).is_some() {
        return Err(format!(
            "job id {id} has the form <priority>-<ms>-<seq> that Ferry gives fresh jobs; choose another"
        ));
    }
    Ok(())
}

/// The milliseconds of a stream entry id (`ms-seq`), 0 when it has none.
pub fn entry_ms(entry_id: &str) -> u64 {
    entry_id
        .split_once('-')
        .and_then(|(ms, _)| ms.parse().ok())
        .unwrap_or(0)
}

/// Checks a job type name: 1 to 128 bytes, no control characters.
///
/// # Errors
/// The reason, as text.
pub fn check_job_type(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_JOB_TYPE_LEN || name.chars().any(char::is_control) {
        Err(format!(
            "job type {} is not 1 to {MAX_JOB_TYPE_LEN} printable characters",
            preview(name.as_bytes())
        ))
    } else {
        Ok(())
    }
}

fn number<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, Malformed> {
    text.parse().map_err(|_| {
        Malformed(format!(
            "field `{name}` is not a whole number in range: {}",
            preview(text.as_bytes())
        ))
    })
}

/// A short, printable rendering of possibly binary data for error messages
/// (never the whole value: payloads may hold personal data).
pub fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let mut out = format!("{:?}", s);
    if bytes.len() > MAX {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            id: uuid::Uuid::now_v7().to_string(),
            job_type: "email".into(),
            payload: r#"{"to":"a@b.c"}"#.into(),
            attempt: 1,
            max_retries: 3,
            enqueued_at: 1_700_000_000_000,
            last_error: None,
            retention_ms: None,
        }
    }

    fn raw(env: &Envelope) -> Vec<(Vec<u8>, Vec<u8>)> {
        env.to_fields()
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.into_bytes()))
            .collect()
    }

    #[test]
    fn round_trips_through_fields() {
        let mut env = sample();
        assert_eq!(Envelope::from_fields(&raw(&env), 1024).unwrap(), env);
        env.last_error = Some("boom".into());
        env.attempt = 2;
        assert_eq!(Envelope::from_fields(&raw(&env), 1024).unwrap(), env);
    }

    #[test]
    fn rejects_bad_entries_with_a_reason() {
        let env = sample();
        let mut fields = raw(&env);
        fields.retain(|(k, _)| k != b"type");
        let err = Envelope::from_fields(&fields, 1024).unwrap_err();
        assert!(err.0.contains("missing field `type`"), "{err}");

        let mut fields = raw(&env);
        fields.push((b"id".to_vec(), b"x".to_vec()));
        assert!(Envelope::from_fields(&fields, 1024)
            .unwrap_err()
            .0
            .contains("more than once"));

        let mut fields = raw(&env);
        fields[3].1 = b"-1".to_vec();
        assert!(Envelope::from_fields(&fields, 1024)
            .unwrap_err()
            .0
            .contains("attempt"));

        let mut fields = raw(&env);
        fields[2].1 = vec![0xff, 0xfe];
        assert!(Envelope::from_fields(&fields, 1024)
            .unwrap_err()
            .0
            .contains("not UTF-8"));

        let err = Envelope::from_fields(&raw(&env), 4).unwrap_err();
        assert!(err.0.contains("exceeds the limit"), "{err}");
        assert!(Envelope::from_fields(&[], 4)
            .unwrap_err()
            .0
            .contains("no fields"));
    }

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

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

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
