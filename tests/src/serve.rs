//! `ferry serve` as a real process on a real socket, and an HTTP client
//! for it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::RedisServer;

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

/// The body of a GET of `url`, as text (whatever the status).
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// `text` parsed as the Prometheus text format (a /metrics page).
pub fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The status and the JSON body of an answer (every answer of the API is
/// JSON but /metrics); panics with both when the body is not JSON.
pub async fn answer(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: the body is not JSON ({e}): {text:?}"));
    (status, body)
}

/// A test's HTTP environment: a Redis, a key prefix of its own,
/// `ferry serve` on both, and a client for it.
pub struct Env {
    pub redis: RedisServer,
    pub prefix: String,
    pub server: Server,
    pub http: reqwest::Client,
}

impl Env {
    /// On a Redis of [`RedisServer::start`], with a prefix `<stem>-<unique>`;
    /// `ferry serve <args>` with the environment `env`.
    pub async fn new(stem: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::on(RedisServer::start().await, stem, args, env)
    }

    /// As [`Env::new`], on `redis`.
    pub fn on(redis: RedisServer, stem: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let prefix = crate::unique(stem);
        let server = Server::start(redis.url(), &prefix, args, env);
        Self {
            redis,
            prefix,
            server,
            http: http(),
        }
    }

    /// The status and JSON body of `method path` with the JSON `body`, if any.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.http.request(method, self.server.url(path));
        if let Some(b) = body {
            r = r.json(&b);
        }
        answer(r.send().await.unwrap()).await
    }

    /// The status and JSON body of `GET path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    /// The status and JSON body of `POST path` with the JSON `body`.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    /// The body of `GET path`, as text (whatever the status).
    pub async fn text(&self, path: &str) -> String {
        get_text(&self.http, &self.server.url(path)).await
    }
}
