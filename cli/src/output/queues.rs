//! The text of the queue-level reports: queues, stats, streams,
//! settings, events, pause, workers.

use std::fmt::Write as _;

use ferry_broker::StreamInfo;
use ferry_queue::{Priority, WorkerInfo};
use ferry_queue_cli::settings::SettingsReport;
use ferry_queue_cli::stats::THROUGHPUT_MINUTES;
use ferry_queue_cli::{EventView, PauseState, QueueSummary, StatsReport};

use super::{table, time, yes_no, Human};

impl Human for [QueueSummary] {
    fn human(&self) -> String {
        if self.is_empty() {
            return "no queues under this prefix\n".to_owned();
        }
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|q| {
                let mut row = vec![q.queue.clone()];
                row.extend(Priority::ALL.map(|p| q.waiting.get(p).to_string()));
                row.extend([
                    q.scheduled.to_string(),
                    q.running.to_string(),
                    q.dead.to_string(),
                    yes_no(q.paused).to_owned(),
                    q.workers.to_string(),
                ]);
                row
            })
            .collect();
        table(
            &[
                "QUEUE",
                "CRITICAL",
                "HIGH",
                "NORMAL",
                "LOW",
                "SCHEDULED",
                "RUNNING",
                "DEAD",
                "PAUSED",
                "WORKERS",
            ],
            &rows,
        )
    }
}

impl Human for Vec<QueueSummary> {
    fn human(&self) -> String {
        self.as_slice().human()
    }
}

impl Human for StatsReport {
    fn human(&self) -> String {
        let mut out = format!(
            "queue {}{}\n\n",
            self.queue,
            if self.paused { " (paused)" } else { "" }
        );
        let mut rows: Vec<Vec<String>> = Vec::new();
        for p in Priority::ALL {
            rows.push(vec![
                p.to_string(),
                self.waiting.get(p).to_string(),
                self.running.get(p).to_string(),
            ]);
        }
        rows.push(vec![
            "total".into(),
            self.waiting.total().to_string(),
            self.running.total().to_string(),
        ]);
        out.push_str(&table(&["PRIORITY", "WAITING", "RUNNING"], &rows));
        let _ = writeln!(out, "\nscheduled {}  dead {}", self.scheduled, self.dead);
        if let Some(rate) = &self.rate_limit {
            let _ = writeln!(out, "{}", super::flow::rate_line(rate));
        }
        if let Some(c) = &self.concurrency {
            let _ = writeln!(
                out,
                "{}",
                super::flow::concurrency_line(c, self.running.total())
            );
        }
        if let Some(r) = &self.rate_gates {
            let _ = writeln!(out, "{}", super::flow::rate_gates_line(r));
        }
        let counters: Vec<String> = self
            .counters
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(out, "counters: {}", counters.join(", "));
        let r = &self.recent;
        let (done, failed): (u64, u64) = r
            .minutes
            .iter()
            .fold((0, 0), |(d, f), m| (d + m.completed, f + m.failed));
        let _ = writeln!(
            out,
            "\nlast 15 minutes: {done} completed, {failed} failed for good ({:.1}% failure rate), {:.2} jobs/s over the last {THROUGHPUT_MINUTES} full minutes",
            r.failure_rate * 100.0,
            self.throughput_per_sec,
        );
        let summary = |name: &str, s: &ferry_broker::stats::Summary| {
            vec![
                name.to_owned(),
                s.count.to_string(),
                format!("{:.1}", s.avg_ms),
                format!("{:.1}", s.p50_ms),
                format!("{:.1}", s.p95_ms),
                format!("{:.1}", s.p99_ms),
            ]
        };
        let mut rows = vec![summary("wait", &r.wait), summary("run", &r.run)];
        // Per priority, where more than one priority ran anything.
        let ran: Vec<Priority> = Priority::ALL
            .into_iter()
            .filter(|p| self.recent_by_priority.get(*p).wait.count > 0)
            .collect();
        if ran.len() > 1 {
            for p in ran {
                let at = self.recent_by_priority.get(p);
                rows.push(summary(&format!("wait {}", p.as_str()), &at.wait));
                rows.push(summary(&format!("run {}", p.as_str()), &at.run));
            }
        }
        out.push_str(&table(
            &["TIME (ms)", "JOBS", "AVG", "P50", "P95", "P99"],
            &rows,
        ));
        let per_minute: Vec<Vec<String>> = r
            .minutes
            .iter()
            .filter(|m| m.completed + m.failed + m.retried + m.cancelled > 0)
            .map(|m| {
                vec![
                    time(m.at).get(11..16).unwrap_or_default().to_owned(),
                    m.completed.to_string(),
                    m.failed.to_string(),
                    m.retried.to_string(),
                    m.cancelled.to_string(),
                ]
            })
            .collect();
        if !per_minute.is_empty() {
            out.push('\n');
            out.push_str(&table(
                &[
                    "MINUTE (UTC)",
                    "COMPLETED",
                    "FAILED",
                    "RETRIED",
                    "CANCELLED",
                ],
                &per_minute,
            ));
        }
        out
    }
}

