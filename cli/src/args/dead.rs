//! `ferry dead ...`.

use clap::{Args, Subcommand};

use super::parse_queue;

/// `ferry dead ...`.
#[derive(Debug, Subcommand)]
pub enum DeadCommand {
    /// List dead letters, oldest first, a page at a time (the cursor of the
    /// next page is printed; pass it to --after), or grouped by error.
    List(DeadListArgs),
    /// One dead letter, by its entry id or its job id; exit 3 when none.
    Show {
        /// Queue name.
        #[arg(value_parser = parse_queue)]
        queue: String,
        /// Dead-letter entry id or job id. An exact entry id of a dead letter
        /// comes first, then the job id: a job whose id is also another
        /// letter's entry id is shown by its own letter's entry id.
        id: String,
    },
    /// Move dead letters back to their streams as attempt 1 (keeping their
    /// job ids): one by id, those matching --type and/or --error, or --all.
    Replay(DeadReplayArgs),
    /// Delete every dead letter of a queue. Asks first on a terminal;
    /// elsewhere it needs --yes.
    Purge {
        /// Queue name.
        #[arg(value_parser = parse_queue)]
        queue: String,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Which dead letters: a job type and/or error text.
#[derive(Debug, Args)]
pub struct DeadFilterArgs {
    /// Only dead letters of this job type.
    #[arg(long = "type", value_name = "T")]
    pub job_type: Option<String>,
    /// Only dead letters whose error contains this text, ignoring case
    /// (Unicode lowercase of both, not full folding: ß does not match ss).
    #[arg(long, value_name = "TEXT")]
    pub error: Option<String>,
}

impl DeadFilterArgs {
    /// As the broker's filter.
    pub fn filter(&self) -> ferry_broker::DeadFilter {
        ferry_broker::DeadFilter {
            job_type: self.job_type.clone(),
            error: self.error.clone(),
        }
    }
}

/// `ferry dead list`.
#[derive(Debug, Args)]
pub struct DeadListArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// Most dead letters on a page.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// Start after this entry (the cursor a previous page printed).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    #[command(flatten)]
    pub filter: DeadFilterArgs,
    /// Count the (matching) dead letters per error text instead of listing
    /// them; reads the whole stream after --after, ignoring --limit.
    #[arg(long)]
    pub group_by_error: bool,
}

/// `ferry dead replay`.
#[derive(Debug, Args)]
pub struct DeadReplayArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// One dead letter: its entry id or its job id. An exact entry id of a
    /// dead letter comes first, then the job id (as `dead show`).
    #[arg(required_unless_present_any = ["job_type", "error", "all"], conflicts_with_all = ["job_type", "error", "all"])]
    pub id: Option<String>,
    #[command(flatten)]
    pub filter: DeadFilterArgs,
    /// Every dead letter of the queue.
    #[arg(long, conflicts_with_all = ["job_type", "error"])]
    pub all: bool,
}
