//! Figures (median, min, max of several runs), CPU accounting, percentiles,
//! and the bench's own redis-server.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One figure: the median of several runs, with min and max.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub name: String,
    pub unit: &'static str,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: Vec<f64>,
}

impl Figure {
    pub fn new(name: impl Into<String>, unit: &'static str, mut runs: Vec<f64>) -> Self {
        runs.sort_by(|a, b| a.total_cmp(b));
        let median = if runs.is_empty() {
            f64::NAN
        } else {
            runs[runs.len() / 2]
        };
        Self {
            name: name.into(),
            unit,
            median,
            min: runs.first().copied().unwrap_or(f64::NAN),
            max: runs.last().copied().unwrap_or(f64::NAN),
            runs,
        }
    }
}

/// CPU seconds (user + system) this process has used (getrusage).
pub fn process_cpu() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => 0.0,
    }
}

/// A field of `INFO <section>` as a number.
pub async fn info_field(
    conn: &mut redis::aio::MultiplexedConnection,
    section: &str,
    field: &str,
) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// CPU seconds Redis has used (main thread and others, user + system).
pub async fn redis_cpu(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    info_field(conn, "cpu", "used_cpu_user").await + info_field(conn, "cpu", "used_cpu_sys").await
}

/// CPU used by this process and by Redis over a measured section.
pub struct CpuMeter {
    process: f64,
    redis: f64,
    started: Instant,
}

/// What a [`CpuMeter`] measured.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub elapsed: Duration,
    pub process_cpu: f64,
    pub redis_cpu: f64,
}

impl CpuMeter {
    pub async fn start(conn: &mut redis::aio::MultiplexedConnection) -> Self {
        Self {
            process: process_cpu(),
            redis: redis_cpu(conn).await,
            started: Instant::now(),
        }
    }

    pub async fn stop(self, conn: &mut redis::aio::MultiplexedConnection) -> Measured {
        let elapsed = self.started.elapsed();
        Measured {
            elapsed,
            process_cpu: process_cpu() - self.process,
            redis_cpu: redis_cpu(conn).await - self.redis,
        }
    }
}

/// The `p`-th percentile (0..=100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Microseconds since the Unix epoch (shared clock of producer and handler).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A ~100-byte JSON payload.
pub fn payload(seq: u64, sent_us: u64) -> String {
    format!(
        r#"{{"seq":{seq},"sent_us":{sent_us},"pad":"{}"}}"#,
        "x".repeat(56)
    )
}

/// The bench's own redis-server, killed on drop.
pub struct OwnRedis {
    child: Child,
    _dir: tempfile::TempDir,
    pub url: String,
}

impl OwnRedis {
    pub fn start(binary: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(binary)
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
            .map_err(|e| {
                format!("cannot start {binary} ({e}); install redis-server or set REDIS_URL")
            })?;
        Ok(Self {
            child,
            _dir: dir,
            url: format!("redis://127.0.0.1:{port}"),
        })
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
