//! The `ferry` command line (crate `ferry-queue-cli`) as a real process.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The `ferry` binary, built once per test binary with the same profile.
pub fn ferry_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| crate::process::built_bin("ferry-queue-cli", "ferry"))
        .clone()
}

/// What a `ferry` run printed, and how it ended.
#[derive(Debug)]
pub struct Ran {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
}

impl Ran {
    /// Stdout as one JSON document; panics (showing both streams) if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): code {}\nstdout: {}\nstderr: {}",
                self.code, self.stdout, self.stderr
            )
        })
    }

    /// Asserts exit code 0 and returns stdout as JSON.
    pub fn ok_json(&self) -> serde_json::Value {
        self.assert_code(0);
        self.json()
    }

    /// Asserts the exit code, showing both streams if it differs.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stderr is exactly one line starting `ferry: `; returns it.
    pub fn one_error_line(&self) -> &str {
        let line = self
            .stderr
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("stderr does not end a line: {:?}", self.stderr));
        assert!(
            !line.contains('\n') && line.starts_with("ferry: "),
            "stderr is not one `ferry: ` line: {:?}",
            self.stderr
        );
        line
    }
}

/// Runs `ferry --redis URL --prefix PREFIX <args>` to its end.
pub async fn ferry(url: &str, prefix: &str, args: &[&str]) -> Ran {
    ferry_with_stdin(url, prefix, args, None).await
}

/// As [`ferry`], writing `stdin` to its standard input (closed after),
/// or with no standard input at all for `None`.
pub async fn ferry_with_stdin(url: &str, prefix: &str, args: &[&str], stdin: Option<&str>) -> Ran {
    let started = Instant::now();
    let mut child = command(url, prefix, args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("piped stdin");
        input.write_all(text.as_bytes()).await.expect("write stdin");
        drop(input);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("ferry {args:?} did not end within 60 s"))
        .expect("wait for ferry");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// The `ferry` command with the Redis URL and prefix given, and no
/// `REDIS_URL` or `RUST_LOG` of the test's environment.
pub fn command(url: &str, prefix: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("--redis")
        .arg(url)
        .arg("--prefix")
        .arg(prefix)
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    cmd
}

/// A dead letter as `broker/lua/shared/dead_letter.lua` writes it: the
/// job's envelope fields (`id`, `type`, `payload`, `attempt`,
/// `max_retries`, `enqueued_at`), then `error`, `failed_at` and `priority`.
/// For seeding the dead-letter stream directly with [`seed_dead`], many
/// letters at a time, without a worker.
#[derive(Clone, Debug)]
pub struct DeadSeed {
    /// The entry id to write it at, or `None` for a new one (`*`).
    pub entry_id: Option<String>,
    /// The job id (the index points it at the letter).
    pub job_id: String,
    /// The job type.
    pub job_type: String,
    /// The payload (JSON text).
    pub payload: String,
    /// Why it died.
    pub error: String,
    /// Its priority's name.
    pub priority: String,
    /// Retries it was allowed (its last attempt is one more).
    pub max_retries: u32,
}

impl DeadSeed {
    /// Job `job_id` of type `job_type`, dead with `error`: priority normal,
    /// payload `{}`, no retries, at a new entry id.
    pub fn new(job_id: impl Into<String>, job_type: &str, error: &str) -> Self {
        Self {
            entry_id: None,
            job_id: job_id.into(),
            job_type: job_type.to_owned(),
            payload: "{}".to_owned(),
            error: error.to_owned(),
            priority: "normal".to_owned(),
            max_retries: 0,
        }
    }

    /// At entry id `entry_id` (higher than any in the stream).
    pub fn at(mut self, entry_id: &str) -> Self {
        self.entry_id = Some(entry_id.to_owned());
        self
    }

    /// With payload `payload` (JSON text).
    pub fn payload(mut self, payload: impl Into<String>) -> Self {
        self.payload = payload.into();
        self
    }
}

/// Writes `letters`, in order, to the dead-letter stream of `queue` under
/// `prefix` (pipelined `XADD`s, 500 a round trip) and points each job id at
/// its letter in the queue's index (`dead-<entry id>`), as the broker does
/// when a job dies. Returns the letters' entry ids.
pub async fn seed_dead(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    queue: &str,
    letters: &[DeadSeed],
) -> Vec<String> {
    let q = crate::queue(prefix, queue);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut ids = Vec::with_capacity(letters.len());
    for batch in letters.chunks(500) {
        let mut xadds = redis::pipe();
        for l in batch {
            xadds
                .cmd("XADD")
                .arg(q.keys().dead())
                .arg(l.entry_id.as_deref().unwrap_or("*"))
                .arg("id")
                .arg(&l.job_id)
                .arg("type")
                .arg(&l.job_type)
                .arg("payload")
                .arg(&l.payload)
                .arg("attempt")
                .arg(l.max_retries + 1)
                .arg("max_retries")
                .arg(l.max_retries)
                .arg("enqueued_at")
                .arg(now.saturating_sub(1000))
                .arg("error")
                .arg(&l.error)
                .arg("failed_at")
                .arg(now)
                .arg("priority")
                .arg(&l.priority);
        }
        let added: Vec<String> = xadds.query_async(conn).await.expect("XADD dead letters");
        let mut index = redis::cmd("HSET");
        index.arg(q.keys().index());
        for (l, id) in batch.iter().zip(&added) {
            index.arg(&l.job_id).arg(format!("dead-{id}"));
        }
        let _: u64 = index.query_async(conn).await.expect("HSET index");
        ids.extend(added);
    }
    ids
}

/// The server's `total_net_output_bytes` (`INFO stats`): every byte it has
/// sent any client.
pub async fn net_output_bytes(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .expect("INFO stats");
    info.lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_net_output_bytes in INFO stats")
}
