//! `ferry batches` and `ferry batch show|create|add`: their arguments,
//! running them, and their text.

use std::fmt::Write as _;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ferry_broker::{BatchStatus, Callback, CallbackState};
use ferry_queue_cli::batches::{
    parse_batch, parse_jobs, BatchAdded, BatchCreated, BatchJob, BatchJobs, DEFAULT_BATCH_LIST,
    DEFAULT_BATCH_PAGE, MAX_BATCH_LIST,
};
use ferry_queue_cli::{Admin, Error, Result};
use serde::Serialize;

use super::parse_queue;
use crate::output::{fields, print, table, time, Human};

/// The batch commands (flattened into the top level).
#[derive(Debug, Subcommand)]
pub enum BatchCommands {
    /// A queue's batches, newest first: id, state, total, pending,
    /// succeeded, failed, created (those kept: open, or finished within
    /// the record retention).
    Batches(BatchesArgs),
    /// One batch: show, create, add jobs to it.
    #[command(subcommand)]
    Batch(BatchCommand),
}

/// `ferry batches`.
#[derive(Debug, Args)]
pub struct BatchesArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// Batches to show, at most 1000.
    #[arg(long, default_value_t = DEFAULT_BATCH_LIST,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_BATCH_LIST as u64))]
    pub limit: usize,
}

/// A queue and a batch's id.
#[derive(Debug, Args)]
pub struct BatchRef {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// The batch's id.
    pub id: String,
}

/// `ferry batch ...`.
#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// One batch: state, counts, times, callbacks with their states, and
    /// the first page of its jobs with their states. Exit 1 when there is
    /// none.
    Show(BatchRef),
    /// Create a batch from a JSON file (`-`: stdin), all or none:
    /// `{"id"?, "description"?, "jobs": [{"type", "payload", "priority"?,
    /// "max_retries"?, "id"?, "retention_ms"?, "concurrency_key"?}...],
    /// "on_success"?: job, "on_complete"?: job}`; prints the ids.
    Create {
        /// Queue name.
        #[arg(value_parser = parse_queue)]
        queue: String,
        /// The batch's JSON; `-` reads it from stdin.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Add jobs to an open batch from a JSON file (`-`: stdin), all or
    /// none: `{"jobs": [...]}`; prints their ids. Exit 1 when the batch is
    /// closed or there is none.
    Add {
        /// The batch.
        #[command(flatten)]
        batch: BatchRef,
        /// The jobs' JSON; `-` reads it from stdin.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

impl BatchCommands {
    /// Runs the command and prints its report (`--json`: the JSON).
    pub async fn run(self, admin: &Admin, json: bool) -> Result<()> {
        match self {
            BatchCommands::Batches(a) => out(json, &admin.batches(&a.queue, a.limit).await?),
            BatchCommands::Batch(BatchCommand::Show(b)) => {
                let batch = admin.batch(&b.queue, &b.id).await?;
                let jobs = admin
                    .batch_jobs(&b.queue, &b.id, 0, DEFAULT_BATCH_PAGE)
                    .await?;
                let callbacks: Vec<String> = [&batch.on_success, &batch.on_complete]
                    .into_iter()
                    .flatten()
                    .map(|c| c.id.clone())
                    .collect();
                let callbacks = admin.job_states(&b.queue, callbacks).await?;
                out(
                    json,
                    &BatchShow {
                        batch,
                        jobs,
                        callbacks,
                    },
                )
            }
            BatchCommands::Batch(BatchCommand::Create { queue, file }) => {
                let batch = parse_batch(&read(&file, "batch")?)?;
                out(json, &admin.create_batch(&queue, &batch).await?)
            }
            BatchCommands::Batch(BatchCommand::Add { batch, file }) => {
                let jobs = parse_jobs(&read(&file, "jobs")?)?;
                out(
                    json,
                    &admin.add_to_batch(&batch.queue, &batch.id, &jobs).await?,
                )
            }
        }
    }
}

/// Prints `report`; a failure to write is an error of the command.
pub(super) fn out<T: Human + ?Sized>(json: bool, report: &T) -> Result<()> {
    print(json, report).map_err(|e| Error::Input(format!("cannot write the output: {e}")))
}

/// The text of `file`, or of stdin for `-`.
fn read(file: &Path, what: &str) -> Result<String> {
    if file.as_os_str() != "-" {
        return std::fs::read_to_string(file)
            .map_err(|e| Error::Input(format!("cannot read the {what} {}: {e}", file.display())));
    }
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Error::Usage(format!(
            "FILE is `-` but stdin is a terminal: pipe the JSON of the {what}, or give a file"
        )));
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| Error::Input(format!("cannot read the {what} from stdin: {e}")))?;
    Ok(text)
}

