//! A queue's recent history: the last [`WINDOW_MINUTES`] minutes of
//! per-minute counts, wait and run time percentiles and failure rate
//! ([`Recent`]), read from `P:{Q}:timing`.

use std::collections::BTreeMap;

use super::buckets::MAX_BUCKET;
use crate::priority::Priority;

/// How many minutes [`Recent`] covers (the current one included).
pub const WINDOW_MINUTES: u64 = 15;

/// One minute's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Minute {
    /// Its start, ms since the epoch (server clock).
    pub at: u64,
    /// Jobs completed (succeeded).
    pub completed: u64,
    /// Jobs that failed for good (dead-lettered).
    pub failed: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
    /// Jobs cancelled.
    pub cancelled: u64,
}

/// Times of the jobs completed in the window, from a histogram of buckets
/// about 19% wide (so a percentile is within about 10% of the truth).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// How many jobs.
    pub count: u64,
    /// Mean, ms.
    pub avg_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// A queue's recent history (from `P:{Q}:timing`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recent {
    /// Per minute, oldest first, the current (partial) minute last.
    pub minutes: Vec<Minute>,
    /// Wait time: from the job's entry (its enqueue, or its retry or
    /// schedule coming due) to its start.
    pub wait: Summary,
    /// Run time of the handler.
    pub run: Summary,
    /// Failed for good / (completed + failed for good), over the window.
    pub failure_rate: f64,
}

impl Recent {
    /// Completed jobs per second over the last `minutes` full minutes
    /// (the current one not counted).
    pub fn throughput(&self, minutes: usize) -> f64 {
        let full: Vec<&Minute> = self.minutes.iter().rev().skip(1).take(minutes).collect();
        if full.is_empty() {
            return 0.0;
        }
        full.iter().map(|m| m.completed).sum::<u64>() as f64 / (full.len() as f64 * 60.0)
    }

    /// Reads the queue's fields of `P:{Q}:timing` for the window ending at
    /// server time `now` (ms).
    pub fn from_fields(fields: &BTreeMap<String, u64>, now: u64) -> Self {
        Self::from_scope(fields, now, "")
    }

    /// Reads the fields of `P:{Q}:timing` kept for the jobs of `priority`
    /// (`<minute>:<priority>:<metric>`) for the window ending at server
    /// time `now` (ms). Cancellations are counted for the queue only, so
    /// their minutes' `cancelled` is 0 here.
    pub fn from_fields_at(fields: &BTreeMap<String, u64>, now: u64, priority: Priority) -> Self {
        Self::from_scope(fields, now, &format!("{}:", priority.as_str()))
    }

    fn from_scope(fields: &BTreeMap<String, u64>, now: u64, scope: &str) -> Self {
        let current = now / 60_000;
        let first = current.saturating_sub(WINDOW_MINUTES - 1);
        let mut minutes = Vec::new();
        let (mut wait, mut run) = (Histogram::default(), Histogram::default());
        for m in first..=current {
            let get = |metric: &str| {
                fields
                    .get(&format!("{m}:{scope}{metric}"))
                    .copied()
                    .unwrap_or(0)
            };
            minutes.push(Minute {
                at: m * 60_000,
                completed: get("n"),
                failed: get("f"),
                retried: get("t"),
                cancelled: get("c"),
            });
            wait.sum += get("ws");
            run.sum += get("rs");
            for k in 0..=MAX_BUCKET {
                wait.add(k, get(&format!("w{k}")));
                run.add(k, get(&format!("r{k}")));
            }
        }
        let completed: u64 = minutes.iter().map(|m| m.completed).sum();
        let failed: u64 = minutes.iter().map(|m| m.failed).sum();
        let failure_rate = if completed + failed == 0 {
            0.0
        } else {
            failed as f64 / (completed + failed) as f64
        };
        Self {
            minutes,
            wait: wait.summary(),
            run: run.summary(),
            failure_rate,
        }
    }
}

/// Bucket counts of one metric over the window.
struct Histogram {
    counts: Vec<u64>,
    sum: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; MAX_BUCKET + 1],
            sum: 0,
        }
    }
}

impl Histogram {
    fn add(&mut self, k: usize, n: u64) {
        if let Some(c) = self.counts.get_mut(k) {
            *c += n;
        }
    }

    /// The middle of bucket k (times t with floor(4 log2(t + 1)) = k), ms.
    fn middle(k: usize) -> f64 {
        let lo = 2f64.powf(k as f64 / 4.0) - 1.0;
        let hi = 2f64.powf((k + 1) as f64 / 4.0) - 1.0;
        (lo + hi) / 2.0
    }

    fn quantile(&self, total: u64, q: f64) -> f64 {
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (k, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::middle(k);
            }
        }
        0.0
    }

    fn summary(&self) -> Summary {
        let count: u64 = self.counts.iter().sum();
        if count == 0 {
            return Summary::default();
        }
        Summary {
            count,
            avg_ms: self.sum as f64 / count as f64,
            p50_ms: self.quantile(count, 0.50),
            p95_ms: self.quantile(count, 0.95),
            p99_ms: self.quantile(count, 0.99),
        }
    }
}
