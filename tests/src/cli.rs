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
