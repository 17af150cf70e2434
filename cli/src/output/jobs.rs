//! The text of the job reports: a job, a page of jobs, what a change
//! to one did, an enqueue.

use std::fmt::Write as _;

use ferry_broker::{JobPage, ListState};
use ferry_queue::JobStatus;
use ferry_queue_cli::{Cancelled, DuplicateKind, Enqueued, EnqueuedAfter, Reprioritised, Retried};

use super::{fields, json_text, table, time, Human};

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
            ("waiting for", self.waiting_for.clone()),
            (
                "depends on",
                (!self.depends_on.is_empty()).then(|| self.depends_on.join(", ")),
            ),
            (
                "dependents",
                self.dependents_count.map(|n| {
                    let shown = self.dependents.join(", ");
                    let more = usize::try_from(n)
                        .unwrap_or(0)
                        .saturating_sub(self.dependents.len());
                    if more > 0 {
                        format!("{shown} and {more} more")
                    } else {
                        shown
                    }
                }),
            ),
            ("batch", self.batch.clone()),
            ("flow", self.flow.clone()),
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

impl Human for Enqueued {
    /// The new job's id alone; for a duplicate, the job it was folded into.
    fn human(&self) -> String {
        match &self.duplicate {
            None => format!("{}\n", self.id),
            Some(d) => match d.kind {
                DuplicateKind::Existing => format!("deduplicated into job {}\n", d.of),
                DuplicateKind::Debounced => format!(
                    "deduplicated into job {} (debounced: its payload replaced, its delay restarted)\n",
                    d.of
                ),
            },
        }
    }
}

impl Human for EnqueuedAfter {
    /// The new job's id alone (`main` says on stderr what it waits for).
    fn human(&self) -> String {
        format!("{}\n", self.id)
    }
}
