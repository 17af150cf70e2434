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
//! | `concurrency_key` | only when the producer gave one: the key whose concurrency limit the job shares |
//! | `batch` | only for a job enqueued in a batch: the batch's id (see `batches`) |
//! | `flow` | only for a job enqueued in a flow: the id of the flow's root (see `flows`) |
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
//!
//! The envelope's parts: [`field`] (the field names), `ids.rs` (job ids and
//! stream entry ids), `trace.rs` ([`TraceContext`]) and `delayed.rs` (the
//! delayed-set member).

use crate::priority::Priority;

mod delayed;
pub mod field;
mod ids;
mod trace;

pub(crate) use ids::is_entry_id;
pub use ids::{
    check_given_job_id, derived_id, entry_ms, is_job_id, parse_derived_id, MAX_JOB_ID_LEN,
};
pub use trace::{TraceContext, MAX_TRACEPARENT_LEN, MAX_TRACESTATE_LEN};

/// Largest accepted `max_retries`.
pub const MAX_RETRIES_LIMIT: u32 = 10_000;
/// Longest accepted job type name.
pub const MAX_JOB_TYPE_LEN: usize = 128;

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
    /// The job's concurrency key, when its producer gave one (see
    /// [`check_concurrency_key`]).
    pub concurrency_key: Option<String>,
    /// The batch it belongs to, when it was enqueued in one (see
    /// [`batches`](crate::batches)).
    pub batch: Option<String>,
    /// The root of the flow it belongs to, when it was enqueued in one
    /// (see [`flows`](crate::flows)).
    pub flow: Option<String>,
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
        if let Some(k) = &self.concurrency_key {
            f.push((field::CONCURRENCY_KEY, k.clone()));
        }
        if let Some(b) = &self.batch {
            f.push((field::BATCH, b.clone()));
        }
        if let Some(r) = &self.flow {
            f.push((field::FLOW, r.clone()));
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
        let concurrency_key = match slots[8] {
            Some(_) => {
                let k = text(8)?;
                check_concurrency_key(k).map_err(Malformed)?;
                Some(k.to_owned())
            }
            None => None,
        };
        let an_id = |i: usize, what: &str| -> Result<Option<String>, Malformed> {
            match slots[i] {
                Some(_) => {
                    let v = text(i)?;
                    if !is_job_id(v) {
                        return Err(Malformed(format!(
                            "field `{}` is not {what} (1 to {MAX_JOB_ID_LEN} of A-Z a-z 0-9 . _ : -): {}",
                            NAMES[i],
                            preview(v.as_bytes())
                        )));
                    }
                    Ok(Some(v.to_owned()))
                }
                None => Ok(None),
            }
        };
        let batch = an_id(9, "a batch id")?;
        let flow = an_id(10, "a job id")?;
        Ok(Envelope {
            id,
            job_type: job_type.to_owned(),
            payload: payload.to_owned(),
            attempt,
            max_retries,
            enqueued_at,
            last_error,
            retention_ms,
            concurrency_key,
            batch,
            flow,
        })
    }
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

/// Longest accepted concurrency key.
pub const MAX_CONCURRENCY_KEY_LEN: usize = 256;

/// Checks a concurrency key: 1 to 256 bytes, no control characters.
///
/// # Errors
/// The reason, as text.
pub fn check_concurrency_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_CONCURRENCY_KEY_LEN || key.chars().any(char::is_control) {
        Err(format!(
            "concurrency key {} is not 1 to {MAX_CONCURRENCY_KEY_LEN} bytes of printable characters",
            preview(key.as_bytes())
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

    /// A W3C `traceparent`, for the trace context's tests.
    pub(super) const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    pub(super) fn sample() -> Envelope {
        Envelope {
            id: uuid::Uuid::now_v7().to_string(),
            job_type: "email".into(),
            payload: r#"{"to":"a@b.c"}"#.into(),
            attempt: 1,
            max_retries: 3,
            enqueued_at: 1_700_000_000_000,
            last_error: None,
            retention_ms: None,
            concurrency_key: None,
            batch: None,
            flow: None,
        }
    }

    pub(super) fn raw(env: &Envelope) -> Vec<(Vec<u8>, Vec<u8>)> {
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
}
