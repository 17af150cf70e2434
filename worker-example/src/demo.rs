//! `demo`: the README's first command. Uses `REDIS_URL` when a server answers
//! there, otherwise starts a throwaway `redis-server` on a free port: the
//! one on `PATH`, else one `ferry-dev-redis` obtains and caches.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_queue::{Client, EnqueueOptions, Priority};

use crate::jobs::Kind;
use crate::{build_worker, enqueue_kind, spawn_idle_exit, AnyResult, WorkArgs};

const QUEUE: &str = "demo";

/// A redis-server this demo started; killed when dropped.
struct OwnRedis {
    child: Child,
    /// The redis-server binary it runs.
    binary: std::path::PathBuf,
    dir: Option<tempfile::TempDir>,
    keep: bool,
}

impl OwnRedis {
    /// Leaves the server running (and its directory in place) after the demo.
    fn detach(&mut self) {
        self.keep = true;
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if !self.keep {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn answers(url: &str) -> bool {
    let Ok(client) = Client::connect(url) else {
        return false;
    };
    let ping = async {
        let mut conn = client.connection();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ping).await,
        Ok(Some(_))
    )
}

async fn start_redis() -> AnyResult<(String, OwnRedis)> {
    // On PATH, cached, or obtained now (it says so on stderr); blocking.
    let binary = tokio::task::spawn_blocking(ferry_dev_redis::redis_server)
        .await?
        .map_err(|e| {
            format!(
                "no Redis answers at REDIS_URL and none could be started: {e}; \
                 or run `docker compose up -d redis`, or point REDIS_URL at a server."
            )
        })?;
    let dir = tempfile::tempdir()?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(&binary)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {} ({e})", binary.display()))?;
    let own = OwnRedis {
        child,
        binary,
        dir: Some(dir),
        keep: false,
    };
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(&url).await {
        if Instant::now() > deadline {
            return Err("the redis-server started by the demo did not answer within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((url, own))
}

/// What the demo does besides its run.
pub(crate) struct Options {
    /// Leave the throwaway redis-server running afterwards.
    pub keep_redis: bool,
    /// The dashboard's port on 127.0.0.1 (a free one when taken).
    pub dashboard_port: u16,
    /// Keep serving the dashboard after the run, until Ctrl-C.
    pub serve: bool,
}

/// Serves `ferry serve`'s app (the dashboard at `/`, the API under `/v1`)
/// on 127.0.0.1:`port`, or a free port when that one is taken, with no
/// token (loopback only); its address, and the sender that stops it.
async fn start_dashboard(
    url: &str,
    prefix: &str,
    port: u16,
) -> AnyResult<(std::net::SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    use ferry_queue_cli::serve::{serve, AppState, Limits, Tokens};
    let config = ferry_queue_cli::AdminConfig::new(url).prefix(ferry_queue::Prefix::new(prefix)?);
    let admin = ferry_queue_cli::Admin::connect(config)?;
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?,
    };
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(admin, Tokens::default(), Limits::default());
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = serve(listener, state, shutdown).await {
            eprintln!("the dashboard stopped: {e}");
        }
    });
    Ok((addr, stop))
}

pub(crate) async fn run(redis_url: &str, options: Options) -> AnyResult {
    let Options {
        keep_redis,
        dashboard_port,
        serve,
    } = options;
    let shown = ferry_queue::RedisConfig::new(redis_url).redacted_url();
    // On a Redis of the user's, the demo's keys get a prefix of their own,
    // new each run: the demo never touches (or deletes) keys it did not
    // create. On its own throwaway server it uses the default prefix.
    let (url, own, prefix) = if answers(redis_url).await {
        let prefix = format!(
            "ferry-demo-{:08x}",
            std::process::id()
                ^ (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0))
        );
        println!("Using Redis at {shown} (the demo's keys start with `{prefix}:`)");
        (redis_url.to_owned(), None, prefix)
    } else {
        let (url, own) = start_redis().await?;
        println!(
            "No Redis at {shown}; started a throwaway redis-server at {url} ({})",
            own.binary.display()
        );
        (url, Some(own), "ferry".to_owned())
    };
    let prefix = prefix.as_str();
    let client = Client::builder(url.as_str()).prefix(prefix).connect()?;
    let mut conn = client.connection();
    let keys = client.keys(QUEUE)?;
    let (dashboard, stop_dashboard) = start_dashboard(&url, prefix, dashboard_port).await?;
    println!("Dashboard: http://{dashboard}/  (while the demo runs; `demo --serve` keeps it up)");

    let plan: [(&str, Kind, Priority, usize, u32); 6] = [
        ("echo", Kind::Echo, Priority::Low, 20, 3),
        ("echo", Kind::Echo, Priority::Normal, 20, 3),
        ("echo", Kind::Echo, Priority::Critical, 5, 3),
        ("sleep:200", Kind::Sleep(200), Priority::High, 10, 3),
        (
            "fail:2 (succeeds on attempt 3)",
            Kind::Fail(2),
            Priority::Normal,
            3,
            3,
        ),
        (
            "always-fail (ends in the dead-letter stream)",
            Kind::AlwaysFail,
            Priority::High,
            1,
            2,
        ),
    ];
    println!("\nEnqueueing into queue `{QUEUE}`:");
    let mut total = 0;
    for (label, kind, priority, count, retries) in &plan {
        let opts = EnqueueOptions::new()
            .priority(*priority)
            .max_retries(*retries);
        enqueue_kind(&client, QUEUE, kind, *count, opts).await?;
        println!("  {count:>3} x {label:<46} priority {priority:<8} max_retries {retries}");
        total += count;
    }

    let args = WorkArgs {
        queue: vec![QUEUE.to_owned()],
        concurrency: 8,
        lease_ms: 5_000,
        audit: Some(format!("{prefix}:demo-audit")),
        exit_when_idle: Some(0.5),
        metrics_listen: None,
        max_deliveries: 5,
        grace_ms: 5_000,
        backoff_base_ms: 100,
        backoff_max_ms: 2_000,
        job_timeout_ms: 10_000,
        allow_eviction: false,
        strict_memory_policy: false,
    };
    let worker = build_worker(&ferry_queue::RedisConfig::new(url.as_str()), prefix, &args)?;
    let activity = worker.activity();
    spawn_idle_exit(
        &worker,
        client.clone(),
        args.queue.clone(),
        Duration::from_millis(500),
    );
    println!("\nRunning a worker (concurrency 8) until the queue is drained...");
    let started = Instant::now();
    worker.run().await?;
    let elapsed = started.elapsed();

    let stats = client.stats(QUEUE).await?;
    println!(
        "\nDone in {:.2} s: {total} jobs enqueued",
        elapsed.as_secs_f64()
    );
    println!("  completed      {}", activity.completed());
    println!("  retries        {}", activity.retried());
    println!("  dead-lettered  {}", activity.dead());
    println!(
        "  left in queue  waiting {}, running {}, delayed {}, dead-letter stream {}",
        stats.total_waiting(),
        stats.total_pending(),
        stats.delayed,
        stats.dead
    );
    for d in client.dead_letters(QUEUE, 10).await? {
        println!(
            "  dead letter {}: type={} attempt={} error={:?}",
            d.entry_id,
            d.get("type").unwrap_or("?"),
            d.get("attempt").unwrap_or("?"),
            d.get("error").unwrap_or("?")
        );
    }

    let port_args = url
        .strip_prefix("redis://")
        .and_then(|hp| hp.rsplit_once(':'))
        .map(|(h, p)| {
            format!(
                "-h {h} -p {}",
                p.trim_end_matches(|c: char| !c.is_ascii_digit())
            )
        })
        .unwrap_or_default();
    // On a fresh machine the only redis-cli may be the cached one.
    let cli_binary = match &own {
        Some(_) => ferry_dev_redis::redis_cli()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "redis-cli".to_owned()),
        None => "redis-cli".to_owned(),
    };
    let cli = format!("{cli_binary} {port_args}");
    println!("\nLook at what Ferry left in Redis:");
    println!("  {cli} --scan --pattern '{prefix}:{{{QUEUE}}}:*'");
    println!("  {cli} XINFO GROUPS '{}'", keys.stream(Priority::Normal));
    println!(
        "  {cli} XPENDING '{}' workers",
        keys.stream(Priority::Normal)
    );
    println!("  {cli} XRANGE '{}' - +", keys.dead());
    println!("  {cli} HGETALL '{}'", keys.stats());
    println!("  {cli} HLEN '{prefix}:demo-audit'      # jobs that ran successfully, by id");
    println!("\nKeys of the queue now:");
    let mut scan = redis::cmd("SCAN");
    scan.arg(0)
        .arg("MATCH")
        .arg(format!("{prefix}:{{{QUEUE}}}:*"))
        .arg("COUNT")
        .arg(1000);
    // The queue's keys share a hash tag: on a cluster they are all on one
    // master, and SCAN walks one server, so ask each.
    let mut found = Vec::new();
    for mut master in conn.masters().await? {
        let (_, keys): (String, Vec<String>) = scan.query_async(&mut master).await?;
        found.extend(keys);
    }
    found.sort();
    for key in found {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await?;
        println!("  {key:<28} {kind}");
    }
    // The user's URL may hold a password: name the variable instead.
    let redis_arg = if own.is_some() {
        url.as_str()
    } else {
        "\"$REDIS_URL\""
    };
    let serve_again =
        format!("cargo run -p ferry-queue-cli -- --redis {redis_arg} --prefix {prefix} serve");
    if serve {
        println!("\nThe dashboard stays at http://{dashboard}/ until Ctrl-C.");
        ferry_queue::shutdown_signal().await;
    } else {
        println!("\nThe dashboard (http://{dashboard}/) stops with the demo; to look again, keep Redis and run:\n  {serve_again}");
    }
    let _ = stop_dashboard.send(());
    if let Some(mut own) = own {
        if keep_redis {
            println!("\nThe throwaway redis-server (pid {}) keeps running; stop it with: {cli} shutdown nosave", own.child.id());
            own.detach();
        } else {
            println!("\nThe throwaway redis-server stops now (run `demo --keep-redis` to keep it, or set REDIS_URL).");
        }
    }
    Ok(())
}
