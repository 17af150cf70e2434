//! The text of the schedule reports: a queue's schedules, one schedule,
//! what adding, removing or triggering one did.

use ferry_queue_cli::{ScheduleRemoved, ScheduleTriggered, ScheduleUpserted, ScheduleView};

use super::{fields, json_text, table, time, yes_no, Human};

/// When a schedule fires next: its time, or `paused`.
fn next_fire(s: &ScheduleView) -> String {
    if s.paused {
        "paused".to_owned()
    } else {
        s.next_at.map_or_else(|| "-".to_owned(), time)
    }
}

impl Human for Vec<ScheduleView> {
    fn human(&self) -> String {
        if self.is_empty() {
            return "no schedules\n".to_owned();
        }
        let dash = || "-".to_owned();
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.spec.clone(),
                    s.missed.clone(),
                    next_fire(s),
                    s.last_job.clone().unwrap_or_else(dash),
                    s.last_job_state
                        .map(|st| st.to_string())
                        .unwrap_or_else(dash),
                ]
            })
            .collect();
        table(
            &[
                "NAME",
                "SPEC",
                "MISSED",
                "NEXT FIRE (UTC)",
                "LAST JOB",
                "LAST STATE",
            ],
            &rows,
        )
    }
}

impl Human for ScheduleView {
    fn human(&self) -> String {
        let t = |v: Option<u64>| v.map(time);
        fields(&[
            ("queue", Some(self.queue.clone())),
            ("name", Some(self.name.clone())),
            ("spec", Some(self.spec.clone())),
            ("missed", Some(self.missed.clone())),
            ("type", Some(self.job_type.clone())),
            ("payload", Some(json_text(&self.payload))),
            ("priority", Some(self.priority.to_string())),
            ("max retries", Some(self.max_retries.to_string())),
            ("paused", Some(yes_no(self.paused).to_owned())),
            ("next fire", Some(next_fire(self))),
            ("last tick", t(self.last_tick)),
            ("last job", self.last_job.clone()),
            ("last state", self.last_job_state.map(|s| s.to_string())),
            ("last fired at", t(self.last_fired_at)),
            ("created at", t(self.created_at)),
            ("updated at", t(self.updated_at)),
        ])
    }
}

impl Human for ScheduleUpserted {
    fn human(&self) -> String {
        let s = &self.schedule;
        format!(
            "schedule {} {} in queue {}: {}, next fire {}\n",
            s.name,
            if self.created { "added" } else { "replaced" },
            s.queue,
            s.spec,
            next_fire(s)
        )
    }
}

impl Human for ScheduleRemoved {
    fn human(&self) -> String {
        format!("schedule {} removed from queue {}\n", self.name, self.queue)
    }
}

impl Human for ScheduleTriggered {
    fn human(&self) -> String {
        format!("{}\n", self.id)
    }
}
