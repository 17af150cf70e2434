//! Jobs the tests enqueue: [`new_job`] for the broker's [`NewJob`], and
//! the SDK's job types of the worker example's handlers ([`Echo`],
//! [`Sleep`]).

use ferry_broker::{NewJob, Priority, Schedule};
use ferry_queue::Job;
use serde::{Deserialize, Serialize};

/// A job of `job_type` with `payload` (JSON text) under the concurrency
/// key `key`: normal priority, 3 retries, to run now, an id of Ferry's
/// and the queue's retention.
pub fn new_job(job_type: &'static str, payload: String, key: Option<&str>) -> NewJob {
    NewJob {
        job_type: job_type.into(),
        payload,
        priority: Priority::Normal,
        max_retries: 3,
        schedule: Schedule::Now,
        id: None,
        retention_ms: None,
        concurrency_key: key.map(str::to_owned),
    }
}

/// A `sleep` job of the worker example (`ms` long) under `key`.
pub fn sleep_job(ms: u64, key: Option<&str>) -> NewJob {
    new_job("sleep", format!("{{\"ms\":{ms}}}"), key)
}

/// The worker example's `echo` job (its default queue).
#[derive(Serialize, Deserialize, Debug)]
pub struct Echo {
    pub message: String,
}
impl Job for Echo {
    const TYPE: &'static str = "echo";
}

/// The worker example's `sleep` job (its default queue): sleeps `ms`.
#[derive(Serialize, Deserialize, Debug)]
pub struct Sleep {
    pub ms: u64,
}
impl Job for Sleep {
    const TYPE: &'static str = "sleep";
}
