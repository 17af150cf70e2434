//! The example's job types, one handler each. With an audit key, every
//! successful run does `HINCRBY <audit> <job-id> 1`, so losses and duplicates
//! can be counted with redis-cli.

use std::time::Duration;

use ferry_queue::{Handler, Job, JobContext, JobError};
use serde::{Deserialize, Serialize};

/// Where successful runs are counted, if anywhere.
#[derive(Clone)]
pub struct Audit(pub Option<(ferry_queue::Connection, String)>);

impl Audit {
    async fn record(&self, job_id: &str) -> Result<(), JobError> {
        if let Some((conn, key)) = &self.0 {
            let mut conn = conn.clone();
            redis::cmd("HINCRBY")
                .arg(key)
                .arg(job_id)
                .arg(1)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(|e| JobError::retry(format!("audit HINCRBY failed: {e}")))?;
        }
        Ok(())
    }
}

/// `echo`: succeeds at once.
#[derive(Serialize, Deserialize, Debug)]
pub struct Echo {
    /// Any text.
    pub message: String,
}
impl Job for Echo {
    const TYPE: &'static str = "echo";
}

/// `sleep:MS`: sleeps, then succeeds.
#[derive(Serialize, Deserialize, Debug)]
pub struct Sleep {
    /// How long, ms.
    pub ms: u64,
}
impl Job for Sleep {
    const TYPE: &'static str = "sleep";
}

/// `block:MS`: blocks its thread (a sync sleep, as a sync call or a CPU
/// loop would), then succeeds. What a handler must not do; for testing.
#[derive(Serialize, Deserialize, Debug)]
pub struct Block {
    /// How long, ms.
    pub ms: u64,
}
impl Job for Block {
    const TYPE: &'static str = "block";
}

/// `fail:N`: fails its first N attempts, then succeeds.
#[derive(Serialize, Deserialize, Debug)]
pub struct FailTimes {
    /// Attempts that fail.
    pub times: u32,
}
impl Job for FailTimes {
    const TYPE: &'static str = "fail";
}

/// `always-fail`: fails every attempt, ending in the dead-letter stream.
#[derive(Serialize, Deserialize, Debug)]
pub struct AlwaysFail {}
impl Job for AlwaysFail {
    const TYPE: &'static str = "always-fail";
}

/// `panic`: the handler panics (a failed attempt, not a dead worker).
#[derive(Serialize, Deserialize, Debug)]
pub struct Panic {}
impl Job for Panic {
    const TYPE: &'static str = "panic";
}

/// `abort`: the handler aborts the whole worker process (a poison job).
#[derive(Serialize, Deserialize, Debug)]
pub struct Abort {}
impl Job for Abort {
    const TYPE: &'static str = "abort";
}

/// Runs [`Abort`]: kills its own process, as a segfault or OOM would.
pub struct AbortHandler;
impl Handler for AbortHandler {
    type Job = Abort;
    type Output = ();
    async fn handle(&self, _job: Abort, ctx: JobContext) -> Result<(), JobError> {
        tracing::error!(job_id = %ctx.job_id, "abort job: aborting the worker process");
        std::process::abort()
    }
}

/// Runs [`Echo`]: its result is its payload.
pub struct EchoHandler(pub Audit);
impl Handler for EchoHandler {
    type Job = Echo;
    type Output = Echo;
    async fn handle(&self, job: Echo, ctx: JobContext) -> Result<Echo, JobError> {
        tracing::debug!(message = %job.message, "echo");
        self.0.record(&ctx.job_id).await?;
        Ok(job)
    }
}

/// Runs [`Sleep`].
pub struct SleepHandler(pub Audit);
impl Handler for SleepHandler {
    type Job = Sleep;
    type Output = ();
    async fn handle(&self, job: Sleep, ctx: JobContext) -> Result<(), JobError> {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(job.ms)) => {}
            _ = ctx.cancel.cancelled() => {
                tracing::info!(id = %ctx.job_id, "sleep cancelled");
                return Err(JobError::permanent("cancelled"));
            }
        }
        self.0.record(&ctx.job_id).await
    }
}

/// Runs [`Block`]: blocks the runtime thread it runs on.
pub struct BlockHandler(pub Audit);
impl Handler for BlockHandler {
    type Job = Block;
    type Output = ();
    async fn handle(&self, job: Block, ctx: JobContext) -> Result<(), JobError> {
        // An await first (as a handler that reads something and then
        // computes would have), so the runtime can give it any free thread.
        tokio::task::yield_now().await;
        tracing::info!(ms = job.ms, "block job: blocking its thread");
        std::thread::sleep(Duration::from_millis(job.ms));
        self.0.record(&ctx.job_id).await
    }
}

/// Runs [`FailTimes`].
pub struct FailHandler(pub Audit);
impl Handler for FailHandler {
    type Job = FailTimes;
    type Output = ();
    async fn handle(&self, job: FailTimes, ctx: JobContext) -> Result<(), JobError> {
        if ctx.attempt <= job.times {
            return Err(JobError::retry(format!(
                "planned failure {} of {}",
                ctx.attempt, job.times
            )));
        }
        self.0.record(&ctx.job_id).await
    }
}

/// Runs [`AlwaysFail`].
pub struct AlwaysFailHandler;
impl Handler for AlwaysFailHandler {
    type Job = AlwaysFail;
    type Output = ();
    async fn handle(&self, _job: AlwaysFail, ctx: JobContext) -> Result<(), JobError> {
        Err(JobError::retry(format!(
            "always-fail job failed on attempt {}",
            ctx.attempt
        )))
    }
}

/// Runs [`Panic`].
pub struct PanicHandler;
impl Handler for PanicHandler {
    type Job = Panic;
    type Output = ();
    #[allow(clippy::panic)]
    async fn handle(&self, _job: Panic, ctx: JobContext) -> Result<(), JobError> {
        panic!("panic job panicked on attempt {}", ctx.attempt)
    }
}

/// A job kind as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `echo`
    Echo,
    /// `sleep:MS`
    Sleep(u64),
    /// `block:MS`
    Block(u64),
    /// `fail:N`
    Fail(u32),
    /// `always-fail`
    AlwaysFail,
    /// `panic`
    Panic,
    /// `abort`
    Abort,
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("unknown kind {s:?}: use echo, sleep:MS, block:MS, fail:N, always-fail, panic or abort")
        };
        match s.split_once(':') {
            None if s == "echo" => Ok(Kind::Echo),
            None if s == "always-fail" => Ok(Kind::AlwaysFail),
            None if s == "panic" => Ok(Kind::Panic),
            None if s == "abort" => Ok(Kind::Abort),
            Some(("sleep", ms)) => ms.parse().map(Kind::Sleep).map_err(|_| bad()),
            Some(("block", ms)) => ms.parse().map(Kind::Block).map_err(|_| bad()),
            Some(("fail", n)) => n.parse().map(Kind::Fail).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}
