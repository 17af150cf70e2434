//! A queue's rate limit for operators: the limit as text (`50/1s`,
//! `1000/1m:100`) for `ferry settings` and `PATCH .../settings`, and its
//! live state (is the queue rate limited now, and when is its next slot)
//! for `ferry stats`, the stats route, the dashboard and `/metrics`.
//! The limit itself is the broker's ([`ferry_broker::RateLimit`],
//! decided inside the claim scripts). The rate limits of job types and
//! concurrency keys (their gates, [`ferry_broker::RateLimits`]) are here
//! too, for `ferry limit --rate`, `ferry limits` and
//! `/v1/queues/{queue}/rate_limits`.

use ferry_broker::rate_limit::RateState;
use ferry_broker::{ConcurrencyScope, RateLimit, RateLimits};
use serde::{Deserialize, Deserializer, Serialize};

use crate::admin::Admin;
use crate::error::{Error, Result};

/// What removes a limit on the command line (`--rate-limit none`).
pub const NO_LIMIT: [&str; 2] = ["none", "off"];

/// A queue's rate limit and hold as they stand, by the server's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RateLimitState {
    /// The limit as `ferry settings` shows it (`50/1s`; `:<burst>` when
    /// the burst is not the default tenth). Null when only a hold is on.
    #[schema(example = "50/1s")]
    pub limit: Option<String>,
    /// True when no job may start now: the queue is held (a handler's
    /// `rate_limited`, e.g. an upstream's 429) or its limit has no slot
    /// free.
    pub limited: bool,
    /// How many jobs may start at once now under the limit (0 while
    /// limited). Null without a limit.
    pub slots_free: Option<u32>,
    /// The hold's end (server ms since the epoch), while one is on.
    pub held_until: Option<u64>,
    /// When the next job may start (server ms since the epoch), while
    /// limited.
    pub next_slot_at: Option<u64>,
    /// How long until the next slot, ms, while limited.
    pub next_slot_in_ms: Option<u64>,
}

impl From<RateState> for RateLimitState {
    fn from(s: RateState) -> Self {
        Self {
            limit: s.limit.map(|l| l.to_string()),
            limited: s.limited,
            slots_free: s.slots_free,
            held_until: s.held_until_ms,
            next_slot_at: s.next_slot_at_ms,
            next_slot_in_ms: s.next_slot_in_ms,
        }
    }
}

/// Parses a limit as the command line and the API take it:
/// `<n>/<period>[:<burst>]` (`50/1s`, `1000/1m:100`, `10/500ms`).
///
/// # Errors
/// [`Error::Input`] naming what is wrong (a zero rate, a bad period or
/// burst), as [`RateLimit::parse`] says it.
pub fn parse(text: &str) -> Result<RateLimit> {
    RateLimit::parse(text.trim()).map_err(|e| Error::Input(e.to_string()))
}

/// `--rate-limit`: a limit, or `none` (`off`) to remove it.
///
/// # Errors
/// [`Error::Usage`] for a limit that does not parse.
pub fn parse_flag(text: &str) -> Result<Option<RateLimit>> {
    parse_option("--rate-limit", text)
}

/// A limit, or `none` (`off`) to remove it, given with the command-line
/// option `option` (`--key-rate-limit`, `--rate`).
///
/// # Errors
/// [`Error::Usage`] naming `option`, for a limit that does not parse.
pub fn parse_option(option: &str, text: &str) -> Result<Option<RateLimit>> {
    if NO_LIMIT.contains(&text.trim()) {
        return Ok(None);
    }
    match parse(text) {
        Ok(l) => Ok(Some(l)),
        Err(e) => Err(Error::Usage(format!("{option}: {e}"))),
    }
}

/// Parses a rate gate's scope as the API names it: `type:<T>`, `key:<K>`,
/// or `key` (every key's limit, where a key has none of its own).
///
/// # Errors
/// [`Error::Input`] for anything else, or for a bad type or key.
pub fn parse_scope(text: &str) -> Result<ConcurrencyScope> {
    let scope = if text == "key" {
        ConcurrencyScope::EachKey
    } else if let Some(t) = text.strip_prefix("type:") {
        ConcurrencyScope::Type(t.to_owned())
    } else if let Some(k) = text.strip_prefix("key:") {
        ConcurrencyScope::Key(k.to_owned())
    } else {
        return Err(Error::Input(format!(
            "scope {:?}: give `type:<T>`, `key:<K>` or `key` (every key)",
            preview(text)
        )));
    };
    check_scope(&scope).map_err(|e| Error::Input(format!("scope: {e}")))?;
    Ok(scope)
}

/// Checks a scope's type or key before anything is written.
///
/// # Errors
/// The reason, as text (a type or key that is empty, too long, or has a
/// control character).
pub fn check_scope(scope: &ConcurrencyScope) -> std::result::Result<(), String> {
    use ferry_broker::envelope::{check_concurrency_key, check_job_type};
    match scope {
        ConcurrencyScope::Type(t) => check_job_type(t),
        ConcurrencyScope::Key(k) => check_concurrency_key(k),
        _ => Ok(()),
    }
}

/// At most 64 characters of `text`, for an error message.
fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(64).collect();
    if p.len() < text.len() {
        p.push('…');
    }
    p
}

