//! `ferry enqueue-flow` and `ferry flow show`: their arguments, and
//! running them.

use std::fmt::Write as _;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use ferry_broker::FlowGraph;
use ferry_queue_cli::flows::{parse_flow, render, FlowEnqueued};
use ferry_queue_cli::{Admin, Error, Result};

use super::parse_queue;
use crate::output::{print, Human};

/// `ferry enqueue-flow`.
#[derive(Debug, Args)]
pub struct EnqueueFlowArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// The flow as JSON, a tree: `{"type", "payload", "priority"?,
    /// "max_retries"?, "id"?, "retention_ms"?, "concurrency_key"?,
    /// "depends_on"?: [ids], "on_child_failure"?: "fail|release|wait",
    /// "children"?: [the same shape...]}`; `-` reads it from stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

impl EnqueueFlowArgs {
    /// Reads the flow, enqueues it (all or none), and prints the tree of
    /// ids, each with how many jobs it waits for (`--json`: the tree).
    pub async fn run(self, admin: &Admin, json: bool) -> Result<()> {
        let text = self.read()?;
        let root = parse_flow(&text)?;
        let done = admin.enqueue_flow(&self.queue, &root).await?;
        print(json, &done).map_err(|e| Error::Input(format!("cannot write the output: {e}")))
    }

    /// The text of FILE, or of stdin for `-`.
    fn read(&self) -> Result<String> {
        if self.file.as_os_str() != "-" {
            return std::fs::read_to_string(&self.file).map_err(|e| {
                Error::Input(format!("cannot read the flow {}: {e}", self.file.display()))
            });
        }
        let mut stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Err(Error::Usage(
                "FILE is `-` but stdin is a terminal: pipe the flow's JSON, or give a file".into(),
            ));
        }
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|e| Error::Input(format!("cannot read the flow from stdin: {e}")))?;
        Ok(text)
    }
}

impl Human for FlowEnqueued {
    fn human(&self) -> String {
        render(&self.flow)
    }
}

/// `ferry flow ...`.
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// A flow as a tree, from its root: each job (`id  state  type`, and
    /// what it waits for while it waits), two spaces further in than its
    /// parent. Exit 1 when there is no flow with that root.
    Show {
        /// Queue name.
        #[arg(value_parser = parse_queue)]
        queue: String,
        /// The id of the flow's root job (`ferry job show` names any job's
        /// flow root).
        root: String,
    },
}

impl FlowCommand {
    /// Runs the command and prints its report (`--json`: the graph).
    pub async fn run(self, admin: &Admin, json: bool) -> Result<()> {
        let FlowCommand::Show { queue, root } = self;
        match admin.flow(&queue, &root).await? {
            Some(graph) => super::batches::out(json, &graph),
            None => Err(Error::FlowNotFound { queue, root }),
        }
    }
}

impl Human for FlowGraph {
    fn human(&self) -> String {
        let mut out = String::new();
        for job in &self.jobs {
            let state = job
                .state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "not kept".to_owned());
            let _ = write!(
                out,
                "{:indent$}{}  {state}  {}",
                "",
                job.id,
                job.job_type.as_deref().unwrap_or("-"),
                indent = job.depth * 2
            );
            if let Some(w) = &job.waiting_for {
                let _ = write!(out, "  waiting for {w}");
            }
            out.push('\n');
        }
        out
    }
}
