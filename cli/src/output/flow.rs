//! The text of flow control: a queue's rate limit and its live state (in
//! `ferry stats`), its concurrency limits, and the rate limits of its
//! types and keys (`ferry limits`).

use std::fmt::Write as _;

use ferry_broker::{Concurrency, RateGate, RateLimits};
use ferry_queue_cli::limits::LimitsReport;
use ferry_queue_cli::RateLimitState;

use super::{time, Human};

/// One line: the queue-wide limit and the gates with waiting jobs
/// (`concurrency: queue 10 (4 running); 3 keys waiting (busiest
/// tenant-1: 2 running, 98 waiting)`).
pub fn concurrency_line(c: &Concurrency, running: u64) -> String {
    let mut parts = Vec::new();
    if let Some(q) = c.queue {
        parts.push(format!("queue {q} ({running} running)"));
    }
    if let Some(k) = c.each_key {
        parts.push(format!("each key {k}"));
    }
    let waiting: Vec<_> = c.gates.iter().filter(|g| g.waiting > 0).collect();
    if waiting.is_empty() {
        parts.push("none waiting".into());
    } else {
        let g = waiting[0];
        let name = g.gate.split_once(':').map_or(g.gate.as_str(), |(_, n)| n);
        parts.push(format!(
            "{} gates waiting (busiest {name}: {} running, {} waiting)",
            waiting.len(),
            g.running,
            g.waiting
        ));
    }
    format!("concurrency: {}", parts.join("; "))
}