/// A rate limit to set with `PUT /v1/queues/{queue}/rate_limits/{scope}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitChange {
    /// The limit, `<n>/<period>[:<burst>]` (`50/1s`, `1000/1m:100`), or
    /// null to remove it.
    #[schema(example = "50/1s")]
    pub rate_limit: Option<String>,
}

impl RateLimitChange {
    /// The limit asked for (`None`: remove it).
    ///
    /// # Errors
    /// [`Error::Input`] naming `rate_limit`, for one that does not parse.
    pub fn limit(&self) -> Result<Option<RateLimit>> {
        self.rate_limit.as_deref().map(parse).transpose()
    }
}

/// The `rate_limit` field of a settings change: present as a string
/// (parsed), or null (`Some(None)`, remove the limit).
pub(crate) fn field<'de, D>(d: D) -> std::result::Result<Option<Option<RateLimit>>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(Some(None)),
        Some(text) => parse(&text)
            .map(|l| Some(Some(l)))
            .map_err(serde::de::Error::custom),
    }
}

impl Admin {
    /// The rate limit of `queue`, if any.
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn rate_limit(&self, queue: &str) -> Result<Option<RateLimit>> {
        let q = self.queue(queue)?;
        q.rate_limit(&mut self.conn())
            .await
            .map_err(|e| self.fail(e))
    }

    /// The live state of `queue`'s rate limit and hold (one round trip);
    /// `None` when it has neither a limit nor a hold in force.
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn rate_limit_state(&self, queue: &str) -> Result<Option<RateLimitState>> {
        let q = self.queue(queue)?;
        let state = q
            .rate_state(&mut self.conn())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(state.map(RateLimitState::from))
    }

    /// The rate limits of `queue`: its own, every key's, and each type's
    /// and key's gate (limit, hold, next slot, jobs parked there).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn rate_limits(&self, queue: &str) -> Result<RateLimits> {
        let q = self.queue(queue)?;
        q.rate_limits(&mut self.conn())
            .await
            .map_err(|e| self.fail(e))
    }

    /// Sets (or with `None` removes) the rate limit of `scope` (a type,
    /// a key, or every key); returns the rate limits after.
    ///
    /// # Errors
    /// [`Error::Input`] for a bad type or key; a bad queue name; Redis
    /// errors.
    pub async fn set_rate_limit_of(
        &self,
        queue: &str,
        scope: &ConcurrencyScope,
        limit: Option<RateLimit>,
    ) -> Result<RateLimits> {
        check_scope(scope).map_err(Error::Input)?;
        let q = self.queue(queue)?;
        q.set_rate_limit_of(&mut self.conn(), scope, limit)
            .await
            .map_err(|e| self.fail(e))?;
        self.rate_limits(queue).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_take_a_limit_or_none() {
        assert_eq!(parse_flag("none").unwrap(), None);
        assert_eq!(parse_flag("off").unwrap(), None);
        let l = parse_flag("50/1s").unwrap().unwrap();
        assert_eq!((l.n, l.period_ms, l.burst), (50, 1000, 5));
        for (bad, says) in [
            ("0/1s", "0 starts per period"),
            ("5/0s", "the period must be 1 ms or more"),
            ("5/1s:9", "the burst must be 1 to 5, got 9"),
            ("-5/1s", "use <n>/<period>[:<burst>]"),
            ("5/1y", "use <n>/<period>[:<burst>]"),
        ] {
            let e = parse_flag(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Usage, "{bad}");
            let text = e.to_string();
            assert!(
                text.starts_with("--rate-limit: invalid setting rate_limit: ")
                    && text.contains(says),
                "{bad}: {text}"
            );
        }
    }

    #[test]
    fn scopes_name_a_type_a_key_or_every_key() {
        use ConcurrencyScope as S;
        assert_eq!(parse_scope("type:echo").unwrap(), S::Type("echo".into()));
        assert_eq!(parse_scope("key:acme").unwrap(), S::Key("acme".into()));
        assert_eq!(parse_scope("key").unwrap(), S::EachKey);
        for bad in ["queue", "type", "x:y", "type:", "key:a\nb"] {
            let e = parse_scope(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Failed, "{bad}");
            assert!(e.to_string().starts_with("scope"), "{bad}: {e}");
        }
        let e = parse_option("--rate", "50/1y").unwrap_err().to_string();
        assert!(e.starts_with("--rate: invalid setting rate_limit: "), "{e}");
    }

    #[test]
    fn the_settings_field_is_a_string_or_null() {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "field")]
            rate_limit: Option<Option<RateLimit>>,
        }
        let read = |s: &str| serde_json::from_str::<Body>(s).map(|b| b.rate_limit);
        assert_eq!(read("{}").unwrap(), None);
        assert_eq!(read(r#"{"rate_limit": null}"#).unwrap(), Some(None));
        assert_eq!(
            read(r#"{"rate_limit": "1000/1m:100"}"#).unwrap(),
            Some(Some(RateLimit::parse("1000/1m:100").unwrap()))
        );
        let e = read(r#"{"rate_limit": "0/1s"}"#).unwrap_err().to_string();
        assert!(e.contains("invalid setting rate_limit"), "{e}");
        assert!(read(r#"{"rate_limit": 50}"#).is_err());
    }
}
