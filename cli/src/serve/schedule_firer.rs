//! `ferry serve`'s schedule firer: like every worker, `ferry serve` fires
//! the cron and periodic schedules of the queues under its prefix, so a
//! fleet whose workers do not (`WorkerConfig::fire_schedules` off, or
//! workers that speak HTTP) still gets its ticks. `fire_schedule.lua`
//! lets only the first caller of a tick enqueue its job, so `ferry serve`
//! and any number of workers firing the same schedules fire each tick once.
//!
//! The queues with schedules are found by a SCAN of the prefix's keys
//! (once a minute: a new queue's schedules are seen within it); then each
//! is looked at when its next tick is due, at least once a second.

use std::time::Duration;

use ferry_broker::discovery::queue_names;

use crate::admin::Admin;

/// How often the queues with schedules are looked for.
const DISCOVER_EVERY: Duration = Duration::from_secs(60);

/// The longest wait between two looks at a queue's schedules (a schedule
/// added by another process is seen within it).
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Fires the schedules of `admin`'s queues until the task is dropped.
pub struct ScheduleFirer {
    admin: Admin,
}

impl ScheduleFirer {
    /// A firer for the queues under `admin`'s prefix.
    pub fn new(admin: Admin) -> Self {
        Self { admin }
    }

    /// Fires due ticks, forever (spawn it; drop or abort the task to stop).
    /// Redis errors are reported once on stderr, and once more when firing
    /// works again.
    pub async fn run(self) {
        let mut queues: Vec<ferry_broker::Queue> = Vec::new();
        let mut discovered: Option<tokio::time::Instant> = None;
        let mut failing = false;
        loop {
            if discovered.is_none_or(|at| at.elapsed() >= DISCOVER_EVERY) {
                match self.with_schedules().await {
                    Ok(q) => {
                        queues = q;
                        discovered = Some(tokio::time::Instant::now());
                    }
                    Err(e) => failing = self.report(failing, Some(&e)),
                }
            }
            let mut wait = LOOK_EVERY;
            for q in &queues {
                match q.fire_due(&mut self.admin.conn()).await {
                    Ok(round) => {
                        failing = self.report(failing, None);
                        if let Some(next) = round.next_in {
                            wait = wait.min(next);
                        }
                    }
                    Err(e) => failing = self.report(failing, Some(&e)),
                }
            }
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }

    /// The queues under the prefix that have schedules.
    async fn with_schedules(&self) -> ferry_broker::Result<Vec<ferry_broker::Queue>> {
        let mut conn = self.admin.conn();
        let mut names = std::collections::BTreeSet::new();
        for mut master in conn.masters().await? {
            names.extend(queue_names(&mut master, self.admin.prefix()).await?);
        }
        let mut out = Vec::new();
        for name in names {
            let Ok(q) = self.admin.queue(name.as_str()) else {
                continue;
            };
            let exists: bool = redis::cmd("EXISTS")
                .arg(q.keys().schedules())
                .query_async(&mut conn)
                .await?;
            if exists {
                out.push(q);
            }
        }
        Ok(out)
    }

    /// Reports a failure the first time (`failing` false), and the
    /// recovery; returns whether firing fails now.
    fn report(&self, failing: bool, error: Option<&ferry_broker::Error>) -> bool {
        match (failing, error) {
            (false, Some(e)) => {
                eprintln!("ferry: cannot fire schedules: {e}; trying again");
                true
            }
            (true, None) => {
                eprintln!("ferry: firing schedules again");
                false
            }
            (f, _) => f,
        }
    }
}