impl Human for Vec<StreamInfo> {
    fn human(&self) -> String {
        let dash = || "-".to_owned();
        let secs = |ms: Option<u64>| {
            ms.map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(dash)
        };
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|s| {
                vec![
                    s.priority.to_string(),
                    s.length.to_string(),
                    s.pending.to_string(),
                    s.lag.map(|l| l.to_string()).unwrap_or_else(dash),
                    s.consumers.to_string(),
                    secs(s.oldest_pending_age_ms),
                    secs(s.oldest_pending_idle_ms),
                    secs(s.oldest_waiting_age_ms),
                    s.last_delivered_id.clone().unwrap_or_else(dash),
                ]
            })
            .collect();
        table(
            &[
                "PRIORITY",
                "LENGTH",
                "PENDING",
                "LAG",
                "CONSUMERS",
                "OLDEST PENDING AGE",
                "ITS IDLE",
                "OLDEST WAITING AGE",
                "LAST DELIVERED",
            ],
            &rows,
        )
    }
}

impl Human for SettingsReport {
    fn human(&self) -> String {
        let s = &self.settings;
        let limit =
            |v: Option<u64>, none: &str| v.map_or_else(|| none.to_owned(), |n| n.to_string());
        let mut out = String::new();
        if let Some(n) = self.cleared {
            let _ = writeln!(out, "cleared: {n} records");
        }
        let _ = writeln!(out, "queue: {}", s.queue);
        let _ = writeln!(out, "paused: {}", s.paused);
        let _ = writeln!(out, "max_depth: {}", limit(s.max_depth, "none"));
        let _ = writeln!(out, "retention_ms: {}", s.retention_ms);
        let _ = writeln!(out, "retention_count: {}", s.retention_count);
        let _ = writeln!(out, "events: {}", limit(s.events, "off"));
        let _ = writeln!(
            out,
            "rate_limit: {}",
            s.rate_limit.as_deref().unwrap_or("none")
        );
        let _ = writeln!(
            out,
            "key_rate_limit: {}",
            s.key_rate_limit.as_deref().unwrap_or("none")
        );
        let _ = writeln!(
            out,
            "concurrency: {}",
            limit(s.concurrency.map(u64::from), "none")
        );
        let _ = writeln!(
            out,
            "key_concurrency: {}",
            limit(s.key_concurrency.map(u64::from), "none")
        );
        let w = s
            .weights
            .map_or("strict".into(), |w| w.map(|n| n.to_string()).join(","));
        let _ = writeln!(out, "weights: {w}");
        out
    }
}

impl Human for EventView {
    /// `<entry id> <event> <job id> key=value ...`, one line (values with a
    /// space or a line break quoted as JSON strings).
    fn human(&self) -> String {
        let mut out = format!("{} {} {}", self.entry_id, self.event, self.job_id);
        for (k, v) in &self.fields {
            if v.is_empty() || v.contains(char::is_whitespace) || v.contains('"') {
                let _ = write!(out, " {k}={}", serde_json::Value::from(v.as_str()));
            } else {
                let _ = write!(out, " {k}={v}");
            }
        }
        out.retain(|c| c != '\n' && c != '\r');
        out.push('\n');
        out
    }
}

impl Human for PauseState {
    fn human(&self) -> String {
        format!(
            "queue {} {}\n",
            self.queue,
            if self.paused { "paused" } else { "resumed" }
        )
    }
}

impl Human for Vec<WorkerInfo> {
    fn human(&self) -> String {
        if self.is_empty() {
            return "no live workers\n".to_owned();
        }
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|w| {
                vec![
                    w.worker.clone(),
                    w.host.clone(),
                    w.pid.to_string(),
                    w.queues.join(","),
                    format!("{}/{}", w.running, w.concurrency),
                    time(w.started_at),
                    time(w.heartbeat_at),
                ]
            })
            .collect();
        table(
            &[
                "WORKER",
                "HOST",
                "PID",
                "QUEUES",
                "RUNNING",
                "STARTED",
                "HEARTBEAT",
            ],
            &rows,
        )
    }
}