/// What `ferry batch show` prints: the batch, its callbacks' jobs, and the
/// first page of its jobs.
#[derive(Debug, Serialize)]
pub struct BatchShow {
    /// The batch's status.
    pub batch: BatchStatus,
    /// Its callbacks' jobs with their states (`null` while not enqueued).
    pub callbacks: Vec<BatchJob>,
    /// The first page of its jobs.
    pub jobs: BatchJobs,
}

fn state_word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

impl Human for Vec<BatchStatus> {
    fn human(&self) -> String {
        if self.is_empty() {
            return "no batches\n".to_owned();
        }
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|b| {
                vec![
                    b.id.clone(),
                    state_word(&b.state),
                    b.total.to_string(),
                    b.pending.to_string(),
                    b.succeeded.to_string(),
                    b.failed.to_string(),
                    time(b.created_at),
                ]
            })
            .collect();
        table(
            &[
                "ID",
                "STATE",
                "TOTAL",
                "PENDING",
                "SUCCEEDED",
                "FAILED",
                "CREATED",
            ],
            &rows,
        )
    }
}

/// A job's state as the text shows it.
fn job_state(j: &BatchJob) -> String {
    j.state
        .map(|s| s.to_string())
        .unwrap_or_else(|| "not kept".to_owned())
}

impl Human for BatchShow {
    fn human(&self) -> String {
        let b = &self.batch;
        let callback = |c: &Option<Callback>| {
            c.as_ref().map(|c| {
                let job = self
                    .callbacks
                    .iter()
                    .find(|j| j.id == c.id && c.state == CallbackState::Enqueued);
                match job {
                    Some(j) => format!("{}  {} (job {})", c.id, state_word(&c.state), job_state(j)),
                    None => format!("{}  {}", c.id, state_word(&c.state)),
                }
            })
        };
        let mut out = fields(&[
            ("id", Some(b.id.clone())),
            ("state", Some(state_word(&b.state))),
            ("description", b.description.clone()),
            ("total", Some(b.total.to_string())),
            ("pending", Some(b.pending.to_string())),
            ("succeeded", Some(b.succeeded.to_string())),
            (
                "failed",
                Some(if b.dead > 0 {
                    format!("{} ({} dead)", b.failed, b.dead)
                } else {
                    b.failed.to_string()
                }),
            ),
            ("created at", Some(time(b.created_at))),
            ("completed at", b.completed_at.map(time)),
            ("succeeded at", b.succeeded_at.map(time)),
            ("on success", callback(&b.on_success)),
            ("on complete", callback(&b.on_complete)),
        ]);
        let jobs = &self.jobs.jobs;
        let more = if self.jobs.next_cursor == 0 {
            String::new()
        } else {
            format!(", a first page; next cursor {}", self.jobs.next_cursor)
        };
        let _ = writeln!(out, "\njobs ({}{more}):", jobs.len());
        let rows: Vec<Vec<String>> = jobs
            .iter()
            .map(|j| {
                vec![
                    j.id.clone(),
                    job_state(j),
                    j.job_type.clone().unwrap_or_else(|| "-".to_owned()),
                ]
            })
            .collect();
        out.push_str(&table(&["ID", "STATE", "TYPE"], &rows));
        out
    }
}

impl Human for BatchCreated {
    fn human(&self) -> String {
        let mut out = fields(&[
            ("batch", Some(self.id.clone())),
            ("on success", self.on_success.clone()),
            ("on complete", self.on_complete.clone()),
        ]);
        let _ = writeln!(out, "jobs ({}):", self.jobs.len());
        for id in &self.jobs {
            let _ = writeln!(out, "  {id}");
        }
        out
    }
}

impl Human for BatchAdded {
    fn human(&self) -> String {
        let mut out = String::new();
        for id in &self.ids {
            let _ = writeln!(out, "{id}");
        }
        out
    }
}
