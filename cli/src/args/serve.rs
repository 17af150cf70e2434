//! `ferry serve`'s arguments.

use std::time::Duration;

use clap::Args;

use super::parse_timeout;

/// Where `ferry serve` listens, who may call it, and its limits.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        env = "FERRY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: std::net::SocketAddr,
    /// Bearer token that allows every route (prefer the environment
    /// variable: a flag shows in `ps`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FERRY_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Bearer token that allows the reads (GET) only.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FERRY_READ_TOKEN",
        hide_env_values = true
    )]
    pub read_token: Option<String>,
    /// Refuse every change (POST, DELETE), whatever the token.
    #[arg(long)]
    pub read_only: bool,
    /// Do not fire the queues' cron and periodic schedules (by default
    /// `ferry serve` fires them, as every worker does, each tick once
    /// fleet-wide; never with --read-only).
    #[arg(long)]
    pub no_fire_schedules: bool,
    /// Largest request body, bytes (413 past it).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Most jobs in one batch enqueue (413 past it).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_batch: usize,
    /// Longest wait a client may ask of the wait route, seconds.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_timeout)]
    pub max_wait: Duration,
    /// How long one operation may take before it fails with a 503, seconds.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_timeout)]
    pub request_timeout: Duration,
}
