//! Ferry's histogram buckets (as `lua/shared/timing.lua` counts them), and
//! the all-time totals of completed jobs kept in them ([`Cumulative`]).

use std::collections::BTreeMap;

use crate::priority::Priority;

/// The largest histogram bucket (`lua/shared/timing.lua`'s TIMING_MAX_BUCKET).
pub(super) const MAX_BUCKET: usize = 120;

/// The histogram bucket of a time of `ms` (as `lua/shared/timing.lua`):
/// floor(4 log2(ms + 1)), at most the largest bucket.
pub fn timing_bucket(ms: u64) -> usize {
    if ms == 0 {
        return 0;
    }
    let k = (4.0 * ((ms as f64) + 1.0).log2()).floor() as usize;
    k.min(MAX_BUCKET)
}

/// The jobs of one priority completed since the queue began
/// (`all:<priority>:<metric>` in `P:{Q}:timing`; never reset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cumulative {
    /// Jobs completed.
    pub completed: u64,
    /// Their wait times: entry (enqueue, or coming due) to start.
    pub wait: Buckets,
    /// Their run times.
    pub run: Buckets,
}

/// A histogram of times in Ferry's buckets: bucket k holds the times t
/// (whole ms) with floor(4 log2(t + 1)) = k, so each is about 19% wide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buckets {
    /// Sum of the times, ms.
    pub sum_ms: u64,
    /// Count per bucket, from bucket 0 (only the buckets up to the last
    /// used one).
    pub counts: Vec<u64>,
}

impl Buckets {
    /// The exclusive upper edge of bucket `k`, ms: every time in it is
    /// below this.
    pub fn upper_ms(k: usize) -> f64 {
        2f64.powf((k + 1) as f64 / 4.0) - 1.0
    }

    /// How many times are surely at most `le_ms`: the buckets whose upper
    /// edge is at most `le_ms` (a bucket that straddles it is left out).
    pub fn count_at_most(&self, le_ms: f64) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .filter(|(k, _)| Self::upper_ms(*k) <= le_ms)
            .map(|(_, c)| c)
            .sum()
    }

    /// How many times in all.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn add(&mut self, k: usize, n: u64) {
        if k > MAX_BUCKET {
            return;
        }
        if self.counts.len() <= k {
            self.counts.resize(k + 1, 0);
        }
        self.counts[k] += n;
    }
}

impl Cumulative {
    /// Reads the running totals of `priority` from the fields of
    /// `P:{Q}:timing`.
    pub fn from_fields(fields: &BTreeMap<String, u64>, priority: Priority) -> Self {
        let scope = format!("all:{}:", priority.as_str());
        let mut out = Cumulative::default();
        for (name, v) in fields.range(scope.clone()..) {
            let Some(metric) = name.strip_prefix(&scope) else {
                break;
            };
            match metric {
                "n" => out.completed = *v,
                "ws" => out.wait.sum_ms = *v,
                "rs" => out.run.sum_ms = *v,
                _ => {
                    let (hist, k) = match metric.split_at_checked(1) {
                        Some(("w", k)) => (&mut out.wait, k),
                        Some(("r", k)) => (&mut out.run, k),
                        _ => continue,
                    };
                    if let Ok(k) = k.parse::<usize>() {
                        hist.add(k, *v);
                    }
                }
            }
        }
        out
    }
}
