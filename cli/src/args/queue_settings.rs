//! `ferry settings` and `ferry events`.

use clap::Args;

use super::parse_queue;

/// `ferry settings`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// The most jobs the queue holds (waiting, running or delayed; past it
    /// enqueues are refused), or `none` for no limit.
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub max_depth: Option<Limit>,
    /// How long finished jobs' records are kept, ms (0 keeps none).
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<u64>,
    /// How many finished jobs' records are kept (0 keeps none).
    #[arg(long, value_name = "N")]
    pub retention_count: Option<u64>,
    /// Lifecycle events on, the stream capped at about CAP entries, or
    /// `off`.
    #[arg(long, value_name = "CAP|off", value_parser = parse_limit)]
    pub events: Option<Limit>,
    /// At most N job starts per PERIOD fleet-wide (`50/1s`, `10/500ms`,
    /// `1000/1m`; periods in ms, s, m or h), with up to BURST at once
    /// after a quiet spell (`1000/1m:100`; a tenth of N by default), or
    /// `none` to remove the limit.
    #[arg(long, value_name = "N/PERIOD[:BURST]|none", allow_hyphen_values = true)]
    pub rate_limit: Option<String>,
    /// Every concurrency key's rate limit: at most N starts of one key's
    /// jobs per PERIOD, as --rate-limit (a key's own, `ferry limit --key K
    /// --rate`, wins), or `none` to remove it.
    #[arg(long, value_name = "N/PERIOD[:BURST]|none", allow_hyphen_values = true)]
    pub key_rate_limit: Option<String>,
    /// The queue-wide concurrency limit (at most N jobs running at once),
    /// or `none`.
    #[arg(long, value_name = "N|none", value_parser = parse_limit32)]
    pub concurrency: Option<Limit32>,
    /// Every concurrency key's limit (a key's own, `ferry limit --key`,
    /// wins), or `none`.
    #[arg(long, value_name = "N|none", value_parser = parse_limit32)]
    pub key_concurrency: Option<Limit32>,
    /// Priority weights: critical,high,normal,low (`8,4,2,1`), or
    /// `strict` for strict priority.
    #[arg(long, value_name = "C,H,N,L|strict")]
    pub weights: Option<String>,
    /// Delete every finished job's record (dead letters stay); needs --yes.
    #[arg(long)]
    pub clear_results: bool,
    /// Confirm --clear-results.
    #[arg(long)]
    pub yes: bool,
}

/// A number, or no limit (`none`, `off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    match s {
        "none" | "off" => Ok(Limit(None)),
        _ => s
            .parse::<u64>()
            .map(|n| Limit(Some(n)))
            .map_err(|_| format!("{s:?} is not a whole number, `none` or `off`")),
    }
}

/// A concurrency limit of 1 or more, or none (`none`, `off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit32(pub Option<u32>);

/// Parses a concurrency limit: 1 or more, or `none`.
pub fn parse_limit32(s: &str) -> Result<Limit32, String> {
    match s {
        "none" | "off" => Ok(Limit32(None)),
        _ => match s.parse::<u32>() {
            Ok(0) => Err("0 would run nothing; pause the queue, or use `none`".into()),
            Ok(n) => Ok(Limit32(Some(n))),
            Err(_) => Err(format!("{s:?} is not a whole number or `none`")),
        },
    }
}

/// `ferry limits`.
#[derive(Debug, Args)]
pub struct LimitsArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
}

/// `ferry limit`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["job_type", "key"])))]
pub struct LimitArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// The job type whose limit to set.
    #[arg(long = "type", value_name = "T")]
    pub job_type: Option<String>,
    /// The concurrency key whose limit to set.
    #[arg(long, value_name = "K")]
    pub key: Option<String>,
    /// The concurrency limit (1 or more), or `none` to remove it; may be
    /// left out with --rate.
    #[arg(value_name = "N|none", value_parser = parse_limit32, required_unless_present = "rate")]
    pub limit: Option<Limit32>,
    /// The type's or key's rate limit instead (or as well): at most N
    /// starts of its jobs per PERIOD fleet-wide (`50/1s`, `1000/1m:100`;
    /// periods in ms, s, m or h), or `none` to remove it. Prints the
    /// limits as `ferry limits` does.
    #[arg(long, value_name = "N/PERIOD[:BURST]|none", allow_hyphen_values = true)]
    pub rate: Option<String>,
}

/// `ferry events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Queue name.
    #[arg(value_parser = parse_queue)]
    pub queue: String,
    /// Start after this event's entry id (`0`, the default: the oldest
    /// kept).
    #[arg(long, value_name = "ID", default_value = "0")]
    pub after: String,
    /// Most events printed before following (or in all, without --follow).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Keep printing events as they happen, until Ctrl-C (blocks in Redis;
    /// nothing polls).
    #[arg(long, short = 'f')]
    pub follow: bool,
}
