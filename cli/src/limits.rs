//! Concurrency limits for operators: the queue-wide, every-key, type and
//! key limits ([`ferry_broker::Concurrency`]) and priority weights, for
//! `ferry settings`, `ferry limits`, `ferry limit` and the HTTP API.
//! `ferry limits` shows the rate limits of the queue, its types and keys
//! alongside ([`LimitsReport`]).

use ferry_broker::{Concurrency, ConcurrencyScope, RateLimits};
use serde::Serialize;

use crate::admin::Admin;
use crate::error::{Error, Result};

/// Parses `--weights`: `C,H,N,L` (critical, high, normal, low), or
/// `strict` (`none`) for strict priority.
///
/// # Errors
/// [`Error::Usage`] for anything else, or all four 0.
pub fn parse_weights(text: &str) -> Result<Option<[u32; 4]>> {
    let t = text.trim();
    if matches!(t, "strict" | "none") {
        return Ok(None);
    }
    let parts: Vec<&str> = t.split(',').map(str::trim).collect();
    let bad = || {
        Error::Usage(format!(
            "--weights {t:?}: give C,H,N,L (four whole numbers) or `strict`"
        ))
    };
    if parts.len() != 4 {
        return Err(bad());
    }
    let mut w = [0u32; 4];
    for (slot, p) in w.iter_mut().zip(&parts) {
        *slot = p.parse().map_err(|_| bad())?;
    }
    check_weights(Some(w)).map_err(|e| Error::Usage(format!("--weights: {e}")))?;
    Ok(Some(w))
}

/// Checks weights before they are written.
///
/// # Errors
/// [`Error::Input`] for all four 0.
pub fn check_weights(w: Option<[u32; 4]>) -> Result<()> {
    if w.is_some_and(|w| w.iter().all(|n| *n == 0)) {
        return Err(Error::Input(
            "weights all 0 would serve no priority first; use null (strict) for strict priority"
                .into(),
        ));
    }
    Ok(())
}

/// Checks a concurrency limit named `name`.
///
/// # Errors
/// [`Error::Input`] for 0.
pub fn check_limit(name: &str, limit: Option<u32>) -> Result<()> {
    if limit == Some(0) {
        return Err(Error::Input(format!(
            "{name} 0 would run nothing; pause the queue, or use null (none) for no limit"
        )));
    }
    Ok(())
}

/// Parses a scope as the API names it: `type:<T>` or `key:<K>`.
///
/// # Errors
/// [`Error::Input`] for anything else.
pub fn parse_scope(text: &str) -> Result<ConcurrencyScope> {
    if let Some(t) = text.strip_prefix("type:") {
        return Ok(ConcurrencyScope::Type(t.to_owned()));
    }
    if let Some(k) = text.strip_prefix("key:") {
        return Ok(ConcurrencyScope::Key(k.to_owned()));
    }
    Err(Error::Input(format!(
        "scope {text:?}: give `type:<T>` or `key:<K>`"
    )))
}

/// What `ferry limits` prints: the concurrency limits and gates (their
/// fields at the top level, as before), and the rate limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitsReport {
    /// The concurrency limits and their gates, busiest first.
    #[serde(flatten)]
    pub concurrency: Concurrency,
    /// The rate limits: the queue's, every key's, and each type's and
    /// key's gate (limit, hold, next slot, jobs waiting).
    pub rate_limits: RateLimits,
}

impl Admin {
    /// The concurrency and rate limits of `queue`, read together.
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn limits(&self, queue: &str) -> Result<LimitsReport> {
        let (concurrency, rate_limits) =
            futures::try_join!(self.concurrency(queue), self.rate_limits(queue))?;
        Ok(LimitsReport {
            concurrency,
            rate_limits,
        })
    }

    /// The concurrency limits of `queue` and its gates, busiest first.
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn concurrency(&self, queue: &str) -> Result<Concurrency> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        q.concurrency(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Sets (or with `None` removes) the limit of `scope`; returns the
    /// limits after.
    ///
    /// # Errors
    /// [`Error::Input`] for a limit of 0; a bad type, key or queue name;
    /// Redis errors.
    pub async fn set_limit(
        &self,
        queue: &str,
        scope: &ConcurrencyScope,
        limit: Option<u32>,
    ) -> Result<Concurrency> {
        check_limit("concurrency", limit)?;
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        q.set_concurrency(&mut conn, scope, limit)
            .await
            .map_err(|e| self.fail(e))?;
        self.concurrency(queue).await
    }

    /// The priority weights of `queue` (`None`: strict priority).
    ///
    /// # Errors
    /// A bad queue name; Redis errors.
    pub async fn weights(&self, queue: &str) -> Result<Option<[u32; 4]>> {
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        q.weights(&mut conn).await.map_err(|e| self.fail(e))
    }

    /// Sets (or with `None` removes) the priority weights of `queue`.
    ///
    /// # Errors
    /// [`Error::Input`] for all 0; a bad queue name; Redis errors.
    pub async fn set_weights(&self, queue: &str, w: Option<[u32; 4]>) -> Result<()> {
        check_weights(w)?;
        let q = self.queue(queue)?;
        let mut conn = self.conn();
        q.set_weights(&mut conn, w).await.map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_scopes_parse() {
        assert_eq!(parse_weights("8,4,2,1").unwrap(), Some([8, 4, 2, 1]));
        assert_eq!(parse_weights("strict").unwrap(), None);
        assert!(parse_weights("0,0,0,0").is_err());
        assert!(parse_weights("1,2").is_err());
        assert!(matches!(parse_scope("key:a").unwrap(), ConcurrencyScope::Key(k) if k == "a"));
        assert!(parse_scope("x").is_err());
    }
}
