//! Real processes: the `worker-example` binary as producer and worker.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The `worker-example` binary, built once per test binary with the same profile.
pub fn worker_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built_bin("worker-example", "worker-example"))
        .clone()
}

/// Builds binary `bin` of package `package` with the test's own profile
/// (release or debug) and returns its path.
pub fn built_bin(package: &str, bin: &str) -> PathBuf {
    // The test executable lives in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>")
        .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("run cargo build -p {package}: {e}"));
    assert!(status.success(), "cargo build -p {package} failed");
    let path = profile_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "no {bin} binary at {}", path.display());
    path
}

fn log_path(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("ferry-test-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{label}-{}.log", uuid::Uuid::new_v4().simple()))
}

/// A `worker-example work` process.
pub struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    /// Starts `worker-example work <args>` against `url` with key prefix `prefix`.
    /// Its stderr goes to a log file, printed if the test fails.
    pub fn spawn(url: &str, prefix: &str, args: &[&str]) -> Self {
        Self::spawn_with_env(url, prefix, args, &[])
    }

    /// As [`WorkerProcess::spawn`], with extra environment variables (a
    /// fake clock: [`crate::clock::skewed`]).
    pub fn spawn_with_env(
        url: &str,
        prefix: &str,
        args: &[&str],
        env: &[(String, String)],
    ) -> Self {
        let log = log_path("worker");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(worker_bin())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("--prefix")
            .arg(prefix)
            .arg("work")
            .args(args)
            .env("REDIS_URL", url)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn worker-example");
        Self { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running process has a pid")
    }

    /// SIGKILL: the process dies at once, leaving its entries pending.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL worker");
    }

    /// SIGTERM: graceful shutdown.
    pub fn terminate(&self) {
        signal(self.pid(), "TERM");
    }

    /// SIGSTOP: the process freezes (it stops renewing its leases).
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// SIGCONT after [`WorkerProcess::pause`].
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for the process to exit, at most `within`.
    pub async fn wait(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait for worker"),
            Err(_) => panic!(
                "worker did not exit within {within:?}; log:\n{}",
                self.log_text()
            ),
        }
    }

    /// What the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("--- worker log tail ({}) ---", self.log.display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Sends `SIG<name>` to `pid` (a process this test started).
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Runs `worker-example produce <args>` and returns the ids it printed.
pub async fn produce(url: &str, prefix: &str, args: &[&str]) -> Vec<String> {
    produce_with_env(url, prefix, args, &[]).await
}

/// As [`produce`], with extra environment variables.
pub async fn produce_with_env(
    url: &str,
    prefix: &str,
    args: &[&str],
    env: &[(String, String)],
) -> Vec<String> {
    let out = Command::new(worker_bin())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--prefix")
        .arg(prefix)
        .arg("produce")
        .args(args)
        .env("REDIS_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run worker-example produce");
    assert!(
        out.status.success(),
        "produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 ids")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `worker-example --prefix P <args>` to its end; returns its exit
/// code and stdout.
pub async fn example(url: &str, prefix: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(worker_bin())
        .arg("--prefix")
        .arg(prefix)
        .args(args)
        .env("REDIS_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run worker-example");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
