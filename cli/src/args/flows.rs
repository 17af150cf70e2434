//! `ferry enqueue-flow`: its arguments, and running it.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::Args;
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
