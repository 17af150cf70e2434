//! The text of the dead-letter reports.

use std::fmt::Write as _;

use ferry_queue_cli::{DeadGroups, DeadListing, DeadView, Purged, Replayed};

use super::{fields, table, time, Human};

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
