//! The enqueue route's `unique` object: one job per uniqueness key while
//! the key is held ([`crate::unique`]), with the choices of
//! `ferry enqueue --unique`.

use ferry_broker::Lifetime;
use serde::Deserialize;
use utoipa::ToSchema;

use super::jobs::whole;
use crate::serve::problem::ApiError;
use crate::unique::UniqueSpec;

/// The longest throttle or debounce: 10 years, in ms.
const MAX_WINDOW_MS: u64 = 10 * 365 * 24 * 3_600_000;

/// How long a key is held without a throttle or debounce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UniqueUntil {
    /// While the job waits to start (scheduled or queued): once it runs,
    /// a duplicate is a new job.
    Started,
    /// Until the job ends in any way: succeeded, dead, cancelled or
    /// removed (the default).
    Finished,
}

/// Enqueue the job only if no job holding its uniqueness key exists. A
/// duplicate is not an error (200, with `duplicate` naming the job that
/// holds the key) unless `error_on_duplicate` asks for a 409. At most one
/// of `until`, `throttle_ms` and `debounce_ms`. A unique job gets a UUID
/// v7 id: no `id` with it, and no `delay_ms` with a debounce.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UniqueRequest {
    /// The key (1 to 512 bytes, no control characters). Left out, it is
    /// derived from the job's type and payload as the SDK's
    /// `Unique::by_args` derives it (`<type>:<UUID v5 of the canonical
    /// JSON>`), so equal arguments are one key whatever their order.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 512)]
    pub key: Option<String>,
    /// How long the key is held: `finished` (the default) or `started`.
    #[serde(default)]
    pub until: Option<UniqueUntil>,
    /// Throttle: the key is held this many ms from the enqueue, whatever
    /// the job does; duplicates within it are dropped.
    #[serde(default, deserialize_with = "whole::opt_u64")]
    #[schema(minimum = 1, maximum = 315_360_000_000_u64)]
    pub throttle_ms: Option<u64>,
    /// Debounce: the job waits this many ms; a duplicate while it waits
    /// replaces its payload and restarts the wait.
    #[serde(default, deserialize_with = "whole::opt_u64")]
    #[schema(minimum = 1, maximum = 315_360_000_000_u64)]
    pub debounce_ms: Option<u64>,
    /// On a duplicate, answer 409 `unique_key_held` (nothing written)
    /// instead of 200 with `duplicate`.
    #[serde(default)]
    pub error_on_duplicate: bool,
}

impl UniqueRequest {
    /// The uniqueness asked for; `at` prefixes the field names in errors.
    ///
    /// # Errors
    /// 400 for more than one lifetime, or a window of 0 or past 10 years.
    pub fn spec(&self, at: &str) -> Result<UniqueSpec, ApiError> {
        let window = |name: &str, ms: u64| {
            if ms == 0 || ms > MAX_WINDOW_MS {
                Err(ApiError::bad_request(format!(
                    "field `{at}unique.{name}`: 1 to {MAX_WINDOW_MS} (10 years)"
                )))
            } else {
                Ok(std::time::Duration::from_millis(ms))
            }
        };
        let lifetime = match (self.until, self.throttle_ms, self.debounce_ms) {
            (None, None, None) | (Some(UniqueUntil::Finished), None, None) => {
                Lifetime::UntilFinished
            }
            (Some(UniqueUntil::Started), None, None) => Lifetime::UntilStarted,
            (None, Some(ms), None) => Lifetime::Throttle(window("throttle_ms", ms)?),
            (None, None, Some(ms)) => Lifetime::Debounce(window("debounce_ms", ms)?),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "field `{at}unique`: give at most one of until, throttle_ms and debounce_ms"
                )))
            }
        };
        Ok(UniqueSpec {
            key: self.key.clone(),
            lifetime,
            error_on_duplicate: self.error_on_duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: &str) -> Result<UniqueSpec, ApiError> {
        serde_json::from_str::<UniqueRequest>(body)
            .unwrap()
            .spec("")
    }

    #[test]
    fn one_lifetime_at_most() {
        let s = spec("{}").unwrap();
        assert_eq!((s.key, s.lifetime), (None, Lifetime::UntilFinished));
        let s = spec(r#"{"key": "k", "until": "started"}"#).unwrap();
        assert_eq!(
            (s.key.as_deref(), s.lifetime),
            (Some("k"), Lifetime::UntilStarted)
        );
        let s = spec(r#"{"throttle_ms": 60000, "error_on_duplicate": true}"#).unwrap();
        assert_eq!(
            s.lifetime,
            Lifetime::Throttle(std::time::Duration::from_secs(60))
        );
        assert!(s.error_on_duplicate);
        let e = spec(r#"{"until": "started", "debounce_ms": 5}"#).unwrap_err();
        assert!(e.message.contains("at most one of"), "{}", e.message);
        let e = spec(r#"{"debounce_ms": 0}"#).unwrap_err();
        assert!(e.message.contains("unique.debounce_ms"), "{}", e.message);
    }
}