impl Human for Concurrency {
    fn human(&self) -> String {
        let opt = |n: Option<u32>| n.map_or("none".into(), |n| n.to_string());
        let mut out = format!(
            "queue: {}\neach key: {}\n",
            opt(self.queue),
            opt(self.each_key)
        );
        for (field, n) in &self.limits {
            let _ = writeln!(out, "limit {field}: {n}");
        }
        let rows: Vec<Vec<String>> = self
            .gates
            .iter()
            .map(|g| {
                vec![
                    g.gate.clone(),
                    opt(g.limit),
                    g.running.to_string(),
                    g.waiting.to_string(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&super::table(
                &["GATE", "LIMIT", "RUNNING", "WAITING"],
                &rows,
            ));
        }
        out
    }
}

/// One line: every key's rate limit and the gates with parked jobs
/// (`rate gates: each key 10/1s; 1 gates limited now; 2 gates waiting
/// (busiest type:echo: 12 waiting, next slot in 4.2 s)`).
pub fn rate_gates_line(r: &RateLimits) -> String {
    let mut parts = Vec::new();
    if let Some(k) = r.each_key {
        parts.push(format!("each key {k}"));
    }
    let limited = r
        .gates
        .iter()
        .filter(|g| g.state.is_some_and(|s| s.limited))
        .count();
    if limited > 0 {
        parts.push(format!("{limited} gates limited now"));
    }
    let waiting: Vec<&RateGate> = r.gates.iter().filter(|g| g.waiting > 0).collect();
    match waiting.iter().max_by_key(|g| g.waiting) {
        None => parts.push("none waiting".into()),
        Some(g) => {
            let next = g
                .state
                .and_then(|s| s.next_slot_in_ms)
                .map(|ms| format!(", next slot in {}", wait(ms)))
                .unwrap_or_default();
            parts.push(format!(
                "{} gates waiting (busiest {}: {} waiting{next})",
                waiting.len(),
                g.gate,
                g.waiting
            ));
        }
    }
    format!("rate gates: {}", parts.join("; "))
}

impl Human for RateLimits {
    fn human(&self) -> String {
        let queue = match self.queue {
            None => "none".to_owned(),
            Some(s) => {
                let line = rate_line(&RateLimitState::from(s));
                line.strip_prefix("rate limit: ")
                    .unwrap_or(&line)
                    .to_owned()
            }
        };
        let each_key = self.each_key.map_or("none".into(), |l| l.to_string());
        let mut out = format!("queue rate limit: {queue}\neach key rate limit: {each_key}\n");
        let rows: Vec<Vec<String>> = self
            .gates
            .iter()
            .map(|g| {
                let s = g.state;
                let limit = s
                    .and_then(|s| s.limit)
                    .map_or("none".into(), |l| l.to_string());
                let held = s.and_then(|s| s.held_until_ms).map_or("-".into(), time);
                let next = match s.and_then(|s| s.next_slot_at_ms.zip(s.next_slot_in_ms)) {
                    Some((at, ms)) => format!("in {} ({})", wait(ms), time(at)),
                    None if s.is_some() => "now".into(),
                    None => "-".into(),
                };
                vec![g.gate.clone(), limit, held, next, g.waiting.to_string()]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&super::table(
                &["GATE", "RATE LIMIT", "HELD UNTIL", "NEXT SLOT", "WAITING"],
                &rows,
            ));
        }
        out
    }
}

impl Human for LimitsReport {
    fn human(&self) -> String {
        format!("{}\n{}", self.concurrency.human(), self.rate_limits.human())
    }
}

/// How long until a time, for a person: `120 ms`, `4.2 s`, `59m 59s`,
/// `2h 5m`.
pub fn wait(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h {}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// One line: the limit, and whether it holds jobs back now.
pub fn rate_line(r: &RateLimitState) -> String {
    let limit = r.limit.as_deref().unwrap_or("none");
    let mut line = format!("rate limit: {limit}, ");
    if !r.limited {
        line.push_str("not limited");
        if let Some(free) = r.slots_free {
            line.push_str(&format!(" ({free} free now)"));
        }
        return line;
    }
    line.push_str("rate limited");
    if let Some(held) = r.held_until {
        line.push_str(&format!(": held until {}", time(held)));
    }
    if let (Some(at), Some(ms)) = (r.next_slot_at, r.next_slot_in_ms) {
        let sep = if r.held_until.is_some() { ", " } else { ": " };
        line.push_str(&format!("{sep}next slot in {} ({})", wait(ms), time(at)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_gates_line_names_the_fullest_gate() {
        use ferry_broker::{RateLimit, RateState};
        let limit = RateLimit::parse("1/1h").unwrap();
        let state = RateState::at(1_000, Some(limit), Some(3_600_000.0), None);
        let gate = |name: &str, waiting| RateGate {
            gate: name.into(),
            state,
            waiting,
        };
        let mut r = RateLimits {
            queue: None,
            each_key: Some(RateLimit::parse("10/1s").unwrap()),
            gates: vec![gate("key:a", 1), gate("type:echo", 12)],
        };
        assert_eq!(
            rate_gates_line(&r),
            "rate gates: each key 10/1s; 2 gates limited now; 2 gates waiting (busiest type:echo: 12 waiting, next slot in 59m 59s)"
        );
        r.each_key = None;
        r.gates = vec![RateGate {
            gate: "key:a".into(),
            state: None,
            waiting: 0,
        }];
        assert_eq!(rate_gates_line(&r), "rate gates: none waiting");
    }

    #[test]
    fn waits_read_at_a_glance() {
        assert_eq!(wait(120), "120 ms");
        assert_eq!(wait(4_230), "4.2 s");
        assert_eq!(wait(3_599_000), "59m 59s");
        assert_eq!(wait(7_500_000), "2h 5m");
    }

    #[test]
    fn the_line_says_whether_the_queue_is_held_back() {
        let mut r = RateLimitState {
            limit: Some("50/1s".into()),
            limited: false,
            slots_free: Some(5),
            held_until: None,
            next_slot_at: None,
            next_slot_in_ms: None,
        };
        assert_eq!(rate_line(&r), "rate limit: 50/1s, not limited (5 free now)");
        r.limited = true;
        r.slots_free = Some(0);
        r.next_slot_at = Some(120);
        r.next_slot_in_ms = Some(120);
        assert_eq!(
            rate_line(&r),
            "rate limit: 50/1s, rate limited: next slot in 120 ms (1970-01-01T00:00:00.120Z)"
        );
        r.limit = None;
        r.held_until = Some(120);
        assert_eq!(
            rate_line(&r),
            "rate limit: none, rate limited: held until 1970-01-01T00:00:00.120Z, next slot in 120 ms (1970-01-01T00:00:00.120Z)"
        );
    }
}
