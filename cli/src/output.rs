//! Printing the operations' reports: one JSON document (`--json`), or text
//! for a person (tables, `key: value` lines).

use std::fmt::Write as _;
use std::io::Write as _;

use ferry_broker::{JobPage, ListState, StreamInfo};
use ferry_queue::{JobStatus, Priority, WorkerInfo};
use ferry_queue_cli::settings::SettingsReport;
use ferry_queue_cli::stats::THROUGHPUT_MINUTES;
use ferry_queue_cli::{
    Cancelled, DeadGroups, DeadListing, DeadView, Enqueued, EventView, PauseState, Purged,
    QueueSummary, Replayed, Reprioritised, Retried, StatsReport,
};
use serde::Serialize;

/// A report that prints itself as text; `--json` prints its serde form.
pub trait Human: Serialize {
    /// The text for a person, ending with a newline.
    fn human(&self) -> String;
}

/// Prints `report` on stdout: one line of JSON, or its text.
pub fn print<T: Human + ?Sized>(json: bool, report: &T) -> std::io::Result<()> {
    let mut text = if json {
        serde_json::to_string(report).map_err(std::io::Error::other)?
    } else {
        report.human()
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Columns aligned to their widest cell, two spaces apart.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn time(ms: u64) -> String {
    let (days, rem) = (ms / 86_400_000, ms % 86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `key: value` lines, values aligned, for the `Some` ones.
fn fields(pairs: &[(&str, Option<String>)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            let key = format!("{k}:");
            let _ = writeln!(out, "{key:<width$} {v}");
        }
    }
    out
}

/// A JSON value on one line.
fn json_text(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

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

impl Human for JobStatus {
    fn human(&self) -> String {
        let t = |v: Option<u64>| v.map(time);
        fields(&[
            ("id", Some(self.id.clone())),
            ("state", Some(self.state.to_string())),
            ("type", self.job_type.clone()),
            ("priority", self.priority.map(|p| p.to_string())),
            (
                "attempt",
                self.attempt.map(|a| match self.max_retries {
                    Some(r) => format!("{a} of {}", r.saturating_add(1)),
                    None => a.to_string(),
                }),
            ),
            ("enqueued at", t(self.enqueued_at)),
            ("run at", t(self.run_at)),
            ("started at", t(self.started_at)),
            ("finished at", t(self.finished_at)),
            ("worker", self.worker.clone()),
            ("deliveries", self.deliveries.map(|d| d.to_string())),
            ("last error", self.last_error.clone()),
            ("progress", self.progress.as_ref().map(json_text)),
            ("result", self.result.as_ref().map(json_text)),
            ("payload", self.payload.as_ref().map(json_text)),
            ("entry", self.entry_id.clone()),
        ])
    }
}

impl Human for JobPage {
    fn human(&self) -> String {
        let dash = || "-".to_owned();
        let mut out = if self.jobs.is_empty() {
            format!("no {} jobs\n", self.state)
        } else {
            let rows: Vec<Vec<String>> = self
                .jobs
                .iter()
                .map(|j| {
                    let at = match self.state {
                        ListState::Scheduled => j.run_at,
                        ListState::Finished | ListState::Dead => j.finished_at,
                        _ => j.enqueued_at,
                    };
                    vec![
                        j.id.clone(),
                        j.state.to_string(),
                        j.job_type.clone().unwrap_or_else(dash),
                        j.priority.map(|p| p.to_string()).unwrap_or_else(dash),
                        j.attempt.map(|a| a.to_string()).unwrap_or_else(dash),
                        at.map(time).unwrap_or_else(dash),
                        j.worker.clone().unwrap_or_else(dash),
                        j.last_error
                            .as_deref()
                            .map(|e| e.replace('\n', " "))
                            .unwrap_or_else(dash),
                    ]
                })
                .collect();
            let at = match self.state {
                ListState::Scheduled => "RUN AT",
                ListState::Finished | ListState::Dead => "FINISHED AT",
                _ => "ENQUEUED AT",
            };
            table(
                &[
                    "ID", "STATE", "TYPE", "PRIORITY", "ATTEMPT", at, "WORKER", "ERROR",
                ],
                &rows,
            )
        };
        match &self.next {
            Some(next) => {
                let _ = writeln!(out, "next page: --cursor {next}");
            }
            None => out.push_str("(end)\n"),
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

impl Human for Cancelled {
    fn human(&self) -> String {
        if self.cancel_requested {
            format!(
                "job {} is running{}: its handler was told to stop; it ends cancelled\n",
                self.id,
                self.worker
                    .as_deref()
                    .map(|w| format!(" on {w}"))
                    .unwrap_or_default()
            )
        } else {
            format!("job {} cancelled\n", self.id)
        }
    }
}

impl Human for Retried {
    fn human(&self) -> String {
        format!(
            "job {} queued again as attempt 1 (entry {}; it was dead letter {})\n",
            self.id, self.entry_id, self.dead_entry
        )
    }
}

impl Human for Reprioritised {
    fn human(&self) -> String {
        format!("job {} has priority {}\n", self.id, self.priority)
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

impl Human for Enqueued {
    fn human(&self) -> String {
        format!("{}\n", self.id)
    }
}

fn dead_row(l: &DeadView) -> Vec<String> {
    let dash = || "-".to_owned();
    vec![
        l.entry_id.clone(),
        l.job_id.clone().unwrap_or_else(dash),
        l.job_type.clone().unwrap_or_else(dash),
        l.failed_at.map(time).unwrap_or_else(dash),
        l.error
            .as_deref()
            .map(|e| e.replace('\n', " "))
            .unwrap_or_else(dash),
    ]
}

impl Human for DeadListing {
    fn human(&self) -> String {
        let mut out = if self.letters.is_empty() {
            format!("no dead letters found ({} read)\n", self.scanned)
        } else {
            let rows: Vec<Vec<String>> = self.letters.iter().map(dead_row).collect();
            table(&["ENTRY", "JOB", "TYPE", "FAILED AT", "ERROR"], &rows)
        };
        match &self.next {
            Some(next) => {
                let _ = writeln!(out, "next page: --after {next}");
            }
            None => out.push_str("(end)\n"),
        }
        out
    }
}

impl Human for DeadGroups {
    fn human(&self) -> String {
        if self.groups.is_empty() {
            return format!("no dead letters found ({} read)\n", self.scanned);
        }
        let rows: Vec<Vec<String>> = self
            .groups
            .iter()
            .map(|g| {
                let mut types: Vec<String> =
                    g.types.iter().map(|(t, n)| format!("{t} {n}")).collect();
                if g.other_types > 0 {
                    types.push(format!("other types {}", g.other_types));
                }
                vec![
                    g.count.to_string(),
                    types.join(", "),
                    g.first_entry.clone(),
                    g.last_entry.clone(),
                    g.error.replace('\n', " "),
                ]
            })
            .collect();
        let mut out = table(&["COUNT", "TYPES", "FIRST", "LAST", "ERROR"], &rows);
        let _ = writeln!(
            out,
            "{} dead letters in {} groups",
            self.total,
            self.groups.len()
        );
        if self.ungrouped > 0 {
            let _ = writeln!(
                out,
                "{} of them have other error texts (only the first {} texts are grouped)",
                self.ungrouped,
                self.groups.len()
            );
        }
        out
    }
}

impl Human for DeadView {
    fn human(&self) -> String {
        let mut out = fields(&[
            ("entry", Some(self.entry_id.clone())),
            ("job", self.job_id.clone()),
            ("type", self.job_type.clone()),
            ("priority", self.priority.clone()),
            (
                "attempt",
                self.attempt.map(|a| match self.max_retries {
                    Some(r) => format!("{a} of {}", r.saturating_add(1)),
                    None => a.to_string(),
                }),
            ),
            ("enqueued at", self.enqueued_at.map(time)),
            ("failed at", self.failed_at.map(time)),
            ("error", self.error.clone()),
        ]);
        for (k, v) in &self.fields {
            let _ = writeln!(out, "{k}: {v}");
        }
        if let Some(p) = &self.payload {
            let pretty = serde_json::to_string_pretty(p).unwrap_or_default();
            let _ = writeln!(out, "payload:\n{pretty}");
        }
        out
    }
}

impl Human for Replayed {
    fn human(&self) -> String {
        let mut out = format!(
            "replayed {} dead letter{} of queue {}\n",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.queue
        );
        for r in &self.replayed {
            let _ = writeln!(
                out,
                "  {} -> job {} queued as entry {}",
                r.dead_entry,
                r.job_id.as_deref().unwrap_or("-"),
                r.entry_id
            );
        }
        if self.omitted > 0 {
            let _ = writeln!(out, "  ... and {} more", self.omitted);
        }
        out
    }
}

impl Human for Purged {
    fn human(&self) -> String {
        format!(
            "purged {} dead letters of queue {}\n",
            self.purged, self.queue
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_iso_8601() {
        assert_eq!(time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(1_732_370_000_123), "2024-11-23T13:53:20.123Z");
        assert_eq!(time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    BB\nxyz  1\n");
    }
}
