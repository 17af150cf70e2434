//! `ferry serve` as a real process on a real socket, and an HTTP client
//! for it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `ferry serve`; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it printed on stderr, line by line, as it goes.
    log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `ferry serve --listen 127.0.0.1:0 <args>` against `url` with
    /// key prefix `prefix` and the environment `env`, and waits until it
    /// says where it listens.
    pub fn start(url: &str, prefix: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(crate::cli::ferry_bin());
        cmd.args([
            "--redis",
            url,
            "--prefix",
            prefix,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env_remove("FERRY_TOKEN")
        .env_remove("FERRY_READ_TOKEN")
        .env_remove("FERRY_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ferry serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[ferry serve] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = log
            .recv_timeout(Duration::from_secs(60))
            .expect("ferry serve printed nothing");
        let base = first
            .split("on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|addr| format!("http://{addr}"))
            .unwrap_or_else(|| panic!("ferry serve did not say where it listens: {first}"));
        Self { child, base, log }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Lines it printed since the last call.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that never waits more than 90 s for an answer.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("an HTTP client")
}
