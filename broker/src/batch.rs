//! Big batches: the chunks an enqueue is cut into, what an error in the
//! middle of a batch says was written, and idempotency keys that make a
//! retried batch write only what is missing.

use std::ops::Range;
use std::time::Duration;

use crate::error::{ConfigError, Error};

/// Most jobs one enqueue transaction carries.
pub const CHUNK_JOBS: usize = 1000;

/// About the most bytes (types and payloads) one enqueue transaction
/// carries; a single bigger job goes alone.
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// How long the record of a keyed batch's written chunks lasts after the
/// batch's last write: a retry within this time writes no duplicate.
pub const BATCH_KEY_TTL: Duration = Duration::from_secs(24 * 3600);

/// Longest idempotency key.
const MAX_BATCH_KEY_LEN: usize = 128;

/// UUID v5 namespace of the job ids of keyed batches.
const KEYED_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6a0c_3b7e_51f4_4d0e_9a53_2f6b_8c1d_e7a4);

/// An idempotency key for a batch: 1 to 128 characters from
/// `[A-Za-z0-9._:-]` (a request id, a UUID, `import:2026-11-23`), readable
/// in the key `P:{Q}:batch:<key>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BatchKey(String);

impl BatchKey {
    /// Checks `key`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSetting`] naming `idempotency_key`.
    pub fn new(key: impl Into<String>) -> Result<Self, ConfigError> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.len() <= MAX_BATCH_KEY_LEN
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if ok {
            Ok(Self(key))
        } else {
            Err(ConfigError::InvalidSetting {
                name: "idempotency_key",
                reason: format!(
                    "{key:?}: use 1 to {MAX_BATCH_KEY_LEN} characters from [A-Za-z0-9._:-]"
                ),
            })
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the job at `index` of this batch in `queue`: the same on
    /// every retry.
    pub(crate) fn job_id(&self, queue: &str, index: usize) -> String {
        let name = format!("{queue}\n{}\n{index}", self.0);
        uuid::Uuid::new_v5(&KEYED_ID_NAMESPACE, name.as_bytes()).to_string()
    }
}

impl std::fmt::Display for BatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is known of a batch whose enqueue failed part way.
#[derive(Debug)]
pub struct PartialBatch {
    /// Ids of the jobs known to be written: the first ones of the batch, in order.
    pub written: Vec<String>,
    /// Ids of the jobs of the chunk whose reply was lost (a timeout, a
    /// dropped connection): each may or may not be written.
    pub unknown: Vec<String>,
    /// How many jobs after those were not sent.
    pub not_sent: usize,
    /// Why the chunk failed.
    pub source: Error,
}

impl PartialBatch {
    /// The error for a batch of `ids` whose chunk `failed` failed with `e`.
    /// A failure of the first chunk that Redis refused (nothing written), or
    /// any failure of a batch of one chunk, stays `e` itself.
    pub(crate) fn of(e: Error, ids: &[String], failed: Range<usize>, single: bool) -> Error {
        let unknown = fate_unknown(&e);
        if single || (failed.start == 0 && !unknown) {
            return e;
        }
        let written = ids[..failed.start].to_vec();
        let (unknown, not_sent) = if unknown {
            (ids[failed.clone()].to_vec(), ids.len() - failed.end)
        } else {
            (Vec::new(), ids.len() - failed.start)
        };
        Error::PartialBatch(Box::new(PartialBatch {
            written,
            unknown,
            not_sent,
            source: e,
        }))
    }
}

impl std::fmt::Display for PartialBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the batch stopped part way: {} jobs written, {} may be written (the reply was lost), {} not sent ({})",
            self.written.len(),
            self.unknown.len(),
            self.not_sent,
            self.source
        )
    }
}

/// True when the request may have run though it failed: its reply was lost.
fn fate_unknown(e: &Error) -> bool {
    match e {
        Error::Redis(r) => {
            !r.is_connection_refusal()
                && (r.is_timeout() || r.is_connection_dropped() || r.is_io_error())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_ids_are_stable() {
        for good in [
            "a",
            "import:2026-11-23",
            "0190c1f2-aaaa-7bbb-8ccc-123456789abc",
        ] {
            assert!(BatchKey::new(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a{b}", "é", &"x".repeat(129)] {
            assert!(BatchKey::new(bad).is_err(), "{bad}");
        }
        let k = BatchKey::new("k").unwrap();
        assert_eq!(k.job_id("q", 3), k.job_id("q", 3));
        assert_ne!(k.job_id("q", 3), k.job_id("q", 4));
        assert_ne!(k.job_id("q", 3), k.job_id("r", 3));
    }

    #[test]
    fn a_partial_batch_says_what_was_written() {
        let ids: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        let refused = || Error::Protocol("refused".into());
        assert!(matches!(
            PartialBatch::of(refused(), &ids, 0..2, false),
            Error::Protocol(_)
        ));
        let Error::PartialBatch(p) = PartialBatch::of(refused(), &ids, 2..4, false) else {
            panic!("partial")
        };
        assert_eq!((p.written.len(), p.unknown.len(), p.not_sent), (2, 0, 3));
        let timeout = Error::Redis(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        )));
        let Error::PartialBatch(p) = PartialBatch::of(timeout, &ids, 2..4, false) else {
            panic!("partial")
        };
        assert_eq!((p.written.len(), p.unknown.len(), p.not_sent), (2, 2, 1));
    }
}
